//! Boot-time verification of the unpacked initramfs.
//!
//! The image carries at [`CONTENT_MANIFEST_PATH`] a signed list of every entry
//! of the archive with the SHA-256 of every file (built by `nodus netboot
//! build-image`; the types are [`nodus_identity::boot_manifest`]'s, shared with
//! the builder). [`verify_root`] checks, in order:
//!
//! 1. a boot key was given (`nodus.boot_key=`);
//! 2. the manifest's signature, purpose (`nodus/boot-manifest`), network and
//!    signer;
//! 3. every listed entry exists with the listed type, permission bits, size and
//!    hash, or symlink target;
//! 4. nothing else exists, outside the directories the init mounts over
//!    (an added `/etc/ld.so.preload` is as much tampering as a changed file).
//!
//! The node's clock is not trusted this early (no NTP yet, perhaps no RTC), and
//! boot manifests never expire, so a manifest issued "in the future" is not
//! refused for that.
//!
//! What it cannot catch: a replaced `/init` that skips this check. That is the
//! outer manifest's job (`manifest` next to `initramfs`, checked before boot).

use std::{
    collections::BTreeMap,
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _},
    path::{Path, PathBuf},
};

pub use nodus_identity::boot_manifest::{
    CONTENT_MANIFEST_PATH, ContentManifest, Entry, EntryKind, MODULE_LIST_PATH,
};
use nodus_identity::{
    AccountId, PublicKey, Signed,
    statement::{Expect, StatementError, purpose},
};
use sha2::Digest as _;

/// Largest manifest read (a few thousand entries of ~100 bytes).
const MAX_MANIFEST: u64 = 4 << 20;
/// Directories the init mounts file systems on; their contents are not the
/// image's. The directories themselves must be listed.
pub const MOUNT_POINTS: &[&str] = &["proc", "sys", "dev", "run", "tmp"];

/// Why the image was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `nodus.boot_key=` on the kernel command line.
    #[error("No nodus.boot_key= on the kernel command line: cannot verify the image")]
    NoKey,
    /// The manifest file is missing or unreadable.
    #[error("Cannot read the boot manifest {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is larger than any real one.
    #[error("Boot manifest is too large")]
    TooLarge,
    /// Not a signed manifest at all.
    #[error("Boot manifest is malformed")]
    Malformed(#[source] StatementError),
    /// Signed by another key than `nodus.boot_key=`.
    #[error("Boot manifest is signed by {signer}, not by the boot key {expected}")]
    WrongKey {
        /// Who signed (account id text).
        signer: String,
        /// The key on the command line (account id text).
        expected: String,
    },
    /// Signature, purpose or network wrong.
    #[error("Boot manifest does not verify")]
    Signature(#[source] StatementError),
    /// A listed entry is missing.
    #[error("Image file /{0} is missing")]
    Missing(String),
    /// A listed entry differs (contents, size, type, permissions or target).
    #[error("Image file /{path} was modified ({what})")]
    Modified {
        /// The entry.
        path: String,
        /// What differs.
        what: &'static str,
    },
    /// An entry exists that the manifest does not list.
    #[error("Image file /{0} is not in the boot manifest")]
    Unlisted(String),
    /// Reading an entry failed.
    #[error("Cannot read image file /{path}")]
    Io {
        /// The entry.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A verified image.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The manifest.
    pub manifest: ContentManifest,
    /// Who signed it.
    pub signer: PublicKey,
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

fn check_entry(root: &Path, e: &Entry) -> Result<(), VerifyError> {
    let p = root.join(&e.path);
    let io = |source| VerifyError::Io {
        path: e.path.clone(),
        source,
    };
    let md = match std::fs::symlink_metadata(&p) {
        Ok(m) => m,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::Missing(e.path.clone()));
        }
        Err(err) => return Err(io(err)),
    };
    let modified = |what| VerifyError::Modified {
        path: e.path.clone(),
        what,
    };
    let ft = md.file_type();
    let perm = md.mode() & 0o7777;
    match &e.kind {
        EntryKind::Dir { mode } => {
            if !ft.is_dir() {
                return Err(modified("not a directory"));
            }
            // A mounted file system brings its own root permissions (/proc is
            // 0555); only the image's own directories must keep theirs.
            if perm != *mode && !MOUNT_POINTS.contains(&e.path.as_str()) {
                return Err(modified("permissions"));
            }
        }
        EntryKind::File { mode, size, sha256 } => {
            if !ft.is_file() {
                return Err(modified("not a regular file"));
            }
            if perm != *mode {
                return Err(modified("permissions"));
            }
            if md.len() != *size {
                return Err(modified("size"));
            }
            if sha256_file(&p).map_err(io)? != *sha256 {
                return Err(modified("contents"));
            }
        }
        EntryKind::Symlink { target } => {
            if !ft.is_symlink() {
                return Err(modified("not a symlink"));
            }
            if std::fs::read_link(&p).map_err(io)? != Path::new(target) {
                return Err(modified("link target"));
            }
        }
        EntryKind::CharDev { .. } => {
            // Device nodes are checked by type only where they could be made; under
            // /dev they are devtmpfs's, not the image's.
            if !ft.is_char_device() {
                return Err(modified("not a character device"));
            }
        }
    }
    Ok(())
}

fn under_mount_point(path: &str) -> bool {
    MOUNT_POINTS
        .iter()
        .any(|m| path.strip_prefix(m).is_some_and(|r| r.starts_with('/')))
}

fn walk(root: &Path, rel: &str, listed: &BTreeMap<&str, &Entry>) -> Result<(), VerifyError> {
    let dir = root.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(|source| VerifyError::Io {
        path: rel.to_owned(),
        source,
    })?;
    let mut names: Vec<_> = rd
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|source| VerifyError::Io {
            path: rel.to_owned(),
            source,
        })?;
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if path == CONTENT_MANIFEST_PATH {
            continue;
        }
        let Some(entry) = listed.get(path.as_str()) else {
            return Err(VerifyError::Unlisted(path));
        };
        if matches!(entry.kind, EntryKind::Dir { .. })
            && !MOUNT_POINTS.contains(&path.as_str())
            && std::fs::symlink_metadata(root.join(&path)).is_ok_and(|m| m.is_dir())
        {
            walk(root, &path, listed)?;
        }
    }
    Ok(())
}

/// Verifies the image unpacked at `root` against `key` on `network`: the
/// manifest ([`open_manifest`]), every listed entry and nothing unlisted.
pub fn verify_root(
    root: &Path,
    key: Option<&PublicKey>,
    network: &str,
    clock: u64,
) -> Result<Verified, VerifyError> {
    let v = open_manifest(root, key, network, clock)?;
    v.check_entries(root, |_| true)?;
    v.check_nothing_unlisted(root)?;
    Ok(v)
}

/// Whether the module loader reads `path` (the module list and the modules):
/// the init checks these first and loads modules while it checks the rest.
pub fn is_module_input(path: &str) -> bool {
    path == MODULE_LIST_PATH || path.starts_with("lib/modules/")
}

/// Reads the manifest at `root` and checks its signature, purpose, network and
/// signer against `key`; no file is checked yet (see [`Verified::check_entries`]
/// and [`Verified::check_nothing_unlisted`], which [`verify_root`] runs).
pub fn open_manifest(
    root: &Path,
    key: Option<&PublicKey>,
    network: &str,
    clock: u64,
) -> Result<Verified, VerifyError> {
    let key = key.ok_or(VerifyError::NoKey)?;
    let path = root.join(CONTENT_MANIFEST_PATH);
    let read = |source| VerifyError::Read {
        path: path.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .map_err(read)?
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(VerifyError::TooLarge);
    }
    let signed = Signed::<ContentManifest>::from_bytes(&bytes).map_err(VerifyError::Malformed)?;
    if signed.statement.signer != *key {
        return Err(VerifyError::WrongKey {
            signer: AccountId::from(signed.statement.signer).to_string(),
            expected: AccountId::from(*key).to_string(),
        });
    }
    // The clock is untrusted at boot (see the module doc).
    let now = clock.max(signed.statement.issued_at);
    let manifest = signed
        .verify(&Expect::new(purpose::BOOT_MANIFEST, network, now).signed_by(key))
        .map_err(VerifyError::Signature)?
        .clone();
    Ok(Verified {
        manifest,
        signer: *key,
    })
}

impl Verified {
    /// Checks every listed entry whose path `which` selects (contents of mount
    /// points excepted): type, permissions, size and hash, or link target.
    pub fn check_entries(
        &self,
        root: &Path,
        which: impl Fn(&str) -> bool,
    ) -> Result<(), VerifyError> {
        for e in &self.manifest.entries {
            if under_mount_point(&e.path) || !which(&e.path) {
                continue;
            }
            check_entry(root, e)?;
        }
        Ok(())
    }

    /// Checks that nothing exists under `root` that the manifest does not list
    /// (mount points excepted).
    pub fn check_nothing_unlisted(&self, root: &Path) -> Result<(), VerifyError> {
        let listed: BTreeMap<&str, &Entry> = self
            .manifest
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e))
            .collect();
        walk(root, "", &listed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use nodus_identity::{SecretKey, Statement};

    use super::*;

    fn image() -> (tempfile::TempDir, SecretKey) {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for dir in ["bin", "etc/nodus", "proc"] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
            std::fs::set_permissions(r.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(r.join("bin/nodus"), b"ELF").unwrap();
        std::fs::set_permissions(r.join("bin/nodus"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("/bin/nodus", r.join("init")).unwrap();
        let dir = |path: &str| Entry {
            path: path.into(),
            kind: EntryKind::Dir { mode: 0o755 },
        };
        let m = ContentManifest {
            farm: "f".into(),
            kernel_release: String::new(),
            entries: vec![
                dir("bin"),
                Entry {
                    path: "bin/nodus".into(),
                    kind: EntryKind::File {
                        mode: 0o755,
                        size: 3,
                        sha256: sha2::Sha256::digest(b"ELF").into(),
                    },
                },
                dir("etc"),
                dir("etc/nodus"),
                Entry {
                    path: "init".into(),
                    kind: EntryKind::Symlink {
                        target: "/bin/nodus".into(),
                    },
                },
                dir("proc"),
            ],
        };
        let key = SecretKey::from_seed(&[9; 32]);
        let s = Statement::new(purpose::BOOT_MANIFEST, "net", key.public(), None, m)
            .sign(&key)
            .unwrap();
        std::fs::write(r.join(CONTENT_MANIFEST_PATH), s.to_bytes().unwrap()).unwrap();
        (d, key)
    }

    #[test]
    fn an_intact_image_verifies_and_mounted_contents_are_ignored() {
        let (d, key) = image();
        std::fs::write(d.path().join("proc/cmdline"), b"x").unwrap();
        // Regression: /proc mounted over the image's directory is 0555.
        std::fs::set_permissions(
            d.path().join("proc"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        let v = verify_root(d.path(), Some(&key.public()), "net", 0).unwrap();
        assert_eq!(v.manifest.entries.len(), 6);
    }

    #[test]
    fn each_kind_of_tampering_is_refused() {
        let (d, key) = image();
        let k = key.public();
        assert!(matches!(
            verify_root(d.path(), None, "net", 0),
            Err(VerifyError::NoKey)
        ));
        let other = SecretKey::from_seed(&[1; 32]).public();
        assert!(matches!(
            verify_root(d.path(), Some(&other), "net", 0),
            Err(VerifyError::WrongKey { .. })
        ));
        assert!(matches!(
            verify_root(d.path(), Some(&k), "mainnet", 0),
            Err(VerifyError::Signature(StatementError::WrongNetwork { .. }))
        ));
        std::fs::write(d.path().join("etc/ld.so.preload"), b"/evil.so").unwrap();
        assert!(matches!(
            verify_root(d.path(), Some(&k), "net", 0),
            Err(VerifyError::Unlisted(p)) if p == "etc/ld.so.preload"
        ));
        std::fs::remove_file(d.path().join("etc/ld.so.preload")).unwrap();
        std::fs::write(d.path().join("bin/nodus"), b"ELG").unwrap();
        assert!(matches!(
            verify_root(d.path(), Some(&k), "net", 0),
            Err(VerifyError::Modified {
                what: "contents",
                ..
            })
        ));
        std::fs::remove_file(d.path().join("bin/nodus")).unwrap();
        assert!(matches!(
            verify_root(d.path(), Some(&k), "net", 0),
            Err(VerifyError::Missing(p)) if p == "bin/nodus"
        ));
    }

    #[test]
    fn checking_in_two_parts_covers_what_verify_root_covers() {
        let (d, key) = image();
        std::fs::write(d.path().join("bin/nodus"), b"ELG").unwrap();
        let v = open_manifest(d.path(), Some(&key.public()), "net", 0).unwrap();
        // The modules part does not look at bin/nodus; the rest does.
        v.check_entries(d.path(), is_module_input).unwrap();
        assert!(matches!(
            v.check_entries(d.path(), |p| !is_module_input(p)),
            Err(VerifyError::Modified { path, .. }) if path == "bin/nodus"
        ));
        assert!(is_module_input("etc/nodus/modules"));
        assert!(is_module_input("lib/modules/6.1.0-56-amd64/kernel/a.ko"));
        assert!(!is_module_input("lib/x86_64-linux-gnu/libc.so.6"));
    }

    #[test]
    fn a_truncated_manifest_is_malformed() {
        let (d, key) = image();
        let p = d.path().join(CONTENT_MANIFEST_PATH);
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        assert!(matches!(
            verify_root(d.path(), Some(&key.public()), "net", 0),
            Err(VerifyError::Malformed(_))
        ));
    }
}
