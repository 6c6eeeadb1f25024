//! The content manifest inside an initramfs: every entry of the archive, with the
//! SHA-256 of every file, signed with the boot key.
//!
//! The types are [`nodus_identity::boot_manifest`]'s, shared with the verifying
//! side (`nodus_agent::boot::verify`), so the layout the builder signs is the one
//! the init reads.

pub use nodus_identity::boot_manifest::{
    CONTENT_MANIFEST_PATH, ContentManifest, Entry, EntryKind, MODULE_LIST_PATH,
};
