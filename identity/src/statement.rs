//! Signed statements with domain separation.
//!
//! Every signature anyone on a Nodus grid verifies is over a [`Statement`]: a
//! purpose tag, the network (chain) id, the signer, a nonce, an issue time, an
//! optional expiry and a payload. The signed bytes start with a fixed context string
//! and carry every field length-prefixed, so:
//!
//! - a signature made for one purpose (say, a console grant) never verifies for
//!   another (say, a node registration), even over identical payload bytes;
//! - a statement for the devnet never verifies on the main network;
//! - a statement cannot be replayed after it expires, and [`ReplayGuard`] rejects
//!   a nonce seen twice before then.
//!
//! Payloads are encoded with postcard, which is deterministic for a given type, so
//! signer and verifier always agree on the bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::key::{PublicKey, SecretKey, Signature};

/// The context every signed byte string begins with. Bump the suffix to change the
/// encoding; old signatures then stop verifying, on purpose.
const CONTEXT: &[u8] = b"nodus/statement/v1\0";

/// Longest purpose or network tag, in bytes.
pub const MAX_TAG_LEN: usize = 64;

/// Default tolerance for clocks running ahead of the verifier: statements claiming
/// to be issued further in the future than this are refused.
pub const DEFAULT_MAX_SKEW_SECS: u64 = 300;

/// Purposes used across Nodus. Each signature is made for exactly one.
pub mod purpose {
    /// An owner grants a key a role on a node.
    pub const GRANT: &str = "nodus/grant";
    /// An owner revokes grants.
    pub const REVOCATION: &str = "nodus/revocation";
    /// A node asks to be registered on the chain.
    pub const NODE_REGISTRATION: &str = "nodus/node-registration";
    /// A farm owner approves a node registration.
    pub const FARM_APPROVAL: &str = "nodus/farm-approval";
    /// A node reports its uptime.
    pub const UPTIME: &str = "nodus/uptime";
    /// The netboot server signs a boot image manifest.
    pub const BOOT_MANIFEST: &str = "nodus/boot-manifest";
    /// The owner approves wiping a disk that holds data the node did not create.
    pub const DISK_APPROVAL: &str = "nodus/disk-approval";
    /// A chain transaction.
    pub const TRANSACTION: &str = "nodus/transaction";
    /// A validator's consensus vote.
    pub const VOTE: &str = "nodus/vote";
}

/// Why a statement did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Signed for another purpose.
    #[error("Statement is for purpose {found:?}, expected {expected:?}")]
    WrongPurpose {
        /// The purpose the verifier wanted.
        expected: String,
        /// The purpose in the statement.
        found: String,
    },
    /// Signed for another network.
    #[error("Statement is for network {found:?}, expected {expected:?}")]
    WrongNetwork {
        /// The network the verifier is on.
        expected: String,
        /// The network in the statement.
        found: String,
    },
    /// Signed by someone other than the expected key.
    #[error("Statement is signed by an unexpected key")]
    WrongSigner,
    /// The signature does not match.
    #[error("Statement signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("Statement expired at {expires_at} (now {now})")]
    Expired {
        /// Expiry, Unix seconds.
        expires_at: u64,
        /// Verifier's clock, Unix seconds.
        now: u64,
    },
    /// Issued too far in the future for clock skew to explain.
    #[error("Statement issued at {issued_at}, in the future (now {now})")]
    FromTheFuture {
        /// Issue time, Unix seconds.
        issued_at: u64,
        /// Verifier's clock, Unix seconds.
        now: u64,
    },
    /// The nonce was already used.
    #[error("Statement nonce was already used")]
    Replayed,
    /// A tag is empty or too long.
    #[error("Statement tag {0:?} is empty or longer than 64 bytes")]
    BadTag(String),
    /// The payload could not be encoded or decoded.
    #[error("Statement payload: {0}")]
    Payload(String),
}

/// The unsigned statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement<T> {
    /// What the signature is for, e.g. [`purpose::GRANT`].
    pub purpose: String,
    /// The network (chain id) it is valid on.
    pub network: String,
    /// Who signs it.
    pub signer: PublicKey,
    /// Random, so two otherwise equal statements differ and replays can be caught.
    pub nonce: [u8; 16],
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; `None` for statements that never expire.
    pub expires_at: Option<u64>,
    /// The content.
    pub payload: T,
}

/// A statement with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    /// The statement.
    pub statement: Statement<T>,
    /// ed25519 over [`Statement::signing_bytes`].
    pub signature: Signature,
}

/// A fresh random nonce.
pub fn nonce() -> [u8; 16] {
    let mut n = [0u8; 16];
    // If the OS random source fails, fall back to a time-derived nonce: unique per
    // call in practice, and nonces need uniqueness, not secrecy.
    if getrandom::getrandom(&mut n).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        n = t.to_le_bytes();
    }
    n
}

/// The current Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn check_tag(tag: &str) -> Result<(), StatementError> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(StatementError::BadTag(tag.chars().take(80).collect()));
    }
    Ok(())
}

fn put(buf: &mut Vec<u8>, part: &[u8]) {
    buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
    buf.extend_from_slice(part);
}

impl<T: Serialize> Statement<T> {
    /// A statement issued now by `signer`, with a fresh nonce.
    pub fn new(
        purpose: &str,
        network: &str,
        signer: PublicKey,
        expires_at: Option<u64>,
        payload: T,
    ) -> Self {
        Self {
            purpose: purpose.to_owned(),
            network: network.to_owned(),
            signer,
            nonce: nonce(),
            issued_at: unix_now(),
            expires_at,
            payload,
        }
    }

    /// The exact bytes that are signed.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, StatementError> {
        check_tag(&self.purpose)?;
        check_tag(&self.network)?;
        let payload = postcard::to_allocvec(&self.payload)
            .map_err(|e| StatementError::Payload(e.to_string()))?;
        let mut buf = Vec::with_capacity(CONTEXT.len() + 160 + payload.len());
        buf.extend_from_slice(CONTEXT);
        put(&mut buf, self.purpose.as_bytes());
        put(&mut buf, self.network.as_bytes());
        put(&mut buf, self.signer.as_bytes());
        put(&mut buf, &self.nonce);
        buf.extend_from_slice(&self.issued_at.to_be_bytes());
        match self.expires_at {
            Some(t) => {
                buf.push(1);
                buf.extend_from_slice(&t.to_be_bytes());
            }
            None => buf.push(0),
        }
        put(&mut buf, &payload);
        Ok(buf)
    }

    /// Signs the statement. `key` must be the statement's signer.
    pub fn sign(self, key: &SecretKey) -> Result<Signed<T>, StatementError> {
        if key.public() != self.signer {
            return Err(StatementError::WrongSigner);
        }
        let signature = key.sign_raw(&self.signing_bytes()?);
        Ok(Signed {
            statement: self,
            signature,
        })
    }
}

/// What a verifier expects of a statement.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// Required purpose.
    pub purpose: &'a str,
    /// Required network.
    pub network: &'a str,
    /// Required signer, if the verifier knows who must have signed.
    pub signer: Option<&'a PublicKey>,
    /// The verifier's clock, Unix seconds.
    pub now: u64,
    /// Tolerated clock skew for `issued_at`.
    pub max_skew_secs: u64,
}

impl<'a> Expect<'a> {
    /// Expectations with the default skew and no fixed signer.
    pub fn new(purpose: &'a str, network: &'a str, now: u64) -> Self {
        Self {
            purpose,
            network,
            signer: None,
            now,
            max_skew_secs: DEFAULT_MAX_SKEW_SECS,
        }
    }

    /// Requires a particular signer.
    pub fn signed_by(mut self, key: &'a PublicKey) -> Self {
        self.signer = Some(key);
        self
    }
}

impl<T: Serialize> Signed<T> {
    /// Checks purpose, network, signer, signature, expiry and skew, in that order,
    /// and returns the payload.
    pub fn verify(&self, expect: &Expect<'_>) -> Result<&T, StatementError> {
        let s = &self.statement;
        if s.purpose != expect.purpose {
            return Err(StatementError::WrongPurpose {
                expected: expect.purpose.to_owned(),
                found: s.purpose.clone(),
            });
        }
        if s.network != expect.network {
            return Err(StatementError::WrongNetwork {
                expected: expect.network.to_owned(),
                found: s.network.clone(),
            });
        }
        if let Some(signer) = expect.signer
            && *signer != s.signer
        {
            return Err(StatementError::WrongSigner);
        }
        if !s.signer.verify_raw(&s.signing_bytes()?, &self.signature) {
            return Err(StatementError::BadSignature);
        }
        if let Some(expires_at) = s.expires_at
            && expect.now >= expires_at
        {
            return Err(StatementError::Expired {
                expires_at,
                now: expect.now,
            });
        }
        if s.issued_at > expect.now.saturating_add(expect.max_skew_secs) {
            return Err(StatementError::FromTheFuture {
                issued_at: s.issued_at,
                now: expect.now,
            });
        }
        Ok(&s.payload)
    }

    /// A stable id: SHA-256 of the signed bytes, first 16 bytes.
    pub fn id(&self) -> Result<[u8; 16], StatementError> {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(self.statement.signing_bytes()?);
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        Ok(id)
    }
}

impl<T: Serialize + DeserializeOwned> Signed<T> {
    /// The compact binary encoding (postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>, StatementError> {
        postcard::to_allocvec(self).map_err(|e| StatementError::Payload(e.to_string()))
    }

    /// Parses the compact binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StatementError> {
        postcard::from_bytes(bytes).map_err(|e| StatementError::Payload(e.to_string()))
    }
}

/// Remembers nonces until their statements expire, so each is accepted once.
///
/// Statements without expiry must not be guarded by this (they would be kept
/// forever); give replay-sensitive statements an expiry.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    /// (signer, nonce) → expiry.
    seen: BTreeMap<([u8; 32], [u8; 16]), u64>,
}

impl ReplayGuard {
    /// Records the statement's nonce; fails if it was seen and has not expired.
    /// Expired entries are dropped as a side effect.
    pub fn check<T>(&mut self, s: &Statement<T>, now: u64) -> Result<(), StatementError> {
        self.seen.retain(|_, exp| *exp > now);
        let Some(expires_at) = s.expires_at else {
            return Err(StatementError::Payload(
                "replay-guarded statements need an expiry".into(),
            ));
        };
        if expires_at <= now {
            return Err(StatementError::Expired { expires_at, now });
        }
        let key = (*s.signer.as_bytes(), s.nonce);
        if self.seen.contains_key(&key) {
            return Err(StatementError::Replayed);
        }
        self.seen.insert(key, expires_at);
        Ok(())
    }

    /// Number of nonces remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_seed(&[42; 32])
    }

    fn signed(purpose: &str, network: &str, payload: &str) -> Signed<String> {
        let k = key();
        Statement::new(
            purpose,
            network,
            k.public(),
            Some(2_000_000_000),
            payload.to_owned(),
        )
        .sign(&k)
        .unwrap()
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn verifies_for_its_own_purpose_and_network() {
        let s = signed(purpose::GRANT, "devnet", "hello");
        let pk = key().public();
        let e = Expect::new(purpose::GRANT, "devnet", NOW).signed_by(&pk);
        assert_eq!(s.verify(&e).unwrap(), "hello");
    }

    #[test]
    fn signature_for_purpose_a_fails_for_purpose_b() {
        let mut s = signed(purpose::GRANT, "devnet", "same payload");
        // Re-label the statement: the signature was made over the old purpose.
        s.statement.purpose = purpose::NODE_REGISTRATION.to_owned();
        let e = Expect::new(purpose::NODE_REGISTRATION, "devnet", NOW);
        assert_eq!(s.verify(&e), Err(StatementError::BadSignature));
        // And asking for B on an honest A statement names the mismatch.
        let s = signed(purpose::GRANT, "devnet", "same payload");
        assert!(matches!(
            s.verify(&e),
            Err(StatementError::WrongPurpose { .. })
        ));
    }

    #[test]
    fn other_network_and_tampering_fail() {
        let s = signed(purpose::UPTIME, "devnet", "x");
        assert!(matches!(
            s.verify(&Expect::new(purpose::UPTIME, "mainnet", NOW)),
            Err(StatementError::WrongNetwork { .. })
        ));
        let mut relabelled = s.clone();
        relabelled.statement.network = "mainnet".into();
        assert_eq!(
            relabelled.verify(&Expect::new(purpose::UPTIME, "mainnet", NOW)),
            Err(StatementError::BadSignature)
        );
        let mut t = s.clone();
        t.statement.payload = "y".into();
        assert_eq!(
            t.verify(&Expect::new(purpose::UPTIME, "devnet", NOW)),
            Err(StatementError::BadSignature)
        );
        let mut t = s;
        t.statement.expires_at = None;
        assert_eq!(
            t.verify(&Expect::new(purpose::UPTIME, "devnet", NOW)),
            Err(StatementError::BadSignature)
        );
    }

    #[test]
    fn length_prefixing_prevents_boundary_shifts() {
        // "ab"+"c" and "a"+"bc" must sign different bytes.
        let k = key();
        let a = Statement {
            purpose: "ab".into(),
            network: "c".into(),
            signer: k.public(),
            nonce: [0; 16],
            issued_at: 0,
            expires_at: None,
            payload: (),
        };
        let mut b = a.clone();
        b.purpose = "a".into();
        b.network = "bc".into();
        assert_ne!(a.signing_bytes().unwrap(), b.signing_bytes().unwrap());
    }

    #[test]
    fn expiry_and_future_issue_and_signer() {
        let s = signed(purpose::GRANT, "devnet", "x");
        assert!(matches!(
            s.verify(&Expect::new(purpose::GRANT, "devnet", 2_000_000_000)),
            Err(StatementError::Expired { .. })
        ));
        assert!(matches!(
            s.verify(&Expect::new(purpose::GRANT, "devnet", 1_000)),
            Err(StatementError::FromTheFuture { .. })
        ));
        let other = SecretKey::from_seed(&[1; 32]).public();
        assert_eq!(
            s.verify(&Expect::new(purpose::GRANT, "devnet", NOW).signed_by(&other)),
            Err(StatementError::WrongSigner)
        );
        // Signing with a key that is not the declared signer is refused up front.
        let st = Statement::new(purpose::GRANT, "devnet", other, None, ());
        assert_eq!(st.sign(&key()).unwrap_err(), StatementError::WrongSigner);
    }

    #[test]
    fn binary_and_json_round_trip() {
        let s = signed(purpose::GRANT, "devnet", "payload");
        let back = Signed::<String>::from_bytes(&s.to_bytes().unwrap()).unwrap();
        assert_eq!(back, s);
        let json = serde_json::to_string(&s).unwrap();
        let back: Signed<String> = serde_json::from_str(&json).unwrap();
        assert!(
            back.verify(&Expect::new(purpose::GRANT, "devnet", NOW))
                .is_ok()
        );
        assert!(Signed::<String>::from_bytes(&[0xff; 7]).is_err());
    }

    #[test]
    fn replay_guard_accepts_once_until_expiry() {
        let s = signed(purpose::GRANT, "devnet", "x");
        let mut g = ReplayGuard::default();
        g.check(&s.statement, NOW).unwrap();
        assert_eq!(g.check(&s.statement, NOW), Err(StatementError::Replayed));
        assert_eq!(g.len(), 1);
        // After expiry the entry is forgotten, and expired statements are refused.
        assert!(matches!(
            g.check(
                &signed(purpose::GRANT, "devnet", "y").statement,
                2_000_000_001
            ),
            Err(StatementError::Expired { .. })
        ));
        assert!(g.is_empty());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
