//! `nodus-qemu`: the harness that boots hardware profiles under QEMU.
//!
//! It turns a profile (`nodus-hw-profiles`) into a `qemu-system-x86_64` command
//! line under software emulation (`accel=tcg`; KVM only after a probe), runs each
//! VM in a process group of its own that is always killed when the VM is dropped,
//! drives faults through a typed QMP client, follows the serial console, and checks
//! the agent from outside over QUIC, the way a farmer's console sees it.
//!
//! It deliberately is not part of the node image, and knows nothing about the
//! guest's insides beyond what the agent reports and the console prints.
//!
//! The principal types are [`vm::Vm`] (one running VM), [`qmp::Qmp`] (the QMP
//! session; its protocol core [`qmp::core::QmpCore`] is sans-IO) and
//! [`suite`]'s checks, which `nodus qemu test` prints as `PASS`/`FAIL` lines.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use nodus_qemu::vm::{Accel, Launch, Serial, Vm};
//! let profile = nodus_hw_profiles::Profile::load("hw-profiles/profiles/nvme-1u.toml".as_ref())?;
//! let kernel = nodus_qemu::kernel::locate(None, None)?;
//! let vm = Vm::start(&profile, Launch {
//!     kernel: kernel.kernel,
//!     initrd: "image/initramfs".into(),
//!     cmdline: nodus_qemu::vm::argv::base_cmdline(&profile),
//!     accel: Accel::Tcg,
//!     serial: Serial::File,
//!     quic_port: Some(0),
//!     paused: true,
//! }).await?;
//! let status = vm.qmp().execute(&nodus_qemu::qmp::commands::QueryStatus).await?;
//! # Ok(()) }
//! ```

pub mod accel;
pub mod agent_view;
pub mod cli;
pub mod initramfs;
pub mod kernel;
pub mod qmp;
pub mod serial;
pub mod suite;
pub mod vm;
