//! The encrypted keystore file: one secret key sealed with a passphrase.
//!
//! # Format (version 1)
//!
//! A small JSON document, so an operator can see what a file is without tools:
//!
//! ```json
//! {
//!   "format": "nodus-keystore",
//!   "version": 1,
//!   "id": "acct1…",
//!   "kdf": { "algorithm": "argon2id", "memory_kib": 65536, "iterations": 3,
//!            "parallelism": 1, "salt": "…" },
//!   "cipher": { "algorithm": "xchacha20poly1305", "nonce": "…" },
//!   "check": "…",
//!   "ciphertext": "…"
//! }
//! ```
//!
//! - argon2id (RFC 9106) stretches the passphrase into 64 bytes: the first 32 are
//!   the XChaCha20-Poly1305 key, the last 32 are hashed (SHA-256) into `check`. The
//!   check tells a wrong passphrase apart from a damaged file. It gives an attacker
//!   nothing the ciphertext does not already: both need the full argon2 work per
//!   guess.
//! - Everything except the ciphertext is bound into the AEAD's associated data, so
//!   changing the id, the KDF parameters or the version makes opening fail.
//! - The public id is in the clear so `nodus id show` needs no passphrase; after
//!   opening, the decrypted key must match it.
//! - Files are written mode 0600 to a temporary file in the same directory, synced,
//!   then renamed over the target, so a crash leaves either the old file or the new
//!   one, never half of one.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead as _, KeyInit as _, Payload},
};
use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::{
    AccountId,
    key::{KEY_LEN, PublicKey, SecretKey},
};

/// The `format` field of every keystore file.
pub const FORMAT: &str = "nodus-keystore";
/// The version this code writes. Older versions it still reads are listed in
/// [`Keystore::open`].
pub const VERSION: u32 = 1;
/// Longest keystore file we parse; a real one is under 1 KiB. Guards against
/// pointing `--keystore` at a disk image.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why a keystore could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The file could not be read or written.
    #[error("Cannot access keystore {path}")]
    Io {
        /// The keystore path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A keystore already exists where a new one was to be created.
    #[error("Keystore {0} already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// The passphrase does not open this keystore.
    #[error("Wrong passphrase for keystore {0}")]
    WrongPassphrase(PathBuf),
    /// The file is not a keystore, is truncated, or was modified.
    #[error("Keystore {path} is damaged or not a keystore: {reason}")]
    Corrupt {
        /// The keystore path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Written by a newer Nodus.
    #[error("Keystore {path} has version {version}; this build reads version 1")]
    UnsupportedVersion {
        /// The keystore path.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// KDF parameters below the floor this build accepts.
    #[error("Keystore KDF parameters are too weak: {0}")]
    WeakParams(String),
    /// The empty passphrase is refused: it would make the encryption decorative.
    #[error("Passphrase is empty")]
    EmptyPassphrase,
}

/// A passphrase, wiped on drop, never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase. A single trailing newline (as left by `echo` into a
    /// passphrase file) is removed.
    pub fn new(s: impl Into<String>) -> Self {
        let mut s = Zeroizing::new(s.into());
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        Self(s)
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// RFC 9106 §4's second recommended option (64 MiB, 3 passes, 1 lane): strong,
    /// yet a low-end node opens its key in well under a second.
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// The floor accepted when opening: OWASP's minimum for argon2id (19 MiB, 2
    /// passes). A file with weaker parameters was not written by us.
    pub const FLOOR: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// The most memory a file may ask for (1 GiB): a hostile file must not be able to
    /// make the agent allocate without bound.
    const MAX_MEMORY_KIB: u32 = 1024 * 1024;

    fn check(&self) -> Result<(), KeystoreError> {
        if self.memory_kib < Self::FLOOR.memory_kib || self.iterations < Self::FLOOR.iterations {
            return Err(KeystoreError::WeakParams(format!(
                "memory {} KiB, {} passes (floor: {} KiB, {} passes)",
                self.memory_kib,
                self.iterations,
                Self::FLOOR.memory_kib,
                Self::FLOOR.iterations
            )));
        }
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations > 64
            || self.parallelism == 0
            || self.parallelism > 16
        {
            return Err(KeystoreError::WeakParams(format!(
                "parameters out of range: memory {} KiB, {} passes, {} lanes",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    algorithm: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherSection {
    algorithm: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    format: String,
    version: u32,
    id: AccountId,
    kdf: KdfSection,
    cipher: CipherSection,
    check: String,
    ciphertext: String,
}

/// Only the fields needed to dispatch on version; lets a future version add fields.
#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

impl FileV1 {
    /// The associated data: everything but the ciphertext and check, in a fixed
    /// order with lengths, so no two different headers give the same bytes.
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(160);
        for part in [
            self.format.as_bytes(),
            &self.version.to_be_bytes(),
            self.id.key().as_bytes(),
            self.kdf.algorithm.as_bytes(),
            &self.kdf.params.memory_kib.to_be_bytes(),
            &self.kdf.params.iterations.to_be_bytes(),
            &self.kdf.params.parallelism.to_be_bytes(),
            self.kdf.salt.as_bytes(),
            self.cipher.algorithm.as_bytes(),
            self.cipher.nonce.as_bytes(),
        ] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }
}

/// Derives (encryption key, check value) from the passphrase.
fn derive(
    pass: &Passphrase,
    salt: &[u8],
    p: KdfParams,
) -> Result<(Zeroizing<[u8; 32]>, [u8; 32]), String> {
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(64))
        .map_err(|e| e.to_string())?;
    let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 64]);
    kdf.hash_password_into(pass.bytes(), salt, out.as_mut())
        .map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&out[..32]);
    let check: [u8; 32] = sha2::Sha256::digest(&out[32..]).into();
    Ok((key, check))
}

fn random<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| KeystoreError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(b)
}

/// Reading and writing keystore files.
pub struct Keystore;

impl Keystore {
    /// Seals `key` into a new keystore at `path`. Refuses to overwrite an existing
    /// file: a key lost that way is lost for good.
    pub fn create(
        path: &Path,
        key: &SecretKey,
        pass: &Passphrase,
        params: KdfParams,
    ) -> Result<(), KeystoreError> {
        if path.exists() {
            return Err(KeystoreError::AlreadyExists(path.to_owned()));
        }
        Self::write(path, key, pass, params)
    }

    /// Re-seals the key at `path` under a new passphrase, atomically. The old file
    /// stays in place if anything fails.
    pub fn change_passphrase(
        path: &Path,
        old: &Passphrase,
        new: &Passphrase,
    ) -> Result<(), KeystoreError> {
        let key = Self::open(path, old)?;
        Self::write(path, &key, new, KdfParams::DEFAULT)
    }

    fn write(
        path: &Path,
        key: &SecretKey,
        pass: &Passphrase,
        params: KdfParams,
    ) -> Result<(), KeystoreError> {
        if pass.bytes().is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        params.check()?;
        let salt: [u8; 16] = random()?;
        let nonce: [u8; 24] = random()?;
        let (enc_key, check) = derive(pass, &salt, params).map_err(KeystoreError::WeakParams)?;
        let mut file = FileV1 {
            format: FORMAT.to_owned(),
            version: VERSION,
            id: AccountId::from(key.public()),
            kdf: KdfSection {
                algorithm: "argon2id".to_owned(),
                params,
                salt: BASE64.encode(&salt),
            },
            cipher: CipherSection {
                algorithm: "xchacha20poly1305".to_owned(),
                nonce: BASE64.encode(&nonce),
            },
            check: BASE64.encode(&check),
            ciphertext: String::new(),
        };
        let aad = file.aad();
        let cipher = XChaCha20Poly1305::new(enc_key.as_ref().into());
        let seed = key.to_seed();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: seed.as_ref(),
                    aad: &aad,
                },
            )
            .map_err(|_| KeystoreError::Corrupt {
                path: path.to_owned(),
                reason: "encryption failed".into(),
            })?;
        file.ciphertext = BASE64.encode(&sealed);
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| KeystoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        write_atomic(path, &text)
    }

    /// Reads the public id without the passphrase.
    pub fn read_public(path: &Path) -> Result<PublicKey, KeystoreError> {
        Ok(*Self::read_file(path)?.id.key())
    }

    /// Opens the keystore and returns the key. The file is only read.
    pub fn open(path: &Path, pass: &Passphrase) -> Result<SecretKey, KeystoreError> {
        let file = Self::read_file(path)?;
        let corrupt = |reason: &str| KeystoreError::Corrupt {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if file.kdf.algorithm != "argon2id" {
            return Err(corrupt("unknown KDF algorithm"));
        }
        if file.cipher.algorithm != "xchacha20poly1305" {
            return Err(corrupt("unknown cipher algorithm"));
        }
        file.kdf.params.check()?;
        let salt = BASE64
            .decode(file.kdf.salt.as_bytes())
            .map_err(|_| corrupt("salt is not base64"))?;
        if salt.len() < 16 {
            return Err(corrupt("salt shorter than 16 bytes"));
        }
        let nonce = BASE64
            .decode(file.cipher.nonce.as_bytes())
            .map_err(|_| corrupt("nonce is not base64"))?;
        let nonce =
            <[u8; 24]>::try_from(nonce.as_slice()).map_err(|_| corrupt("nonce is not 24 bytes"))?;
        let check = BASE64
            .decode(file.check.as_bytes())
            .map_err(|_| corrupt("check is not base64"))?;
        let sealed = BASE64
            .decode(file.ciphertext.as_bytes())
            .map_err(|_| corrupt("ciphertext is not base64"))?;
        let (enc_key, expected_check) =
            derive(pass, &salt, file.kdf.params).map_err(|e| corrupt(&e))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            check.as_slice(),
            expected_check.as_slice(),
        )) {
            return Err(KeystoreError::WrongPassphrase(path.to_owned()));
        }
        let cipher = XChaCha20Poly1305::new(enc_key.as_ref().into());
        let seed = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: &file.aad(),
                    },
                )
                .map_err(|_| corrupt("authentication failed; the file was modified"))?,
        );
        let seed = Zeroizing::new(
            <[u8; KEY_LEN]>::try_from(seed.as_slice())
                .map_err(|_| corrupt("sealed key is not 32 bytes"))?,
        );
        let key = SecretKey::from_seed(&seed);
        if key.public() != *file.id.key() {
            return Err(corrupt("key does not match the id in the file"));
        }
        Ok(key)
    }

    fn read_file(path: &Path) -> Result<FileV1, KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: path.to_owned(),
            source,
        };
        let corrupt = |reason: String| KeystoreError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let meta = fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(corrupt(format!("file is {} bytes, too large", meta.len())));
        }
        let bytes = fs::read(path).map_err(io)?;
        let header: Header =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
        if header.format != FORMAT {
            return Err(corrupt(format!("format is {:?}", header.format)));
        }
        if header.version != VERSION {
            return Err(KeystoreError::UnsupportedVersion {
                path: path.to_owned(),
                version: header.version,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))
    }
}

/// Writes `bytes` to `path` atomically with mode 0600.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let io = |source| KeystoreError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keystore".into());
    let suffix: [u8; 6] = random()?;
    let tmp = dir.join(format!(
        ".{name}.{}.tmp",
        data_encoding::HEXLOWER.encode(&suffix)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask cannot widen 0600, but an inherited ACL default could; be explicit.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor, so tests stay fast; one test also covers the default.
    const FAST: KdfParams = KdfParams::FLOOR;

    fn setup() -> (tempfile::TempDir, PathBuf, SecretKey) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = SecretKey::generate().unwrap();
        (dir, path, key)
    }

    #[test]
    fn round_trip_with_default_params() {
        let (_d, path, key) = setup();
        let pass = Passphrase::new("correct horse");
        Keystore::create(&path, &key, &pass, KdfParams::DEFAULT).unwrap();
        let back = Keystore::open(&path, &pass).unwrap();
        assert_eq!(*back.to_seed(), *key.to_seed());
        assert_eq!(Keystore::read_public(&path).unwrap(), key.public());
    }

    #[test]
    fn file_is_0600_and_holds_no_seed() {
        let (_d, path, key) = setup();
        Keystore::create(&path, &key, &Passphrase::new("pw"), FAST).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&BASE64.encode(key.to_seed().as_ref())));
        assert!(!text.contains(&data_encoding::HEXLOWER.encode(key.to_seed().as_ref())));
        // No temporary files left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn wrong_passphrase_is_clear_and_leaves_file_untouched() {
        let (_d, path, key) = setup();
        Keystore::create(&path, &key, &Passphrase::new("right"), FAST).unwrap();
        let before = fs::read(&path).unwrap();
        let err = Keystore::open(&path, &Passphrase::new("wrong")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{err:?}");
        assert!(err.to_string().contains("Wrong passphrase"));
        assert_eq!(fs::read(&path).unwrap(), before);
        let err =
            Keystore::change_passphrase(&path, &Passphrase::new("wrong"), &Passphrase::new("new"))
                .unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase(_)));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn change_passphrase_keeps_the_key() {
        let (_d, path, key) = setup();
        Keystore::create(&path, &key, &Passphrase::new("one"), FAST).unwrap();
        Keystore::change_passphrase(&path, &Passphrase::new("one"), &Passphrase::new("two"))
            .unwrap();
        assert!(Keystore::open(&path, &Passphrase::new("one")).is_err());
        assert_eq!(
            Keystore::open(&path, &Passphrase::new("two"))
                .unwrap()
                .public(),
            key.public()
        );
    }

    #[test]
    fn refuses_to_overwrite_and_empty_passphrase() {
        let (_d, path, key) = setup();
        Keystore::create(&path, &key, &Passphrase::new("pw"), FAST).unwrap();
        assert!(matches!(
            Keystore::create(&path, &key, &Passphrase::new("pw"), FAST),
            Err(KeystoreError::AlreadyExists(_))
        ));
        let other = path.with_file_name("other.key");
        assert!(matches!(
            Keystore::create(&other, &key, &Passphrase::new("\n"), FAST),
            Err(KeystoreError::EmptyPassphrase)
        ));
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        let (_d, path, key) = setup();
        let pass = Passphrase::new("pw");
        Keystore::create(&path, &key, &pass, FAST).unwrap();
        let full = fs::read(&path).unwrap();
        for cut in [0, 1, 10, full.len() / 2, full.len() - 3] {
            fs::write(&path, &full[..cut]).unwrap();
            let err = Keystore::open(&path, &pass).unwrap_err();
            assert!(
                matches!(err, KeystoreError::Corrupt { .. }),
                "cut {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn every_flipped_ciphertext_or_header_byte_is_refused() {
        let (_d, path, key) = setup();
        let pass = Passphrase::new("pw");
        Keystore::create(&path, &key, &pass, FAST).unwrap();
        let good: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();

        // Flip one bit in each byte of the ciphertext: authentication must fail.
        let ct = BASE64
            .decode(good["ciphertext"].as_str().unwrap().as_bytes())
            .unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            let mut v = good.clone();
            v["ciphertext"] = BASE64.encode(&bad).into();
            fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            let err = Keystore::open(&path, &pass).unwrap_err();
            assert!(
                matches!(err, KeystoreError::Corrupt { .. }),
                "byte {i}: {err:?}"
            );
        }

        // Swapping the id for another key is caught by the AAD.
        let mut v = good.clone();
        let other = AccountId::from(SecretKey::generate().unwrap().public());
        v["id"] = other.to_string().into();
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            Keystore::open(&path, &pass),
            Err(KeystoreError::Corrupt { .. })
        ));

        // Weakened KDF parameters are refused outright.
        let mut v = good.clone();
        v["kdf"]["memory_kib"] = 8.into();
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            Keystore::open(&path, &pass),
            Err(KeystoreError::WeakParams(_))
        ));

        // A future version says so.
        let mut v = good.clone();
        v["version"] = 2.into();
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            Keystore::open(&path, &pass),
            Err(KeystoreError::UnsupportedVersion { version: 2, .. })
        ));
    }

    #[test]
    fn random_bit_flips_anywhere_never_panic() {
        let (_d, path, key) = setup();
        let pass = Passphrase::new("pw");
        Keystore::create(&path, &key, &pass, FAST).unwrap();
        let full = fs::read(&path).unwrap();
        // Deterministic spread of positions over the whole file.
        for i in (0..full.len()).step_by(7) {
            let mut bad = full.clone();
            bad[i] ^= 0x20;
            fs::write(&path, &bad).unwrap();
            if let Ok(k) = Keystore::open(&path, &pass) {
                // Only a flip that is semantically a no-op (e.g. JSON whitespace
                // case) may still open, and then it must give the same key.
                assert_eq!(k.public(), key.public());
            }
        }
    }

    #[test]
    fn missing_file_is_io_error_naming_the_path() {
        let err = Keystore::open(Path::new("/nonexistent/k"), &Passphrase::new("x")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/k"));
    }

    #[test]
    fn passphrase_debug_is_redacted() {
        assert_eq!(format!("{:?}", Passphrase::new("secret")), "Passphrase(..)");
    }
}
