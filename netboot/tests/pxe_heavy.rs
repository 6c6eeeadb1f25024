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
mod pxe;

use std::io::Write as _;

use common::{Segment, Server, settings};
use pxe::{MARKER, Vm, diagnose, prerequisites, tftp_root, trivial_image};

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
