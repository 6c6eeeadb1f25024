//! Hardware: disks, NICs and sensors.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Text;
use ratatui::widgets::{Cell, Row, Table};

use super::{Ctx, Size, format, plain, section};
use crate::model::{Level, Model};
use crate::theme::Theme;

fn level_cell(t: &Theme, level: Level) -> Cell<'static> {
    Cell::from(t.level_text(level)).style(t.level(level))
}

fn rate_of(m: &Model, name: &str) -> String {
    m.latest(name)
        .map_or_else(|| "–".to_owned(), |v| format::rate(f64::from(v)))
}

pub(super) fn render(ctx: &Ctx<'_>, frame: &mut Frame<'_>, area: Rect) {
    let t = ctx.theme;
    let app = ctx.app;
    let m = app.view();
    let inv = &m.inventory;
    let wide = ctx.size == Size::Large;
    let small = ctx.size == Size::Small;

    let disks: Vec<Row<'_>> = inv
        .disks
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            app.matches_filter(&d.name)
                || d.serial.as_deref().is_some_and(|s| app.matches_filter(s))
        })
        .map(|(i, d)| {
            let level = inv.component_level(&format!("disk {}", d.name));
            let smart = match (d.smart.status.as_str(), d.smart.passed) {
                ("ok", Some(true)) => "passed".to_owned(),
                ("ok", Some(false)) => "FAILED".to_owned(),
                (s, _) => s.replace('_', " "),
            };
            // The selected disk (`d`, target of `a`) is marked in text, not colour alone.
            let selected = i == app.disk;
            let name = if selected {
                let mark = if t.caps.unicode { "›" } else { ">" };
                Cell::from(format!("{mark}{}", d.name)).style(t.highlight())
            } else {
                Cell::from(format!(" {}", d.name))
            };
            let mut cells = vec![name, Cell::from(d.kind.clone())];
            if !small {
                cells.push(Cell::from(
                    d.size_bytes.map_or_else(|| "–".to_owned(), format::bytes),
                ));
                cells.push(Cell::from(smart));
            }
            cells.push(Cell::from(format::opt(d.celsius(), "°C")));
            if !small {
                cells.push(Cell::from(rate_of(m, &format!("disk.{}.read_bps", d.name))));
                cells.push(Cell::from(rate_of(
                    m,
                    &format!("disk.{}.write_bps", d.name),
                )));
            }
            if wide {
                cells.push(Cell::from(d.model.clone().unwrap_or_default()));
            }
            cells.push(level_cell(t, level));
            Row::new(cells)
        })
        .collect();
    let mut disk_head = vec![" disk", "kind"];
    let mut disk_w = vec![Constraint::Length(10), Constraint::Length(7)];
    if !small {
        disk_head.extend(["size", "SMART"]);
        disk_w.extend([Constraint::Length(10), Constraint::Length(13)]);
    }
    disk_head.push("temp");
    disk_w.push(Constraint::Length(8));
    if !small {
        disk_head.extend(["read", "write"]);
        disk_w.extend([Constraint::Length(11), Constraint::Length(11)]);
    }
    if wide {
        disk_head.push("model");
        disk_w.push(Constraint::Length(24));
    }
    disk_head.push("health");
    disk_w.push(Constraint::Length(11));

    let nics: Vec<Row<'_>> = inv
        .nics
        .iter()
        .filter(|n| n.physical && app.matches_filter(&n.name))
        .map(|n| {
            let up = n.operstate == "up" && n.carrier;
            let link = if up { Level::Ok } else { Level::Warning };
            let word = if up { "up" } else { "down" };
            let glyph = t.level_text(link).split(' ').next().unwrap_or("?");
            let mut cells = vec![
                Cell::from(n.name.clone()),
                Cell::from(format!("{glyph} {word}")).style(t.level(link)),
            ];
            if !small {
                cells.push(Cell::from(
                    n.speed_mbps
                        .map_or_else(|| "–".to_owned(), |s| format!("{s} Mb/s")),
                ));
            }
            cells.push(Cell::from(rate_of(m, &format!("nic.{}.rx_bps", n.name))));
            cells.push(Cell::from(rate_of(m, &format!("nic.{}.tx_bps", n.name))));
            if wide {
                cells.push(Cell::from(n.addresses.join(" ")));
            }
            Row::new(cells)
        })
        .collect();
    let mut nic_head = vec!["nic", "link"];
    let mut nic_w = vec![Constraint::Length(10), Constraint::Length(8)];
    if !small {
        nic_head.push("speed");
        nic_w.push(Constraint::Length(11));
    }
    nic_head.extend(["rx", "tx"]);
    nic_w.extend([Constraint::Length(11), Constraint::Length(11)]);
    if wide {
        nic_head.push("addresses");
        nic_w.push(Constraint::Min(10));
    }

    let sensors: Vec<Row<'_>> = inv
        .sensors
        .iter()
        .filter(|s| {
            app.matches_filter(&s.chip)
                || app.matches_filter(&s.sensor)
                || s.label.as_deref().is_some_and(|l| app.matches_filter(l))
        })
        .skip(app.scroll)
        .map(|s| {
            let name = match &s.label {
                Some(l) => format!("{} {l}", s.chip),
                None => format!("{} {}", s.chip, s.sensor),
            };
            let u = s.unit();
            let mut cells = vec![Cell::from(name), Cell::from(format::opt(s.value, u))];
            if !small {
                cells.push(Cell::from(format::opt(s.min, u)));
                cells.push(Cell::from(format::opt(s.max, u)));
                cells.push(Cell::from(format::opt(s.crit, u)));
            }
            cells.push(level_cell(t, s.level()));
            Row::new(cells)
        })
        .collect();
    let mut sensor_head = vec!["sensor", "value"];
    let mut sensor_w = vec![
        Constraint::Length(if small { 16 } else { 28 }),
        Constraint::Length(10),
    ];
    if !small {
        sensor_head.extend(["min", "max", "crit"]);
        sensor_w.extend([
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ]);
    }
    sensor_head.push("status");
    sensor_w.push(Constraint::Length(11));

    let rows_h = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).saturating_add(2);
    let [a, b, c] = Layout::vertical([
        Constraint::Length(rows_h(disks.len())),
        Constraint::Length(rows_h(nics.len())),
        Constraint::Min(3),
    ])
    .areas(area);
    let table =
        |rows: Vec<Row<'static>>, head: Vec<&'static str>, w: Vec<Constraint>, title: &str| {
            Table::new(rows, w)
                .header(Row::new(
                    head.into_iter()
                        .map(|h| Cell::from(Text::styled(h, t.dim()))),
                ))
                .block(section(t, title))
                .column_spacing(1)
                .style(plain())
        };
    // The selected disk's serial: what an owner's approval names (`a`), and what
    // is printed on the drive a farmer pulls from the chassis.
    let disk_title = match inv.disks.get(app.disk) {
        Some(d) => format!(
            "Disks · {} serial {}",
            d.name,
            d.serial.as_deref().unwrap_or("unknown")
        ),
        None => "Disks".to_owned(),
    };
    frame.render_widget(table(disks, disk_head, disk_w, &disk_title), a);
    frame.render_widget(table(nics, nic_head, nic_w, "NICs"), b);
    frame.render_widget(table(sensors, sensor_head, sensor_w, "Sensors"), c);
}
