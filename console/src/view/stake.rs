//! Stake: the farmer's balance, bond, rewards and validator standing.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::{Ctx, format, kv, kv_level, section};
use crate::model::{Level, StakeStatus, ValidatorStatus};

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let t = ctx.theme;
    let lines = match &ctx.app.view().stake {
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
                kv(t, "Rewards", format::tokens(s.rewards)),
                kv_level(t, "Validator", level, word),
            ]
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(section(t, "Stake")),
        area,
    );
}
