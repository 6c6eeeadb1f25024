//! Power: watts now, the last hour, energy today, and how far to trust them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

use super::{Ctx, Size, kv, section};

/// The chart's window, s.
const WINDOW_S: u64 = 3_600;

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let t = ctx.theme;
    let m = ctx.app.view();
    let (meters, confidence) = m.primary_meters();
    let sources = meters
        .iter()
        .map(|p| format!("{} {}", p.source, p.name))
        .collect::<Vec<_>>()
        .join(", ");
    let lines = vec![
        kv(
            t,
            "Now",
            m.watts_now()
                .map_or_else(|| "no reading".to_owned(), |w| format!("{w:.1} W")),
        ),
        kv(
            t,
            "Today",
            format!("{:.3} kWh since 00:00 UTC", m.energy_today_wh() / 1_000.0),
        ),
        kv(
            t,
            "Source",
            if sources.is_empty() {
                "none".to_owned()
            } else {
                sources
            },
        ),
        kv(t, "Confidence", confidence.describe()),
    ];
    let info_h = if ctx.size == Size::Small { 5 } else { 6 };
    let [info, chart_area] =
        Layout::vertical([Constraint::Length(info_h), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(lines).block(section(t, "Power")), info);

    let now = m.now_unix_s;
    let points: Vec<(f64, f64)> = m
        .power_points(now.saturating_sub(WINDOW_S))
        .into_iter()
        .map(|(ts, w)| (-((now.saturating_sub(ts)) as f64) / 60.0, w))
        .collect();
    let peak = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if peak <= 0.0 {
        10.0
    } else {
        (peak * 1.15 / 10.0).ceil() * 10.0
    };
    let data = Dataset::default()
        .marker(t.marker())
        .graph_type(GraphType::Line)
        .style(t.accent())
        .data(&points);
    let chart = Chart::new(vec![data])
        .block(section(t, "Last hour (W)"))
        .x_axis(
            Axis::default()
                .bounds([-60.0, 0.0])
                .style(t.dim())
                .labels(["-60m", "-30m", "now"].map(Span::raw)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .style(t.dim())
                .labels([Span::raw("0"), Span::raw(format!("{top:.0}"))]),
        );
    frame.render_widget(chart, chart_area);
}
