#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `nodus netboot build-image` through the library: the archive's layout, its
//! cpio format as the real `cpio` reads it, the module order, and both manifests.

use std::{io::Read as _, path::PathBuf, process::Command};

use nodus_identity::{SecretKey, Signed, statement::Expect, statement::purpose};
use nodus_netboot::{
    image::{self, CONTENT_MANIFEST_PATH, ContentManifest, EntryKind, ImageSpec, MODULE_LIST_PATH},
    manifest,
};
use sha2::Digest as _;

/// The Debian kernel tree the test script unpacks, if present.
fn kernel_root() -> Option<PathBuf> {
    let root = std::env::var_os("NODUS_TEST_KERNEL_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/kernel/root"
            ))
        });
    root.join("lib/modules").is_dir().then_some(root)
}

fn modules_dir(root: &std::path::Path) -> PathBuf {
    std::fs::read_dir(root.join("lib/modules"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
}

fn spec(kernel: PathBuf, modules_dir: Option<PathBuf>, modules: &[&str]) -> ImageSpec {
    ImageSpec {
        kernel,
        modules_dir,
        modules: modules.iter().map(|m| (*m).to_owned()).collect(),
        // This test executable: a dynamically linked ELF like `nodus`.
        nodus: std::env::current_exe().unwrap(),
        farm: "farm-7".into(),
        network: "nodus-test".into(),
        strip: false,
    }
}

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn an_image_without_modules_holds_nodus_its_libraries_and_a_signed_manifest() {
    let d = tempfile::tempdir().unwrap();
    let kernel = d.path().join("vmlinuz-in");
    std::fs::write(&kernel, b"not really a kernel").unwrap();
    let out = d.path().join("img");
    let key = SecretKey::from_seed(&[4; 32]);
    let built = image::build(&spec(kernel, None, &[]), &key, &out).unwrap();
    assert!(built.modules.is_empty());
    assert!(
        built.libraries.iter().any(|l| l.contains("ld-linux")),
        "no dynamic loader: {:?}",
        built.libraries
    );
    assert!(built.libraries.iter().any(|l| l.ends_with("libc.so.6")));

    // The outer manifest covers vmlinuz and initramfs.
    let m = manifest::verify_image(&out, &key.public(), "nodus-test", u64::MAX / 2).unwrap();
    assert_eq!(m.farm, "farm-7");

    // The real cpio reads the archive and lists what we wrote.
    let cpio = gunzip(&out.join(manifest::INITRAMFS));
    assert_eq!(cpio.len() as u64, built.cpio_bytes);
    let unpack = d.path().join("root");
    std::fs::create_dir_all(&unpack).unwrap();
    match Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .current_dir(&unpack)
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&cpio).unwrap();
            assert!(child.wait().unwrap().success());
            assert_eq!(
                std::fs::read_link(unpack.join("init")).unwrap(),
                PathBuf::from("/bin/nodus")
            );
            assert_eq!(
                std::fs::read(unpack.join("bin/nodus")).unwrap(),
                std::fs::read(std::env::current_exe().unwrap()).unwrap()
            );
        }
        Err(e) => eprintln!("cpio not installed ({e}): archive format checked by unit tests only"),
    }

    // The content manifest is signed for BOOT_MANIFEST and lists every file with
    // its hash.
    let signed_bytes = std::fs::read(unpack.join(CONTENT_MANIFEST_PATH)).unwrap_or_default();
    if !signed_bytes.is_empty() {
        let signed = Signed::<ContentManifest>::from_bytes(&signed_bytes).unwrap();
        let cm = signed
            .verify(
                &Expect::new(purpose::BOOT_MANIFEST, "nodus-test", u64::MAX / 2)
                    .signed_by(&key.public()),
            )
            .unwrap();
        assert!(!cm.entries.iter().any(|e| e.path == CONTENT_MANIFEST_PATH));
        for e in &cm.entries {
            if let EntryKind::File { sha256, size, .. } = &e.kind {
                let data = std::fs::read(unpack.join(&e.path)).unwrap();
                assert_eq!(data.len() as u64, *size, "{}", e.path);
                assert_eq!(
                    <[u8; 32]>::from(sha2::Sha256::digest(&data)),
                    *sha256,
                    "{}",
                    e.path
                );
            }
        }
        assert!(cm.entries.iter().any(|e| e.path == "dev/console"));
        assert!(cm.entries.iter().any(|e| e.path == MODULE_LIST_PATH));
    }
}

#[test]
fn debian_modules_are_resolved_with_their_dependencies_in_load_order() {
    let Some(root) = kernel_root() else {
        eprintln!("no Debian kernel tree (NODUS_TEST_KERNEL_ROOT): skipping the module test");
        return;
    };
    let dir = modules_dir(&root);
    let wanted: Vec<String> = image::modules::DEFAULT_MODULES
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    let r = image::modules::resolve(&dir, &wanted).unwrap();
    let names: Vec<&str> = r.load_order.iter().map(|m| m.name.as_str()).collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} missing from {names:?}"))
    };
    // virtio_net needs net_failover (needs failover) and virtio's core; lm75 needs
    // regmap-i2c/hwmon; every dependency comes before its user.
    assert!(pos("failover") < pos("net_failover"));
    assert!(pos("net_failover") < pos("virtio_net"));
    assert!(pos("virtio") < pos("virtio_pci"));
    assert!(pos("libahci") < pos("ahci"));
    for m in [
        "nvme", "e1000e", "i2c_stub", "lm75", "i2c_dev", "sd_mod", "button", "evdev",
    ] {
        pos(m);
    }
    for m in &r.load_order {
        assert_eq!(
            &m.data[..4],
            b"\x7fELF",
            "{} is not an uncompressed module",
            m.name
        );
        let info = image::elf::modinfo(&m.data).unwrap();
        for dep in info
            .iter()
            .filter(|(k, _)| k == "depends")
            .flat_map(|(_, v)| v.split(','))
        {
            if dep.is_empty() {
                continue;
            }
            let dep = image::modules::normalize(dep);
            assert!(
                r.builtin.contains(&dep) || pos(&dep) < pos(&m.name),
                "{} loads before its dependency {dep}",
                m.name
            );
        }
    }
}

#[test]
fn compressed_modules_are_decompressed_at_build_time() {
    let Some(root) = kernel_root() else {
        eprintln!("no Debian kernel tree (NODUS_TEST_KERNEL_ROOT): skipping");
        return;
    };
    let src = modules_dir(&root);
    let ko = std::fs::read(src.join("kernel/drivers/net/net_failover.ko")).unwrap();
    let failover = std::fs::read(src.join("kernel/net/core/failover.ko")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("6.1.0-test");
    std::fs::create_dir_all(m.join("kernel/a")).unwrap();
    // net_failover.ko.gz (gzip) depending on failover.ko.gz, read through modinfo.
    let gz = |data: &[u8]| {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(m.join("kernel/a/net_failover.ko.gz"), gz(&ko)).unwrap();
    std::fs::write(m.join("kernel/a/failover.ko.gz"), gz(&failover)).unwrap();
    let r = image::modules::resolve(&m, &["net_failover".into()]).unwrap();
    assert_eq!(
        r.load_order
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["failover", "net_failover"]
    );
    assert_eq!(r.load_order[1].data, ko);
    assert_eq!(r.load_order[1].rel_path, "kernel/a/net_failover.ko");
}
