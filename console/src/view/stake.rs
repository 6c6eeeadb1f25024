//! Stake: the farmer's balance, bond, this node's farming rewards and uptime,
//! validator standing, and what the agent's chain client last said.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Ctx, format, glyph, kv, kv_level, section};
use crate::model::{Level, Model, StakeStatus, ValidatorStatus};

/// Chain events shown under the numbers.
const CHAIN_EVENTS: usize = 5;

/// The newest events of the agent's chain client, newest first.
fn chain_events(ctx: &Ctx<'_>, m: &Model) -> Vec<Line<'static>> {
    let t = ctx.theme;
    let recent: Vec<Line<'static>> = m
        .events
        .iter()
        .rev()
        .filter(|e| e.source == "chain")
        .take(CHAIN_EVENTS)
        .map(|e| {
            Line::from(vec![
                Span::styled(format!(" {} ", format::clock(e.unix_s)), t.dim()),
                Span::styled(format!("{} ", glyph(t, e.level)), t.level(e.level)),
                Span::raw(e.message.clone()),
            ])
        })
        .collect();
    if recent.is_empty() {
        return recent;
    }
    let mut lines = vec![Line::from(""), Line::styled(" Chain client", t.dim())];
    lines.extend(recent);
    lines
}

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let t = ctx.theme;
    let m = ctx.app.view();
    let mut lines = match &m.stake {
        StakeStatus::NotConnected => vec![
            kv_level(t, "Chain", Level::Unknown, "chain not connected"),
            Line::from(""),
            Line::styled(
                " Balance, bond, rewards and validator status appear once the agent reaches the chain.",
                t.dim(),
            ),
        ],
        StakeStatus::Known(s) => {
            let (level, word) = match s.validator {
                ValidatorStatus::None => (Level::Unknown, "not a validator"),
                ValidatorStatus::Active => (Level::Ok, "active"),
                ValidatorStatus::Waiting => (Level::Warning, "waiting"),
                ValidatorStatus::Jailed => (Level::Critical, "jailed"),
            };
            vec![
                kv_level(t, "Chain", Level::Ok, "connected"),
                kv(t, "Balance", format::tokens(s.balance)),
                kv(t, "Bonded", format::tokens(s.bonded)),
                kv(
                    t,
                    "Rewards",
                    format!("{} last epoch", format::tokens(s.rewards)),
                ),
                kv(t, "Uptime", format::ppm(s.uptime_ppm)),
                kv_level(t, "Validator", level, word),
            ]
        }
    };
    lines.extend(chain_events(ctx, m));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(section(t, "Stake")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use crate::app::{App, Screen};
    use crate::model::{Event, Model, StakeInfo, StakeStatus, ValidatorStatus};
    use crate::theme::{Capabilities, Theme};

    fn event(seq: u64, source: &str, message: &str) -> Event {
        Event {
            seq,
            unix_s: 3_600 + seq,
            level: crate::model::Level::Info,
            source: source.into(),
            message: message.into(),
        }
    }

    #[test]
    fn known_stake_shows_every_number_and_the_chain_clients_news() {
        let mut model = Model {
            stake: StakeStatus::Known(StakeInfo {
                balance: 12_500_000,
                bonded: 1_000_000,
                rewards: 749_249,
                uptime_ppm: 995_400,
                validator: ValidatorStatus::Active,
            }),
            ..Model::default()
        };
        model.facts.node_id = "node1test".into();
        model
            .events
            .push_back(event(1, "chain", "node registered in farm 1"));
        model.events.push_back(event(2, "health", "disk sda warm"));
        model.events.push_back(event(3, "chain", "uptime reported"));
        let mut app = App::new(model, false);
        app.screen = Screen::Stake;
        let text = crate::cli::render_text(&app, &Theme::new(Capabilities::FULL), 80, 24);
        for want in [
            "Balance     12.500000 NDS",
            "Bonded      1.000000 NDS",
            "Rewards     0.749249 NDS last epoch",
            "Uptime      99.5 %",
            "active",
            "01:00:03 ",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        // Newest first, only the chain client's.
        let registered = text.find("node registered in farm 1").unwrap();
        assert!(text.find("uptime reported").unwrap() < registered, "{text}");
        assert!(!text.contains("disk sda warm"), "{text}");
    }
}
