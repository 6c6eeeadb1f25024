//! Rendering: `render(&App, &mut Frame)` draws the chrome (header, tabs, banner,
//! footer, help) and hands the body to the current screen's module.
//!
//! Layout classes: 120×40 and up is [`Size::Large`], 80×24 [`Size::Medium`],
//! 40×15 [`Size::Small`]; anything smaller only says so.

mod capacity;
mod events;
mod format;
mod hardware;
mod overview;
mod power;
mod stake;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::app::{App, InputMode, Screen};
use crate::keymap::{self, FILTER_KEYS};
use crate::model::{Connection, Level};
use crate::theme::Theme;

/// How much room there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Size {
    /// At least 40×15.
    Small,
    /// At least 80×24.
    Medium,
    /// At least 120×40.
    Large,
}

impl Size {
    /// The class of an area; `None` below 40×15.
    pub fn of(area: Rect) -> Option<Size> {
        match (area.width, area.height) {
            (w, h) if w >= 120 && h >= 40 => Some(Size::Large),
            (w, h) if w >= 80 && h >= 24 => Some(Size::Medium),
            (w, h) if w >= 40 && h >= 15 => Some(Size::Small),
            _ => None,
        }
    }
}

/// What a screen module gets.
struct Ctx<'a> {
    app: &'a App,
    theme: &'a Theme,
    size: Size,
}

/// Draws the whole console.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame<'_>) {
    let area = frame.area();
    let Some(size) = Size::of(area) else {
        let text = vec![
            Line::from("terminal too small"),
            Line::from(format!("{}×{}, need 40×15", area.width, area.height)),
        ];
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    };
    let ctx = Ctx { app, theme, size };
    let banner = banner(&ctx);
    let [head, tabs, banner_area, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(u16::from(banner.is_some())),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header(&ctx)), head);
    frame.render_widget(Paragraph::new(tab_line(&ctx)), tabs);
    if let Some(b) = banner {
        frame.render_widget(Paragraph::new(b), banner_area);
    }
    match app.screen {
        Screen::Overview => overview::render(&ctx, frame, body),
        Screen::Hardware => hardware::render(&ctx, frame, body),
        Screen::Capacity => capacity::render(&ctx, frame, body),
        Screen::Power => power::render(&ctx, frame, body),
        Screen::Stake => stake::render(&ctx, frame, body),
        Screen::Events => events::render(&ctx, frame, body),
    }
    frame.render_widget(Paragraph::new(footer(app, theme, foot.width)), foot);
    if app.help {
        help(&ctx, frame, body);
    }
}

fn header(ctx: &Ctx<'_>) -> Line<'static> {
    let m = ctx.app.view();
    let t = ctx.theme;
    // Below 120 columns the full id would push the link state off the line.
    let id = if ctx.size < Size::Large {
        format::short_id(&m.facts.node_id)
    } else {
        m.facts.node_id.clone()
    };
    let mut spans = vec![Span::styled(" nodus ", t.accent()), Span::raw(id)];
    if ctx.size > Size::Small {
        spans.push(Span::styled(t.sep(), t.dim()));
        spans.push(Span::raw(match m.facts.farm {
            Some(f) => format!("farm {f}"),
            None => "no farm".to_owned(),
        }));
        spans.push(Span::styled(t.sep(), t.dim()));
        spans.push(Span::raw(m.facts.mode.as_str()));
    }
    spans.push(Span::styled(t.sep(), t.dim()));
    let (level, word) = connection_word(&m.connection);
    spans.push(Span::styled(
        format!("{} {word}", glyph(t, level)),
        t.level(level),
    ));
    Line::from(spans)
}

/// The glyph of a level alone (the word is supplied by the caller).
fn glyph(t: &Theme, level: Level) -> &'static str {
    t.level_text(level).split(' ').next().unwrap_or("?")
}

fn connection_word(c: &Connection) -> (Level, &'static str) {
    match c {
        Connection::Connecting => (Level::Unknown, "connecting"),
        Connection::Connected => (Level::Ok, "connected"),
        Connection::Stale { .. } => (Level::Warning, "stale"),
        Connection::Refused(_) => (Level::Critical, "refused"),
        Connection::Offline => (Level::Unknown, "offline file"),
    }
}

fn tab_line(ctx: &Ctx<'_>) -> Line<'static> {
    let t = ctx.theme;
    let mut spans = Vec::new();
    for (i, s) in Screen::ALL.iter().enumerate() {
        let current = *s == ctx.app.screen;
        let text = if ctx.size == Size::Small && !current {
            format!(" {} ", i + 1)
        } else {
            format!(" {} {} ", i + 1, s.title())
        };
        spans.push(if current {
            Span::styled(text, t.highlight())
        } else {
            Span::raw(text)
        });
    }
    Line::from(spans)
}

fn banner(ctx: &Ctx<'_>) -> Option<Line<'static>> {
    let app = ctx.app;
    let t = ctx.theme;
    if let Some(n) = &app.notice {
        return Some(Line::styled(
            format!(" {} {n}", glyph(t, Level::Warning)),
            t.level(Level::Warning),
        ));
    }
    if app.frozen.is_some() {
        return Some(Line::styled(
            format!(
                " {} frozen: display paused, Ctrl-Z to thaw",
                glyph(t, Level::Warning)
            ),
            t.level(Level::Warning),
        ));
    }
    match &app.model.connection {
        Connection::Stale { since_unix_s } => Some(Line::styled(
            format!(
                " {} stale {}s, reconnecting",
                glyph(t, Level::Warning),
                app.model.now_unix_s.saturating_sub(*since_unix_s)
            ),
            t.level(Level::Warning),
        )),
        Connection::Refused(why) => Some(Line::styled(
            format!(" {} not authorized: {why}", glyph(t, Level::Critical)),
            t.level(Level::Critical),
        )),
        _ => None,
    }
}

/// The footer's `(key, description)` pairs: the active keymap rows.
pub fn footer_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    if app.input == InputMode::Filter {
        return FILTER_KEYS.to_vec();
    }
    keymap::active(app.screen, app.on_node)
        .map(|b| (b.label, b.short))
        .collect()
}

fn footer(app: &App, t: &Theme, width: u16) -> Line<'static> {
    let keys = footer_keys(app);
    let mut spans = Vec::new();
    if app.input == InputMode::Filter {
        spans.push(Span::styled(" /", t.key()));
        spans.push(Span::raw(format!("{}_ ", app.filter)));
    }
    let full: usize = keys
        .iter()
        .map(|(k, d)| {
            k.chars().count()
                + 1
                + if d.is_empty() {
                    0
                } else {
                    d.chars().count() + 1
                }
        })
        .sum();
    let with_words = full
        + spans
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>()
        < usize::from(width);
    for (k, d) in keys {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        if with_words && !d.is_empty() {
            spans.push(Span::raw(format!(" {d}")));
        }
    }
    Line::from(spans)
}

/// The help's `(keys, description)` rows: the same rows as the footer.
pub fn help_rows(app: &App) -> Vec<(&'static str, &'static str)> {
    keymap::active(app.screen, app.on_node)
        .map(|b| (b.label, b.help))
        .collect()
}

fn help(ctx: &Ctx<'_>, frame: &mut Frame<'_>, body: Rect) {
    let t = ctx.theme;
    let rows = help_rows(ctx.app);
    let w = if ctx.size == Size::Small {
        body.width
    } else {
        body.width.min(64)
    };
    let h = (u16::try_from(rows.len()).unwrap_or(u16::MAX) + 2).min(body.height);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line<'_>> = rows
        .into_iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!(" {k:<4}"), t.key()),
                Span::raw(d),
            ])
        })
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" help ", t.accent())),
        ),
        area,
    );
}

/// A titled block for a screen section.
fn section<'a>(t: &Theme, title: impl Into<String>) -> Block<'a> {
    Block::default()
        .borders(Borders::TOP)
        .border_style(t.dim())
        .title(Span::styled(format!(" {} ", title.into()), t.accent()))
}

/// `label  value` line.
fn kv(t: &Theme, label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!(" {label:<12}"), t.dim()),
        Span::raw(value.into()),
    ])
}

/// `label  glyph word` line, the word styled by level.
/// Empty `words` show the level's own word (`▲ warning`).
fn kv_level(t: &Theme, label: &str, level: Level, words: impl Into<String>) -> Line<'static> {
    let words = words.into();
    let text = if words.is_empty() {
        t.level_text(level).to_owned()
    } else {
        format!("{} {words}", glyph(t, level))
    };
    Line::from(vec![
        Span::styled(format!(" {label:<12}"), t.dim()),
        Span::styled(text, t.level(level)),
    ])
}

/// A styled default, for cells without emphasis.
fn plain() -> Style {
    Style::default()
}
