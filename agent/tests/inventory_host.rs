//! The inventory of the machine running the tests: it must list the real disks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nodus_agent::{disks::Transport, hal::SysRoot, inventory};

/// Names in /sys/block that are not stacked or memory-backed.
fn real_block_devices() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["loop", "ram", "zram", "md", "dm-", "nbd", "sr"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect()
}

#[test]
fn host_lists_its_real_disks() {
    let all: Vec<String> = std::fs::read_dir("/sys/block")
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if all.is_empty() {
        eprintln!("/sys/block is empty here; nothing to list");
        return;
    }
    // Idle loop/RAM/zram/nbd nodes (0 sectors) have nothing behind them.
    let idle = |n: &String| {
        ["loop", "ram", "zram", "nbd"]
            .iter()
            .any(|p| n.starts_with(p))
            && std::fs::read_to_string(format!("/sys/block/{n}/size"))
                .is_ok_and(|s| s.trim() == "0")
    };
    let mut expected: Vec<&String> = all.iter().filter(|n| !idle(n)).collect();
    expected.sort();
    let inv = inventory::collect(&SysRoot::host());
    eprintln!("{}", nodus_agent::cli::summary(&inv));
    // Every other /sys/block entry is listed, virtual ones included.
    let mut listed: Vec<&String> = inv.disks.iter().map(|d| &d.name).collect();
    listed.sort();
    assert_eq!(listed, expected, "{:#?}", inv.gaps);
    let real = real_block_devices();
    for name in &real {
        let d = inv.disks.iter().find(|d| &d.name == name).unwrap();
        assert!(d.size_bytes.is_some(), "{name}");
        assert!(!d.transport.is_virtual(), "{name}: {:?}", d.transport);
    }
    if !real.is_empty() {
        assert!(
            inv.disks
                .iter()
                .any(|d| real.contains(&d.name) && d.size_bytes.unwrap_or(0) > 0),
            "no real disk with a size: {:#?}",
            inv.disks
        );
    }
    for d in inv.disks.iter().filter(|d| {
        matches!(
            d.transport,
            Transport::Loop | Transport::Zram | Transport::Ram
        )
    }) {
        assert!(!d.eligible, "{} is memory/file backed", d.name);
    }
    assert!(inv.cpu.logical.unwrap() >= 1);
    assert!(inv.memory.total_bytes.unwrap() > 0);
}

/// The disk holding `/` is in use and never eligible.
#[test]
fn root_file_system_disk_is_in_use() {
    let st = nix::sys::stat::stat("/").unwrap();
    let mm = format!(
        "{}:{}",
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev)
    );
    let inv = inventory::collect(&SysRoot::host());
    let holder = inv.disks.iter().find(|d| {
        std::fs::read_to_string(format!("/sys/block/{}/dev", d.name)).is_ok_and(|s| s.trim() == mm)
            || d.partitions.iter().any(|p| {
                std::fs::read_to_string(format!("/sys/block/{}/{p}/dev", d.name))
                    .is_ok_and(|s| s.trim() == mm)
            })
    });
    // `/` on overlayfs or tmpfs (containers) has no block device of its own.
    let Some(d) = holder else {
        eprintln!("/ ({mm}) is not on a listed block device; skipped");
        return;
    };
    assert!(d.in_use, "{}: {:?}", d.name, d.in_use_reasons);
    assert!(!d.eligible);
    assert!(d.mounts.iter().any(|m| m == "/"), "{:?}", d.mounts);
}
