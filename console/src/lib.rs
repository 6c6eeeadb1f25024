//! `nodus-console`: the terminal dashboard of a Nodus node.
//!
//! It will hold the ratatui + crossterm views, the keymap, operator actions, and two
//! data sources that speak the same console protocol: the node's Unix socket (the
//! console on the node's own screen) and QUIC (a farmer's remote console).
//!
//! It deliberately is not hardware code: it never reads sysfs or talks to a device,
//! and it depends only on `nodus-wire`, never on `nodus-agent`, so a remote console
//! builds without any hardware crates.
