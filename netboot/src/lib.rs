//! `nodus-netboot`: stateless boot for Nodus machines.
//!
//! A machine with nothing on its disks asks the network how to boot. This crate
//! answers: DHCPv4 or proxyDHCP ([`dhcp`]) tells its firmware which iPXE binary to
//! fetch, read-only TFTP ([`tftp`]) delivers it, and HTTP ([`http`]) hands iPXE a
//! per-machine script, then the kernel, initramfs and the signed [`manifest`] that
//! the node checks before it starts its agent. Every answer lands in a boot-event
//! log ([`events`]).
//!
//! It deliberately runs nothing from a machine's own disks and holds no node logic:
//! once the kernel and initramfs are delivered, the agent takes over. The protocol
//! cores ([`dhcp::Server`], [`tftp::Transfer`]) are sans-IO — datagrams and the time
//! in, datagrams out — and the tokio layers beside them only move bytes.
//!
//! ```
//! use std::{net::{Ipv4Addr, SocketAddrV4}, time::Instant};
//! use nodus_netboot::tftp::{Limits, Transfer, packet};
//!
//! // A 1000-byte file in lock-step: two blocks, then done.
//! let mut t = Transfer::start(&[], vec![7u8; 1000], 1000, Limits::default(), Instant::now());
//! assert!(t.poll_transmit().is_some());
//! t.handle(&packet::ack(1), Instant::now());
//! assert!(t.poll_transmit().is_some());
//! t.handle(&packet::ack(2), Instant::now());
//! assert!(t.is_finished());
//! # let _ = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
//! ```

pub mod cli;
pub mod config;
pub mod dhcp;
pub mod events;
pub mod http;
pub mod image;
pub mod manifest;
pub mod serve;
pub mod tftp;
