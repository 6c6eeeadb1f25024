//! ed25519 key newtypes.
//!
//! [`SecretKey`] owns the 32-byte seed, zeroizes it on drop and never prints it.
//! [`PublicKey`] is the raw verifying key; its human text forms are
//! [`NodeId`](crate::NodeId) and [`AccountId`](crate::AccountId).

use std::fmt;

use ed25519_dalek::{Signer as _, Verifier as _};
use zeroize::Zeroizing;

/// Length in bytes of a secret seed, a public key and half a signature.
pub const KEY_LEN: usize = 32;
/// Length in bytes of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Errors from building keys out of bytes.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a valid compressed Edwards point.
    #[error("Bytes are not a valid ed25519 public key")]
    InvalidPublicKey,
    /// The bytes encode a valid point, but not in its one canonical form.
    #[error("Public key bytes are not the canonical encoding of the point")]
    NonCanonical,
    /// The public key is a small-order point; no honest key is.
    #[error("Public key is a weak (small-order) point")]
    WeakPublicKey,
    /// The operating system's random source failed.
    #[error("System random source failed: {0}")]
    Random(String),
}

/// An ed25519 secret key (the 32-byte seed).
///
/// The seed is wiped from memory when the value is dropped (ed25519-dalek's
/// `SigningKey` zeroizes on drop), and `Debug` prints `SecretKey(..)` so it cannot leak
/// into logs.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::getrandom(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// Builds the key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Returns a copy of the seed that is wiped when dropped.
    pub fn to_seed(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `msg` as is. Prefer [`crate::statement`] for anything another party
    /// verifies: raw signatures carry no domain separation.
    pub fn sign_raw(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg))
    }

    /// The seed as a PKCS#8 v1 DER document, for TLS stacks that load keys that way.
    /// The buffer is wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        // RFC 8410 §7: a fixed 16-byte header followed by the 32-byte seed.
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = Zeroizing::new(Vec::with_capacity(PREFIX.len() + KEY_LEN));
        der.extend_from_slice(&PREFIX);
        der.extend_from_slice(self.to_seed().as_ref());
        der
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// An ed25519 public key. Its text forms are [`crate::NodeId`] and
/// [`crate::AccountId`]; `Debug` shows the account form for readability.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses a raw 32-byte key, rejecting invalid, non-canonical and small-order
    /// points. Non-canonical encodings (a y coordinate ≥ p, or a sign bit on x = 0)
    /// decode to the same point as the canonical one, so accepting them would give
    /// one key two ids.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        if key.to_edwards().compress().as_bytes() != bytes {
            return Err(KeyError::NonCanonical);
        }
        if key.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        Ok(Self(key))
    }

    /// [`PublicKey::from_bytes`] with the same verdicts, remembering keys that
    /// passed: a compact (binary) [`serde::Deserialize`] uses it, since a
    /// validator decodes the same few signers again and again (in a submission,
    /// in gossip, in a proposed block), and each check costs a point
    /// decompression and a compression. Only accepted keys are remembered, so a
    /// refused key is checked in full every time and refused with the same error;
    /// the memory is bounded ([`RECENT_KEYS`]).
    pub fn from_bytes_cached(bytes: &[u8; KEY_LEN]) -> Result<Self, KeyError> {
        let mut recent = recent_keys();
        if let Some(key) = recent.get(bytes) {
            return Ok(Self(key));
        }
        drop(recent);
        let key = Self::from_bytes(bytes)?;
        recent_keys().insert(key.0);
        Ok(key)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        self.0.as_bytes()
    }

    /// The DER `SubjectPublicKeyInfo` of this key (RFC 8410 §4), as carried in a TLS
    /// raw-public-key certificate (RFC 7250).
    pub fn to_spki_der(&self) -> [u8; 44] {
        let mut der = [0u8; 44];
        der[..12].copy_from_slice(&SPKI_PREFIX);
        der[12..].copy_from_slice(self.as_bytes());
        der
    }

    /// Parses a DER `SubjectPublicKeyInfo` holding an ed25519 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = <&[u8; 44]>::try_from(der).map_err(|_| KeyError::InvalidPublicKey)?;
        if spki[..12] != SPKI_PREFIX {
            return Err(KeyError::InvalidPublicKey);
        }
        let mut raw = [0u8; KEY_LEN];
        raw.copy_from_slice(&spki[12..]);
        Self::from_bytes(&raw)
    }

    /// Verifies a raw signature with strict checks (no malleable encodings, no weak
    /// keys). Prefer [`crate::statement`] for anything with a purpose.
    pub fn verify_raw(&self, msg: &[u8], sig: &Signature) -> bool {
        self.0.verify_strict(msg, &sig.0).is_ok() && self.0.verify(msg, &sig.0).is_ok()
    }
}

/// Keys [`PublicKey::from_bytes_cached`] remembers per generation; at most twice
/// as many are held (about 250 bytes each with the map's overhead: about 2 MiB
/// at most).
pub const RECENT_KEYS: usize = 4_096;

/// The process's memory of accepted keys.
fn recent_keys() -> std::sync::MutexGuard<'static, RecentKeys> {
    static RECENT: std::sync::LazyLock<std::sync::Mutex<RecentKeys>> =
        std::sync::LazyLock::new(|| std::sync::Mutex::new(RecentKeys::new(RECENT_KEYS)));
    // A panic while holding the lock leaves the maps consistent (each operation is
    // a lookup, an insert or a swap), so a poisoned lock is still usable.
    RECENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A bounded memory of keys that passed [`PublicKey::from_bytes`], in two
/// generations: when the current one is full it becomes the previous one (the
/// old previous one is forgotten), and a key found in the previous one moves back
/// into the current one. Keys in use stay; at most `2 × capacity` are held.
struct RecentKeys {
    capacity: usize,
    current: std::collections::HashMap<[u8; KEY_LEN], ed25519_dalek::VerifyingKey>,
    previous: std::collections::HashMap<[u8; KEY_LEN], ed25519_dalek::VerifyingKey>,
}

impl RecentKeys {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            current: std::collections::HashMap::new(),
            previous: std::collections::HashMap::new(),
        }
    }

    fn get(&mut self, bytes: &[u8; KEY_LEN]) -> Option<ed25519_dalek::VerifyingKey> {
        if let Some(key) = self.current.get(bytes) {
            return Some(*key);
        }
        let key = self.previous.remove(bytes)?;
        self.insert(key);
        Some(key)
    }

    /// Remembers `key`, which must have passed [`PublicKey::from_bytes`].
    fn insert(&mut self, key: ed25519_dalek::VerifyingKey) {
        if self.current.len() >= self.capacity {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(*key.as_bytes(), key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// RFC 8410 §4: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (33 bytes) }.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", crate::AccountId::from(*self))
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&crate::AccountId::from(*self))
        } else {
            s.serialize_bytes(self.as_bytes())
        }
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            crate::text::parse_any(&s).map_err(D::Error::custom)
        } else {
            let bytes = <serde_bytes_array::Bytes32>::deserialize(d)?;
            PublicKey::from_bytes_cached(&bytes.0).map_err(D::Error::custom)
        }
    }
}

/// Deserializes exactly 32 bytes from a compact format without a length-prefixed
/// `Vec` allocation growing from untrusted input.
mod serde_bytes_array {
    pub(crate) struct Bytes32(pub(crate) [u8; 32]);

    impl<'de> serde::Deserialize<'de> for Bytes32 {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Bytes32;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("32 bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes32, E> {
                    <[u8; 32]>::try_from(v)
                        .map(Bytes32)
                        .map_err(|_| E::invalid_length(v.len(), &self))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    /// The raw 64 bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0.to_bytes()
    }

    /// Builds a signature from raw bytes. Any 64 bytes parse; validity is decided
    /// by verification.
    pub fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Self {
        Self(ed25519_dalek::Signature::from_bytes(bytes))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        write!(f, "Signature({})", data_encoding::HEXLOWER.encode(&b[..8]))
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.to_bytes();
        if s.is_human_readable() {
            s.serialize_str(&data_encoding::BASE64URL_NOPAD.encode(&b))
        } else {
            s.serialize_bytes(&b)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-byte ed25519 signature")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Signature, E> {
                let raw = data_encoding::BASE64URL_NOPAD
                    .decode(v.as_bytes())
                    .map_err(|_| E::custom("signature is not base64url"))?;
                self.visit_bytes(&raw)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                <[u8; SIGNATURE_LEN]>::try_from(v)
                    .map(|b| Signature::from_bytes(&b))
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_seed() {
        let sk = SecretKey::from_seed(&[7u8; 32]);
        let shown = format!("{sk:?}");
        assert_eq!(shown, "SecretKey(..)");
    }

    #[test]
    fn raw_sign_verify_and_tamper() {
        let sk = SecretKey::from_seed(&[1u8; 32]);
        let sig = sk.sign_raw(b"hello");
        assert!(sk.public().verify_raw(b"hello", &sig));
        assert!(!sk.public().verify_raw(b"hellp", &sig));
        let other = SecretKey::from_seed(&[2u8; 32]).public();
        assert!(!other.verify_raw(b"hello", &sig));
    }

    #[test]
    fn spki_round_trip_and_rejects_other_algorithms() {
        let pk = SecretKey::from_seed(&[3u8; 32]).public();
        let der = pk.to_spki_der();
        assert_eq!(PublicKey::from_spki_der(&der), Ok(pk));
        let mut x25519 = der;
        x25519[10] = 0x6e; // OID 1.3.101.110 is X25519, not Ed25519.
        assert_eq!(
            PublicKey::from_spki_der(&x25519),
            Err(KeyError::InvalidPublicKey)
        );
        assert!(PublicKey::from_spki_der(&der[..43]).is_err());
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point encodes as 1 followed by zeros; it has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(&identity),
            Err(KeyError::WeakPublicKey)
        );
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        // y = p (2^255 - 19) encodes the same point as y = 0, non-canonically.
        let mut y_is_p = [0xffu8; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        assert!(PublicKey::from_bytes(&y_is_p).is_err());
        // 0xff… has y ≥ p with the sign bit set: never a valid id.
        assert!(PublicKey::from_bytes(&[0xff; 32]).is_err());
        let honest = SecretKey::from_seed(&[5; 32]).public();
        assert_eq!(PublicKey::from_bytes(honest.as_bytes()), Ok(honest));
    }

    #[test]
    fn cached_parse_gives_the_same_verdicts_and_never_remembers_a_refused_key() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut y_is_p = [0xffu8; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        let honest = *SecretKey::from_seed(&[11; 32]).public().as_bytes();
        let inputs = [identity, y_is_p, [0xff; 32], honest, [0x42; 32]];
        // Twice: the second round answers accepted keys from memory.
        for _ in 0..2 {
            for bytes in &inputs {
                assert_eq!(
                    PublicKey::from_bytes_cached(bytes),
                    PublicKey::from_bytes(bytes),
                    "{bytes:?}"
                );
            }
        }
        let mut recent = recent_keys();
        assert!(recent.get(&honest).is_some());
        for refused in [identity, y_is_p, [0xff; 32]] {
            assert!(recent.get(&refused).is_none());
        }
        drop(recent);
        // Through serde too: a refused key is still refused after decoding.
        let encoded = postcard::to_allocvec(&serde_bytes_like(&identity)).unwrap();
        assert!(postcard::from_bytes::<PublicKey>(&encoded).is_err());
        let encoded = postcard::to_allocvec(&serde_bytes_like(&honest)).unwrap();
        assert_eq!(
            postcard::from_bytes::<PublicKey>(&encoded)
                .unwrap()
                .as_bytes(),
            &honest
        );
    }

    /// 32 raw bytes serialized as a byte string, the way a [`PublicKey`] is.
    fn serde_bytes_like(bytes: &[u8; 32]) -> impl serde::Serialize + '_ {
        struct B<'a>(&'a [u8; 32]);
        impl serde::Serialize for B<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(bytes)
    }

    #[test]
    fn recent_keys_are_bounded_and_keep_keys_in_use() {
        let keys: Vec<_> = (0..10u8)
            .map(|i| SecretKey::from_seed(&[i + 1; 32]).public().0)
            .collect();
        let mut recent = RecentKeys::new(3);
        for (n, key) in keys.iter().enumerate() {
            recent.insert(*key);
            assert!(
                recent.len() <= 6,
                "{} keys held after {}",
                recent.len(),
                n + 1
            );
            // The first key is asked for all the time: it is never forgotten.
            assert_eq!(recent.get(keys[0].as_bytes()), Some(keys[0]));
        }
        // Keys not asked for are forgotten after two generations.
        assert!(recent.get(keys[1].as_bytes()).is_none());
        assert_eq!(recent.get(keys[9].as_bytes()), Some(keys[9]));
    }

    #[test]
    fn pkcs8_has_rfc8410_layout() {
        let sk = SecretKey::from_seed(&[9u8; 32]);
        let der = sk.to_pkcs8_der();
        assert_eq!(der.len(), 48);
        assert_eq!(&der[16..], &[9u8; 32]);
    }
}
