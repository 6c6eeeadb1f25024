//! Signed boot manifests: the SHA-256 of every file of a boot image, signed with
//! the netboot server's ed25519 key as a [`Statement`] for
//! [`purpose::BOOT_MANIFEST`].
//!
//! An image directory holds `vmlinuz`, `initramfs` and `manifest` (the postcard
//! encoding of a [`Signed`]`<`[`Manifest`]`>`). The booted node fetches all three,
//! checks the signature against the key its kernel command line names, then checks
//! every hash; the HTTP server only serves them.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use nodus_identity::{
    PublicKey, SecretKey, Signed, Statement,
    statement::{Expect, StatementError, purpose},
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The kernel's file name in an image directory.
pub const KERNEL: &str = "vmlinuz";
/// The initramfs's file name in an image directory.
pub const INITRAMFS: &str = "initramfs";
/// The signed manifest's file name in an image directory.
pub const MANIFEST: &str = "manifest";
/// The files a manifest covers, in order.
pub const IMAGE_FILES: [&str; 2] = [KERNEL, INITRAMFS];
/// Largest manifest file read (it holds two hashes and a signature).
const MAX_MANIFEST: u64 = 64 * 1024;

/// One file of a boot image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFile {
    /// File name inside the image directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
}

/// What a boot manifest states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The farm the image is built for.
    pub farm: String,
    /// The files, with sizes and hashes.
    pub files: Vec<ImageFile>,
}

/// Why a manifest could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Reading an image file failed.
    #[error("Cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest file is too large to be one.
    #[error("Manifest {0} is too large")]
    TooLarge(PathBuf),
    /// The signature, purpose, network or signer is wrong.
    #[error("Manifest does not verify")]
    Statement(#[from] StatementError),
    /// A file's size or hash differs from the manifest.
    #[error("Image file {0} does not match the manifest")]
    Mismatch(String),
    /// The manifest does not list a file the image needs.
    #[error("Manifest does not cover {0}")]
    Missing(String),
}

/// Hashes one file.
pub fn hash_file(path: &Path) -> Result<ImageFile, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok(ImageFile {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sha256: h.finalize().into(),
    })
}

impl Manifest {
    /// The manifest of the image in `dir` (kernel and initramfs).
    pub fn of_dir(dir: &Path, farm: &str) -> Result<Self, ManifestError> {
        let files = IMAGE_FILES
            .iter()
            .map(|n| hash_file(&dir.join(n)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            farm: farm.to_owned(),
            files,
        })
    }

    /// Signs the manifest for `network`.
    pub fn sign(self, key: &SecretKey, network: &str) -> Result<Signed<Self>, ManifestError> {
        Ok(Statement::new(purpose::BOOT_MANIFEST, network, key.public(), None, self).sign(key)?)
    }

    /// Checks every image file in `dir` against the manifest.
    pub fn check_dir(&self, dir: &Path) -> Result<(), ManifestError> {
        for name in IMAGE_FILES {
            let want = self
                .files
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| ManifestError::Missing(name.to_owned()))?;
            if hash_file(&dir.join(name))? != *want {
                return Err(ManifestError::Mismatch(name.to_owned()));
            }
        }
        Ok(())
    }
}

/// Writes `signed` as the image's manifest file.
pub fn write(dir: &Path, signed: &Signed<Manifest>) -> Result<(), ManifestError> {
    let path = dir.join(MANIFEST);
    let bytes = signed.to_bytes()?;
    std::fs::write(&path, bytes).map_err(|source| ManifestError::Io { path, source })
}

/// Reads the image's manifest file (without verifying it).
pub fn read(dir: &Path) -> Result<Signed<Manifest>, ManifestError> {
    let path = dir.join(MANIFEST);
    let io = |source| ManifestError::Io {
        path: path.clone(),
        source,
    };
    let f = std::fs::File::open(&path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(ManifestError::TooLarge(path));
    }
    Ok(Signed::from_bytes(&bytes)?)
}

/// Verifies the image in `dir`: the manifest's signature by `key` on `network`,
/// then every file's hash. Returns the manifest.
pub fn verify_image(
    dir: &Path,
    key: &PublicKey,
    network: &str,
    now: u64,
) -> Result<Manifest, ManifestError> {
    let signed = read(dir)?;
    let m = signed
        .verify(&Expect::new(purpose::BOOT_MANIFEST, network, now).signed_by(key))?
        .clone();
    m.check_dir(dir)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image() -> (tempfile::TempDir, SecretKey) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(KERNEL), b"kernel bytes").unwrap();
        std::fs::write(d.path().join(INITRAMFS), vec![5u8; 200_000]).unwrap();
        let key = SecretKey::from_seed(&[7; 32]);
        let m = Manifest::of_dir(d.path(), "farm-1").unwrap();
        write(d.path(), &m.sign(&key, "nodus-test").unwrap()).unwrap();
        (d, key)
    }

    #[test]
    fn signed_image_verifies() {
        let (d, key) = image();
        let m = verify_image(
            d.path(),
            &key.public(),
            "nodus-test",
            nodus_identity::statement::unix_now(),
        )
        .unwrap();
        assert_eq!(m.farm, "farm-1");
        assert_eq!(m.files[1].size, 200_000);
    }

    #[test]
    fn tampered_initramfs_is_refused() {
        let (d, key) = image();
        let mut bytes = std::fs::read(d.path().join(INITRAMFS)).unwrap();
        bytes[1000] ^= 1;
        std::fs::write(d.path().join(INITRAMFS), bytes).unwrap();
        assert!(matches!(
            verify_image(d.path(), &key.public(), "nodus-test", nodus_identity::statement::unix_now()),
            Err(ManifestError::Mismatch(n)) if n == INITRAMFS
        ));
    }

    #[test]
    fn other_key_network_or_edited_manifest_is_refused() {
        let (d, key) = image();
        let other = SecretKey::from_seed(&[8; 32]).public();
        assert!(matches!(
            verify_image(
                d.path(),
                &other,
                "nodus-test",
                nodus_identity::statement::unix_now()
            ),
            Err(ManifestError::Statement(StatementError::WrongSigner))
        ));
        assert!(matches!(
            verify_image(
                d.path(),
                &key.public(),
                "mainnet",
                nodus_identity::statement::unix_now()
            ),
            Err(ManifestError::Statement(
                StatementError::WrongNetwork { .. }
            ))
        ));
        // Re-point the manifest at a tampered file: the signature breaks.
        let mut signed = read(d.path()).unwrap();
        signed.statement.payload.files[1].sha256 = [0; 32];
        write(d.path(), &signed).unwrap();
        assert!(matches!(
            verify_image(
                d.path(),
                &key.public(),
                "nodus-test",
                nodus_identity::statement::unix_now()
            ),
            Err(ManifestError::Statement(StatementError::BadSignature))
        ));
    }
}
