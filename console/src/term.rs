//! The thin async shell around [`App`]: crossterm's event stream, data-source
//! updates and the clock in, frames out. Redraws only when something changed,
//! and at most [`MAX_FPS`] times a second.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::time::Instant;

use nodus_wire::console::Request;

use crate::app::{App, Effect};
use crate::model::Update;
use crate::source::Tagged;
use crate::theme::Theme;
use crate::view;

/// Frame-rate cap: enough for smooth charts, cheap on a shared node.
pub const MAX_FPS: u32 = 15;

/// How the loop runs.
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// Send the wall clock to the model every second (off for `--demo`, whose
    /// model lives at a fixed time).
    pub wall_clock: bool,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the console on this process's terminal until the operator quits or the
/// input stream ends. The terminal is restored on every path out.
///
/// `updates` carry the node tab they belong to; action requests for tab `i` go
/// to `requests[i]`.
pub async fn run(
    mut app: App,
    theme: Theme,
    mut updates: mpsc::Receiver<Tagged>,
    requests: Vec<mpsc::Sender<Request>>,
    config: LoopConfig,
) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = async {
        let frame_gap = Duration::from_secs(1) / MAX_FPS;
        let mut events = EventStream::new();
        let mut last_draw: Option<Instant> = None;
        let mut clock = tokio::time::interval(Duration::from_secs(1));
        let mut updates_open = true;
        loop {
            let now = Instant::now();
            let next_draw = last_draw.map_or(now, |t| t + frame_gap);
            if app.dirty && next_draw <= now {
                terminal.draw(|f| view::render(&app, &theme, f))?;
                app.dirty = false;
                last_draw = Some(now);
            }
            let wait_draw = app.dirty;
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(TermEvent::Key(k))) => {
                        for effect in app.handle_key(k) {
                            match effect {
                                Effect::Quit => return Ok(()),
                                Effect::Bell => {
                                    let mut out = std::io::stdout();
                                    out.write_all(b"\x07")?;
                                    out.flush()?;
                                }
                                Effect::Send { tab, request } => {
                                    let sent = requests
                                        .get(tab)
                                        .is_some_and(|tx| tx.try_send(request).is_ok());
                                    if !sent {
                                        app.notice = Some("action not sent: the link is busy or down".into());
                                    }
                                }
                            }
                        }
                    }
                    Some(Ok(TermEvent::Resize(..))) => app.dirty = true,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
                u = updates.recv(), if updates_open => match u {
                    Some((tab, u)) => {
                        app.handle_tab_update(tab, u);
                        if std::mem::take(&mut app.bell) {
                            let mut out = std::io::stdout();
                            out.write_all(b"\x07")?;
                            out.flush()?;
                        }
                    }
                    None => updates_open = false,
                },
                _ = clock.tick(), if config.wall_clock => {
                    let now = unix_now();
                    for tab in 0..app.tab_count() {
                        app.handle_tab_update(tab, Update::Clock(now));
                    }
                }
                () = tokio::time::sleep_until(next_draw), if wait_draw => {}
            }
        }
    }
    .await;
    ratatui::try_restore()?;
    result
}
