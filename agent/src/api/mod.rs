//! The agent's local and remote APIs.
//!
//! - [`dbus`]: the `org.nodus.Agent1` D-Bus service, a summary and a few actions
//!   for local system tools (`busctl`, desktop widgets, monitoring).

pub mod dbus;
