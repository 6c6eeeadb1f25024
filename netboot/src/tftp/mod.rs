//! Read-only TFTP: RFC 1350 with the option extension (RFC 2347) and the blksize
//! (RFC 2348), timeout and tsize (RFC 2349) and windowsize (RFC 7440) options.
//!
//! [`Transfer`] is the sans-IO state machine for one read; [`Root`] maps requested
//! names into the served directory; [`io`] runs them on tokio with one socket per
//! transfer. Writes are always refused.

pub mod io;
pub mod packet;
pub mod root;
pub mod transfer;

pub use root::{PathError, Root};
pub use transfer::{Granted, Limits, Source, State, Transfer};
