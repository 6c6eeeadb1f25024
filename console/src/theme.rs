//! What the terminal can show, decided once at start, and the styles built on it.
//!
//! A Linux VT (`TERM=linux`) has 16 colours and a console font without braille,
//! so charts use half blocks and status glyphs fall back to ASCII there.
//! `NO_COLOR` (<https://no-color.org>) turns every colour off. Status is never
//! shown by colour alone: every level carries a glyph and a word.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;

use crate::model::Level;

/// How many colours to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// None at all (`NO_COLOR`).
    None,
    /// The 16 ANSI colours (Linux VT).
    Ansi16,
    /// 256 colours and more.
    Full,
}

/// The terminal's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Colours.
    pub color: ColorDepth,
    /// Unicode symbols (✔ ▲ ✖, braille); false on a Linux VT.
    pub unicode: bool,
}

impl Capabilities {
    /// A modern terminal emulator.
    pub const FULL: Capabilities = Capabilities {
        color: ColorDepth::Full,
        unicode: true,
    };

    /// Decides from `TERM` and whether `NO_COLOR` is set to a non-empty value.
    pub fn detect(term: Option<&str>, no_color: bool) -> Self {
        let vt = matches!(
            term,
            Some("linux") | Some("vt100") | Some("vt220") | Some("dumb")
        );
        let color = if no_color || term == Some("dumb") {
            ColorDepth::None
        } else if vt {
            ColorDepth::Ansi16
        } else {
            ColorDepth::Full
        };
        Capabilities {
            color,
            unicode: !vt,
        }
    }

    /// From this process's environment.
    pub fn from_env() -> Self {
        let term = std::env::var("TERM").ok();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::detect(term.as_deref(), no_color)
    }
}

/// Styles and glyphs for one set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// What they are built from.
    pub caps: Capabilities,
}

impl Theme {
    /// The theme for `caps`.
    pub fn new(caps: Capabilities) -> Self {
        Theme { caps }
    }

    fn fg(&self, full: Color, ansi: Color) -> Style {
        match self.caps.color {
            ColorDepth::None => Style::default(),
            ColorDepth::Ansi16 => Style::default().fg(ansi),
            ColorDepth::Full => Style::default().fg(full),
        }
    }

    /// Style of a level's cell.
    pub fn level(&self, level: Level) -> Style {
        match level {
            Level::Ok | Level::Info => self.fg(Color::Rgb(80, 200, 120), Color::Green),
            Level::Warning => self
                .fg(Color::Rgb(240, 190, 40), Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Level::Critical => self
                .fg(Color::Rgb(240, 70, 70), Color::LightRed)
                .add_modifier(Modifier::BOLD),
            Level::Unknown => self.fg(Color::Rgb(150, 150, 150), Color::Gray),
        }
    }

    /// Glyph and word of a level: never colour alone.
    pub fn level_text(&self, level: Level) -> &'static str {
        match (level, self.caps.unicode) {
            (Level::Ok, true) => "✔ ok",
            (Level::Info, true) => "ℹ info",
            (Level::Warning, true) => "▲ warning",
            (Level::Critical, true) => "✖ critical",
            (Level::Unknown, true) => "? unknown",
            (Level::Ok, false) => "+ ok",
            (Level::Info, false) => "i info",
            (Level::Warning, false) => "! warning",
            (Level::Critical, false) => "X critical",
            (Level::Unknown, false) => "? unknown",
        }
    }

    /// Titles and labels.
    pub fn accent(&self) -> Style {
        self.fg(Color::Rgb(110, 170, 255), Color::LightBlue)
            .add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        match self.caps.color {
            ColorDepth::None => Style::default(),
            _ => self.fg(Color::Rgb(140, 140, 140), Color::DarkGray),
        }
    }

    /// The selected tab, and key names in the footer.
    pub fn highlight(&self) -> Style {
        match self.caps.color {
            ColorDepth::None => Style::default().add_modifier(Modifier::REVERSED),
            ColorDepth::Ansi16 => Style::default().fg(Color::Black).bg(Color::Cyan),
            ColorDepth::Full => Style::default()
                .fg(Color::Black)
                .bg(Color::Rgb(110, 170, 255)),
        }
    }

    /// Key names in the footer and help.
    pub fn key(&self) -> Style {
        self.fg(Color::Rgb(255, 210, 120), Color::Yellow)
            .add_modifier(Modifier::BOLD)
    }

    /// Bars: total, reserved, used.
    pub fn bar(&self, part: BarPart) -> Style {
        match part {
            BarPart::Used => self.fg(Color::Rgb(110, 170, 255), Color::LightBlue),
            BarPart::Reserved => self.fg(Color::Rgb(200, 140, 255), Color::Magenta),
            BarPart::Free => self.dim(),
        }
    }

    /// Chart marker: braille where the font has it, half blocks on a VT.
    pub fn marker(&self) -> Marker {
        if self.caps.unicode {
            Marker::Braille
        } else {
            Marker::HalfBlock
        }
    }

    /// Bar glyphs: used, reserved, free.
    pub fn bar_glyphs(&self) -> [&'static str; 3] {
        if self.caps.unicode {
            ["█", "▒", "░"]
        } else {
            ["#", "=", "."]
        }
    }

    /// The separator between header items.
    pub fn sep(&self) -> &'static str {
        if self.caps.unicode { " │ " } else { " | " }
    }
}

/// A segment of a capacity bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarPart {
    /// Used by workloads.
    Used,
    /// Kept by the system.
    Reserved,
    /// Free to sell.
    Free,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_vt_gets_16_colours_and_ascii() {
        let c = Capabilities::detect(Some("linux"), false);
        assert_eq!(c.color, ColorDepth::Ansi16);
        assert!(!c.unicode);
        assert_eq!(Theme::new(c).marker(), Marker::HalfBlock);
        assert_eq!(Theme::new(c).level_text(Level::Critical), "X critical");
    }

    #[test]
    fn no_color_wins() {
        let c = Capabilities::detect(Some("xterm-256color"), true);
        assert_eq!(c.color, ColorDepth::None);
        assert!(c.unicode);
        assert_eq!(Theme::new(c).level(Level::Critical).fg, None);
    }
}
