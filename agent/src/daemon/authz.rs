//! Who may do what: the owner key, the grants the owner signed, and the roles
//! they confer.
//!
//! Roles are decided from the verified peer key only. The owner key comes from
//! the config (a later chain client will read it from the chain). Every other key
//! needs a grant signed by the owner, naming that key and this node; grants are
//! presented on `nodus/grant/1`, checked with [`nodus_identity::grant::verify_grant`]
//! and kept in `<state>/grants/`, so a console that presented its grant once
//! connects directly afterwards, across agent restarts. Expiry is checked at every
//! use, not just when the grant arrives.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use nodus_identity::{
    AccountId, NodeId, PublicKey, Role,
    grant::{
        GrantContext, RevocationList, SignedGrant, from_file_text, to_file_text, verify_grant,
    },
};
use nodus_wire::{Alpn, Authorizer, Refusal};

use super::hub::unix_now;

/// A grant the node accepted.
#[derive(Debug, Clone)]
struct Held {
    grant: SignedGrant,
    role: Role,
    expires_at: Option<u64>,
}

/// Why a presented grant was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantStoreError {
    /// No owner is configured, so no grant can verify.
    #[error("This node has no owner configured; it accepts no grants")]
    NoOwner,
    /// The grant is not valid for this node, this key or now.
    #[error(transparent)]
    Invalid(#[from] nodus_identity::grant::GrantError),
    /// The grant file could not be stored.
    #[error("Cannot store the grant in {path}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The owner and the grants this node holds.
#[derive(Debug)]
pub struct Authz {
    owner: Option<PublicKey>,
    node: NodeId,
    network: String,
    dir: PathBuf,
    grants: RwLock<BTreeMap<[u8; 32], Held>>,
    revocations: RwLock<RevocationList>,
}

impl Authz {
    /// Loads the grants kept in `dir` (created if missing). Files that no longer
    /// verify (expired, other owner) are skipped with a warning, never deleted:
    /// the owner may have changed back.
    pub fn load(
        owner: Option<PublicKey>,
        node: NodeId,
        network: String,
        dir: PathBuf,
    ) -> Result<Self, GrantStoreError> {
        let me = Self {
            owner,
            node,
            network,
            dir,
            grants: RwLock::new(BTreeMap::new()),
            revocations: RwLock::new(RevocationList::default()),
        };
        std::fs::create_dir_all(&me.dir).map_err(|source| GrantStoreError::Store {
            path: me.dir.clone(),
            source,
        })?;
        let entries = std::fs::read_dir(&me.dir).map_err(|source| GrantStoreError::Store {
            path: me.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "grant") {
                continue;
            }
            let held = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| from_file_text(&t).map_err(|e| e.to_string()))
                .and_then(|g| me.check(&g, None).map_err(|e| e.to_string()));
            match held {
                Ok((key, held)) => {
                    me.write_grants().insert(*key.as_bytes(), held);
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "stored grant skipped");
                }
            }
        }
        Ok(me)
    }

    fn write_grants(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<[u8; 32], Held>> {
        self.grants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The owner key, if configured.
    pub fn owner(&self) -> Option<&PublicKey> {
        self.owner.as_ref()
    }

    /// The network grants are checked against.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Verifies `grant` as presented by `presenter` (`None`: by whoever the
    /// grantee is, for grants loaded from disk).
    fn check(
        &self,
        grant: &SignedGrant,
        presenter: Option<&PublicKey>,
    ) -> Result<(PublicKey, Held), GrantStoreError> {
        let owner = self.owner.as_ref().ok_or(GrantStoreError::NoOwner)?;
        let grantee = *grant.statement.payload.grantee.key();
        let revocations = self
            .revocations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ctx = GrantContext {
            owner,
            node: &self.node,
            network: &self.network,
            now: unix_now(),
            revocations: &revocations,
        };
        let role = verify_grant(grant, presenter.unwrap_or(&grantee), &ctx)?;
        Ok((
            grantee,
            Held {
                grant: grant.clone(),
                role,
                expires_at: grant.statement.expires_at,
            },
        ))
    }

    /// Accepts a grant presented by `presenter` (the verified key of the
    /// connection) and stores it. A newer grant for the same key replaces the
    /// older one.
    pub fn accept(
        &self,
        grant: &SignedGrant,
        presenter: &PublicKey,
    ) -> Result<Role, GrantStoreError> {
        let (key, held) = self.check(grant, Some(presenter))?;
        let role = held.role;
        let path = self.path_for(&key);
        let text = to_file_text(grant)?;
        write_atomic(&path, text.as_bytes())
            .map_err(|source| GrantStoreError::Store { path, source })?;
        self.write_grants().insert(*key.as_bytes(), held);
        Ok(role)
    }

    fn path_for(&self, key: &PublicKey) -> PathBuf {
        self.dir.join(format!("{}.grant", AccountId::from(*key)))
    }

    /// The role of `peer` now: owner, a live grant's role, or a refusal.
    pub fn role_of(&self, peer: &PublicKey) -> Result<Role, Refusal> {
        if self.owner.as_ref() == Some(peer) {
            return Ok(Role::Owner);
        }
        let grants = self
            .grants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = grants.get(peer.as_bytes()).ok_or(Refusal::UnknownKey)?;
        if held.expires_at.is_some_and(|t| unix_now() >= t) {
            return Err(Refusal::Revoked);
        }
        Ok(held.role)
    }

    /// How many grants are held (for status output).
    pub fn grant_count(&self) -> usize {
        self.grants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// The grant held for `peer`, if any.
    pub fn grant_of(&self, peer: &PublicKey) -> Option<SignedGrant> {
        self.grants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(peer.as_bytes())
            .map(|h| h.grant.clone())
    }
}

/// The QUIC authorizer: console connections need a role from [`Authz::role_of`];
/// the grant protocol admits any key, because presenting a grant is how an
/// unknown key becomes known (its handler accepts nothing but a grant naming
/// that very key).
#[derive(Debug, Clone)]
pub struct QuicAuthorizer(pub Arc<Authz>);

impl Authorizer for QuicAuthorizer {
    fn authorize(&self, peer: &PublicKey, alpn: Alpn) -> Result<Role, Refusal> {
        match alpn {
            Alpn::Console => self.0.role_of(peer),
            Alpn::Grant => Ok(self.0.role_of(peer).unwrap_or(Role::Viewer)),
            _ => Err(Refusal::WrongProtocol),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash
/// leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use nodus_identity::{
        SecretKey,
        grant::{Grant, issue},
    };

    use super::*;

    struct World {
        owner: SecretKey,
        node: NodeId,
        dir: tempfile::TempDir,
    }

    fn world() -> World {
        World {
            owner: SecretKey::from_seed(&[1; 32]),
            node: NodeId::from(SecretKey::from_seed(&[2; 32]).public()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn authz(w: &World) -> Authz {
        Authz::load(
            Some(w.owner.public()),
            w.node,
            "net".into(),
            w.dir.path().join("grants"),
        )
        .unwrap()
    }

    fn grant(w: &World, to: &SecretKey, role: Role, expires: Option<u64>) -> SignedGrant {
        let g = Grant {
            grantee: AccountId::from(to.public()),
            role,
            node: w.node,
        };
        issue(&w.owner, "net", g, expires).unwrap()
    }

    #[test]
    fn owner_grantee_and_stranger() {
        let w = world();
        let a = authz(&w);
        let op = SecretKey::from_seed(&[3; 32]);
        let stranger = SecretKey::from_seed(&[4; 32]);
        assert_eq!(a.role_of(&w.owner.public()), Ok(Role::Owner));
        assert_eq!(a.role_of(&op.public()), Err(Refusal::UnknownKey));
        let g = grant(&w, &op, Role::Operator, None);
        // Somebody else presenting the operator's grant gets nothing.
        assert!(a.accept(&g, &stranger.public()).is_err());
        assert_eq!(a.accept(&g, &op.public()).unwrap(), Role::Operator);
        assert_eq!(a.role_of(&op.public()), Ok(Role::Operator));
        assert_eq!(a.role_of(&stranger.public()), Err(Refusal::UnknownKey));
        // Kept across restarts.
        let again = authz(&w);
        assert_eq!(again.role_of(&op.public()), Ok(Role::Operator));
        assert_eq!(again.grant_count(), 1);
    }

    #[test]
    fn grant_for_other_node_or_signer_is_refused() {
        let w = world();
        let a = authz(&w);
        let op = SecretKey::from_seed(&[3; 32]);
        let other_owner = SecretKey::from_seed(&[5; 32]);
        let g = Grant {
            grantee: AccountId::from(op.public()),
            role: Role::Operator,
            node: w.node,
        };
        let forged = issue(&other_owner, "net", g.clone(), None).unwrap();
        assert!(a.accept(&forged, &op.public()).is_err());
        let mut elsewhere = g;
        elsewhere.node = NodeId::from(op.public());
        let wrong_node = issue(&w.owner, "net", elsewhere, None).unwrap();
        let e = a.accept(&wrong_node, &op.public()).unwrap_err().to_string();
        assert!(e.contains("not this node"), "{e}");
        assert_eq!(a.grant_count(), 0);
    }

    #[test]
    fn no_owner_means_no_grants() {
        let w = world();
        let a = Authz::load(None, w.node, "net".into(), w.dir.path().join("g")).unwrap();
        let op = SecretKey::from_seed(&[3; 32]);
        let g = grant(&w, &op, Role::Viewer, None);
        assert!(matches!(
            a.accept(&g, &op.public()),
            Err(GrantStoreError::NoOwner)
        ));
    }

    #[test]
    fn quic_authorizer_lets_anyone_present_but_only_known_keys_console() {
        let w = world();
        let a = Arc::new(authz(&w));
        let q = QuicAuthorizer(a);
        let stranger = SecretKey::from_seed(&[4; 32]).public();
        assert_eq!(
            q.authorize(&stranger, Alpn::Console),
            Err(Refusal::UnknownKey)
        );
        assert!(q.authorize(&stranger, Alpn::Grant).is_ok());
        assert_eq!(
            q.authorize(&stranger, Alpn::Chain),
            Err(Refusal::WrongProtocol)
        );
    }
}
