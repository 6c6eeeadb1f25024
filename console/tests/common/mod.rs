//! The fixed model every console test renders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use nodus_console::app::App;
use nodus_console::model::{Inventory, Model};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use nodus_console::theme::Theme;

/// The committed fixture inventory.
pub(crate) fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory.json")
}

/// The demo model built from the fixture.
pub(crate) fn fixture_model() -> Model {
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    nodus_console::demo::model(Inventory::from_json(&text).unwrap())
}

/// A console over the fixture model.
pub(crate) fn fixture_app() -> App {
    App::new(fixture_model(), false)
}

/// One frame on a test backend.
pub(crate) fn render_buffer(app: &App, theme: &Theme, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| nodus_console::view::render(app, theme, f))
        .unwrap();
    terminal.backend().buffer().clone()
}

/// The row of the buffer holding `needle`, as text.
pub(crate) fn row_text(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

pub(crate) mod fake_agent;
