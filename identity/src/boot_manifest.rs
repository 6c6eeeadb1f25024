//! The content manifest of a node's boot image: every entry of the initramfs,
//! with the SHA-256 of every file, signed by the boot key as a
//! [`Statement`](crate::Statement) with purpose
//! [`purpose::BOOT_MANIFEST`](crate::statement::purpose::BOOT_MANIFEST).
//!
//! A kernel cannot hash the initramfs it booted from, and the init cannot hash
//! the compressed archive it was unpacked from. So the archive carries, at
//! [`CONTENT_MANIFEST_PATH`], a signed [`ContentManifest`] listing each entry:
//! `nodus netboot build-image` writes it and the init (`nodus_agent::boot::verify`)
//! checks the signature against `nodus.boot_key=`, then walks its root and
//! compares. Both sides use these types, so the postcard layout has one
//! definition; the variant order of [`EntryKind`] is pinned by a test, because an
//! image built by one release is verified by the init of that image, but the
//! manifest tools of another.

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{SecretKey, Signed, Statement, statement::purpose};

    #[test]
    fn entry_kind_variant_indexes_are_pinned() {
        // postcard writes the variant index first: images signed with this layout
        // must keep verifying, so variants are only ever appended.
        let kinds = [
            EntryKind::Dir { mode: 0o755 },
            EntryKind::File {
                mode: 0o644,
                size: 0,
                sha256: [0; 32],
            },
            EntryKind::Symlink { target: "x".into() },
            EntryKind::CharDev {
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        ];
        for (i, k) in kinds.iter().enumerate() {
            assert_eq!(postcard::to_allocvec(k).unwrap()[0], i as u8, "{k:?}");
        }
    }

    #[test]
    fn a_signed_manifest_roundtrips_through_bytes() {
        let key = SecretKey::from_seed(&[3; 32]);
        let m = ContentManifest {
            farm: "7".into(),
            kernel_release: "6.1.0-56-amd64".into(),
            entries: vec![Entry {
                path: "bin/nodus".into(),
                kind: EntryKind::File {
                    mode: 0o755,
                    size: 3,
                    sha256: [7; 32],
                },
            }],
        };
        let bytes = Statement::new(purpose::BOOT_MANIFEST, "net", key.public(), None, m.clone())
            .sign(&key)
            .unwrap()
            .to_bytes()
            .unwrap();
        let back = Signed::<ContentManifest>::from_bytes(&bytes).unwrap();
        assert_eq!(back.statement.payload, m);
    }
}
