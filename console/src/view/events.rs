//! Events and logs: filterable, following the newest or paused.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Ctx, Size, format, section};

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let t = ctx.theme;
    let app = ctx.app;
    let events: Vec<_> = app
        .view()
        .events
        .iter()
        .filter(|e| app.matches_filter(&e.source) || app.matches_filter(&e.message))
        .collect();
    let visible = usize::from(area.height.saturating_sub(1));
    let max_start = events.len().saturating_sub(visible);
    let start = if app.follow {
        max_start
    } else {
        app.scroll.min(max_start)
    };
    let lines: Vec<Line<'_>> = events[start..]
        .iter()
        .take(visible)
        .map(|e| {
            let mut spans = vec![Span::styled(
                format!(" {} ", format::clock(e.unix_s)),
                t.dim(),
            )];
            spans.push(Span::styled(
                format!("{:<11}", t.level_text(e.level)),
                t.level(e.level),
            ));
            if ctx.size > Size::Small {
                spans.push(Span::styled(format!("{:<12} ", e.source), t.accent()));
            }
            spans.push(Span::raw(e.message.clone()));
            Line::from(spans)
        })
        .collect();
    let state = if app.follow { "following" } else { "paused" };
    let filter = if app.filter.is_empty() {
        String::new()
    } else {
        format!(", filter \"{}\"", app.filter)
    };
    let title = format!(
        "Events {}/{} · {state}{filter}",
        events.len(),
        app.view().events.len()
    );
    frame.render_widget(Paragraph::new(lines).block(section(t, title)), area);
}
