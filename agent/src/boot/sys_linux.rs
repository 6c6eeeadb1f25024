//! The Linux system calls the init makes, kept apart from its logic: mounts,
//! the console, module loading, process spawning and reaping, the power button,
//! and power off.

use std::{
    ffi::CString,
    io::Read as _,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    kmod::{ModuleInitFlags, finit_module},
    mount::{MsFlags, mount},
    sys::{
        reboot::{RebootMode, reboot, set_cad_enabled},
        signal::{Signal, kill},
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};

/// Mounts /proc, /sys, /dev (devtmpfs), /run and /tmp; returns what failed.
pub(super) fn mount_early() -> Vec<String> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table: [(&str, &str, MsFlags, &str); 5] = [
        ("proc", "/proc", nosuid, ""),
        ("sysfs", "/sys", nosuid, ""),
        ("devtmpfs", "/dev", MsFlags::MS_NOSUID, "mode=0755"),
        (
            "tmpfs",
            "/run",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            "mode=0755",
        ),
        (
            "tmpfs",
            "/tmp",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            "mode=1777",
        ),
    ];
    let mut failed = Vec::new();
    for (fstype, target, flags, data) in table {
        let _ = std::fs::create_dir_all(target);
        let data = (!data.is_empty()).then_some(data);
        match mount(Some(fstype), target, Some(fstype), flags, data) {
            // EBUSY: already mounted (the kernel may have mounted devtmpfs).
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => failed.push(format!("{target}: {e}")),
        }
    }
    failed
}

/// Points stdin, stdout and stderr at /dev/console.
pub(super) fn console_stdio() {
    if let Ok(c) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        let _ = nix::unistd::dup2_stdin(&c);
        let _ = nix::unistd::dup2_stdout(&c);
        let _ = nix::unistd::dup2_stderr(&c);
    }
}

/// Ctrl-Alt-Del sends SIGINT to the init instead of rebooting at once.
pub(super) fn disable_cad() {
    let _ = set_cad_enabled(false);
}

/// Loads one module file with `finit_module`; an already loaded one is fine.
pub(super) fn load_module(path: &Path, params: &str) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let params = CString::new(params).map_err(|_| "parameters hold a NUL byte".to_owned())?;
    match finit_module(&f, &params, ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.desc().to_owned()),
    }
}

/// Starts `exe args…` with `env`; with a tty, as the session leader with that tty
/// as its controlling terminal and standard streams; with `user`, as that
/// `(uid, gid)` with no supplementary groups. Returns the pid.
pub(super) fn spawn(
    exe: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    tty: Option<&Path>,
    user: Option<(u32, u32)>,
) -> std::io::Result<i32> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args).envs(env.iter().copied());
    if let Some((uid, gid)) = user {
        // std drops the supplementary groups (setgroups(0)) before setuid.
        cmd.uid(uid).gid(gid);
    }
    if let Some(tty) = tty {
        // O_NOCTTY: the tty must not become the init's own controlling terminal,
        // or an unprivileged child could not take it with TIOCSCTTY.
        let t = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(tty)?;
        cmd.stdin(t.try_clone()?).stdout(t.try_clone()?).stderr(t);
        // SAFETY: between fork and exec only async-signal-safe calls are made:
        // setsid(2) and ioctl(2) on fd 0, no allocation and no locks. std runs
        // this after it has changed the user.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                // SAFETY: TIOCSCTTY takes an int argument; fd 0 is the tty. 0:
                // never steal a tty that is another session's.
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn()?;
    // The child is reaped by `reap` (waitpid(-1)); dropping the handle neither
    // waits nor kills.
    Ok(child.id() as i32)
}

/// Reaps every exited child; returns their pids.
pub(super) fn reap() -> Vec<i32> {
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => {
                out.push(pid.as_raw());
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return out,
            Ok(_) => {}
        }
    }
}

/// Sends SIGTERM to `pid`.
pub(super) fn terminate(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
}

/// Sends SIGKILL to every process but the init.
pub(super) fn kill_all() {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
}

/// How the machine ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Power off.
    PowerOff,
    /// Reboot.
    Reboot,
    /// Stop the CPUs; the screen keeps the last message.
    Halt,
}

/// Syncs and ends the machine. Never returns.
pub(super) fn end(how: End) -> ! {
    nix::unistd::sync();
    let mode = match how {
        End::PowerOff => RebootMode::RB_POWER_OFF,
        End::Reboot => RebootMode::RB_AUTOBOOT,
        End::Halt => RebootMode::RB_HALT_SYSTEM,
    };
    let _ = reboot(mode);
    // PID 1 must never exit (the kernel panics); if reboot(2) failed, wait.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// The event devices of the input devices named "Power Button" (the ACPI
/// `button` driver's; QEMU's `system_powerdown` presses it).
pub(super) fn power_buttons(sys: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(sys.join("class/input")) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("event") {
            continue;
        }
        let dev_name = std::fs::read_to_string(e.path().join("device/name")).unwrap_or_default();
        if dev_name.trim() == "Power Button" {
            out.push(Path::new("/dev/input").join(name));
        }
    }
    out
}

/// `struct input_event` on 64-bit Linux: a 16-byte timeval, type, code, value.
const INPUT_EVENT_LEN: usize = 24;
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;

/// Blocks until the power button at `dev` is pressed.
pub(super) fn wait_power_button(dev: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(dev)?;
    let mut ev = [0u8; INPUT_EVENT_LEN];
    loop {
        f.read_exact(&mut ev)?;
        let kind = u16::from_ne_bytes([ev[16], ev[17]]);
        let code = u16::from_ne_bytes([ev[18], ev[19]]);
        let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
        if kind == EV_KEY && code == KEY_POWER && value == 1 {
            return Ok(());
        }
    }
}
