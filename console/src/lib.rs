//! `nodus-console`: the terminal dashboard of a Nodus node.
//!
//! It renders a [`model::Model`] — the console's own view of a node, built from
//! the agent's inventory JSON, telemetry series, events, stake and node facts —
//! through a sans-IO [`app::App`] (keys and [`model::Update`]s in, effects and a
//! dirty flag out) and [`view::render`]. A thin tokio loop ([`term`]) wires it to
//! crossterm and redraws only on change, at most 15 times a second.
//!
//! It deliberately is not hardware code: it never reads sysfs or talks to a device,
//! and it depends only on `nodus-wire`, never on `nodus-agent`, so a remote console
//! builds without any hardware crates. Data sources (the node's Unix socket, QUIC)
//! plug in by sending [`model::Update`]s into [`term::run`].
//!
//! ```
//! use nodus_console::{app::App, model::{Inventory, Model}, theme::{Capabilities, Theme}};
//! let inv = Inventory::from_json(r#"{"cpu": {"logical": 8}}"#).unwrap();
//! let app = App::new(nodus_console::demo::model(inv), false);
//! let text = nodus_console::cli::render_text(&app, &Theme::new(Capabilities::FULL), 80, 24);
//! assert!(text.contains("Overview"));
//! ```

pub mod app;
pub mod cli;
pub mod demo;
pub mod keymap;
pub mod model;
pub mod node_cli;
pub mod report;
pub mod source;
pub mod term;
pub mod theme;
pub mod view;
