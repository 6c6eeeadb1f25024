//! Consensus-critical ed25519 verification, with ZIP-215 semantics.
//!
//! Everything the chain accepts or refuses because of a signature goes through
//! here, never through `nodus_identity::PublicKey::verify_raw`. The reason is
//! agreement: validators must reach the same verdict on every signature, whether
//! they check it alone, in a batch, or on another build of the library.
//! ed25519-dalek's strict single check and its batch check can disagree on
//! signatures with small-order components; ZIP-215
//! (<https://zips.z.cash/zip-0215>) fixes one set of rules (cofactored equation,
//! canonical `s`, any decodable point encoding) under which batch and single
//! verification give the same answer. The `ed25519-consensus` crate implements it.
//!
//! `ed25519-consensus` builds on `curve25519-dalek-ng`, a fork with a known timing
//! variability in scalar subtraction (the one RUSTSEC-2024-0344 reports for
//! `curve25519-dalek`). Timing only matters for secret data; this module only
//! verifies public signatures, and all signing goes through `nodus-identity`
//! (ed25519-dalek). Should the fork be flagged unmaintained, `ed25519-zebra`
//! implements the same ZIP-215 rules and is a drop-in replacement here.
//!
//! [`verify_statement`] checks one signed statement; [`Batch`] checks many at once
//! (the mempool's path) and still reports which ones failed.

use ed25519_consensus::{VerificationKey, VerificationKeyBytes, batch};
use nodus_identity::Signed;
use rand::{CryptoRng, RngCore};
use serde::Serialize;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify under ZIP-215 rules (or the key is not a
    /// decodable point).
    #[error("Signature is invalid")]
    Invalid,
    /// The statement's signed bytes could not be built (bad tag or payload).
    #[error("Statement cannot be encoded: {0}")]
    Encoding(String),
}

/// Verifies a raw ed25519 signature over `msg` with ZIP-215 rules.
pub fn verify(key: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
    let key = VerificationKey::try_from(*key).map_err(|_| SignatureError::Invalid)?;
    key.verify(&ed25519_consensus::Signature::from(*signature), msg)
        .map_err(|_| SignatureError::Invalid)
}

/// True if `key` is the one canonical encoding of a point that is not of small
/// order: the form every honest key has.
///
/// ZIP-215 deliberately accepts non-canonical point encodings when verifying, so
/// the few points that have a second encoding could otherwise appear on chain
/// under two addresses; the chain only lets keys in (as senders, receivers and
/// nodes) in their canonical form.
///
/// The answer is a pure function of the bytes, but computing it costs a point
/// decompression and a compression (two field exponentiations), and block
/// processing asks about the same few senders and receivers again and again; so
/// answers are remembered per thread (at most [`CANONICAL_CACHE`] keys, then the
/// memory starts over).
pub fn is_canonical_key(key: &[u8; 32]) -> bool {
    CANONICAL.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(known) = cache.get(key) {
            return *known;
        }
        let answer = compute_is_canonical_key(key);
        if cache.len() >= CANONICAL_CACHE {
            cache.clear();
        }
        cache.insert(*key, answer);
        answer
    })
}

/// Keys whose [`is_canonical_key`] answer a thread remembers (32 bytes and a
/// flag each, about 3 MiB at most per thread).
pub const CANONICAL_CACHE: usize = 65_536;

thread_local! {
    static CANONICAL: std::cell::RefCell<std::collections::HashMap<[u8; 32], bool>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn compute_is_canonical_key(key: &[u8; 32]) -> bool {
    match ed25519_dalek::VerifyingKey::from_bytes(key) {
        Ok(k) => !k.is_weak() && k.to_edwards().compress().to_bytes() == *key,
        Err(_) => false,
    }
}

/// The exact bytes a signed statement's signature covers.
pub fn statement_bytes<T: Serialize>(signed: &Signed<T>) -> Result<Vec<u8>, SignatureError> {
    signed
        .statement
        .signing_bytes()
        .map_err(|e| SignatureError::Encoding(e.to_string()))
}

/// Verifies a signed statement's signature (only the signature: purpose, network,
/// signer and times are the caller's to check) with ZIP-215 rules.
pub fn verify_statement<T: Serialize>(signed: &Signed<T>) -> Result<(), SignatureError> {
    let msg = statement_bytes(signed)?;
    verify(
        signed.statement.signer.as_bytes(),
        &msg,
        &signed.signature.to_bytes(),
    )
}

/// Many signatures checked together.
///
/// A batch costs about half of checking each signature alone. When the batch as a
/// whole fails, every item is checked alone to find the bad ones; under ZIP-215 that
/// gives exactly the verdicts single verification would have, so callers may mix
/// both paths freely.
#[derive(Debug, Default)]
pub struct Batch {
    items: Vec<([u8; 32], [u8; 64], Vec<u8>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a raw signature.
    pub fn push(&mut self, key: [u8; 32], msg: Vec<u8>, signature: [u8; 64]) {
        self.items.push((key, signature, msg));
    }

    /// Queues a signed statement. Fails (queuing nothing) if its bytes cannot be
    /// built; such a statement never verifies.
    pub fn push_statement<T: Serialize>(
        &mut self,
        signed: &Signed<T>,
    ) -> Result<(), SignatureError> {
        let msg = statement_bytes(signed)?;
        self.push(
            *signed.statement.signer.as_bytes(),
            msg,
            signed.signature.to_bytes(),
        );
        Ok(())
    }

    /// Number of queued signatures.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Verifies everything, returning one verdict per queued item, in order.
    ///
    /// `rng` draws the batch's random coefficients; it must be unpredictable to
    /// whoever chose the signatures (an OS-seeded generator), or a forger could
    /// craft signatures that cancel out. The verdicts do not depend on it.
    pub fn verify<R: RngCore + CryptoRng>(self, rng: R) -> Vec<Result<(), SignatureError>> {
        if self.items.is_empty() {
            return Vec::new();
        }
        let mut verifier = batch::Verifier::new();
        for (key, sig, msg) in &self.items {
            verifier.queue((
                VerificationKeyBytes::from(*key),
                ed25519_consensus::Signature::from(*sig),
                msg.as_slice(),
            ));
        }
        if verifier.verify(rng).is_ok() {
            return vec![Ok(()); self.items.len()];
        }
        self.items
            .iter()
            .map(|(key, sig, msg)| verify(key, msg, sig))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodus_identity::{SecretKey, Statement, statement::purpose};
    use rand::{SeedableRng, rngs::StdRng};

    /// The ed25519 group order ℓ, little-endian.
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// Adds ℓ to the signature's `s` half: the same point equation holds, but `s`
    /// is no longer canonical. A malleated copy of a valid signature.
    fn malleate(sig: [u8; 64]) -> [u8; 64] {
        let mut out = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(ELL[i]) + carry;
            out[32 + i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        out
    }

    fn one_by_one(items: &[([u8; 32], Vec<u8>, [u8; 64])]) -> Vec<Result<(), SignatureError>> {
        items.iter().map(|(k, m, s)| verify(k, m, s)).collect()
    }

    fn batched(items: &[([u8; 32], Vec<u8>, [u8; 64])]) -> Vec<Result<(), SignatureError>> {
        let mut b = Batch::new();
        for (k, m, s) in items {
            b.push(*k, m.clone(), *s);
        }
        b.verify(StdRng::seed_from_u64(7))
    }

    #[test]
    fn statement_signatures_verify_and_tampering_fails() {
        let key = SecretKey::from_seed(&[5; 32]);
        let signed = Statement::new(purpose::TRANSACTION, "devnet", key.public(), None, 42u64)
            .sign(&key)
            .unwrap();
        assert_eq!(verify_statement(&signed), Ok(()));
        let mut tampered = signed.clone();
        tampered.statement.payload = 43;
        assert_eq!(verify_statement(&tampered), Err(SignatureError::Invalid));
        let mut other_net = signed;
        other_net.statement.network = "mainnet".into();
        assert_eq!(verify_statement(&other_net), Err(SignatureError::Invalid));
    }

    #[test]
    fn batch_and_single_agree_including_malleated_and_small_order() {
        let key = SecretKey::from_seed(&[9; 32]);
        let pk = *key.public().as_bytes();
        let good = key.sign_raw(b"pay 10").to_bytes();
        let mut wrong_msg = good;
        wrong_msg[0] ^= 1;
        // Identity point as key, identity point as R and s = 0: the cofactored
        // ZIP-215 equation [8][s]B = [8]R + [8][k]A holds for every message, so both
        // paths must accept it (strict dalek rejects it; what matters is agreement).
        let mut small_order_key = [0u8; 32];
        small_order_key[0] = 1;
        let mut small_order_sig = [0u8; 64];
        small_order_sig[0] = 1;
        let items = vec![
            (pk, b"pay 10".to_vec(), good),
            (pk, b"pay 10".to_vec(), malleate(good)),
            (pk, b"pay 10".to_vec(), wrong_msg),
            (pk, b"pay 11".to_vec(), good),
            (small_order_key, b"anything".to_vec(), small_order_sig),
            ([0xff; 32], b"x".to_vec(), good),
        ];
        let single = one_by_one(&items);
        assert_eq!(
            single,
            vec![
                Ok(()),
                Err(SignatureError::Invalid), // non-canonical s is refused
                Err(SignatureError::Invalid),
                Err(SignatureError::Invalid),
                Ok(()),
                Err(SignatureError::Invalid), // key bytes are not a point
            ]
        );
        assert_eq!(batched(&items), single);
        // Each item alone in a batch agrees too, and so does a batch of only the
        // valid ones (which takes the fast path).
        for item in &items {
            assert_eq!(
                batched(std::slice::from_ref(item)),
                one_by_one(std::slice::from_ref(item))
            );
        }
        let valid: Vec<_> = items
            .iter()
            .zip(&single)
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| i.clone())
            .collect();
        assert_eq!(batched(&valid), vec![Ok(()); valid.len()]);
    }

    #[test]
    fn canonical_keys() {
        assert!(is_canonical_key(
            SecretKey::from_seed(&[3; 32]).public().as_bytes()
        ));
        // The identity point: small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!is_canonical_key(&identity));
        // y = 2^255 − 1 ≡ 18 (mod p) with the sign bit: decodes, but not canonically.
        assert!(!is_canonical_key(&[0xff; 32]));
        // Identity agrees: one key, one encoding.
        assert!(nodus_identity::PublicKey::from_bytes(&[0xff; 32]).is_err());
        // Asked again (now from the cache): the same answers.
        for _ in 0..2 {
            assert!(!is_canonical_key(&identity));
            assert!(!is_canonical_key(&[0xff; 32]));
            assert!(is_canonical_key(
                SecretKey::from_seed(&[3; 32]).public().as_bytes()
            ));
        }
    }

    #[test]
    fn empty_batch_is_empty() {
        assert!(Batch::new().verify(StdRng::seed_from_u64(1)).is_empty());
    }
}
