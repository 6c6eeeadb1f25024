//! The QMP client and VM lifecycle against a real QEMU (TCG) booting the Debian
//! kernel with a busybox `/init`: query-status, set_link seen by the guest,
//! device_del, qom-set of an NVMe SMART warning, the power button powering the
//! guest off, and the process group gone after drop.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure.

use std::{path::PathBuf, time::Duration};

use nodus_hw_profiles::Profile;
use nodus_qemu::{
    initramfs::write_busybox_image,
    kernel::{KernelPaths, from_unpacked, locate},
    qmp::{
        Qmp,
        commands::{
            DeviceDel, HumanMonitorCommand, QomGet, QomSet, QueryStatus, RunState, SetLink,
            SystemPowerdown,
        },
    },
    serial::SerialWatch,
    vm::{Accel, Launch, Serial, Vm},
};

const PROFILE: &str = r#"
name = "qmp-heavy"
description = "smallest machine with each device kind the QMP test touches"
[machine]
cpus = 1
memory_mib = 512
[dmi]
vendor = "Nodus Test"
[[disks]]
id = "n0"
bus = "nvme"
size_gib = 1
serial = "NVME0"
[[disks]]
id = "s0"
bus = "scsi"
size_gib = 1
rotation_rate = 7200
serial = "SCSI0"
[[disks]]
id = "a0"
bus = "sata"
size_gib = 1
rotation_rate = 1
serial = "SATA0"
[[nics]]
id = "nic0"
model = "virtio"
mac = "52:54:00:00:aa:01"
[expect]
"#;

/// Modules for virtio-net and the ACPI power button, in load order.
const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/input/evdev.ko",
    "drivers/acpi/button.ko",
];

const INIT: &str = r#"/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net evdev button; do
  insmod /m/$m.ko
done
ip link set eth0 up
for e in /sys/class/input/event*; do
  if grep -q "Power Button" $e/device/name 2>/dev/null; then
    ( head -c 1 /dev/input/${e##*/} >/dev/null; echo POWER-BUTTON; poweroff -f ) &
  fi
done
echo HARNESS-BOOTED
last=x
while true; do
  c=$(cat /sys/class/net/eth0/carrier 2>/dev/null)
  if [ "$c" != "$last" ]; then echo "CARRIER=$c"; last=$c; fi
  sleep 0.1
done
"#;

fn kernel() -> Option<KernelPaths> {
    if let Some(root) = std::env::var_os("NODUS_TEST_KERNEL_ROOT") {
        return from_unpacked(&PathBuf::from(root)).ok();
    }
    locate(None, None).ok()
}

fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
}

/// The kernel, an initramfs built into `dir`, or `None` (with the reason printed)
/// when this machine lacks what the test script installs.
fn prerequisites(dir: &std::path::Path) -> Option<(KernelPaths, PathBuf)> {
    if !have(&nodus_qemu::vm::qemu_program()) || !have("qemu-img") {
        eprintln!("SKIP: qemu-system-x86_64/qemu-img missing (scripts/test.sh installs them)");
        return None;
    }
    let Some(k) = kernel() else {
        eprintln!(
            "SKIP: no Debian kernel (set NODUS_TEST_KERNEL_ROOT or run `nodus qemu fetch-kernel`)"
        );
        return None;
    };
    if !nodus_qemu::initramfs::busybox_path().exists() {
        eprintln!("SKIP: busybox-static missing (scripts/test.sh installs it)");
        return None;
    }
    let modules: Vec<PathBuf> = MODULES
        .iter()
        .map(|m| k.modules.join("kernel").join(m))
        .collect();
    if let Some(m) = modules.iter().find(|m| !m.exists()) {
        eprintln!(
            "SKIP: kernel module {} missing from this kernel",
            m.display()
        );
        return None;
    }
    let initrd = dir.join("initrd.cpio");
    write_busybox_image(&initrd, INIT, &modules).unwrap();
    Some((k, initrd))
}

fn launch(k: &KernelPaths, initrd: PathBuf) -> Launch {
    Launch {
        kernel: k.kernel.clone(),
        initrd,
        cmdline: vec!["console=ttyS0".into(), "panic=-1".into(), "quiet".into()],
        accel: Accel::Tcg,
        serial: Serial::File,
        quic_port: None,
        paused: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_qmp_drives_a_booted_guest() {
    let dir = tempfile::tempdir().unwrap();
    let Some((k, initrd)) = prerequisites(dir.path()) else {
        return;
    };
    let profile = Profile::from_toml(PROFILE, "qmp-heavy.toml").unwrap();
    let mut vm = Vm::start(&profile, launch(&k, initrd)).await.unwrap();
    let qmp = vm.qmp();
    let st = qmp.execute(&QueryStatus).await.unwrap();
    assert_eq!(st.status, RunState::Running);

    let mut serial = SerialWatch::new(vm.serial_log());
    let boot = serial
        .wait_for(
            |l| l.contains("CARRIER=1"),
            Duration::from_secs(120),
            || false,
        )
        .await;
    assert!(
        boot.is_some(),
        "guest never reported carrier; serial:\n{}",
        std::fs::read_to_string(vm.serial_log()).unwrap_or_default()
    );

    // Link down and up again, as the guest's sysfs sees it.
    qmp.execute(&SetLink {
        name: "nic-nic0".into(),
        up: false,
    })
    .await
    .unwrap();
    assert!(
        serial
            .wait_for(|l| l == "CARRIER=0", Duration::from_secs(30), || false)
            .await
            .is_some()
    );
    qmp.execute(&SetLink {
        name: "nic-nic0".into(),
        up: true,
    })
    .await
    .unwrap();
    assert!(
        serial
            .wait_for(|l| l == "CARRIER=1", Duration::from_secs(30), || false)
            .await
            .is_some()
    );

    // A SCSI disk unplugs at once (virtio-scsi does not wait for the guest).
    let mut events = qmp.events();
    qmp.execute(&DeviceDel {
        id: "disk-s0".into(),
    })
    .await
    .unwrap();
    let ev = Qmp::wait_event(&mut events, "DEVICE_DELETED", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ev.data["device"], "disk-s0");
    // A missing device is a typed error, not a hang.
    let err = qmp
        .execute(&DeviceDel { id: "nope".into() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    // The SATA drive's backend goes away through HMP drive_del.
    let out = qmp
        .execute(&HumanMonitorCommand {
            command_line: "drive_del drive-a0".into(),
        })
        .await
        .unwrap();
    assert_eq!(out.trim(), "");

    // The NVMe SMART critical warning is a QOM property of the controller.
    qmp.execute(&QomSet {
        path: "/machine/peripheral/disk-n0".into(),
        property: "smart_critical_warning".into(),
        value: 1.into(),
    })
    .await
    .unwrap();
    let v = qmp
        .execute(&QomGet {
            path: "/machine/peripheral/disk-n0".into(),
            property: "smart_critical_warning".into(),
        })
        .await
        .unwrap();
    assert_eq!(v, 1);

    // The power button: the guest's watcher powers off, QEMU exits.
    let mut events = qmp.events();
    qmp.execute(&SystemPowerdown).await.unwrap();
    assert!(
        serial
            .wait_for(|l| l == "POWER-BUTTON", Duration::from_secs(60), || false)
            .await
            .is_some(),
        "serial:\n{}",
        std::fs::read_to_string(vm.serial_log()).unwrap_or_default()
    );
    let ev = Qmp::wait_event(&mut events, "SHUTDOWN", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(ev.data["guest"], true);
    assert!(vm.wait_exit(Duration::from_secs(30)).await.is_some());
}

fn dead(pid: u32) -> bool {
    // Gone, or a zombie waiting for tokio's reaper: either way it runs no more.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_dropped_vm_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let Some((k, initrd)) = prerequisites(dir.path()) else {
        return;
    };
    let profile = Profile::from_toml(PROFILE, "qmp-heavy.toml").unwrap();
    let vm = Vm::start(&profile, launch(&k, initrd)).await.unwrap();
    let pid = vm.pid().unwrap();
    let vm_dir = vm.dir().to_owned();
    assert!(!dead(pid));
    drop(vm);
    let mut gone = false;
    for _ in 0..100 {
        if dead(pid) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "QEMU {pid} still running after drop");
    assert!(
        !vm_dir.exists(),
        "VM directory {} left behind",
        vm_dir.display()
    );
}
