//! Number and time formatting for the screens.

/// Binary size: `1.8 TiB`, `512 MiB`.
pub(crate) fn bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Decimal rate: `12.3 MB/s`.
pub(crate) fn rate(bps: f64) -> String {
    const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let mut v = bps;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// `3d 04h 12m`, `4h 12m`, `12m 5s`.
pub(crate) fn duration(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m {:02}s", s % 60)
    }
}

/// `HH:MM:SS` UTC.
pub(crate) fn clock(unix_s: u64) -> String {
    let s = unix_s % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3_600, s / 60 % 60, s % 60)
}

/// `node1abcd…wxyz`: enough to tell nodes apart on a narrow screen.
pub(crate) fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 14 {
        return id.to_owned();
    }
    let head: String = chars[..9].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// An optional number with a unit, `–` when absent.
pub(crate) fn opt(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if v.abs() >= 100.0 || v.fract() == 0.0 => {
            format!("{v:.0} {unit}").trim_end().to_owned()
        }
        Some(v) => format!("{v:.2} {unit}").trim_end().to_owned(),
        None => "–".to_owned(),
    }
}

/// Micro-tokens as tokens: `1234.500000 NDS`.
pub(crate) fn tokens(micro: u128) -> String {
    format!("{}.{:06} NDS", micro / 1_000_000, micro % 1_000_000)
}

/// Parts per million as a percentage with one decimal: `99.5 %`.
pub(crate) fn ppm(ppm: u32) -> String {
    format!("{}.{} %", ppm / 10_000, ppm / 1_000 % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(1_920_383_410_176), "1.7 TiB");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(rate(12_345_678.0), "12.3 MB/s");
        assert_eq!(duration(3 * 86_400 + 4 * 3_600 + 12 * 60), "3d 04h 12m");
        assert_eq!(clock(86_400 + 3_661), "01:01:01");
        assert_eq!(short_id("node1qqqqqqqqqqqqqqqqwxyz"), "node1qqqq…wxyz");
        assert_eq!(tokens(1_234_500_000), "1234.500000 NDS");
        assert_eq!(ppm(995_400), "99.5 %");
        assert_eq!(ppm(1_000_000), "100.0 %");
        assert_eq!(ppm(7_999), "0.7 %");
        assert_eq!(opt(Some(41.5), "°C"), "41.50 °C");
        assert_eq!(opt(None, "V"), "–");
    }
}
