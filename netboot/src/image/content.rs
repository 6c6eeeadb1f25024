//! The content manifest inside an initramfs: every entry of the archive, with the
//! SHA-256 of every file, signed with the boot key.
//!
//! A kernel cannot hash the initramfs it booted from, and the init cannot hash
//! the compressed archive it was unpacked from. So the archive carries, at
//! [`CONTENT_MANIFEST_PATH`], a [`Signed`](nodus_identity::Signed)
//! [`ContentManifest`] listing each entry; the init checks the signature against
//! `nodus.boot_key=` and then walks its root and compares. The agent crate holds
//! the verifying side (`nodus_agent::boot::verify`) with the same postcard layout;
//! the root package's tests build with this side and verify with that one.

use serde::{Deserialize, Serialize};

/// Where the signed content manifest sits in the archive (not listed in itself).
pub const CONTENT_MANIFEST_PATH: &str = "etc/nodus/boot-manifest";
/// The module load list: one `name path` line per module, dependencies first.
pub const MODULE_LIST_PATH: &str = "etc/nodus/modules";

/// What one archive entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Permission bits.
        mode: u32,
        /// Size in bytes.
        size: u64,
        /// SHA-256 of the contents.
        sha256: [u8; 32],
    },
    /// A symbolic link.
    Symlink {
        /// Where it points.
        target: String,
    },
    /// A character device node.
    CharDev {
        /// Permission bits.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
}

/// One archive entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Path relative to the root, without a leading slash.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
}

/// Everything in the initramfs but this manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentManifest {
    /// The farm the image is built for.
    pub farm: String,
    /// The kernel release the modules are for (empty without modules).
    pub kernel_release: String,
    /// Every entry, sorted by path.
    pub entries: Vec<Entry>,
}
