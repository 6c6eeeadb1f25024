//! Overview: who the node is, how it is, and what needs attention.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Ctx, Size, format, glyph, kv, kv_level, section};
use crate::model::{Level, StakeStatus};

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let m = ctx.app.view();
    let t = ctx.theme;
    let inv = &m.inventory;
    let mut lines = vec![
        kv(t, "Node", m.facts.node_id.clone()),
        kv(
            t,
            "Farm",
            m.facts
                .farm
                .map_or_else(|| "not registered".to_owned(), |f| f.to_string()),
        ),
        kv(t, "Mode", m.facts.mode.as_str()),
        kv(t, "Version", m.facts.agent_version.clone()),
        kv(t, "Uptime", format::duration(m.uptime_s())),
    ];
    match &m.stake {
        StakeStatus::NotConnected => {
            lines.push(kv_level(t, "Chain", Level::Unknown, "not connected"));
            lines.push(kv_level(t, "Stake", Level::Unknown, "chain not connected"));
        }
        StakeStatus::Known(s) => {
            lines.push(kv_level(t, "Chain", Level::Ok, "connected"));
            lines.push(kv(
                t,
                "Stake",
                format!("{} bonded", format::tokens(s.bonded)),
            ));
        }
    }
    lines.push(kv_level(t, "Health", inv.health.status, ""));
    let alerts = m.alert_count();
    let alert_level = inv
        .health
        .findings
        .iter()
        .map(|f| f.level)
        .max()
        .unwrap_or(Level::Ok);
    lines.push(kv_level(
        t,
        "Alerts",
        if alerts == 0 { Level::Ok } else { alert_level },
        alerts.to_string(),
    ));
    lines.push(kv(
        t,
        "Power",
        m.watts_now()
            .map_or_else(|| "no meter".to_owned(), |w| format!("{w:.1} W")),
    ));
    if ctx.size > Size::Small {
        let machine = [inv.dmi.vendor.as_deref(), inv.dmi.product.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(kv(
            t,
            "Machine",
            if machine.is_empty() {
                "unknown".to_owned()
            } else {
                machine
            },
        ));
        lines.push(kv(
            t,
            "CPU",
            format!(
                "{} logical · {}",
                inv.cpu
                    .logical
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                inv.cpu.model.as_deref().unwrap_or("unknown model")
            ),
        ));
        lines.push(kv(
            t,
            "Memory",
            inv.memory
                .total_bytes
                .map_or_else(|| "unknown".to_owned(), format::bytes),
        ));
        lines.push(kv(
            t,
            "Hardware",
            format!(
                "{} disks · {} NICs",
                inv.disks.len(),
                inv.nics.iter().filter(|n| n.physical).count()
            ),
        ));
    }
    // Large: alerts beside the facts; Medium: below them; Small: the count only.
    let node_h = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(1);
    let (left, right) = match ctx.size {
        Size::Small => (area, None),
        Size::Medium => {
            let [l, r] =
                Layout::vertical([Constraint::Length(node_h), Constraint::Min(2)]).areas(area);
            (l, Some(r))
        }
        Size::Large => {
            let [l, r] =
                Layout::horizontal([Constraint::Length(76), Constraint::Min(10)]).areas(area);
            (l, Some(r))
        }
    };
    frame.render_widget(Paragraph::new(lines).block(section(t, "Node")), left);
    if let Some(right) = right {
        let findings: Vec<Line<'_>> = if inv.health.findings.is_empty() {
            vec![Line::styled(
                format!(" {} nothing to report", glyph(t, Level::Ok)),
                t.level(Level::Ok),
            )]
        } else {
            inv.health
                .findings
                .iter()
                .map(|f| {
                    Line::from(vec![
                        Span::styled(format!(" {:<11}", t.level_text(f.level)), t.level(f.level)),
                        Span::styled(format!("{} ", f.component), t.accent()),
                        Span::raw(f.reason.clone()),
                    ])
                })
                .collect()
        };
        frame.render_widget(
            Paragraph::new(findings)
                .wrap(Wrap { trim: false })
                .block(section(t, "Alerts")),
            right,
        );
    }
}
