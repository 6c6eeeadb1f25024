//! A node's state as plain text, for scripts and logs (`nodus console` or
//! `nodus devnet` with no terminal on stdout).

use std::fmt::Write as _;

use crate::model::{Level, Model, StakeStatus};
use crate::view::format;

fn level_word(l: Level) -> &'static str {
    match l {
        Level::Ok => "ok",
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Critical => "critical",
        Level::Unknown => "unknown",
    }
}

/// The snapshot as text: node, mode, CPU and memory, disks, NICs, capacity,
/// health and power.
pub fn text(m: &Model) -> String {
    let inv = &m.inventory;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let mut line = |s: String| {
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(format!("node      {}", m.facts.node_id));
    if let Some(s) = &m.session {
        line(format!("role      {}", s.role));
    }
    line(format!("mode      {}", m.facts.mode.as_str()));
    line(format!(
        "farm      {}",
        m.facts
            .farm
            .map_or_else(|| "not registered".to_owned(), |f| f.to_string())
    ));
    line(format!("version   {}", m.facts.agent_version));
    line(format!("uptime    {}", format::duration(m.uptime_s())));
    let machine = [inv.dmi.vendor.as_deref(), inv.dmi.product.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !machine.is_empty() {
        line(format!("machine   {machine}"));
    }
    line(format!(
        "cpu       {} logical, {}",
        inv.cpu
            .logical
            .map_or_else(|| "?".to_owned(), |n| n.to_string()),
        inv.cpu.model.as_deref().unwrap_or("unknown model")
    ));
    line(format!(
        "memory    {}",
        inv.memory
            .total_bytes
            .map_or_else(|| "unknown".to_owned(), format::bytes)
    ));
    line(format!("disks     {}", inv.disks.len()));
    for d in &inv.disks {
        line(format!(
            "  {:<10} {:<5} {:>10}  {}  {}",
            d.name,
            d.kind,
            d.size_bytes.map_or_else(|| "–".to_owned(), format::bytes),
            d.model.as_deref().unwrap_or(""),
            if d.eligible { "eligible" } else { "" },
        ));
    }
    let nics: Vec<_> = inv.nics.iter().filter(|n| n.physical).collect();
    line(format!("nics      {}", nics.len()));
    for n in nics {
        line(format!(
            "  {:<10} {:<5} {}  {}",
            n.name,
            if n.operstate == "up" && n.carrier {
                "up"
            } else {
                "down"
            },
            n.speed_mbps
                .map_or_else(|| "–".to_owned(), |s| format!("{s} Mb/s")),
            n.addresses.join(" "),
        ));
    }
    let c = &inv.capacity;
    line(format!(
        "capacity  cru {}  mru {}  sru {}  hru {}",
        c.cru,
        format::bytes(c.mru_bytes),
        format::bytes(c.sru_bytes),
        format::bytes(c.hru_bytes)
    ));
    line(format!(
        "reserved  cru {}  mru {}  sru {}  hru {}",
        c.reserved.cru,
        format::bytes(c.reserved.mru_bytes),
        format::bytes(c.reserved.sru_bytes),
        format::bytes(c.reserved.hru_bytes)
    ));
    line(format!("health    {}", level_word(inv.health.status)));
    for f in &inv.health.findings {
        line(format!(
            "  {:<8} {}: {}",
            level_word(f.level),
            f.component,
            f.reason
        ));
    }
    let (_, confidence) = m.primary_meters();
    line(format!(
        "power     {} ({})",
        m.watts_now()
            .map_or_else(|| "no meter".to_owned(), |w| format!("{w:.1} W")),
        confidence.describe()
    ));
    line(format!(
        "stake     {}",
        match &m.stake {
            StakeStatus::NotConnected => "chain not connected".to_owned(),
            StakeStatus::Known(s) => format!(
                "{} balance, {} bonded, {} rewards last epoch, uptime {}",
                format::tokens(s.balance),
                format::tokens(s.bonded),
                format::tokens(s.rewards),
                format::ppm(s.uptime_ppm)
            ),
        }
    ));
    out
}
