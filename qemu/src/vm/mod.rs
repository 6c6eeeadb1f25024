//! One running VM: its temporary directory (disk overlays, QMP socket, serial
//! log), the QEMU process in a process group of its own, and the QMP session.
//!
//! The group is killed when the [`Vm`] is dropped — on success, on a failed check
//! that returns early, on a panic unwinding through a test, and on Ctrl-C in the
//! CLI (which drops the future holding the VM). Nothing outlives its owner.

pub mod argv;

use std::{
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use nodus_hw_profiles::{Profile, schema::Link};
use tokio::process::{Child, Command};

use crate::qmp::{
    Qmp, QmpError,
    commands::{Cont, SetLink},
};
pub use argv::{Accel, Launch, Serial, VmFiles};

/// The QEMU program (override with `$NODUS_QEMU`).
pub fn qemu_program() -> String {
    std::env::var("NODUS_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// How long QEMU may take to open its QMP socket.
const QMP_APPEAR_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a VM could not be started or driven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VmError {
    /// A temporary directory or file could not be created.
    #[error("Cannot prepare the VM directory")]
    Prepare(#[source] std::io::Error),
    /// A program could not be started.
    #[error("Cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `qemu-img create` failed.
    #[error("qemu-img failed for disk {disk}: {stderr}")]
    QemuImg {
        /// The disk id.
        disk: String,
        /// Its standard error.
        stderr: String,
    },
    /// QEMU exited before its QMP socket answered.
    #[error("QEMU exited at start ({status}): {stderr}")]
    EarlyExit {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The tail of its standard error.
        stderr: String,
    },
    /// The QMP socket never appeared.
    #[error("QEMU did not open its QMP socket within {0:?}")]
    NoQmp(Duration),
    /// A QMP command failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),
}

/// Kills a process group when dropped.
#[derive(Debug)]
pub struct GroupGuard(Pid);

impl GroupGuard {
    /// Guards the group led by `pid`.
    pub fn new(pid: u32) -> Self {
        // PIDs fit i32 on Linux (pid_max <= 2^22).
        Self(Pid::from_raw(pid as i32))
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // ESRCH (already gone) is the normal case after a clean exit.
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// Spawns `cmd` as the leader of a new process group, returning the child and the
/// guard that kills the group.
///
/// The child also gets SIGKILL when the thread that spawned it dies
/// (`PR_SET_PDEATHSIG`), so a harness killed outright (SIGKILL, a crash) leaves no
/// VM behind either; Tokio's worker threads live as long as the runtime.
pub fn spawn_in_group(cmd: &mut Command, program: &str) -> Result<(Child, GroupGuard), VmError> {
    cmd.process_group(0).kill_on_drop(true);
    // SAFETY: the closure runs between fork and exec and only makes the prctl
    // system call, which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().map_err(|source| VmError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    let pid = child.id().ok_or_else(|| VmError::Spawn {
        program: program.to_owned(),
        source: std::io::Error::other("exited before its pid was read"),
    })?;
    Ok((child, GroupGuard::new(pid)))
}

/// Whether process `pid` still runs: it exists and is not a zombie (a killed
/// child nobody has reaped yet counts as gone).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the parenthesised command name, which may hold spaces.
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// A free UDP port on 127.0.0.1 for the QUIC forward. QEMU binds it a moment
/// later; a collision in between makes QEMU fail at start with a clear message.
pub fn free_udp_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running VM.
pub struct Vm {
    // Field order is drop order: QMP first, then the group, then the files.
    qmp: Qmp,
    child: Child,
    _group: GroupGuard,
    files: VmFiles,
    dir: Option<tempfile::TempDir>,
    quic: Option<SocketAddr>,
    started: Instant,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("dir", &self.files.dir)
            .field("quic", &self.quic)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// Creates the disk overlays, starts QEMU paused, connects QMP, applies the
    /// profile's boot-time link states and lets the CPUs run.
    ///
    /// `launch.quic_port` of `Some(0)` picks a free port.
    pub async fn start(profile: &Profile, mut launch: Launch) -> Result<Self, VmError> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(&format!("nodus-vm-{}-", profile.name()))
            .tempdir()
            .map_err(VmError::Prepare)?;
        let files = VmFiles {
            dir: dir.path().to_owned(),
        };
        create_disks(profile, &files).await?;
        if launch.quic_port == Some(0) {
            launch.quic_port = Some(free_udp_port().map_err(VmError::Prepare)?);
        }
        let quic = launch
            .quic_port
            .filter(|_| argv::forwarded_nic(profile).is_some())
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        launch.paused = true;
        let args = argv::argv(profile, &launch, &files);
        tracing::debug!(argv = ?args, "starting QEMU");
        let program = qemu_program();
        let stderr_path = files.dir.join("qemu.stderr");
        let stderr = std::fs::File::create(&stderr_path).map_err(VmError::Prepare)?;
        let mut cmd = Command::new(&program);
        cmd.args(&args).stderr(stderr);
        match launch.serial {
            Serial::File => {
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
            }
            Serial::Stdio => {
                cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit());
            }
        }
        let (mut child, group) = spawn_in_group(&mut cmd, &program)?;
        let qmp = match connect_qmp(&files.qmp(), &mut child, &stderr_path).await {
            Ok(q) => q,
            Err(e) => {
                drop(group);
                return Err(e);
            }
        };
        let vm = Self {
            qmp,
            child,
            _group: group,
            files,
            dir: Some(dir),
            quic,
            started,
        };
        for nic in &profile.raw.nics {
            if nic.link == Link::Down {
                vm.qmp
                    .execute(&SetLink {
                        name: nic_device(&nic.id),
                        up: false,
                    })
                    .await?;
            }
        }
        vm.qmp.execute(&Cont).await?;
        Ok(vm)
    }

    /// The QMP session.
    pub fn qmp(&self) -> &Qmp {
        &self.qmp
    }

    /// The serial console log.
    pub fn serial_log(&self) -> PathBuf {
        self.files.serial()
    }

    /// The VM's directory.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The host address forwarded to the agent's QUIC port.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic
    }

    /// When QEMU was started (before the disks were created).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Keeps the VM directory after the VM is dropped (for post-mortems).
    pub fn keep_dir(&mut self) -> Option<PathBuf> {
        self.dir.take().map(tempfile::TempDir::keep)
    }

    /// Waits up to `timeout` for QEMU to exit; `None` if it still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// QEMU's process id (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether QEMU has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// The QEMU device id of NIC `id` (see `machine_args`).
pub fn nic_device(id: &str) -> String {
    format!("nic-{id}")
}

/// The QEMU device id of disk `id`.
pub fn disk_device(id: &str) -> String {
    format!("disk-{id}")
}

/// The QEMU drive (backend) id of disk `id`.
pub fn disk_drive(id: &str) -> String {
    format!("drive-{id}")
}

async fn create_disks(profile: &Profile, files: &VmFiles) -> Result<(), VmError> {
    for (args, disk) in argv::disk_create_args(profile, files)
        .into_iter()
        .zip(&profile.raw.disks)
    {
        let out = Command::new("qemu-img")
            .args(&args)
            .output()
            .await
            .map_err(|source| VmError::Spawn {
                program: "qemu-img".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(VmError::QemuImg {
                disk: disk.id.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
    }
    Ok(())
}

async fn connect_qmp(sock: &Path, child: &mut Child, stderr: &Path) -> Result<Qmp, VmError> {
    let deadline = Instant::now() + QMP_APPEAR_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(stderr).unwrap_or_default();
            return Err(VmError::EarlyExit {
                status,
                stderr: tail(&text, 2000),
            });
        }
        if sock.exists() {
            match Qmp::connect(sock).await {
                Ok(q) => return Ok(q),
                Err(QmpError::Io(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if Instant::now() > deadline {
            return Err(VmError::NoQmp(QMP_APPEAR_TIMEOUT));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last `max` bytes of `text`, on a character boundary.
pub fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_owned()
}
