//! Grants: "key K has role R on node N until T", signed by the node's owner, and
//! the owner-signed revocation list that withdraws them.
//!
//! A grant is a [`Signed`] statement with purpose [`purpose::GRANT`]; the node
//! checks it with [`verify_grant`] against the owner key it trusts (from config
//! today, from the chain later), its own node id, the network, the clock and the
//! newest revocation list it has seen.

use std::{collections::BTreeSet, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{
    AccountId, NodeId, PublicKey, SecretKey,
    file_text::{self, ReadError},
    statement::{Expect, Signed, Statement, StatementError, purpose},
};

/// What a key may do on a node (DESIGN.md, "Roles").
///
/// The variant order is part of the wire format (postcard encodes the variant
/// index): new roles are appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The farmer: everything, including stake. Never granted; it is the owner key.
    Owner,
    /// Power actions and approving disk wipes.
    Operator,
    /// Reads everything, changes nothing.
    Viewer,
    /// Runs its own workloads only.
    Tenant,
}

impl Role {
    /// The lower-case name used in configs, grants and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Tenant => "tenant",
        }
    }

    /// Whether a holder of `self` may do what `needed` may do on the node. Owner ⊇
    /// operator ⊇ viewer; a tenant's rights are about its own workloads and cover
    /// no node-management role but its own.
    pub const fn covers(self, needed: Role) -> bool {
        matches!(
            (self, needed),
            (Role::Owner, _)
                | (Role::Operator, Role::Operator | Role::Viewer)
                | (Role::Viewer, Role::Viewer)
                | (Role::Tenant, Role::Tenant)
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown role {0:?}; expected owner, operator, viewer or tenant")]
pub struct ParseRoleError(String);

impl FromStr for Role {
    type Err = ParseRoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tenant" => Ok(Role::Tenant),
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "owner" => Ok(Role::Owner),
            _ => Err(ParseRoleError(s.to_owned())),
        }
    }
}

/// The payload of a grant statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Who receives the role.
    pub grantee: AccountId,
    /// The role.
    pub role: Role,
    /// The node it applies to.
    pub node: NodeId,
}

/// A grant as stored in a file and presented with `--grant FILE`.
pub type SignedGrant = Signed<Grant>;

/// The id of a grant, used by revocation lists: the first 16 bytes of SHA-256 over
/// its signed bytes, shown as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GrantId(pub [u8; 16]);

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// The payload of a revocation list. A list with a higher `serial` replaces a lower
/// one entirely, so a node needs only the newest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocations {
    /// Increases with every list the owner publishes.
    pub serial: u64,
    /// Revoked grants.
    pub revoked: BTreeSet<GrantId>,
}

/// Why a grant was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The statement itself failed (signature, purpose, network, expiry, signer).
    #[error("Grant does not verify")]
    Statement(#[source] StatementError),
    /// For another node.
    #[error("Grant is for node {found}, not this node {expected}")]
    WrongNode {
        /// This node, as text.
        expected: String,
        /// The node in the grant, as text.
        found: String,
    },
    /// For another key than the one presenting it.
    #[error("Grant is for {grantee}, but was presented by {presenter}")]
    WrongGrantee {
        /// The key in the grant, as text.
        grantee: String,
        /// The key that presented it, as text.
        presenter: String,
    },
    /// The owner role cannot be granted.
    #[error("The owner role cannot be granted")]
    OwnerNotGrantable,
    /// On the revocation list.
    #[error("Grant {0} has been revoked")]
    Revoked(GrantId),
    /// A revocation list did not verify or is older than the one held.
    #[error("Revocation list rejected: {0}")]
    BadRevocationList(String),
}

/// Issues a grant, signed by `owner`.
pub fn issue(
    owner: &SecretKey,
    network: &str,
    grant: Grant,
    expires_at: Option<u64>,
) -> Result<SignedGrant, GrantError> {
    if grant.role == Role::Owner {
        return Err(GrantError::OwnerNotGrantable);
    }
    Statement::new(purpose::GRANT, network, owner.public(), expires_at, grant)
        .sign(owner)
        .map_err(GrantError::Statement)
}

/// What a node checks a grant against.
#[derive(Debug, Clone, Copy)]
pub struct GrantContext<'a> {
    /// The owner key the node trusts.
    pub owner: &'a PublicKey,
    /// This node.
    pub node: &'a NodeId,
    /// The network.
    pub network: &'a str,
    /// Unix seconds.
    pub now: u64,
    /// The newest revocation list, already verified with [`RevocationList::accept`].
    pub revocations: &'a RevocationList,
}

/// Verifies a grant presented by `presenter` (the verified peer key of the
/// connection) and returns the role it confers.
pub fn verify_grant(
    grant: &SignedGrant,
    presenter: &PublicKey,
    ctx: &GrantContext<'_>,
) -> Result<Role, GrantError> {
    let payload = grant
        .verify(&Expect::new(purpose::GRANT, ctx.network, ctx.now).signed_by(ctx.owner))
        .map_err(GrantError::Statement)?;
    if payload.node != *ctx.node {
        return Err(GrantError::WrongNode {
            expected: ctx.node.to_string(),
            found: payload.node.to_string(),
        });
    }
    if payload.grantee.key() != presenter {
        return Err(GrantError::WrongGrantee {
            grantee: payload.grantee.to_string(),
            presenter: AccountId::from(*presenter).to_string(),
        });
    }
    if payload.role == Role::Owner {
        return Err(GrantError::OwnerNotGrantable);
    }
    let id = GrantId(grant.id().map_err(GrantError::Statement)?);
    if ctx.revocations.is_revoked(&id) {
        return Err(GrantError::Revoked(id));
    }
    Ok(payload.role)
}

/// The id of a signed grant.
pub fn grant_id(grant: &SignedGrant) -> Result<GrantId, GrantError> {
    grant.id().map(GrantId).map_err(GrantError::Statement)
}

/// The payload of the owner's approval to wipe one disk that holds data the node
/// did not create (purpose [`purpose::DISK_APPROVAL`]). It names the disk by
/// serial number, which follows the disk across slots and reboots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskApproval {
    /// The node the disk is in.
    pub node: NodeId,
    /// The disk's serial number.
    pub serial: String,
}

/// Signs a [`DiskApproval`] with the owner's key.
pub fn approve_disk(
    owner: &SecretKey,
    network: &str,
    approval: DiskApproval,
    expires_at: Option<u64>,
) -> Result<Signed<DiskApproval>, StatementError> {
    Statement::new(
        purpose::DISK_APPROVAL,
        network,
        owner.public(),
        expires_at,
        approval,
    )
    .sign(owner)
}

/// A disk approval as stored in a file and presented with `--approval FILE`.
pub type SignedDiskApproval = Signed<DiskApproval>;

/// The first word of the line that carries the approval in a disk approval file.
pub const DISK_APPROVAL_FILE_TAG: &str = "nodus-disk-approval-v1";

/// Why a disk approval file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiskApprovalFileError {
    /// No `nodus-disk-approval-v1 …` line.
    #[error("No {DISK_APPROVAL_FILE_TAG} line found; is this a disk approval file?")]
    NoApprovalLine,
    /// A grant file was given where a disk approval was expected.
    #[error(
        "This is a grant file ({GRANT_FILE_TAG}), not a disk approval; make one with `nodus id approve-disk`"
    )]
    GrantFile,
    /// The line's payload is not base64url.
    #[error("Disk approval line is not valid base64url")]
    Encoding,
    /// The payload is not a signed disk approval.
    #[error("Disk approval line does not hold a signed disk approval")]
    Decode(#[source] StatementError),
    /// Signed, but for another purpose than approving a disk.
    #[error("Statement is for purpose {0:?}, not a disk approval")]
    WrongPurpose(String),
    /// The signature does not match the statement (damaged or altered).
    #[error("Disk approval signature is invalid (the file is damaged or was altered)")]
    BadSignature,
}

/// Signs a [`DiskApproval`] and writes it as the text of a disk approval file:
/// `#` comment lines saying what it approves (for the people passing it on),
/// then one line `nodus-disk-approval-v1 <base64url of the signed statement>`.
/// `disk` is the kernel name the owner saw, shown in the comments only: names
/// change across reboots, so the node checks the serial.
pub fn disk_approval_to_file_text(
    approval: &SignedDiskApproval,
    disk: Option<&str>,
) -> Result<String, StatementError> {
    let bytes = approval.to_bytes()?;
    let s = &approval.statement;
    let comments = [
        format!(
            "Nodus disk approval: the disk with serial {:?}{} on {} may be wiped",
            s.payload.serial,
            disk.map(|d| format!(" (seen as {d})")).unwrap_or_default(),
            s.payload.node,
        ),
        "for pool use by an operator presenting this file.".to_owned(),
        format!(
            "signed by {} for network {:?}",
            AccountId::from(s.signer),
            s.network
        ),
        file_text::expiry_comment(s.expires_at, "never expires"),
    ];
    Ok(file_text::write(&comments, DISK_APPROVAL_FILE_TAG, &bytes))
}

/// Reads a disk approval file written by [`disk_approval_to_file_text`] and
/// checks what can be checked without the node: the purpose, and that the
/// signature matches the statement. Who signed it, the network, the node, the
/// serial and the expiry are the node's to judge.
pub fn disk_approval_from_file_text(
    text: &str,
) -> Result<SignedDiskApproval, DiskApprovalFileError> {
    let bytes = file_text::read(text, DISK_APPROVAL_FILE_TAG).map_err(|e| match e {
        ReadError::Missing => DiskApprovalFileError::NoApprovalLine,
        ReadError::OtherKind(_) => DiskApprovalFileError::GrantFile,
        ReadError::Encoding => DiskApprovalFileError::Encoding,
    })?;
    let signed = SignedDiskApproval::from_bytes(&bytes).map_err(DiskApprovalFileError::Decode)?;
    let s = &signed.statement;
    if s.purpose != purpose::DISK_APPROVAL {
        return Err(DiskApprovalFileError::WrongPurpose(
            s.purpose.chars().take(80).collect(),
        ));
    }
    let signing = s.signing_bytes().map_err(DiskApprovalFileError::Decode)?;
    if !s.signer.verify_raw(&signing, &signed.signature) {
        return Err(DiskApprovalFileError::BadSignature);
    }
    Ok(signed)
}

/// The first word of the line that carries a grant in a grant file.
pub const GRANT_FILE_TAG: &str = "nodus-grant-v1";

/// Why a grant file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantFileError {
    /// No `nodus-grant-v1 …` line.
    #[error("No {GRANT_FILE_TAG} line found; is this a grant file?")]
    NoGrantLine,
    /// A disk approval file was given where a grant was expected.
    #[error(
        "This is a disk approval file ({DISK_APPROVAL_FILE_TAG}), not a grant; make one with `nodus id grant`"
    )]
    DiskApprovalFile,
    /// The line's payload is not base64url.
    #[error("Grant line is not valid base64url")]
    Encoding,
    /// The payload is not a signed grant.
    #[error("Grant line does not hold a signed grant")]
    Decode(#[source] StatementError),
}

/// Writes `grant` as the text of a grant file: `#` comment lines saying what the
/// grant is (for the person holding the file), then one line
/// `nodus-grant-v1 <base64url of the signed statement>`.
///
/// Text, not binary, so a grant can be pasted into a chat or a config file; the
/// comments are not trusted by anyone: a node reads only the signed line.
pub fn to_file_text(grant: &SignedGrant) -> Result<String, GrantError> {
    let bytes = grant.to_bytes().map_err(GrantError::Statement)?;
    let s = &grant.statement;
    let comments = [
        format!(
            "Nodus grant: {} may act as {} on {}",
            s.payload.grantee, s.payload.role, s.payload.node
        ),
        format!(
            "signed by {} for network {:?}",
            AccountId::from(s.signer),
            s.network
        ),
        file_text::expiry_comment(
            s.expires_at,
            "never expires (revoke it with a revocation list)",
        ),
    ];
    Ok(file_text::write(&comments, GRANT_FILE_TAG, &bytes))
}

/// Reads a grant file written by [`to_file_text`]. The signature is not checked
/// here; the node checks it with [`verify_grant`].
pub fn from_file_text(text: &str) -> Result<SignedGrant, GrantFileError> {
    let bytes = file_text::read(text, GRANT_FILE_TAG).map_err(|e| match e {
        ReadError::Missing => GrantFileError::NoGrantLine,
        ReadError::OtherKind(_) => GrantFileError::DiskApprovalFile,
        ReadError::Encoding => GrantFileError::Encoding,
    })?;
    SignedGrant::from_bytes(&bytes).map_err(GrantFileError::Decode)
}

/// The revocation list a node holds: the newest verified one from its owner.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    current: Revocations,
}

impl RevocationList {
    /// Signs a revocation list.
    pub fn issue(
        owner: &SecretKey,
        network: &str,
        revocations: Revocations,
    ) -> Result<Signed<Revocations>, GrantError> {
        Statement::new(
            purpose::REVOCATION,
            network,
            owner.public(),
            None,
            revocations,
        )
        .sign(owner)
        .map_err(GrantError::Statement)
    }

    /// Verifies `list` and adopts it if it is newer than the one held. An older or
    /// equal serial is refused so a replayed old list cannot un-revoke a grant.
    pub fn accept(
        &mut self,
        list: &Signed<Revocations>,
        owner: &PublicKey,
        network: &str,
        now: u64,
    ) -> Result<(), GrantError> {
        let payload = list
            .verify(&Expect::new(purpose::REVOCATION, network, now).signed_by(owner))
            .map_err(|e| GrantError::BadRevocationList(e.to_string()))?;
        if payload.serial <= self.current.serial && !self.current.revoked.is_empty() {
            return Err(GrantError::BadRevocationList(format!(
                "serial {} is not newer than {}",
                payload.serial, self.current.serial
            )));
        }
        self.current = payload.clone();
        Ok(())
    }

    /// Whether `id` is revoked.
    pub fn is_revoked(&self, id: &GrantId) -> bool {
        self.current.revoked.contains(id)
    }

    /// The serial of the list held.
    pub fn serial(&self) -> u64 {
        self.current.serial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "devnet";
    const NOW: u64 = 1_800_000_000;

    struct World {
        owner: SecretKey,
        operator: SecretKey,
        node: NodeId,
    }

    fn world() -> World {
        World {
            owner: SecretKey::from_seed(&[1; 32]),
            operator: SecretKey::from_seed(&[2; 32]),
            node: NodeId::from(SecretKey::from_seed(&[3; 32]).public()),
        }
    }

    #[test]
    fn grant_file_round_trips_and_names_bad_input() {
        let w = world();
        let g = grant(&w, Role::Operator, Some(NOW + 60));
        let text = to_file_text(&g).unwrap();
        assert!(text.contains("operator"), "{text}");
        assert_eq!(from_file_text(&text).unwrap(), g);
        assert_eq!(from_file_text("hello"), Err(GrantFileError::NoGrantLine));
        assert_eq!(
            from_file_text("nodus-grant-v1 !!!"),
            Err(GrantFileError::Encoding)
        );
        assert!(matches!(
            from_file_text("nodus-grant-v1 AAAA"),
            Err(GrantFileError::Decode(_))
        ));
    }

    fn disk_approval(w: &World, serial: &str) -> SignedDiskApproval {
        approve_disk(
            &w.owner,
            NET,
            DiskApproval {
                node: w.node,
                serial: serial.to_owned(),
            },
            Some(NOW + 60),
        )
        .unwrap()
    }

    fn approval_line(signed: &SignedDiskApproval) -> String {
        format!(
            "{DISK_APPROVAL_FILE_TAG} {}",
            data_encoding::BASE64URL_NOPAD.encode(&signed.to_bytes().unwrap())
        )
    }

    #[test]
    fn disk_approval_file_round_trips_and_verifies_as_the_node_does() {
        let w = world();
        let a = disk_approval(&w, "WD-123 456");
        let text = disk_approval_to_file_text(&a, Some("sdb")).unwrap();
        // One machine line; everything else is a comment for people.
        let machine: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(machine.len(), 1, "{text}");
        assert!(machine[0].starts_with("nodus-disk-approval-v1 "), "{text}");
        assert!(
            text.contains("\"WD-123 456\"") && text.contains("sdb"),
            "{text}"
        );
        assert!(text.contains(&w.node.to_string()), "{text}");
        let back = disk_approval_from_file_text(&text).unwrap();
        assert_eq!(back, a);
        // What the node checks: purpose, network, owner, expiry, then node and serial.
        let owner = w.owner.public();
        let expect = Expect::new(purpose::DISK_APPROVAL, NET, NOW).signed_by(&owner);
        let payload = back.verify(&expect).unwrap();
        assert_eq!(
            (payload.node, payload.serial.as_str()),
            (w.node, "WD-123 456")
        );
        // Surrounding blank lines and indentation are tolerated.
        let padded = format!("\n  {}  \n\n", approval_line(&a));
        assert_eq!(disk_approval_from_file_text(&padded).unwrap(), a);
    }

    #[test]
    fn disk_approval_file_names_each_bad_input() {
        let w = world();
        let a = disk_approval(&w, "SER1");
        assert_eq!(
            disk_approval_from_file_text(""),
            Err(DiskApprovalFileError::NoApprovalLine)
        );
        assert_eq!(
            disk_approval_from_file_text("# only comments\nhello\n"),
            Err(DiskApprovalFileError::NoApprovalLine)
        );
        // A grant file is recognised and named.
        let g = to_file_text(&grant(&w, Role::Operator, None)).unwrap();
        assert_eq!(
            disk_approval_from_file_text(&g),
            Err(DiskApprovalFileError::GrantFile)
        );
        // …and the other way round.
        let approval_text = disk_approval_to_file_text(&a, Some("sdb")).unwrap();
        assert_eq!(
            from_file_text(&approval_text),
            Err(GrantFileError::DiskApprovalFile)
        );
        assert_eq!(
            disk_approval_from_file_text("nodus-disk-approval-v1 !!!"),
            Err(DiskApprovalFileError::Encoding)
        );
        for empty_or_junk in ["nodus-disk-approval-v1", "nodus-disk-approval-v1 AAAA"] {
            assert!(matches!(
                disk_approval_from_file_text(empty_or_junk),
                Err(DiskApprovalFileError::Decode(_))
            ));
        }
        // Truncated: the first half of a real approval.
        let line = approval_line(&a);
        let cut = &line[..DISK_APPROVAL_FILE_TAG.len() + 1 + 40];
        assert!(matches!(
            disk_approval_from_file_text(cut),
            Err(DiskApprovalFileError::Decode(_))
        ));
        // Altered after signing: another serial under the owner's signature.
        let mut forged = a.clone();
        forged.statement.payload.serial = "SER2".into();
        assert_eq!(
            disk_approval_from_file_text(&approval_line(&forged)),
            Err(DiskApprovalFileError::BadSignature)
        );
        // A good signature over another purpose (here: a grant's) is refused.
        let relabelled = Statement::new(
            purpose::GRANT,
            NET,
            w.owner.public(),
            None,
            DiskApproval {
                node: w.node,
                serial: "SER1".into(),
            },
        )
        .sign(&w.owner)
        .unwrap();
        assert_eq!(
            disk_approval_from_file_text(&approval_line(&relabelled)),
            Err(DiskApprovalFileError::WrongPurpose(purpose::GRANT.into()))
        );
        // Every error reads as a sentence for the person holding the file.
        for e in [
            DiskApprovalFileError::NoApprovalLine,
            DiskApprovalFileError::GrantFile,
            DiskApprovalFileError::BadSignature,
        ] {
            assert!(e.to_string().chars().next().unwrap().is_uppercase());
        }
    }

    proptest::proptest! {
        /// Whatever is in the file, reading it answers with an error, never a panic.
        #[test]
        fn disk_approval_file_never_panics(
            text in ".{0,300}",
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let _ = disk_approval_from_file_text(&text);
            let line = format!(
                "{DISK_APPROVAL_FILE_TAG} {}",
                data_encoding::BASE64URL_NOPAD.encode(&bytes)
            );
            proptest::prop_assert!(disk_approval_from_file_text(&line).is_err());
        }
    }

    fn grant(w: &World, role: Role, expires: Option<u64>) -> SignedGrant {
        issue(
            &w.owner,
            NET,
            Grant {
                grantee: AccountId::from(w.operator.public()),
                role,
                node: w.node,
            },
            expires,
        )
        .unwrap()
    }

    fn check(
        w: &World,
        g: &SignedGrant,
        revs: &RevocationList,
        now: u64,
    ) -> Result<Role, GrantError> {
        let owner = w.owner.public();
        verify_grant(
            g,
            &w.operator.public(),
            &GrantContext {
                owner: &owner,
                node: &w.node,
                network: NET,
                now,
                revocations: revs,
            },
        )
    }

    #[test]
    fn valid_grant_confers_its_role() {
        let w = world();
        let g = grant(&w, Role::Operator, Some(NOW + 3600));
        assert_eq!(
            check(&w, &g, &RevocationList::default(), NOW),
            Ok(Role::Operator)
        );
    }

    #[test]
    fn expired_grant_is_refused() {
        let w = world();
        let g = grant(&w, Role::Operator, Some(NOW + 10));
        assert!(matches!(
            check(&w, &g, &RevocationList::default(), NOW + 10),
            Err(GrantError::Statement(StatementError::Expired { .. }))
        ));
    }

    #[test]
    fn grant_from_someone_else_or_for_another_node_or_key_is_refused() {
        let w = world();
        let mallory = SecretKey::from_seed(&[9; 32]);
        let forged = issue(
            &mallory,
            NET,
            Grant {
                grantee: AccountId::from(w.operator.public()),
                role: Role::Operator,
                node: w.node,
            },
            None,
        )
        .unwrap();
        assert!(matches!(
            check(&w, &forged, &RevocationList::default(), NOW),
            Err(GrantError::Statement(StatementError::WrongSigner))
        ));

        let other_node = World {
            node: NodeId::from(mallory.public()),
            ..world()
        };
        let g = grant(&other_node, Role::Viewer, None);
        assert!(matches!(
            check(&w, &g, &RevocationList::default(), NOW),
            Err(GrantError::WrongNode { .. })
        ));

        // Presented by a key other than the grantee (a stolen grant file).
        let g = grant(&w, Role::Operator, None);
        let owner = w.owner.public();
        let err = verify_grant(
            &g,
            &mallory.public(),
            &GrantContext {
                owner: &owner,
                node: &w.node,
                network: NET,
                now: NOW,
                revocations: &RevocationList::default(),
            },
        )
        .unwrap_err();
        assert!(matches!(err, GrantError::WrongGrantee { .. }));
    }

    #[test]
    fn owner_role_cannot_be_granted() {
        let w = world();
        let r = issue(
            &w.owner,
            NET,
            Grant {
                grantee: AccountId::from(w.operator.public()),
                role: Role::Owner,
                node: w.node,
            },
            None,
        );
        assert_eq!(r.unwrap_err(), GrantError::OwnerNotGrantable);
    }

    #[test]
    fn revocation_list_revokes_and_refuses_rollback() {
        let w = world();
        let g = grant(&w, Role::Operator, None);
        let id = grant_id(&g).unwrap();
        let mut revs = RevocationList::default();
        let list1 = RevocationList::issue(
            &w.owner,
            NET,
            Revocations {
                serial: 1,
                revoked: [id].into(),
            },
        )
        .unwrap();
        revs.accept(&list1, &w.owner.public(), NET, NOW).unwrap();
        assert_eq!(check(&w, &g, &revs, NOW), Err(GrantError::Revoked(id)));

        // Replaying an older (empty) list must not un-revoke.
        let list0 = RevocationList::issue(&w.owner, NET, Revocations::default()).unwrap();
        assert!(revs.accept(&list0, &w.owner.public(), NET, NOW).is_err());
        assert!(revs.is_revoked(&id));

        // A list signed by someone else is refused.
        let mallory = SecretKey::from_seed(&[9; 32]);
        let fake = RevocationList::issue(
            &mallory,
            NET,
            Revocations {
                serial: 5,
                revoked: BTreeSet::new(),
            },
        )
        .unwrap();
        assert!(revs.accept(&fake, &w.owner.public(), NET, NOW).is_err());
        assert_eq!(revs.serial(), 1);
    }

    #[test]
    fn grant_signature_does_not_verify_as_revocation() {
        // Same signer, same network: purpose separation is what keeps these apart.
        let w = world();
        let g = grant(&w, Role::Viewer, None);
        let as_json = serde_json::to_value(&g).unwrap();
        let mut v = as_json.clone();
        v["statement"]["purpose"] = purpose::REVOCATION.into();
        let relabelled: SignedGrant = serde_json::from_value(v).unwrap();
        assert!(matches!(
            check(&w, &relabelled, &RevocationList::default(), NOW),
            Err(GrantError::Statement(_))
        ));
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("Operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Owner.covers(Role::Operator) && Role::Operator.covers(Role::Viewer));
        assert!(!Role::Viewer.covers(Role::Operator) && !Role::Tenant.covers(Role::Viewer));
        assert!(!Role::Operator.covers(Role::Owner));
        // The wire encoding is the variant index; it must never change.
        let enc: Vec<u8> = [Role::Owner, Role::Operator, Role::Viewer, Role::Tenant]
            .iter()
            .flat_map(|r| postcard::to_stdvec(r).unwrap())
            .collect();
        assert_eq!(enc, [0, 1, 2, 3]);
    }
}
