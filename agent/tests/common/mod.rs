//! Shared by the agent's integration tests and benches: the real-machine fixtures
//! and a generator of synthetic machines.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod generate;

use std::path::{Path, PathBuf};

/// `shared/fixtures/sysfs`, next to the repository (as laid out for sessions and CI).
pub fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for up in manifest.ancestors() {
        let p = up.join("shared/fixtures/sysfs");
        if p.is_dir() {
            return p;
        }
    }
    panic!(
        "shared/fixtures/sysfs not found above {}",
        manifest.display()
    );
}

/// Unpacks the named archives into a fresh temporary directory.
pub fn unpack(archives: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for a in archives {
        let status = std::process::Command::new("tar")
            .arg("xzf")
            .arg(fixtures_dir().join(a))
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "tar xzf {a}");
    }
    dir
}

/// The procfs trees (`sys/` and `proc/` of one machine).
pub fn procfs() -> tempfile::TempDir {
    unpack(&["procfs-sys.tar.gz", "procfs-proc.tar.gz"])
}

/// The node_exporter `sys/` tree.
pub fn node_exporter() -> tempfile::TempDir {
    unpack(&["node-exporter-sys.tar.gz"])
}
