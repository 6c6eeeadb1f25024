//! Command-line surface of `nodus agent`, dispatched from the `nodus` binary.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
};

use crate::{
    disks::{DiskProfile, DiskProfileConfig},
    inventory::{Inventory, Mode, Options},
};

/// `--mode` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Read only (the default by hand).
    #[default]
    Observe,
    /// May run the disk seek probe and persist its result (needs `--state-dir`).
    Managed,
}

/// Subcommands of `nodus agent`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the node daemon: inventory, telemetry, health, and the console
    /// protocol on QUIC and a Unix socket, plus `org.nodus.Agent1` on D-Bus.
    Run(crate::daemon::cli::RunArgs),
    /// Print this machine's hardware inventory.
    Inventory {
        /// Read sysfs/procfs under DIR instead of `/` (a captured machine). DIR holds
        /// `sys/` and/or `proc/` (and `dev/` for disk contents).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// The agent's state directory: disk classifications persisted by serial.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Board-profile disk kinds, a JSON file:
        /// `{"by_serial": {"SERIAL": "ssd"}, "by_name": {"vdb": "hdd"}}`.
        #[arg(long, value_name = "FILE")]
        disk_profile: Option<PathBuf>,
        /// Serial of a disk whose foreign data the owner approved wiping; repeatable.
        #[arg(long = "approve-serial", value_name = "SERIAL")]
        approved: Vec<String>,
        /// observe: read only. managed: also seek-probe disks of unknown kind.
        #[arg(long, value_enum, default_value_t = ModeArg::Observe)]
        mode: ModeArg,
    },
}

/// Errors from `nodus agent` subcommands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hardware root could not be opened. Not `transparent`, so the
    /// [`RootError`](crate::hal::RootError) stays in the source chain, where the
    /// binary finds it to pick its exit code.
    #[error("Cannot read the hardware")]
    Root(#[from] crate::hal::RootError),
    /// Output could not be serialized.
    #[error("Cannot write output")]
    Output(#[source] serde_json::Error),
    /// Output could not be written (closed pipe, full disk).
    #[error("Cannot write output")]
    Write(#[source] std::io::Error),
    /// The disk profile file could not be read.
    #[error("Cannot read disk profile {0}")]
    ProfileRead(PathBuf, #[source] std::io::Error),
    /// The disk profile file is not valid JSON of the expected shape.
    #[error("Disk profile {0} is invalid")]
    ProfileParse(PathBuf, #[source] serde_json::Error),
    /// The disk profile has a bad value.
    #[error("Disk profile {0} is invalid")]
    Profile(PathBuf, #[source] crate::disks::classify::ProfileError),
    /// The daemon failed to start or stopped with an error.
    #[error(transparent)]
    Run(#[from] crate::daemon::cli::RunError),
    /// `--mode managed` without `--state-dir`: probe results would be lost.
    #[error("--mode managed needs --state-dir, where probe results are kept")]
    ManagedWithoutState,
}

fn load_profile(path: &Path) -> Result<DiskProfile, Error> {
    let text = std::fs::read(path).map_err(|e| Error::ProfileRead(path.to_owned(), e))?;
    let cfg: DiskProfileConfig =
        serde_json::from_slice(&text).map_err(|e| Error::ProfileParse(path.to_owned(), e))?;
    DiskProfile::try_from(cfg).map_err(|e| Error::Profile(path.to_owned(), e))
}

impl Command {
    /// Runs the chosen subcommand. `json` selects machine-readable output.
    pub fn run(self, json: bool) -> Result<(), Error> {
        match self {
            Command::Run(args) => Ok(args.run()?),
            Command::Inventory {
                root,
                state_dir,
                disk_profile,
                approved,
                mode,
            } => {
                let root = match root {
                    Some(dir) => crate::hal::SysRoot::at(dir)?,
                    None => crate::hal::SysRoot::host(),
                };
                if mode == ModeArg::Managed && state_dir.is_none() {
                    return Err(Error::ManagedWithoutState);
                }
                let mut opts = Options::for_root(&root);
                opts.mode = match mode {
                    ModeArg::Observe => Mode::Observe,
                    ModeArg::Managed => Mode::Managed,
                };
                opts.state_dir = state_dir;
                opts.approved_serials = approved.into_iter().collect();
                if let Some(p) = disk_profile {
                    opts.profile = load_profile(&p)?;
                }
                let inv = crate::inventory::collect_with(&root, &opts);
                let text = if json {
                    serde_json::to_string_pretty(&inv).map_err(Error::Output)?
                } else {
                    summary(&inv)
                };
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}").map_err(Error::Write)?;
                Ok(())
            }
        }
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "?".to_owned(), ToString::to_string)
}

/// Bytes in binary units with one decimal (`1.8 TiB`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The human-readable summary printed without `--json`.
pub fn summary(inv: &Inventory) -> String {
    let mut s = String::new();
    let d = &inv.dmi;
    let _ = writeln!(
        s,
        "Machine   {} {} (serial {}){}",
        opt(&d.vendor),
        opt(&d.product),
        opt(&d.serial),
        if d.restricted.is_empty() {
            String::new()
        } else {
            format!(" [root-only: {}]", d.restricted.join(", "))
        }
    );
    let _ = writeln!(
        s,
        "Board     {} {}, BIOS {} {}",
        opt(&d.board.vendor),
        opt(&d.board.name),
        opt(&d.bios.version),
        opt(&d.bios.date)
    );
    let c = &inv.cpu;
    let _ = writeln!(
        s,
        "CPU       {} — {} sockets, {} cores, {} threads, {} NUMA nodes",
        opt(&c.model),
        opt(&c.sockets),
        opt(&c.cores),
        opt(&c.logical),
        opt(&c.numa_nodes)
    );
    let _ = writeln!(
        s,
        "Memory    {}",
        inv.memory
            .total_bytes
            .map_or_else(|| "?".to_owned(), human_bytes)
    );
    let _ = writeln!(s, "Disks     {}", inv.disks.len());
    for d in &inv.disks {
        let _ = writeln!(
            s,
            "  {:<10} {:>10}  {:<7} {:<7} ({})  {}  serial {}  {}",
            d.name,
            d.size_bytes.map_or_else(|| "?".to_owned(), human_bytes),
            d.transport.name(),
            serde_json::to_value(d.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            d.kind_reason,
            opt(&d.model),
            opt(&d.serial),
            if d.eligible {
                "eligible".to_owned()
            } else {
                format!("not eligible: {}", d.ineligible_reasons.join("; "))
            }
        );
        let _ = writeln!(
            s,
            "  {:<10} SMART {:?}{}",
            "",
            d.smart.status,
            d.smart
                .detail
                .as_ref()
                .map_or(String::new(), |x| format!(" ({x})"))
        );
    }
    let _ = writeln!(s, "NICs      {}", inv.nics.len());
    for n in &inv.nics {
        let _ = writeln!(
            s,
            "  {:<10} {} {} carrier={} {}",
            n.name,
            opt(&n.mac),
            n.operstate,
            n.carrier,
            n.addresses.join(" ")
        );
    }
    let _ = writeln!(s, "Sensors   {}", inv.sensors.len());
    let _ = writeln!(s, "Power     {} meters", inv.power.len());
    let cap = &inv.capacity;
    let _ = writeln!(
        s,
        "Capacity  CRU {} MRU {} SRU {} HRU {} (unclassified {}); available CRU {} MRU {} SRU {} HRU {}; {} CU, {} SU",
        cap.cru,
        human_bytes(cap.mru_bytes),
        human_bytes(cap.sru_bytes),
        human_bytes(cap.hru_bytes),
        human_bytes(cap.unclassified_bytes),
        cap.available.cru,
        human_bytes(cap.available.mru_bytes),
        human_bytes(cap.available.sru_bytes),
        human_bytes(cap.available.hru_bytes),
        cap.units.cu,
        cap.units.su
    );
    let _ = writeln!(
        s,
        "Health    {:?}, {} findings",
        inv.health.status,
        inv.health.findings.len()
    );
    for f in &inv.health.findings {
        let _ = writeln!(s, "  {:?} {}: {}", f.level, f.component, f.reason);
    }
    if !inv.gaps.0.is_empty() {
        let _ = writeln!(s, "Not read  {}", inv.gaps.0.len());
        for g in &inv.gaps.0 {
            let _ = writeln!(s, "  {}: {}", g.what, g.reason);
        }
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(2 << 40), "2.0 TiB");
    }
}
