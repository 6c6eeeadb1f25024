//! The malachite [`Context`] for Nodus: what a height, a value, a vote and a
//! validator are on this chain.
//!
//! - [`Height`]: block height, `u64`.
//! - [`state::Address`](crate::state::Address): a validator is its ed25519 public
//!   key; the same bytes are its address and its verification key.
//! - [`ProposedBlock`]: the value consensus agrees on, a whole [`Block`]; its id is
//!   the [`BlockHash`]. Proposals carry the whole block, votes only the hash.
//! - [`Validators`]: [`State::validator_set`](crate::State::validator_set), with
//!   voting power = bonded stake / `stake_per_power`.
//! - Signatures: ed25519 through `nodus-identity`, verified with ZIP-215 rules
//!   ([`crate::signature`]). Votes sign
//!   [`Vote::signing_bytes`](crate::state::evidence::Vote::signing_bytes), so a
//!   pair of conflicting consensus votes is directly the chain's double-sign
//!   [`Evidence`](crate::state::evidence::Evidence); proposals sign
//!   [`Proposal::signing_bytes`] (own context string).

use std::fmt;
use std::sync::Arc;

use malachitebft_core_types::{
    self as mtypes, Context, NilOrVal, Round, SignedExtension, SignedMessage, SigningProvider,
    SigningScheme, VoteType,
};
use nodus_identity::{SecretKey, Signature};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::signature;
use crate::state::evidence::{Vote as EvidenceVote, VoteStep};
use crate::state::stake::ValidatorSet as StateValidatorSet;
use crate::state::tx::SignedTx;
use crate::state::{Address, BlockHeader, Hash};

/// Context of a proposal's signed bytes.
pub const PROPOSAL_CONTEXT: &[u8] = b"nodus/proposal/v1\0";

/// Context of a block hash.
pub const BLOCK_CONTEXT: &[u8] = b"nodus/block/v1\0";

/// A block height (the first block after genesis is 1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mtypes::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

impl mtypes::Address for Address {}

/// The hash of a [`Block`]: SHA-256 over [`BLOCK_CONTEXT`] and the block's postcard
/// encoding.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockHash(pub Hash);

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({self})")
    }
}

/// A block: what a proposer proposes and consensus decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height, time and proposer.
    pub header: BlockHeader,
    /// Hash of the block at `height - 1` (all zero for the first block).
    pub parent: BlockHash,
    /// The transactions, in order.
    pub txs: Vec<SignedTx>,
    /// [`State::root`](crate::State::root) after applying this block.
    pub state_root: Hash,
}

impl Block {
    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        let mut hasher = sha2::Sha256::new();
        hasher.update(BLOCK_CONTEXT);
        // Blocks hold only postcard-encodable types (the state root relies on the
        // same property), so encoding cannot fail.
        #[allow(clippy::expect_used)]
        let bytes = postcard::to_allocvec(self).expect("block encodes");
        hasher.update(&bytes);
        BlockHash(hasher.finalize().into())
    }
}

/// The consensus value: a block behind an [`Arc`] (cheap to clone, as malachite
/// clones values often) with its hash computed once.
///
/// Serializes as the bare [`Block`]; the hash is recomputed when decoding, never
/// taken from the sender.
#[derive(Clone)]
pub struct ProposedBlock {
    id: BlockHash,
    block: Arc<Block>,
}

impl ProposedBlock {
    /// Wraps a block.
    pub fn new(block: Block) -> Self {
        Self {
            id: block.hash(),
            block: Arc::new(block),
        }
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.id
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The shared block.
    pub fn shared(&self) -> Arc<Block> {
        Arc::clone(&self.block)
    }
}

impl fmt::Debug for ProposedBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProposedBlock({} at {}, {} txs)",
            self.id,
            self.block.header.height,
            self.block.txs.len()
        )
    }
}

impl PartialEq for ProposedBlock {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ProposedBlock {}

impl PartialOrd for ProposedBlock {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ProposedBlock {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl Serialize for ProposedBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ProposedBlock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Block::deserialize(d).map(ProposedBlock::new)
    }
}

impl mtypes::Value for ProposedBlock {
    type Id = BlockHash;

    fn id(&self) -> BlockHash {
        self.id
    }
}

/// An ed25519 signature as consensus handles it (ordered by its bytes, as
/// malachite requires).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusSignature(pub Signature);

impl fmt::Debug for ConsensusSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialOrd for ConsensusSignature {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ConsensusSignature {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.to_bytes().cmp(&other.0.to_bytes())
    }
}

/// The signing scheme: ed25519, public key = [`Address`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

/// A signature that is not 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Signature is not 64 bytes")]
pub struct BadSignatureLength;

impl SigningScheme for Ed25519 {
    type DecodingError = BadSignatureLength;
    type Signature = ConsensusSignature;
    type PublicKey = Address;
    type PrivateKey = SecretKey;

    fn decode_signature(bytes: &[u8]) -> Result<ConsensusSignature, BadSignatureLength> {
        let bytes: &[u8; 64] = bytes.try_into().map_err(|_| BadSignatureLength)?;
        Ok(ConsensusSignature(Signature::from_bytes(bytes)))
    }

    fn encode_signature(signature: &ConsensusSignature) -> Vec<u8> {
        signature.0.to_bytes().to_vec()
    }
}

/// A validator as consensus sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// Its key.
    pub address: Address,
    /// Voting power.
    pub power: u64,
}

impl mtypes::Validator<NodusContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &Address {
        &self.address
    }

    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validator set for one height, in the state machine's order (power
/// descending, then address).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// Members, in order.
    pub validators: Vec<Validator>,
}

impl Validators {
    /// Members with zero power dropped (they cannot vote, and a proposer must be
    /// able to).
    pub fn from_state(set: &StateValidatorSet) -> Self {
        Self {
            validators: set
                .validators
                .iter()
                .filter(|v| v.power > 0)
                .map(|v| Validator {
                    address: v.address,
                    power: v.power,
                })
                .collect(),
        }
    }
}

impl mtypes::ValidatorSet<NodusContext> for Validators {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.validators
            .iter()
            .fold(0u64, |t, v| t.saturating_add(v.power))
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| v.address == *address)
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal: the whole block for one (height, round).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block.
    pub value: ProposedBlock,
    /// The round of the proof-of-lock this re-proposal relies on (`Nil` if none).
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

impl Proposal {
    /// The bytes the proposer signs on `chain_id`: the context, the chain id, the
    /// height, the round, the POL round and the block hash (not the whole block).
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut b = Vec::with_capacity(PROPOSAL_CONTEXT.len() + chain_id.len() + 60);
        b.extend_from_slice(PROPOSAL_CONTEXT);
        // Chain ids are at most 64 bytes (genesis validation): no truncation.
        b.extend_from_slice(&(chain_id.len() as u32).to_be_bytes());
        b.extend_from_slice(chain_id.as_bytes());
        b.extend_from_slice(&self.height.0.to_be_bytes());
        b.extend_from_slice(&self.round.as_i64().to_be_bytes());
        b.extend_from_slice(&self.pol_round.as_i64().to_be_bytes());
        b.extend_from_slice(&self.value.hash().0);
        b
    }
}

impl mtypes::Proposal<NodusContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &ProposedBlock {
        &self.value
    }

    fn take_value(self) -> ProposedBlock {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// A consensus vote (prevote or precommit) for a block hash or nil.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vote {
    /// Height.
    pub height: Height,
    /// Round (always defined for a real vote).
    pub round: Round,
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// The block voted for, or nil.
    pub value: NilOrVal<BlockHash>,
    /// The voter.
    pub validator: Address,
}

impl Vote {
    /// The same vote in the state machine's form, whose signing bytes validators
    /// sign and whose pairs make double-sign evidence.
    pub fn to_evidence_vote(&self) -> EvidenceVote {
        EvidenceVote {
            height: self.height.0,
            // A vote's round is never Nil (malachite only votes in a round); Nil
            // would map to u32::MAX, which no honest validator signs.
            round: self.round.as_u32().unwrap_or(u32::MAX),
            step: match self.vote_type {
                VoteType::Prevote => VoteStep::Prevote,
                VoteType::Precommit => VoteStep::Precommit,
            },
            value: match self.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(h) => Some(h.0),
            },
        }
    }

    /// The bytes the validator signs on `chain_id`.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        self.to_evidence_vote().signing_bytes(chain_id)
    }
}

impl mtypes::Vote<NodusContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockHash> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &Address {
        &self.validator
    }

    fn extension(&self) -> Option<&SignedExtension<NodusContext>> {
        None
    }

    fn take_extension(&mut self) -> Option<SignedExtension<NodusContext>> {
        None
    }

    fn extend(self, _extension: SignedExtension<NodusContext>) -> Self {
        // Vote extensions are off on this chain.
        self
    }
}

/// Proposal parts are not used: a proposal carries its whole block. This type has
/// no values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoProposalPart {}

impl mtypes::ProposalPart<NodusContext> for NoProposalPart {
    fn is_first(&self) -> bool {
        match *self {}
    }

    fn is_last(&self) -> bool {
        match *self {}
    }
}

/// The Nodus consensus context.
#[derive(Clone, Debug, Default)]
pub struct NodusContext;

impl Context for NodusContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = NoProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = Validators;
    type Value = ProposedBlock;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    /// Round robin over the set in its order, starting at `height + round`:
    /// every validator proposes in turn whatever its power.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a Validators,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let n = validator_set.validators.len().max(1) as u64;
        let r = round.as_u32().map_or(0, u64::from);
        let index = height.0.wrapping_add(r) % n;
        // Malachite never starts a height with an empty set (the engine refuses to),
        // so index 0 exists; `% n` keeps the index in range.
        #[allow(clippy::indexing_slicing)]
        &validator_set.validators[index as usize]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: ProposedBlock,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: Address,
    ) -> Vote {
        Vote {
            height,
            round,
            vote_type: VoteType::Prevote,
            value: value_id,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: Address,
    ) -> Vote {
        Vote {
            height,
            round,
            vote_type: VoteType::Precommit,
            value: value_id,
            validator: address,
        }
    }
}

/// Signs and verifies consensus messages for one chain: ed25519 through
/// `nodus-identity`, ZIP-215 verification.
///
/// Signing here does no double-sign bookkeeping; the [`Engine`](super::Engine)
/// persists every signed slot before it asks for a signature.
#[derive(Clone)]
pub struct Signer {
    chain_id: String,
    key: SecretKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", Address::from(self.key.public()))
    }
}

impl Signer {
    /// A signer for `chain_id` with `key`.
    pub fn new(chain_id: impl Into<String>, key: SecretKey) -> Self {
        Self {
            chain_id: chain_id.into(),
            key,
        }
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        Address::from(self.key.public())
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn check(&self, key: &Address, msg: &[u8], sig: &ConsensusSignature) -> bool {
        signature::verify(&key.0, msg, &sig.0.to_bytes()).is_ok()
    }
}

impl SigningProvider<NodusContext> for Signer {
    fn sign_vote(&self, vote: Vote) -> SignedMessage<NodusContext, Vote> {
        let sig = self.key.sign_raw(&vote.signing_bytes(&self.chain_id));
        SignedMessage::new(vote, ConsensusSignature(sig))
    }

    fn verify_signed_vote(&self, vote: &Vote, sig: &ConsensusSignature, key: &Address) -> bool {
        vote.validator == *key && self.check(key, &vote.signing_bytes(&self.chain_id), sig)
    }

    fn sign_proposal(&self, proposal: Proposal) -> SignedMessage<NodusContext, Proposal> {
        let sig = self.key.sign_raw(&proposal.signing_bytes(&self.chain_id));
        SignedMessage::new(proposal, ConsensusSignature(sig))
    }

    fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        sig: &ConsensusSignature,
        key: &Address,
    ) -> bool {
        proposal.proposer == *key && self.check(key, &proposal.signing_bytes(&self.chain_id), sig)
    }

    fn sign_proposal_part(
        &self,
        part: NoProposalPart,
    ) -> SignedMessage<NodusContext, NoProposalPart> {
        match part {}
    }

    fn verify_signed_proposal_part(
        &self,
        part: &NoProposalPart,
        _sig: &ConsensusSignature,
        _key: &Address,
    ) -> bool {
        match *part {}
    }

    fn sign_vote_extension(&self, extension: ()) -> SignedMessage<NodusContext, ()> {
        // Extensions are off; this signature is over a context no verifier accepts.
        let sig = self.key.sign_raw(b"nodus/vote-extension/unused\0");
        SignedMessage::new(extension, ConsensusSignature(sig))
    }

    fn verify_signed_vote_extension(
        &self,
        _extension: &(),
        _sig: &ConsensusSignature,
        _key: &Address,
    ) -> bool {
        false
    }
}
