//! Rendering: `render(&App, &mut Frame)` draws the chrome (header, tabs, banner,
//! footer, help) and hands the body to the current screen's module.
//!
//! Layout classes: 120×40 and up is [`Size::Large`], 80×24 [`Size::Medium`],
//! 40×15 [`Size::Small`]; anything smaller only says so.

mod capacity;
mod events;
pub(crate) mod format;
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
use crate::keymap::{self, CONFIRM_KEYS, FILTER_KEYS};
use crate::model::{ActionState, Connection, Level};
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
    // The identify banner comes on top of whatever else there is to say.
    let banner: Vec<Line<'static>> = identify_banner(&ctx)
        .into_iter()
        .chain(banner(&ctx))
        .collect();
    let multi = app.tab_count() > 1;
    let [head, nodes, tabs, banner_area, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(multi)),
        Constraint::Length(1),
        Constraint::Length(u16::try_from(banner.len()).unwrap_or(0)),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header(&ctx)), head);
    if multi {
        frame.render_widget(Paragraph::new(node_tabs(&ctx)), nodes);
    }
    frame.render_widget(Paragraph::new(tab_line(&ctx)), tabs);
    if !banner.is_empty() {
        frame.render_widget(Paragraph::new(banner), banner_area);
    }
    if let Some(text) = placeholder(&ctx) {
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(section(theme, "Node")),
            body,
        );
    } else {
        screen(&ctx, frame, body);
    }
    frame.render_widget(Paragraph::new(footer(app, theme, foot.width)), foot);
    if app.help {
        help(&ctx, frame, body);
    }
    if let Some(p) = &app.prompt {
        prompt(&ctx, p, frame, body);
    }
}

fn screen(ctx: &Ctx<'_>, frame: &mut Frame<'_>, body: Rect) {
    match ctx.app.screen {
        Screen::Overview => overview::render(ctx, frame, body),
        Screen::Hardware => hardware::render(ctx, frame, body),
        Screen::Capacity => capacity::render(ctx, frame, body),
        Screen::Power => power::render(ctx, frame, body),
        Screen::Stake => stake::render(ctx, frame, body),
        Screen::Events => events::render(ctx, frame, body),
    }
}

/// The body before any state arrived: connecting, or refused.
fn placeholder(ctx: &Ctx<'_>) -> Option<Vec<Line<'static>>> {
    let m = ctx.app.view();
    let t = ctx.theme;
    if !m.facts.node_id.is_empty() {
        return None;
    }
    let name = ctx
        .app
        .tab_names
        .get(ctx.app.tab)
        .cloned()
        .unwrap_or_default();
    match &m.connection {
        Connection::Refused(why) => Some(vec![
            Line::default(),
            Line::styled(
                format!(" {} NOT AUTHORIZED", glyph(t, Level::Critical)),
                t.level(Level::Critical),
            ),
            Line::default(),
            Line::from(format!(" {name} refused this console.")),
            Line::from(format!(" {why}")),
            Line::default(),
            Line::from(" The node only admits its owner's key and keys the owner granted a role."),
            Line::from(" Ask the owner for a grant (nodus id grant … --out FILE), then start the"),
            Line::from(" console with --grant FILE."),
        ]),
        Connection::Connecting | Connection::Stale { .. } => Some(vec![
            Line::default(),
            Line::styled(
                format!(" {} connecting to {name} …", glyph(t, Level::Unknown)),
                t.level(Level::Unknown),
            ),
        ]),
        _ => None,
    }
}

fn node_tabs(ctx: &Ctx<'_>) -> Line<'static> {
    let t = ctx.theme;
    let app = ctx.app;
    let mut spans = if ctx.size == Size::Small {
        Vec::new()
    } else {
        vec![Span::styled(" nodes ", t.dim())]
    };
    for i in 0..app.tab_count() {
        let Some(m) = app.tab_model(i) else { continue };
        let id = if m.facts.node_id.is_empty() {
            app.tab_names.get(i).cloned().unwrap_or_default()
        } else {
            m.facts.node_id.clone()
        };
        let (level, word) = connection_word(&m.connection);
        // Small: the header names the shown node; tabs show only their link.
        let text = if ctx.size == Size::Small {
            format!(" {} {} {word} ", i + 1, glyph(t, level))
        } else {
            format!(
                " {} {} {} {word} ",
                i + 1,
                format::short_id(&id),
                glyph(t, level)
            )
        };
        spans.push(if i == app.tab {
            Span::styled(text, t.highlight())
        } else {
            Span::styled(text, t.level(level))
        });
    }
    Line::from(spans)
}

fn prompt(ctx: &Ctx<'_>, p: &crate::app::Prompt, frame: &mut Frame<'_>, body: Rect) {
    let t = ctx.theme;
    let w = body.width.min(72);
    let mut lines = vec![Line::from(format!(" {}?", p.what))];
    if ctx.size > Size::Small {
        lines.push(Line::default());
    }
    lines.extend([
        Line::from(vec![
            Span::raw(" Type "),
            Span::styled(p.token.clone(), t.key()),
            Span::raw(" to confirm:"),
        ]),
        Line::from(vec![
            Span::raw(" > "),
            Span::styled(format!("{}_", p.typed), t.accent()),
        ]),
    ]);
    // Wrapped height: the question may take several rows on a narrow screen.
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let h = (u16::try_from(rows).unwrap_or(u16::MAX) + 2).min(body.height);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" confirm ", t.accent())),
        ),
        area,
    );
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

fn identify_banner(ctx: &Ctx<'_>) -> Option<Line<'static>> {
    let m = &ctx.app.model;
    let t = ctx.theme;
    let e = m.identify.as_ref()?;
    if m.now_unix_s.saturating_sub(e.unix_s) >= crate::model::IDENTIFY_BANNER_S {
        return None;
    }
    Some(Line::styled(
        format!(
            " {} {} (Esc clears)",
            if t.caps.unicode { "◆" } else { "*" },
            e.message
        ),
        t.highlight(),
    ))
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
            format!(" {} {why}", glyph(t, Level::Critical)),
            t.level(Level::Critical),
        )),
        _ => app.model.action.as_ref().map(|a| {
            let (level, text) = match &a.state {
                ActionState::Pending => (Level::Unknown, format!("{}: sent, waiting", a.what)),
                ActionState::Done(msg) => (Level::Ok, format!("{}: done: {msg}", a.what)),
                ActionState::Refused(msg) => {
                    (Level::Critical, format!("{}: refused: {msg}", a.what))
                }
                ActionState::Lost => (
                    Level::Warning,
                    format!("{}: link lost before the answer; check the node", a.what),
                ),
            };
            Line::styled(
                format!(" {} {text} (Esc clears)", glyph(t, level)),
                t.level(level),
            )
        }),
    }
}

/// The footer's `(key, description)` pairs: the active keymap rows.
pub fn footer_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    match app.input {
        InputMode::Filter => return FILTER_KEYS.to_vec(),
        InputMode::Confirm => return CONFIRM_KEYS.to_vec(),
        InputMode::Normal => {}
    }
    keymap::active(app.key_context())
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
    if app.input == InputMode::Confirm {
        spans.push(Span::styled(" confirm:", t.key()));
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
    let may_act = app.may_act();
    // Keys alone still too wide (40 columns): the screen digits, which the tab
    // line lists anyway, collapse into one range.
    let keys_only: usize = keys.iter().map(|(k, _)| k.chars().count() + 1).sum();
    let keys: Vec<(&str, &str)> = if !with_words && keys_only >= usize::from(width) {
        let mut out = vec![("1-6", "")];
        out.extend(
            keys.into_iter()
                .filter(|(k, _)| !(k.len() == 1 && k.as_bytes()[0].is_ascii_digit())),
        );
        out
    } else {
        keys
    };
    for (k, d) in keys {
        // Actions this console may not run stay listed, dimmed (help says why).
        let unavailable = !may_act
            && app.input == InputMode::Normal
            && keymap::KEYMAP
                .iter()
                .any(|b| b.label == k && b.is_node_action());
        spans.push(Span::styled(
            format!(" {k}"),
            if unavailable { t.dim() } else { t.key() },
        ));
        if with_words && !d.is_empty() {
            spans.push(Span::raw(format!(" {d}")));
        }
    }
    Line::from(spans)
}

/// The help's `(keys, description)` rows: the same rows as the footer.
pub fn help_rows(app: &App) -> Vec<(&'static str, String)> {
    let may_act = app.may_act();
    keymap::active(app.key_context())
        .map(|b| {
            let help = if b.is_node_action() && !may_act {
                format!("{} – n/a: needs operator", b.help)
            } else {
                b.help.to_owned()
            };
            (b.label, help)
        })
        .collect()
}

fn help(ctx: &Ctx<'_>, frame: &mut Frame<'_>, body: Rect) {
    let t = ctx.theme;
    let rows = help_rows(ctx.app);
    let w = if ctx.size == Size::Small {
        body.width
    } else {
        body.width.min(72)
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
