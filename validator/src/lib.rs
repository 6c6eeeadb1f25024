//! `nodus-validator`: the Nodus proof-of-stake chain.
//!
//! It will hold the deterministic state machine (accounts, stake, farms, nodes,
//! capacity contracts, billing, uptime, farming rewards, slashing), consensus through
//! an embedded BFT engine, the mempool, redb storage and the chain RPC over the
//! `nodus/chain/1` ALPN.
//!
//! It deliberately is not node-management code and does not implement its own
//! consensus algorithm.

