//! QEMU machines that boot from the network, and the images they boot, shared by
//! the PXE tests (`pxe_heavy`, `proxy_dnsmasq_heavy`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{self, Segment, Server, have, root_or_skip};

/// The line the trivial `/init` prints once it runs.
pub const MARKER: &str = "NODUS-PXE-INIT-RAN";
/// How long a boot may take under TCG on a loaded 2-core machine.
pub const BOOT_DEADLINE: Duration = Duration::from_secs(300);

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The Debian kernel the test script unpacks.
pub fn kernel(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("NODUS_TEST_KERNEL_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kernel/root"));
    let found = std::fs::read_dir(root.join("boot")).ok().and_then(|d| {
        d.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
    });
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: no kernel at {}/boot/vmlinuz-* (scripts/test.sh unpacks one)",
            root.display()
        );
    }
    found
}

pub fn file_or_skip(path: &str, test: &str) -> bool {
    let ok = Path::new(path).exists();
    if !ok {
        eprintln!("SKIPPED {test}: {path} is missing (scripts/test.sh installs it)");
    }
    ok
}

/// Everything a boot test needs; `None` (after saying why) when something is
/// missing.
pub fn prerequisites(test: &str, ovmf: bool) -> Option<PathBuf> {
    if !root_or_skip(test)
        || !have("qemu-system-x86_64", test)
        || !have("busybox", test)
        || !have("cpio", test)
        || !file_or_skip("/usr/lib/ipxe/qemu/efi-virtio.rom", test)
        || !file_or_skip("/usr/lib/ipxe/ipxe.efi", test)
    {
        return None;
    }
    if ovmf && (!file_or_skip(OVMF_CODE, test) || !file_or_skip(OVMF_VARS, test)) {
        return None;
    }
    kernel(test)
}

/// The trivial image: vmlinuz, an initramfs whose `/init` prints [`MARKER`] and
/// the command line, and a signed manifest. Returns the signer's key.
pub fn trivial_image(dir: &Path, kernel: &Path) -> nodus_identity::SecretKey {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(kernel, dir.join("vmlinuz")).unwrap();
    let tree = dir.join("tree");
    for d in ["bin", "dev", "proc", "sys"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::copy(
        which("busybox").expect("busybox checked above"),
        tree.join("bin/busybox"),
    )
    .unwrap();
    let init = tree.join("init");
    std::fs::write(
        &init,
        format!(
            "#!/bin/busybox sh\n\
             /bin/busybox mount -t proc proc /proc\n\
             /bin/busybox mount -t devtmpfs dev /dev\n\
             echo \"{MARKER} cmdline: $(/bin/busybox cat /proc/cmdline)\" > /dev/ttyS0\n\
             /bin/busybox sync\n\
             /bin/busybox poweroff -f\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::fs::File::create(dir.join("initramfs")).unwrap();
    let mut cpio = Command::new("sh")
        .args(["-c", "find . | cpio -o -H newc --quiet"])
        .current_dir(&tree)
        .stdout(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(cpio.wait().unwrap().success(), "cpio failed");
    std::fs::remove_dir_all(&tree).unwrap();
    let key = nodus_identity::SecretKey::from_seed(&[7; 32]);
    let m = nodus_netboot::manifest::Manifest::of_dir(dir, "farm-test").unwrap();
    nodus_netboot::manifest::write(dir, &m.sign(&key, "nodus-devnet").unwrap()).unwrap();
    key
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

/// Debian's iPXE binaries as the TFTP root.
pub fn tftp_root(tmp: &Path) {
    let root = tmp.join("tftp");
    std::fs::create_dir_all(&root).unwrap();
    for f in ["undionly.kpxe", "ipxe.efi", "snponly.efi"] {
        let src = Path::new("/usr/lib/ipxe").join(f);
        if src.exists() {
            std::fs::copy(&src, root.join(f)).unwrap();
        }
    }
}

/// A QEMU machine on the segment's bridge, killed on drop.
pub struct Vm {
    /// The QEMU process.
    pub child: Child,
    /// Its serial log.
    pub serial: PathBuf,
    /// When it started.
    pub started: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vm {
    /// Adds a tap to the segment's bridge and boots a q35 machine from the network
    /// through it: SeaBIOS and the NIC's iPXE ROM, or OVMF with no NIC ROM.
    pub fn boot(seg: &Segment, tmp: &Path, mac: &str, ovmf: bool) -> Self {
        let tap = "tap0";
        common::sh(&[
            "ip",
            "-n",
            &seg.switch,
            "tuntap",
            "add",
            "dev",
            tap,
            "mode",
            "tap",
        ]);
        common::sh(&[
            "ip",
            "-n",
            &seg.switch,
            "link",
            "set",
            tap,
            "master",
            "br0",
            "up",
        ]);
        let serial = tmp.join("serial.log");
        let mut args: Vec<String> = [
            "qemu-system-x86_64",
            "-machine",
            "q35,accel=tcg",
            "-m",
            "1024",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-boot",
            "n",
            "-netdev",
            "tap,id=n0,ifname=tap0,script=no,downscript=no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push("-serial".into());
        args.push(format!("file:{}", serial.display()));
        if ovmf {
            let vars = tmp.join("OVMF_VARS.fd");
            std::fs::copy(OVMF_VARS, &vars).unwrap();
            args.extend([
                "-drive".into(),
                format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
                "-drive".into(),
                format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
                "-device".into(),
                format!("virtio-net-pci,netdev=n0,mac={mac},romfile="),
            ]);
        } else {
            args.extend([
                "-device".into(),
                format!("virtio-net-pci,netdev=n0,mac={mac}"),
            ]);
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &seg.switch]).args(&args);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.join("qemu.stderr")).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            serial,
            started: Instant::now(),
        }
    }

    pub fn serial_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// Waits until the serial log holds `needle` (returns the line and the time
    /// since start), the machine exits, or the deadline passes.
    pub fn wait_for(&mut self, needle: &str) -> Result<(String, Duration), String> {
        self.wait_unless(needle, &[])
    }

    /// As [`Vm::wait_for`], but gives up as soon as a line holds one of `fatal`
    /// (a refusal, a panic: the machine halts and would never get there).
    pub fn wait_unless(
        &mut self,
        needle: &str,
        fatal: &[&str],
    ) -> Result<(String, Duration), String> {
        let find = |text: &str| {
            for line in text.lines() {
                if line.contains(needle) {
                    return Some(Ok(line.to_owned()));
                }
                if let Some(f) = fatal.iter().find(|f| line.contains(**f)) {
                    return Some(Err(format!("{f:?} before {needle:?}: {line}")));
                }
            }
            None
        };
        while self.started.elapsed() < BOOT_DEADLINE {
            if let Some(r) = find(&self.serial_text()) {
                return r.map(|line| (line, self.started.elapsed()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // One last read: the line may have landed just before the exit.
                if let Some(r) = find(&self.serial_text()) {
                    return r.map(|line| (line, self.started.elapsed()));
                }
                return Err(format!("QEMU exited ({status}) before {needle:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("no {needle:?} within {BOOT_DEADLINE:?}"))
    }
}

/// What failed, with everything that helps: the serial log's tail, QEMU's
/// stderr, the boot events and the server's log.
pub fn diagnose(vm: &Vm, tmp: &Path, srv: &Server, why: &str) -> String {
    let serial = vm.serial_text();
    let tail: Vec<&str> = serial.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "{why}\n--- serial (tail) ---\n{}\n--- qemu stderr ---\n{}\n--- boot events ---\n{}\n--- server log ---\n{}",
        tail.join("\n"),
        std::fs::read_to_string(tmp.join("qemu.stderr")).unwrap_or_default(),
        std::fs::read_to_string(tmp.join("state/boot-events.jsonl")).unwrap_or_default(),
        srv.log_text()
    )
}

/// The `nodus` binary: `$NODUS_BIN`, or the one cargo built beside this test
/// (`target/<profile>/nodus`, built by any workspace test run).
pub fn nodus_bin(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("NODUS_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            // target/<profile>/deps/<test> → target/<profile>/nodus
            Some(exe.parent()?.parent()?.join("nodus"))
        });
    match path {
        Some(p) if p.exists() => Some(p),
        other => {
            eprintln!(
                "SKIPPED {test}: no nodus binary at {other:?} (build it with `cargo build`, or set NODUS_BIN)"
            );
            None
        }
    }
}

/// The unpacked Debian kernel's module directory, `lib/modules/<release>`.
pub fn modules_dir(kernel: &Path) -> Option<PathBuf> {
    let root = kernel.parent()?.parent()?;
    std::fs::read_dir(root.join("lib/modules"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// The real image from `nodus netboot build-image`: `nodus` as `/init`, its
/// libraries, the kernel's modules, both signed manifests. Returns the boot key,
/// or `None` (after saying why) when this `nodus` cannot build images yet.
pub fn real_image(
    test: &str,
    nodus: &Path,
    kernel: &Path,
    dir: &Path,
    farm: &str,
) -> Option<nodus_identity::SecretKey> {
    let key = nodus_identity::SecretKey::from_seed(&[11; 32]);
    let keystore = dir.with_extension("key");
    let _ = std::fs::remove_file(&keystore);
    nodus_identity::Keystore::create(
        &keystore,
        &key,
        &nodus_identity::Passphrase::new("pxe-test"),
        nodus_identity::keystore::KdfParams::FLOOR,
    )
    .unwrap();
    let mut cmd = Command::new(nodus);
    cmd.args(["netboot", "build-image", "--kernel"])
        .arg(kernel)
        .arg("--boot-key")
        .arg(&keystore)
        .arg("--out")
        .arg(dir)
        .args(["--farm", farm, "--network", "nodus-devnet", "--strip"])
        .env("NODUS_PASSPHRASE", "pxe-test");
    if let Some(m) = modules_dir(kernel) {
        cmd.arg("--modules").arg(m);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() && text.contains("unrecognized subcommand") {
        eprintln!(
            "SKIPPED {test}: {} has no `netboot build-image` yet",
            nodus.display()
        );
        return None;
    }
    assert!(
        out.status.success(),
        "build-image failed: {text}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(key)
}
