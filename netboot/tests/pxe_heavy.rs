//! End-to-end PXE: an unmodified QEMU machine boots over the network from our
//! server, in a network namespace with a bridge and a tap.
//!
//! - `ipxe_rom_*`: SeaBIOS and the virtio NIC's own option ROM (Debian's
//!   `ipxe-qemu`, which is iPXE): our DHCP → the per-machine iPXE script over HTTP →
//!   kernel and initramfs over HTTP → `/init`.
//! - `ovmf_*`: OVMF with an empty NIC `romfile=`, so the UEFI firmware's own PXE
//!   asks: our DHCP → `ipxe.efi` over TFTP → iPXE's DHCP → script → kernel →
//!   `/init`.
//!
//! The image is a trivial one — busybox as `/init`, printing a marker and the kernel
//! command line to the serial port, then powering off — so these tests prove the
//! boot path, not the agent. QEMU runs with `accel=tcg` (no KVM on these machines).
//! Needs root, QEMU, busybox-static, cpio, ipxe, ipxe-qemu, ovmf and a Debian
//! kernel (`NODUS_TEST_KERNEL_ROOT`, unpacked by `scripts/test.sh`); skips, saying
//! which is missing, otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Segment, Server, have, root_or_skip, settings};

/// The line the trivial `/init` prints once it runs.
const MARKER: &str = "NODUS-PXE-INIT-RAN";
/// How long a boot may take under TCG on a loaded 2-core machine.
const BOOT_DEADLINE: Duration = Duration::from_secs(300);

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The Debian kernel the test script unpacks.
fn kernel(test: &str) -> Option<PathBuf> {
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

fn file_or_skip(path: &str, test: &str) -> bool {
    let ok = Path::new(path).exists();
    if !ok {
        eprintln!("SKIPPED {test}: {path} is missing (scripts/test.sh installs it)");
    }
    ok
}

/// Everything a boot test needs; `None` (after saying why) when something is
/// missing.
fn prerequisites(test: &str, ovmf: bool) -> Option<PathBuf> {
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
fn trivial_image(dir: &Path, kernel: &Path) -> nodus_identity::SecretKey {
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

fn which(cmd: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

/// Debian's iPXE binaries as the TFTP root.
fn tftp_root(tmp: &Path) {
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
struct Vm {
    child: Child,
    serial: PathBuf,
    started: Instant,
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
    fn boot(seg: &Segment, tmp: &Path, mac: &str, ovmf: bool) -> Self {
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

    fn serial_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// Waits until the serial log holds `needle` (returns the line and the time
    /// since start), the machine exits, or the deadline passes.
    fn wait_for(&mut self, needle: &str) -> Result<(String, Duration), String> {
        while self.started.elapsed() < BOOT_DEADLINE {
            let text = self.serial_text();
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok((line.to_owned(), self.started.elapsed()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // One last read: the line may have landed just before the exit.
                let text = self.serial_text();
                if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                    return Ok((line.to_owned(), self.started.elapsed()));
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
fn diagnose(vm: &Vm, tmp: &Path, srv: &Server, why: &str) -> String {
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

/// Boots the trivial image and checks the path it took.
fn boot_trivial(test: &str, ovmf: bool, mac: &str) {
    let Some(kernel) = prerequisites(test, ovmf) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    tftp_root(tmp.path());
    let image = tmp.path().join("image");
    let key = trivial_image(&image, &kernel);
    let seg = Segment::new(if ovmf { "o" } else { "q" }, &[true]);
    let extra = format!(
        "image = \"{}\"\nkernel_args = \"console=ttyS0 panic=-1\"\n\
         [dhcp]\nrange = \"{}-{}\"\nrouter = \"{}\"\n",
        image.display(),
        seg.addr(100),
        seg.addr(110),
        seg.ip(0)
    );
    let srv = Server::start(&seg, 0, settings(seg.ip(0), tmp.path(), "dhcp", &extra));
    let mut vm = Vm::boot(&seg, tmp.path(), mac, ovmf);
    let (line, took) = match vm.wait_for(MARKER) {
        Ok(x) => x,
        Err(why) => panic!("{}", diagnose(&vm, tmp.path(), &srv, &why)),
    };
    let firmware = if ovmf { "OVMF PXE" } else { "iPXE ROM" };
    eprintln!(
        "{test}: {firmware} → /init in {:.1} s (TCG)",
        took.as_secs_f64()
    );
    let _ = std::io::stderr().flush();
    // The command line came from our script: farm, key, manifest URL, the booting
    // NIC, and the farm-wide arguments.
    let dashed = mac.replace(':', "-");
    let account = nodus_identity::AccountId::from(key.public()).to_string();
    for want in [
        "nodus.farm=farm-test".to_owned(),
        format!("nodus.netboot_key={account}"),
        format!("nodus.manifest=http://{}:8080/image/manifest", seg.ip(0)),
        format!("nodus.machine={dashed}"),
        format!("BOOTIF=01-{dashed}"),
        "console=ttyS0".to_owned(),
    ] {
        assert!(line.contains(&want), "{want} missing from {line}");
    }
    // The boot events show the path: DHCP for this MAC, then the script, kernel
    // and initramfs over HTTP (and, for OVMF, iPXE over TFTP first).
    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    let mut want = vec![
        format!("GET /boot/{dashed}.ipxe"),
        "GET /image/vmlinuz".to_owned(),
        "GET /image/initramfs".to_owned(),
        "\"service\":\"dhcp\"".to_owned(),
    ];
    if ovmf {
        want.push("\"asked\":\"ipxe.efi\"".to_owned());
        want.push("Pxe".to_owned());
    }
    for w in want {
        assert!(
            events.contains(&w),
            "{w} missing from the boot events:\n{events}"
        );
    }
    // Both stages of DHCP asked for this MAC: firmware (or ROM) and iPXE.
    assert!(
        events.contains(&format!("\"mac\":\"{dashed}\"")) && events.contains("Ipxe"),
        "{events}"
    );
}

#[test]
fn ipxe_rom_boots_the_trivial_image_over_http() {
    boot_trivial(
        "ipxe_rom_boots_the_trivial_image_over_http",
        false,
        "52:54:00:e2:e0:01",
    );
}

#[test]
fn ovmf_pxe_fetches_ipxe_over_tftp_and_boots_the_trivial_image() {
    boot_trivial(
        "ovmf_pxe_fetches_ipxe_over_tftp_and_boots_the_trivial_image",
        true,
        "52:54:00:e2:e0:02",
    );
}
