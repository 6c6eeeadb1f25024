//! The hardware access layer: every read of the machine goes through here, so the
//! whole agent can run against a captured machine (a fixture tree) as well as the
//! live host.

pub mod root;

pub use root::{Gap, Gaps, ReadError, RootError, SysRoot, read_full_at};
