//! Capacity: total, reserved and used bars for the four units.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Ctx, Size, format, section};
use crate::theme::BarPart;

/// Name, total, reserved, used, and how to print an amount.
type UnitRow = (&'static str, u64, u64, u64, fn(u64) -> String);

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let t = ctx.theme;
    let m = ctx.app.view();
    let cap = &m.inventory.capacity;
    let (total, reserved, used) = (cap.total(), cap.reserved, m.used);
    let rows: [UnitRow; 4] = [
        ("CRU", total.cru, reserved.cru, used.cru, |v| {
            format!("{v} CPU")
        }),
        (
            "MRU",
            total.mru_bytes,
            reserved.mru_bytes,
            used.mru_bytes,
            format::bytes,
        ),
        (
            "SRU",
            total.sru_bytes,
            reserved.sru_bytes,
            used.sru_bytes,
            format::bytes,
        ),
        (
            "HRU",
            total.hru_bytes,
            reserved.hru_bytes,
            used.hru_bytes,
            format::bytes,
        ),
    ];
    let [g_used, g_res, g_free] = t.bar_glyphs();
    let bar_w = usize::from(area.width.saturating_sub(8)).min(100);
    let mut lines = Vec::new();
    for (name, tot, res, use_, fmt) in rows {
        let cells = |v: u64| -> usize {
            if tot == 0 {
                0
            } else {
                ((v.min(tot) as f64 / tot as f64) * bar_w as f64).round() as usize
            }
        };
        let (u, r) = (cells(use_), cells(res));
        let r = r.min(bar_w - u.min(bar_w));
        let f = bar_w.saturating_sub(u + r);
        lines.push(Line::from(vec![
            Span::styled(format!(" {name}  "), t.accent()),
            Span::styled(g_used.repeat(u), t.bar(BarPart::Used)),
            Span::styled(g_res.repeat(r), t.bar(BarPart::Reserved)),
            Span::styled(g_free.repeat(f), t.bar(BarPart::Free)),
        ]));
        let free = tot.saturating_sub(res).saturating_sub(use_);
        lines.push(Line::from(format!(
            "       total {}  reserved {}  used {}  free {}",
            fmt(tot),
            fmt(res),
            fmt(use_),
            fmt(free)
        )));
        if ctx.size > Size::Small {
            lines.push(Line::from(""));
        }
    }
    lines.push(Line::from(vec![
        Span::styled(format!(" {g_used} used "), t.bar(BarPart::Used)),
        Span::styled(format!(" {g_res} reserved "), t.bar(BarPart::Reserved)),
        Span::styled(format!(" {g_free} free"), t.bar(BarPart::Free)),
    ]));
    frame.render_widget(Paragraph::new(lines).block(section(t, "Capacity")), area);
}
