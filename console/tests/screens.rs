//! Snapshot tests of every screen at every layout size, and style checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixture_app, render_buffer, row_text};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nodus_console::app::{App, Effect, InputMode, Screen};
use nodus_console::cli::render_text;
use nodus_console::model::{ActionState, ActionStatus, Connection, Session, Update};
use nodus_console::theme::{Capabilities, ColorDepth, Theme};
use nodus_console::view::{footer_keys, help_rows};
use nodus_wire::Role;
use nodus_wire::console::Action;
use ratatui::style::Color;

fn full() -> Theme {
    Theme::new(Capabilities::FULL)
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn every_screen_at_every_size() {
    for (w, h) in [(120, 40), (80, 24), (40, 15)] {
        for (i, screen) in Screen::ALL.iter().enumerate() {
            let mut app = fixture_app();
            app.handle_key(key(KeyCode::F(u8::try_from(i + 1).unwrap())));
            assert_eq!(app.screen, *screen);
            let text = render_text(&app, &full(), w, h);
            insta::assert_snapshot!(format!("{}_{w}x{h}", screen.title().to_lowercase()), text);
        }
    }
}

#[test]
fn help_overlay_and_vt_fallback() {
    let mut app = fixture_app();
    app.handle_key(key(KeyCode::Char('?')));
    insta::assert_snapshot!("help_120x40", render_text(&app, &full(), 120, 40));
    let vt = Theme::new(Capabilities::detect(Some("linux"), false));
    let mut app = fixture_app();
    app.handle_key(key(KeyCode::Char('4')));
    insta::assert_snapshot!("power_vt_80x24", render_text(&app, &vt, 80, 24));
}

#[test]
fn too_small() {
    let text = render_text(&fixture_app(), &full(), 39, 15);
    assert!(text.contains("terminal too small"), "{text}");
    insta::assert_snapshot!("too_small_39x15", text);
    assert!(render_text(&fixture_app(), &full(), 60, 14).contains("terminal too small"));
}

#[test]
fn fixture_values_reach_the_screens() {
    let mut app = fixture_app();
    let text = render_text(&app, &full(), 120, 40);
    for s in [
        "node1qgx7d3k5",
        "farm 7",
        "managed",
        "3d 04h 12m",
        "chain not connected",
        "Alerts",
    ] {
        assert!(text.contains(s), "overview lacks {s:?}:\n{text}");
    }
    app.handle_key(key(KeyCode::Char('2')));
    let text = render_text(&app, &full(), 120, 40);
    for s in [
        "nvme0n1",
        "Samsung SSD 980 PRO",
        "standby",
        "1000 Mb/s",
        "Core 0",
        "83 °C",
        "100 °C",
    ] {
        assert!(text.contains(s), "hardware lacks {s:?}:\n{text}");
    }
    app.handle_key(key(KeyCode::Char('3')));
    let text = render_text(&app, &full(), 120, 40);
    assert!(
        text.contains("total 16 CPU  reserved 1 CPU  used 7 CPU  free 8 CPU"),
        "{text}"
    );
    app.handle_key(key(KeyCode::Char('5')));
    assert!(render_text(&app, &full(), 80, 24).contains("chain not connected"));
}

/// Every health cell: a colour and a glyph with a word.
#[test]
fn health_is_never_colour_alone() {
    let mut app = fixture_app();
    app.handle_key(key(KeyCode::Char('2')));
    let buf = render_buffer(&app, &full(), 120, 40);
    let mut seen = [false; 3];
    for y in 0..buf.area.height {
        let row = row_text(&buf, y);
        for (i, word) in ["✔ ok", "▲ warning", "✖ critical"].iter().enumerate() {
            let Some(byte) = row.find(word) else { continue };
            seen[i] = true;
            let x = u16::try_from(row[..byte].chars().count()).unwrap();
            let glyph = &buf[(x, y)];
            let expect = match i {
                0 => Color::Rgb(80, 200, 120),
                1 => Color::Rgb(240, 190, 40),
                _ => Color::Rgb(240, 70, 70),
            };
            assert_eq!(glyph.fg, expect, "{word} at row {y}");
            // The word after the glyph carries the same colour.
            assert_eq!(buf[(x + 2, y)].fg, expect);
        }
    }
    assert_eq!(
        seen,
        [true, true, false],
        "fixture has ok and warning cells, no critical"
    );
    // A critical sensor: crit crossed.
    let mut m = common::fixture_model();
    m.inventory.sensors[1].value = Some(101.0);
    let mut app = App::new(m, false);
    app.handle_key(key(KeyCode::Char('2')));
    assert!(render_text(&app, &full(), 120, 40).contains("✖ critical"));
}

#[test]
fn vt_uses_ascii_and_16_colours() {
    let vt = Theme::new(Capabilities::detect(Some("linux"), false));
    let mut app = fixture_app();
    app.handle_key(key(KeyCode::Char('2')));
    let buf = render_buffer(&app, &vt, 120, 40);
    let text = render_text(&app, &vt, 120, 40);
    assert!(
        text.contains("! warning") && text.contains("+ ok"),
        "{text}"
    );
    assert!(!text.contains('✔') && !text.contains('▲'));
    for cell in buf.content() {
        assert!(
            !matches!(cell.fg, Color::Rgb(..) | Color::Indexed(_)),
            "{cell:?}"
        );
        assert!(
            !matches!(cell.bg, Color::Rgb(..) | Color::Indexed(_)),
            "{cell:?}"
        );
    }
    app.handle_key(key(KeyCode::Char('4')));
    let text = render_text(&app, &vt, 120, 40);
    assert!(
        !text.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
        "braille on a VT"
    );
    assert!(
        text.contains('▀') || text.contains('▄') || text.contains('█'),
        "{text}"
    );
}

#[test]
fn no_color_renders_no_colours() {
    let theme = Theme::new(Capabilities::detect(Some("xterm-256color"), true));
    assert_eq!(theme.caps.color, ColorDepth::None);
    for screen in 1..=6u8 {
        let mut app = fixture_app();
        app.handle_key(key(KeyCode::F(screen)));
        app.handle_key(key(KeyCode::Char('?')));
        let buf = render_buffer(&app, &theme, 120, 40);
        for cell in buf.content() {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "{cell:?} on screen {screen}"
            );
        }
        // Status still reads: glyph and word.
        if screen == 1 {
            assert!(render_text(&app, &theme, 120, 40).contains("▲ warning"));
        }
    }
}

#[test]
fn help_lists_exactly_the_footer_keys() {
    for on_node in [false, true] {
        for screen in Screen::ALL {
            let mut app = App::new(common::fixture_model(), on_node);
            app.screen = screen;
            let footer: Vec<_> = footer_keys(&app).into_iter().map(|(k, _)| k).collect();
            let help: Vec<_> = help_rows(&app).into_iter().map(|(k, _)| k).collect();
            assert_eq!(footer, help);
            assert_eq!(footer.contains(&"q"), !on_node);
            assert_eq!(footer.contains(&"f"), screen == Screen::Events);
            // And the rendered footer line shows every key, at every size.
            app.handle_key(key(KeyCode::Char('?')));
            for (w, h) in [(120, 40), (80, 24), (40, 15)] {
                let text = render_text(&app, &full(), w, h);
                let last = text.lines().nth(usize::from(h) - 1).unwrap();
                for k in &footer {
                    // At 40 columns the screen digits collapse into `1-6`.
                    let shown = last.contains(k)
                        || (k.len() == 1
                            && k.as_bytes()[0].is_ascii_digit()
                            && last.contains("1-6"));
                    assert!(shown, "footer {last:?} lacks {k} at {w}x{h}");
                    assert!(
                        text.contains(&format!(" {k:<4}")) || w == 40,
                        "help lacks {k}"
                    );
                }
            }
        }
    }
}

#[test]
fn q_on_node_stays_and_says_why() {
    let mut app = App::new(common::fixture_model(), true);
    assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![Effect::Bell]);
    assert!(render_text(&app, &full(), 80, 24).contains("cannot quit"));
    let mut app = fixture_app();
    assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
}

#[test]
fn events_filter_follow_and_pause() {
    let mut app = fixture_app();
    app.handle_key(key(KeyCode::Char('6')));
    app.handle_key(key(KeyCode::Char('/')));
    for ch in "reallocated".chars() {
        app.handle_key(key(KeyCode::Char(ch)));
    }
    assert_eq!(app.input, InputMode::Filter);
    let text = render_text(&app, &full(), 120, 40);
    assert!(text.contains("/reallocated_"), "{text}");
    assert!(text.contains("8 reallocated sectors"));
    assert!(!text.contains("nodus-agent started"));
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(key(KeyCode::Esc));
    assert!(render_text(&app, &full(), 120, 40).contains("nodus-agent started"));
    // Paused: a new event does not move the view; following: it shows.
    app.handle_key(key(KeyCode::Char('f')));
    assert!(!app.follow);
    let last = app.model.events.back().unwrap().seq;
    for i in 0..60 {
        let seq = last + 1 + i;
        app.handle_update(Update::Event(nodus_console::model::Event {
            seq,
            unix_s: app.model.now_unix_s,
            message: format!("flood {i}"),
            source: "test".into(),
            ..Default::default()
        }));
    }
    let text = render_text(&app, &full(), 120, 40);
    assert!(
        text.contains("paused") && !text.contains("flood 59"),
        "{text}"
    );
    app.handle_key(key(KeyCode::Char('f')));
    let text = render_text(&app, &full(), 120, 40);
    assert!(
        text.contains("following") && text.contains("flood 59"),
        "{text}"
    );
}

#[test]
fn stale_link_keeps_state_and_says_so() {
    let mut app = fixture_app();
    let now = app.model.now_unix_s;
    app.handle_update(Update::Connection(Connection::Stale { since_unix_s: now }));
    app.handle_update(Update::Clock(now + 12));
    let text = render_text(&app, &full(), 80, 24);
    assert!(text.contains("stale 12s, reconnecting"), "{text}");
    assert!(text.contains("node1qgx7d3k5"));
}

fn operator(model: &mut nodus_console::model::Model) {
    model.apply(Update::Session(Session {
        role: Role::Operator,
        confirm_token: "node1qgx7d3k5".into(),
        actions: true,
    }));
    model.apply(Update::Connection(Connection::Connected));
}

/// Two node tabs: one live, one refused; the tab line, the refused screen and
/// switching with `]`.
#[test]
fn node_tabs_and_the_not_authorized_screen() {
    let mut app = App::with_tabs(
        vec![
            "node1qgx7…@10.0.0.2:7447".into(),
            "node1zzzz…@10.0.0.3:7447".into(),
        ],
        false,
    );
    app.model = common::fixture_model();
    operator(&mut app.model);
    app.handle_tab_update(
        1,
        Update::Connection(Connection::Refused(
            "Not authorized: the node does not know this key".into(),
        )),
    );
    for (w, h) in [(120, 40), (80, 24), (40, 15)] {
        let text = render_text(&app, &full(), w, h);
        assert!(text.contains("refused"), "{text}");
        insta::assert_snapshot!(format!("tabs_{w}x{h}"), text);
    }
    assert!(footer_keys(&app).iter().any(|(k, _)| *k == "]"));
    app.handle_key(key(KeyCode::Char(']')));
    assert_eq!(app.tab, 1);
    for (w, h) in [(120, 40), (80, 24), (40, 15)] {
        let text = render_text(&app, &full(), w, h);
        assert!(text.contains("NOT AUTHORIZED"), "{text}");
        insta::assert_snapshot!(format!("refused_{w}x{h}"), text);
    }
    // Back: the first tab kept its state.
    app.handle_key(key(KeyCode::Char('[')));
    assert_eq!(app.model.inventory.cpu.logical, Some(16));
}

#[test]
fn stale_banner_snapshot() {
    let mut app = fixture_app();
    let now = app.model.now_unix_s;
    app.handle_update(Update::Connection(Connection::Stale { since_unix_s: now }));
    app.handle_update(Update::Clock(now + 7));
    for (w, h) in [(120, 40), (80, 24), (40, 15)] {
        let text = render_text(&app, &full(), w, h);
        assert!(text.contains("stale 7s, reconnecting"), "{text}");
        insta::assert_snapshot!(format!("stale_{w}x{h}"), text);
    }
}

/// Approve a disk: select it, type the token, send; the refusal shows verbatim.
#[test]
fn action_prompt_confirms_and_shows_the_outcome() {
    let mut app = fixture_app();
    operator(&mut app.model);
    app.handle_key(key(KeyCode::Char('2')));
    app.handle_key(key(KeyCode::Char('d')));
    app.handle_key(key(KeyCode::Char('d')));
    assert_eq!(app.disk, 2);
    assert!(app.handle_key(key(KeyCode::Char('a'))).is_empty());
    assert_eq!(app.input, InputMode::Confirm);
    for ch in "node1qgx".chars() {
        app.handle_key(key(KeyCode::Char(ch)));
    }
    for (w, h) in [(120, 40), (80, 24), (40, 15)] {
        let text = render_text(&app, &full(), w, h);
        assert!(text.contains("node1qgx_"), "{text}");
        insta::assert_snapshot!(format!("prompt_{w}x{h}"), text);
    }
    // A wrong token does not send.
    assert_eq!(app.handle_key(key(KeyCode::Enter)), vec![Effect::Bell]);
    assert!(app.notice.as_deref().unwrap().contains("does not match"));
    for ch in "node1qgx7d3k5".chars() {
        app.handle_key(key(KeyCode::Char(ch)));
    }
    let effects = app.handle_key(key(KeyCode::Enter));
    let [Effect::Send { tab: 0, request }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        request.action,
        Action::ApproveDisk {
            disk: "sdb".into(),
            approval: None
        }
    );
    assert_eq!(request.confirm, "node1qgx7d3k5");
    assert_eq!(app.input, InputMode::Normal);
    let text = render_text(&app, &full(), 120, 40);
    assert!(
        text.contains("approve disk sdb for pool use, WIPING it: sent, waiting"),
        "{text}"
    );
    app.handle_update(Update::Action(ActionStatus {
        id: request.id.to_string(),
        what: String::new(),
        state: ActionState::Refused("disk sdb holds a partition table the node did not create; an owner-signed approval is required".into()),
    }));
    let text = render_text(&app, &full(), 120, 40);
    assert!(
        text.contains("refused: disk sdb holds a partition table the node did not create"),
        "{text}"
    );
    insta::assert_snapshot!("outcome_120x40", text);
    app.handle_key(key(KeyCode::Esc));
    assert!(app.model.action.is_none());
}

#[test]
fn a_viewer_sees_actions_as_unavailable() {
    let mut app = fixture_app();
    app.model.apply(Update::Session(Session {
        role: Role::Viewer,
        confirm_token: "node1qgx7d3k5".into(),
        actions: true,
    }));
    app.model.apply(Update::Connection(Connection::Connected));
    assert_eq!(app.handle_key(key(KeyCode::Char('R'))), vec![Effect::Bell]);
    assert_eq!(app.input, InputMode::Normal);
    let text = render_text(&app, &full(), 120, 40);
    assert!(
        text.contains("reboot: unavailable, needs the operator role (this console is viewer)"),
        "{text}"
    );
    assert!(
        help_rows(&app)
            .iter()
            .any(|(k, h)| *k == "R" && h.contains("n/a"))
    );
    // The keys stay in the footer, dimmed.
    let buf = render_buffer(&app, &full(), 120, 40);
    let last = row_text(&buf, 39);
    let x = u16::try_from(last[..last.find(" R ").unwrap()].chars().count() + 1).unwrap();
    assert_eq!(buf[(x, 39)].symbol(), "R");
    assert_ne!(buf[(x, 39)].style().fg, buf[(1, 39)].style().fg);
}

/// Identify: every console shows the node's identify event as a banner and
/// rings the bell; Esc dismisses it.
#[test]
fn identify_event_shows_a_banner_and_rings() {
    let mut app = App::new(common::fixture_model(), true);
    let now = app.model.now_unix_s;
    let seq = app.model.events.back().unwrap().seq + 1;
    app.handle_tab_update(
        0,
        Update::Event(nodus_console::model::Event {
            seq,
            unix_s: now,
            level: nodus_console::model::Level::Info,
            source: "identify".into(),
            message: "IDENTIFY: this node was asked to show itself by owner".into(),
        }),
    );
    assert!(app.bell);
    let text = render_text(&app, &full(), 80, 24);
    assert!(text.contains("◆ IDENTIFY: this node was asked"), "{text}");
    let vt = Theme::new(Capabilities::detect(Some("linux"), false));
    assert!(render_text(&app, &vt, 80, 24).contains("* IDENTIFY"));
    app.handle_key(key(KeyCode::Esc));
    assert!(!render_text(&app, &full(), 80, 24).contains("IDENTIFY"));
}
