//! What validators send each other: [`ConsensusMessage`], serde-encodable (the
//! node frames it with postcard on the `nodus/chain/1` ALPN).
//!
//! Certificates travel in plain forms ([`CommitCert`], [`PolkaCert`],
//! [`RoundCert`]) and convert to and from malachite's generic types here, so the
//! wire format does not depend on malachite's type layout. A decoded message is
//! only data: every signature in it is checked by the engine before it counts.

use malachitebft_core_types::{
    CommitCertificate, CommitSignature, NilOrVal, PolkaCertificate, PolkaSignature, Round,
    RoundCertificate, RoundCertificateType, RoundSignature, SignedMessage, VoteType,
};
use serde::{Deserialize, Serialize};

use super::context::{
    Block, BlockHash, ConsensusSignature, Height, NodusContext, Proposal, ProposedBlock, Vote,
};
use crate::state::Address;
use crate::state::evidence::SignedVote as EvidenceSignedVote;

/// A proposal with its proposer's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The proposal, whole block included.
    pub proposal: Proposal,
    /// Over [`Proposal::signing_bytes`].
    pub signature: ConsensusSignature,
}

/// A vote with its validator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Over [`Vote::signing_bytes`].
    pub signature: ConsensusSignature,
}

impl SignedVote {
    /// The same signed vote in the state machine's form (for evidence).
    pub fn to_evidence(&self) -> EvidenceSignedVote {
        EvidenceSignedVote {
            vote: self.vote.to_evidence_vote(),
            validator: self.vote.validator,
            signature: self.signature.0,
        }
    }
}

/// Proof that a block was decided: precommits for it from more than two thirds
/// of the voting power of its height's validator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCert {
    /// Height of the block.
    pub height: Height,
    /// Round in which it was decided.
    pub round: Round,
    /// The block's hash.
    pub block: BlockHash,
    /// (validator, precommit signature) pairs.
    pub signatures: Vec<(Address, ConsensusSignature)>,
}

/// A block with the certificate that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub certificate: CommitCert,
}

/// Prevotes for one value from more than two thirds of the power (a "polka").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolkaCert {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The value.
    pub block: BlockHash,
    /// (validator, prevote signature) pairs.
    pub signatures: Vec<(Address, ConsensusSignature)>,
}

/// One vote inside a [`RoundCert`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundVote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// The value voted for, or nil.
    pub value: NilOrVal<BlockHash>,
    /// The voter.
    pub validator: Address,
    /// Its signature.
    pub signature: ConsensusSignature,
}

/// Votes that justify moving to a later round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundCert {
    /// Height.
    pub height: Height,
    /// Round of the votes.
    pub round: Round,
    /// True: precommits from 2f+1 (PrecommitAny); false: f+1 votes of any kind
    /// from a later round (SkipRound).
    pub precommit: bool,
    /// The votes.
    pub votes: Vec<RoundVote>,
}

/// A message between validators. Append-only: new variants go at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// A signed proposal with its block; broadcast.
    Proposal(SignedProposal),
    /// A signed vote; broadcast.
    Vote(SignedVote),
    /// A polka certificate; broadcast (liveness).
    Polka(PolkaCert),
    /// A round certificate; broadcast (liveness).
    Round(RoundCert),
    /// "Send me the committed block at this height"; sent to one peer.
    SyncRequest {
        /// The height wanted.
        height: u64,
    },
    /// A committed block, answering a [`ConsensusMessage::SyncRequest`].
    SyncResponse(Box<CommittedBlock>),
}

impl ConsensusMessage {
    /// The height the message is about.
    pub fn height(&self) -> u64 {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.height.0,
            ConsensusMessage::Vote(v) => v.vote.height.0,
            ConsensusMessage::Polka(c) => c.height.0,
            ConsensusMessage::Round(c) => c.height.0,
            ConsensusMessage::SyncRequest { height } => *height,
            ConsensusMessage::SyncResponse(b) => b.certificate.height.0,
        }
    }
}

// Conversions to and from malachite's types.

impl From<SignedMessage<NodusContext, Proposal>> for SignedProposal {
    fn from(m: SignedMessage<NodusContext, Proposal>) -> Self {
        Self {
            proposal: m.message,
            signature: m.signature,
        }
    }
}

impl From<SignedProposal> for SignedMessage<NodusContext, Proposal> {
    fn from(m: SignedProposal) -> Self {
        SignedMessage::new(m.proposal, m.signature)
    }
}

impl From<SignedMessage<NodusContext, Vote>> for SignedVote {
    fn from(m: SignedMessage<NodusContext, Vote>) -> Self {
        Self {
            vote: m.message,
            signature: m.signature,
        }
    }
}

impl From<SignedVote> for SignedMessage<NodusContext, Vote> {
    fn from(m: SignedVote) -> Self {
        SignedMessage::new(m.vote, m.signature)
    }
}

impl From<CommitCertificate<NodusContext>> for CommitCert {
    fn from(c: CommitCertificate<NodusContext>) -> Self {
        Self {
            height: c.height,
            round: c.round,
            block: c.value_id,
            signatures: c
                .commit_signatures
                .into_iter()
                .map(|s| (s.address, s.signature))
                .collect(),
        }
    }
}

impl From<CommitCert> for CommitCertificate<NodusContext> {
    fn from(c: CommitCert) -> Self {
        CommitCertificate {
            height: c.height,
            round: c.round,
            value_id: c.block,
            commit_signatures: c
                .signatures
                .into_iter()
                .map(|(a, s)| CommitSignature::new(a, s))
                .collect(),
        }
    }
}

impl From<PolkaCertificate<NodusContext>> for PolkaCert {
    fn from(c: PolkaCertificate<NodusContext>) -> Self {
        Self {
            height: c.height,
            round: c.round,
            block: c.value_id,
            signatures: c
                .polka_signatures
                .into_iter()
                .map(|s| (s.address, s.signature))
                .collect(),
        }
    }
}

impl From<PolkaCert> for PolkaCertificate<NodusContext> {
    fn from(c: PolkaCert) -> Self {
        PolkaCertificate {
            height: c.height,
            round: c.round,
            value_id: c.block,
            polka_signatures: c
                .signatures
                .into_iter()
                .map(|(a, s)| PolkaSignature::new(a, s))
                .collect(),
        }
    }
}

impl From<RoundCertificate<NodusContext>> for RoundCert {
    fn from(c: RoundCertificate<NodusContext>) -> Self {
        Self {
            height: c.height,
            round: c.round,
            precommit: c.cert_type == RoundCertificateType::Precommit,
            votes: c
                .round_signatures
                .into_iter()
                .map(|s| RoundVote {
                    vote_type: s.vote_type,
                    value: s.value_id,
                    validator: s.address,
                    signature: s.signature,
                })
                .collect(),
        }
    }
}

impl From<RoundCert> for RoundCertificate<NodusContext> {
    fn from(c: RoundCert) -> Self {
        RoundCertificate {
            height: c.height,
            round: c.round,
            cert_type: if c.precommit {
                RoundCertificateType::Precommit
            } else {
                RoundCertificateType::Skip
            },
            round_signatures: c
                .votes
                .into_iter()
                .map(|v| RoundSignature::new(v.vote_type, v.value, v.validator, v.signature))
                .collect(),
        }
    }
}

impl CommittedBlock {
    /// The block as a consensus value.
    pub fn value(&self) -> ProposedBlock {
        ProposedBlock::new(self.block.clone())
    }
}
