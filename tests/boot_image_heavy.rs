//! The boot image end to end: `nodus netboot build-image` from Debian's kernel
//! and the real `nodus` binary, booted in QEMU (TCG). The init must verify the
//! image, load modules, get a DHCP lease from QEMU's user network, start the
//! agent and power off on the ACPI power button; a tampered initramfs and a
//! wrong boot key must be refused with the reason on the serial console, and the
//! agent never started.
//!
//! Also a quick cross-check without QEMU: an image built by `nodus_netboot`
//! verifies with `nodus_agent::boot::verify` (the two sides share a layout, not
//! a crate).
//!
//! Heavy tier: needs qemu-system-x86_64 and the Debian kernel that
//! scripts/test.sh unpacks (NODUS_TEST_KERNEL_ROOT).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nodus_identity::{AccountId, Keystore, Passphrase, SecretKey, keystore::KdfParams};
use nodus_netboot::image::{self, ImageSpec, Node};

const NODUS: &str = env!("CARGO_BIN_EXE_nodus");

fn kernel_root() -> Option<PathBuf> {
    let root = std::env::var_os("NODUS_TEST_KERNEL_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/kernel/root"))
        });
    root.join("lib/modules").is_dir().then_some(root)
}

fn first_entry(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The kernel, its module directory, and whether QEMU is there; `None` (with the
/// reason printed) when the test cannot run here.
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let Some(root) = kernel_root() else {
        eprintln!(
            "SKIP: no Debian kernel tree (set NODUS_TEST_KERNEL_ROOT; scripts/test.sh unpacks it)"
        );
        return None;
    };
    if !have("qemu-system-x86_64") {
        eprintln!(
            "SKIP: qemu-system-x86_64 is not installed (scripts/test.sh installs qemu-system-x86)"
        );
        return None;
    }
    Some((
        first_entry(&root.join("boot"), "vmlinuz-"),
        first_entry(&root.join("lib/modules"), ""),
    ))
}

/// A QEMU process, killed when dropped (also when the test fails).
struct Vm {
    child: Child,
    serial: PathBuf,
    qmp: PathBuf,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vm {
    fn boot(dir: &Path, kernel: &Path, initrd: &Path, append: &str) -> Self {
        let serial = dir.join(format!("serial-{}.log", std::process::id()));
        let qmp = dir.join("qmp.sock");
        let _ = std::fs::remove_file(&serial);
        let _ = std::fs::remove_file(&qmp);
        let child = Command::new("qemu-system-x86_64")
            .args(["-machine", "q35,accel=tcg", "-m", "1024", "-smp", "1"])
            .args(["-display", "none", "-no-reboot", "-monitor", "none"])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .args(["-nic", "user,model=virtio-net-pci"])
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(append)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64 starts");
        Self { child, serial, qmp }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.serial).unwrap_or_default()
    }

    /// Waits until `line` is in the serial log, or the VM exits, or `limit`.
    fn wait_for(&mut self, line: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            let log = self.log();
            if log.contains(line) {
                return true;
            }
            // A refusal halts the machine: nothing else will come.
            if log.contains("REFUSING TO BOOT") {
                return false;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.log().contains(line);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    fn qmp(&self, command: &str) {
        let mut s = std::os::unix::net::UnixStream::connect(&self.qmp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut greeting = [0u8; 4096];
        let _ = s.read(&mut greeting).unwrap();
        s.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .unwrap();
        let _ = s.read(&mut greeting).unwrap();
        s.write_all(format!("{{\"execute\":\"{command}\"}}\n").as_bytes())
            .unwrap();
        let _ = s.read(&mut greeting).unwrap();
    }

    fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

struct Image {
    dir: tempfile::TempDir,
    key: SecretKey,
    kernel: PathBuf,
    modules: PathBuf,
}

fn build_with_cli(kernel: &Path, modules: &Path) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[21; 32]);
    let keystore = dir.path().join("boot.key");
    Keystore::create(
        &keystore,
        &key,
        &Passphrase::new("boot-pass"),
        KdfParams::FLOOR,
    )
    .unwrap();
    let out = dir.path().join("image");
    // The exact command an operator runs.
    let o = Command::new(NODUS)
        .args(["netboot", "build-image", "--kernel"])
        .arg(kernel)
        .arg("--modules")
        .arg(modules)
        .arg("--boot-key")
        .arg(&keystore)
        .arg("--out")
        .arg(&out)
        .args(["--farm", "farm-1", "--strip", "--json"])
        .env("NODUS_PASSPHRASE", "boot-pass")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build-image failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("build-image: {}", String::from_utf8_lossy(&o.stdout).trim());
    Image {
        dir,
        key,
        kernel: out.join("vmlinuz"),
        modules: modules.to_owned(),
    }
}

fn append(key: &SecretKey, owner: &SecretKey) -> String {
    format!(
        "console=ttyS0 panic=-1 nodus.boot_key={} nodus.owner={} nodus.console=none",
        AccountId::from(key.public()),
        AccountId::from(owner.public())
    )
}

#[test]
fn heavy_an_image_built_by_netboot_verifies_with_the_agent_and_tampering_is_caught() {
    let Some((kernel, modules)) = prerequisites() else {
        return;
    };
    let key = SecretKey::from_seed(&[5; 32]);
    let spec = ImageSpec {
        kernel,
        modules_dir: Some(modules),
        modules: vec!["virtio_net".into(), "lm75".into()],
        nodus: PathBuf::from(NODUS),
        farm: "farm-x".into(),
        network: "nodus-devnet".into(),
        strip: true,
    };
    let (mut tree, built) = image::assemble(&spec).unwrap();
    image::seal(
        &mut tree,
        "farm-x",
        &built.kernel_release,
        &key,
        "nodus-devnet",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    tree.unpack_to(&root).unwrap();
    let ok = nodus_agent::boot::verify::verify_root(&root, Some(&key.public()), "nodus-devnet", 0);
    // dev/console is a device node the unprivileged unpack skips: its absence is
    // the only complaint allowed (the init sees devtmpfs there anyway).
    match ok {
        Ok(v) => assert_eq!(v.manifest.farm, "farm-x"),
        Err(nodus_agent::boot::verify::VerifyError::Missing(p)) => panic!("missing {p}"),
        Err(e) => panic!("{e}"),
    }
    // A modified module is caught.
    let m = root.join(format!(
        "lib/modules/{}/kernel/drivers/hwmon/lm75.ko",
        built.kernel_release
    ));
    let mut b = std::fs::read(&m).unwrap();
    b[100] ^= 0xff;
    std::fs::write(&m, b).unwrap();
    let e = nodus_agent::boot::verify::verify_root(&root, Some(&key.public()), "nodus-devnet", 0)
        .unwrap_err();
    assert!(e.to_string().contains("lm75.ko was modified"), "{e}");
    // Another key is refused before any file is read.
    let other = SecretKey::from_seed(&[6; 32]).public();
    let e =
        nodus_agent::boot::verify::verify_root(&root, Some(&other), "nodus-devnet", 0).unwrap_err();
    assert!(
        matches!(e, nodus_agent::boot::verify::VerifyError::WrongKey { .. }),
        "{e}"
    );
}

#[test]
fn heavy_qemu_boots_the_image_verifies_it_and_powers_off_on_the_button() {
    let Some((kernel, modules)) = prerequisites() else {
        return;
    };
    let img = build_with_cli(&kernel, &modules);
    let owner = SecretKey::from_seed(&[22; 32]);
    let initrd = img.dir.path().join("image/initramfs");
    let started = Instant::now();
    let mut vm = Vm::boot(
        img.dir.path(),
        &img.kernel,
        &initrd,
        &append(&img.key, &owner),
    );
    let verified = vm.wait_for("nodus-init: image verified", Duration::from_secs(240));
    assert!(verified, "no verification line; serial log:\n{}", vm.log());
    assert!(
        vm.wait_for("nodus-init: ready", Duration::from_secs(60)),
        "{}",
        vm.log()
    );
    eprintln!("QEMU start to init ready: {:?}", started.elapsed());
    let log = vm.log();
    let modules_line = log
        .lines()
        .find(|l| l.contains("nodus-init: modules loaded:"))
        .unwrap_or_else(|| panic!("no module line:\n{log}"));
    for m in ["virtio_net", "virtio_pci", "button", "evdev"] {
        assert!(modules_line.contains(m), "{m} not loaded: {modules_line}");
    }
    assert!(log.contains("nodus-init: started agent"), "{log}");
    if let Some(l) = log.lines().find(|l| l.contains("nodus-init: ready:")) {
        eprintln!("serial: {l}");
    }
    // QEMU's user network answers DHCP: the init's client configures 10.0.2.15.
    assert!(
        vm.wait_for("network up:", Duration::from_secs(60)),
        "no lease:\n{}",
        vm.log()
    );
    assert!(
        vm.log().contains("10.0.2.15/24 via 10.0.2.2"),
        "{}",
        vm.log()
    );
    if vm.wait_for("nodus-agent ready", Duration::from_secs(90)) {
        eprintln!("agent ready line seen");
    } else {
        eprintln!(
            "no `nodus-agent ready` line yet (agent run may not be landed):\n{}",
            vm.log()
        );
    }
    for l in vm
        .log()
        .lines()
        .filter(|l| l.contains("nodus-init:") || l.contains("nodus-agent ready"))
    {
        eprintln!("serial: {l}");
    }
    // The ACPI power button: services stop, the machine powers off.
    vm.qmp("system_powerdown");
    assert!(
        vm.wait_for("power button: stopping services", Duration::from_secs(60)),
        "power button not seen:\n{}",
        vm.log()
    );
    assert!(
        vm.wait_exit(Duration::from_secs(90)),
        "no power off:\n{}",
        vm.log()
    );
    let _ = img.modules;
}

#[test]
fn heavy_qemu_refuses_a_tampered_initramfs_and_a_wrong_key() {
    let Some((kernel, modules)) = prerequisites() else {
        return;
    };
    let key = SecretKey::from_seed(&[23; 32]);
    let owner = SecretKey::from_seed(&[24; 32]);
    let spec = ImageSpec {
        kernel: kernel.clone(),
        modules_dir: Some(modules),
        modules: vec!["virtio_net".into(), "virtio_pci".into()],
        nodus: PathBuf::from(NODUS),
        farm: "farm-t".into(),
        network: "nodus-devnet".into(),
        strip: true,
    };
    let (mut tree, built) = image::assemble(&spec).unwrap();
    image::seal(
        &mut tree,
        "farm-t",
        &built.kernel_release,
        &key,
        "nodus-devnet",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();

    // A wrong key: the intact image, booted with another key on the command line.
    let intact = d.path().join("intact.cpio");
    std::fs::write(&intact, tree.to_cpio().unwrap()).unwrap();
    let wrong = SecretKey::from_seed(&[25; 32]);
    refused(
        Vm::boot(d.path(), &kernel, &intact, &append(&wrong, &owner)),
        "not by the boot key",
    );

    // A tampered file: the module list gains a line after signing (uncompressed
    // cpio: the kernel reads that too).
    let list = image::MODULE_LIST_PATH;
    let Some(Node::File(mode, data)) = tree.nodes.get(list).cloned() else {
        panic!("no module list")
    };
    let mut data = data;
    data.extend_from_slice(b"evil /tmp/evil.ko\n");
    tree.nodes.insert(list.to_owned(), Node::File(mode, data));
    let tampered = d.path().join("tampered.cpio");
    std::fs::write(&tampered, tree.to_cpio().unwrap()).unwrap();
    let log = refused(
        Vm::boot(d.path(), &kernel, &tampered, &append(&key, &owner)),
        "/etc/nodus/modules was modified",
    );
    assert!(
        !log.contains("modules loaded"),
        "modules loaded anyway:\n{log}"
    );
}

/// Waits for the init's refusal, then (2 s later, time for anything that should
/// not happen) checks it names `reason` and that no agent was started; returns
/// the serial log.
fn refused(mut vm: Vm, reason: &str) -> String {
    assert!(
        vm.wait_for("REFUSING TO BOOT", Duration::from_secs(240)),
        "no refusal:\n{}",
        vm.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let log = vm.log();
    assert!(log.contains(reason), "{log}");
    assert!(
        !log.contains("started agent"),
        "agent started anyway:\n{log}"
    );
    log
}

#[test]
fn heavy_initramfs_size_without_modules() {
    let Some((kernel, _)) = prerequisites() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let spec = ImageSpec {
        kernel,
        modules_dir: None,
        modules: Vec::new(),
        nodus: PathBuf::from(NODUS),
        farm: "f".into(),
        network: "nodus-devnet".into(),
        strip: true,
    };
    let built = image::build(&spec, &SecretKey::from_seed(&[1; 32]), d.path()).unwrap();
    // A figure for the report, not a timed or sized assertion: the binary under
    // test is a debug build.
    eprintln!(
        "initramfs without modules: {} bytes gzip ({} bytes cpio), nodus {} bytes",
        built.initramfs_bytes,
        built.cpio_bytes,
        std::fs::metadata(NODUS).unwrap().len()
    );
    assert!(built.libraries.iter().any(|l| l.ends_with("libc.so.6")));
}
