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
//! Two images: a trivial one — busybox as `/init`, printing a marker and the kernel
//! command line to the serial port, then powering off — which proves the boot
//! path; and the real one from `nodus netboot build-image` (the `nodus` binary
//! beside this test, or `$NODUS_BIN`), booted to `nodus-agent ready` and then
//! reached over QUIC from the namespace with the owner key. QEMU runs with `accel=tcg`
//! (no KVM on these machines).
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
        "nodus.farm=42".to_owned(),
        format!("nodus.boot_key={account}"),
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

/// The init's refusal line (agent/src/boot).
const REFUSAL: &str = "REFUSING TO BOOT";
/// The agent's ready line (contracts.md).
const READY: &str = "nodus-agent ready";
/// The farm the real image is built and served for.
const FARM: &str = "7";

/// Boots the image from `nodus netboot build-image` to a ready agent and reaches
/// it over QUIC. (A tampered image is refused by the init: the root package's
/// `tests/boot_image_heavy.rs` boots that in QEMU.)
fn boot_real(test: &str, ovmf: bool, mac: &str) {
    let Some(kernel) = prerequisites(test, ovmf) else {
        return;
    };
    let Some(nodus) = pxe::nodus_bin(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    tftp_root(tmp.path());
    let image = tmp.path().join("image");
    let Some(boot_key) = pxe::real_image(test, &nodus, &kernel, &image, FARM) else {
        return;
    };
    let owner = nodus_identity::SecretKey::from_seed(&[12; 32]);
    let owner_id = nodus_identity::AccountId::from(owner.public());
    let seg = Segment::new(if ovmf { "R" } else { "r" }, &[true]);
    let extra = format!(
        "image = \"{}\"\nkernel_args = \"console=ttyS0 panic=-1 nodus.owner={owner_id}\"\n\
         [dhcp]\nrange = \"{}-{}\"\nrouter = \"{}\"\n",
        image.display(),
        seg.addr(100),
        seg.addr(110),
        seg.ip(0)
    );
    let mut config = settings(seg.ip(0), tmp.path(), "dhcp", &extra);
    // The agent takes farm ids as numbers (`nodus.farm=`).
    config.scripts.farm = FARM.into();
    let srv = Server::start(&seg, 0, config);
    let mut vm = Vm::boot(&seg, tmp.path(), mac, ovmf);
    let firmware = if ovmf { "OVMF PXE" } else { "iPXE ROM" };
    let (line, took) = match vm.wait_unless(READY, &[REFUSAL, "Kernel panic", "agent exited"]) {
        Ok(x) => x,
        Err(why) => panic!("{}", diagnose(&vm, tmp.path(), &srv, &why)),
    };
    eprintln!(
        "{test}: {firmware} → `{READY}` in {:.1} s (TCG)",
        took.as_secs_f64()
    );
    let serial = vm.serial_text();
    let account = nodus_identity::AccountId::from(boot_key.public()).to_string();
    assert!(serial.contains("nodus-init: image verified"), "{serial}");
    assert!(serial.contains(&format!("signed by {account}")), "{serial}");
    // The agent answers over QUIC, from the namespace, at the address our DHCP
    // leased it, with the node key it printed; our owner key is admitted.
    let node: nodus_identity::NodeId = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("node="))
        .expect("node= in the ready line")
        .parse()
        .unwrap();
    let port: u16 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("quic="))
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("quic=ADDR:PORT in the ready line");
    let leases = nodus_netboot::dhcp::Leases::load(&tmp.path().join("state/leases.json")).unwrap();
    let dashed = mac.replace(':', "-");
    let ip = leases
        .iter()
        .find(|l| l.mac == dashed && l.state == nodus_netboot::dhcp::LeaseState::Bound)
        .map(|l| l.ip)
        .unwrap_or_else(|| panic!("no bound lease for {dashed}"));
    let addr = std::net::SocketAddr::from((ip, port));
    let key = *node.key();
    let answered = seg
        .spawn(0, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = nodus_wire::Client::new(&owner).map_err(|e| format!("{e:?}"))?;
                let conn = tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    client.connect(addr, key, nodus_wire::Alpn::Console),
                )
                .await
                .map_err(|_| "QUIC connect timed out".to_owned())?
                .map_err(|e| format!("{e:?}"))?;
                Ok::<_, String>(format!("{:?}", conn.role()))
            })
        })
        .join()
        .unwrap();
    match answered {
        Ok(role) => assert_eq!(role, "Owner", "admitted as {role}"),
        Err(e) => panic!(
            "{}",
            diagnose(&vm, tmp.path(), &srv, &format!("QUIC to {addr}: {e}"))
        ),
    }
}

#[test]
fn ipxe_rom_boots_the_real_image_to_an_agent_answering_over_quic() {
    boot_real(
        "ipxe_rom_boots_the_real_image_to_an_agent_answering_over_quic",
        false,
        "52:54:00:e2:e0:11",
    );
}

#[test]
fn ovmf_pxe_boots_the_real_image_to_an_agent_answering_over_quic() {
    boot_real(
        "ovmf_pxe_boots_the_real_image_to_an_agent_answering_over_quic",
        true,
        "52:54:00:e2:e0:12",
    );
}
