//! The canonical text form of public keys: [`NodeId`] and [`AccountId`].
//!
//! # Why bech32m
//!
//! Farmers read these ids off screens, paste them into chats and type them into
//! configs. The form must catch typos, say what kind of key it is, and survive
//! case-folding and QR codes. Bech32m (BIP 350) does all of that:
//!
//! - a BCH checksum that detects any error in up to 4 characters, and catches
//!   transpositions, which base58check (a truncated hash) only does by chance;
//! - a human-readable prefix, so a node id (`node1…`) can never be pasted where an
//!   account id (`acct1…`) is expected;
//! - one case only, and an alphabet without `1`, `b`, `i`, `o` look-alikes.
//!
//! Each key has exactly one text form per kind: lowercase bech32m over the raw 32
//! bytes. Upper-case input is accepted (bech32 allows it, for QR codes) and displays
//! lowercase again; mixed case and the older bech32 checksum are refused.

use std::{fmt, str::FromStr};

use bech32::{Bech32m, Hrp, primitives::decode::CheckedHrpstring};

use crate::key::{KEY_LEN, KeyError, PublicKey};

/// Prefix of node ids.
pub const NODE_HRP: &str = "node";
/// Prefix of account ids.
pub const ACCOUNT_HRP: &str = "acct";

/// Why a text id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// Not bech32m at all, or the checksum failed (typo).
    #[error("Not a valid id (bad characters or checksum): {0}")]
    Encoding(String),
    /// A valid id of another kind, such as an account id where a node id belongs.
    #[error("Expected a `{expected}1…` id, found prefix `{found}`")]
    WrongKind {
        /// The prefix that was expected.
        expected: &'static str,
        /// The prefix that was found.
        found: String,
    },
    /// The payload is not 32 bytes.
    #[error("Id holds {0} bytes, expected 32")]
    Length(usize),
    /// The 32 bytes are not a usable ed25519 key.
    #[error("Id is not a usable ed25519 key")]
    Key(#[source] KeyError),
}

fn encode(hrp: &'static str, key: &PublicKey) -> String {
    // Both prefixes are valid constants and 32 bytes are far below bech32m's length
    // limit, so encoding cannot fail.
    let hrp = Hrp::parse_unchecked(hrp);
    bech32::encode::<Bech32m>(hrp, key.as_bytes()).unwrap_or_default()
}

fn decode(s: &str) -> Result<(String, PublicKey), ParseIdError> {
    let checked =
        CheckedHrpstring::new::<Bech32m>(s).map_err(|e| ParseIdError::Encoding(e.to_string()))?;
    let hrp = checked.hrp().to_lowercase();
    let bytes: Vec<u8> = checked.byte_iter().collect();
    let raw = <[u8; KEY_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| ParseIdError::Length(bytes.len()))?;
    let key = PublicKey::from_bytes(&raw).map_err(ParseIdError::Key)?;
    Ok((hrp, key))
}

fn decode_kind(s: &str, expected: &'static str) -> Result<PublicKey, ParseIdError> {
    let (hrp, key) = decode(s)?;
    if hrp != expected {
        return Err(ParseIdError::WrongKind {
            expected,
            found: hrp,
        });
    }
    Ok(key)
}

/// Parses either kind of id into its key.
pub(crate) fn parse_any(s: &str) -> Result<PublicKey, ParseIdError> {
    let (hrp, key) = decode(s)?;
    match hrp.as_str() {
        NODE_HRP | ACCOUNT_HRP => Ok(key),
        _ => Err(ParseIdError::WrongKind {
            expected: ACCOUNT_HRP,
            found: hrp,
        }),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $hrp:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(PublicKey);

        impl $name {
            /// The key this id names.
            pub fn key(&self) -> &PublicKey {
                &self.0
            }

            /// A short form for people to read back and type as a confirmation token:
            /// the prefix and the first 8 data characters, e.g. `node1qy352euf`.
            /// Not unique; never use it to look a key up.
            pub fn short(&self) -> String {
                let full = self.to_string();
                let cut = $hrp.len() + 1 + 8;
                full[..cut.min(full.len())].to_owned()
            }
        }

        impl From<PublicKey> for $name {
            fn from(key: PublicKey) -> Self {
                Self(key)
            }
        }

        impl From<$name> for PublicKey {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode($hrp, &self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_kind(s.trim(), $hrp).map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    s.parse().map_err(D::Error::custom)
                } else {
                    PublicKey::deserialize(d).map(Self)
                }
            }
        }
    };
}

id_type!(
    /// The public identity of a node: its ed25519 key, shown as `node1…`.
    NodeId,
    NODE_HRP
);
id_type!(
    /// The public identity of a person or service (farmer, operator, tenant,
    /// validator): its ed25519 key, shown as `acct1…`.
    AccountId,
    ACCOUNT_HRP
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SecretKey;

    fn key(n: u8) -> PublicKey {
        SecretKey::from_seed(&[n; 32]).public()
    }

    #[test]
    fn round_trips_both_kinds() {
        let k = key(4);
        let node = NodeId::from(k);
        let acct = AccountId::from(k);
        assert!(node.to_string().starts_with("node1"));
        assert!(acct.to_string().starts_with("acct1"));
        assert_eq!(node.to_string().parse::<NodeId>(), Ok(node));
        assert_eq!(acct.to_string().parse::<AccountId>(), Ok(acct));
        assert_eq!(node.to_string().len(), 63);
    }

    #[test]
    fn upper_case_is_accepted_and_displays_lowercase() {
        let node = NodeId::from(key(5));
        let upper = node.to_string().to_uppercase();
        let parsed: NodeId = upper.parse().unwrap();
        assert_eq!(parsed.to_string(), node.to_string());
    }

    #[test]
    fn single_character_typo_is_caught() {
        let text = NodeId::from(key(6)).to_string();
        for i in 5..text.len() {
            let mut chars: Vec<char> = text.chars().collect();
            chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
            let typo: String = chars.into_iter().collect();
            assert!(
                matches!(typo.parse::<NodeId>(), Err(ParseIdError::Encoding(_))),
                "typo at {i} not caught"
            );
        }
    }

    #[test]
    fn wrong_kind_is_named() {
        let acct = AccountId::from(key(7)).to_string();
        let err = acct.parse::<NodeId>().unwrap_err();
        assert_eq!(
            err,
            ParseIdError::WrongKind {
                expected: "node",
                found: "acct".into()
            }
        );
        assert!(err.to_string().contains("node1"));
    }

    #[test]
    fn old_bech32_checksum_and_short_payload_are_refused() {
        let hrp = Hrp::parse_unchecked(NODE_HRP);
        let old = bech32::encode::<bech32::Bech32>(hrp, key(8).as_bytes()).unwrap();
        assert!(matches!(
            old.parse::<NodeId>(),
            Err(ParseIdError::Encoding(_))
        ));
        let short = bech32::encode::<Bech32m>(hrp, &[1u8; 20]).unwrap();
        assert_eq!(short.parse::<NodeId>(), Err(ParseIdError::Length(20)));
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "1",
            "node1",
            "node1qqqq",
            "acct1\u{1F600}",
            "x",
            "NODE1Qq",
        ] {
            assert!(s.parse::<NodeId>().is_err());
            assert!(s.parse::<AccountId>().is_err());
        }
    }

    #[test]
    fn short_form_is_prefix() {
        let node = NodeId::from(key(9));
        assert_eq!(node.short().len(), 13);
        assert!(node.to_string().starts_with(&node.short()));
    }

    #[test]
    fn serde_json_uses_text_form() {
        let node = NodeId::from(key(10));
        let json = serde_json::to_string(&node).unwrap();
        assert_eq!(json, format!("\"{node}\""));
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), node);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC*") {
            let _ = s.parse::<NodeId>();
            let _ = s.parse::<AccountId>();
        }
    }
}
