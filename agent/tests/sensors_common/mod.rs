//! Helpers shared by the sensors and power tests: the real-machine fixtures and a
//! parser for node_exporter's expected output (Prometheus text format).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{collections::BTreeMap, path::PathBuf, process::Command};

/// `$NODUS_FIXTURES`, else the first `shared/fixtures/sysfs` above the crate
/// (`../shared` beside the repository, as sessions and CI lay it out).
pub fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("NODUS_FIXTURES") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|up| up.join("shared/fixtures/sysfs"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "shared/fixtures/sysfs not found above {}",
                manifest.display()
            )
        })
}

/// Unpacks a fixture archive into a fresh temporary directory.
pub fn unpack(archive: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures().join(archive);
    assert!(file.exists(), "fixture {} is missing", file.display());
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&file)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "tar xzf {} failed", file.display());
    dir
}

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the text exposition format: `name{k="v",…} value`, `#` lines skipped.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparsable line {l:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].trim_start_matches(',').to_owned();
            let mut chars = rest[eq + 1..].strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            rest = rest[eq + 1..].strip_prefix('"')?.get(end + 1..)?;
            rest = rest.strip_prefix(',').unwrap_or(rest);
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// node_exporter's expected metrics for `node-exporter-sys.tar.gz`.
pub fn node_exporter_samples() -> Vec<Sample> {
    let text = std::fs::read_to_string(fixtures().join("node-exporter-e2e-output.txt")).unwrap();
    parse_prometheus(&text)
}

#[test]
fn parses_the_text_format() {
    let s =
        parse_prometheus("# HELP x y\nnode_a{chip=\"a_b\",label=\"q\\\"x\"} 1.25e+08\nnode_b 3\n");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].name, "node_a");
    assert_eq!(s[0].labels["chip"], "a_b");
    assert_eq!(s[0].labels["label"], "q\"x");
    assert_eq!(s[0].value, 1.25e8);
    assert_eq!((s[1].name.as_str(), s[1].value), ("node_b", 3.0));
}
