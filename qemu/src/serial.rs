//! Reading the guest's serial console log as it grows, and the agent's ready line.

use std::{
    io::{Read as _, Seek as _, SeekFrom},
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use nodus_identity::NodeId;

/// How often the log file is polled for new bytes. The guest writes a few lines
/// per second at most; 50 ms keeps the ready time honest to that resolution.
const POLL: Duration = Duration::from_millis(50);

/// Follows a growing log file line by line.
#[derive(Debug)]
pub struct SerialWatch {
    path: PathBuf,
    pos: u64,
    partial: Vec<u8>,
}

impl SerialWatch {
    /// Follows `path` from its start (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            pos: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines appended since the last call (carriage returns and
    /// terminal escapes removed).
    pub fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if let Ok(n) = f.read_to_end(&mut buf) {
            self.pos += n as u64;
        }
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            lines.push(clean(&String::from_utf8_lossy(&line)));
        }
        lines
    }

    /// Waits until a line satisfies `pred`, up to `timeout`, giving up early when
    /// `gone()` says the VM has exited. Returns the line.
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
        mut gone: impl FnMut() -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = gone();
            for l in self.new_lines() {
                if pred(&l) {
                    return Some(l);
                }
            }
            if exited || Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Drops `\r` and ANSI escape sequences (the console's terminal setup).
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params final-byte(0x40..=0x7e).
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&d) {
                            break;
                        }
                    }
                }
            }
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// The agent's ready line:
/// `nodus-agent ready node=<NodeId> quic=<addr:port> socket=<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The node's identity (its QUIC key).
    pub node: NodeId,
    /// The address the agent listens on inside the guest.
    pub quic: Option<SocketAddr>,
}

impl Ready {
    /// Parses a console line; `None` if it is not the ready line. Kernel log
    /// prefixes before the marker are tolerated.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = &line[line.find("nodus-agent ready ")? + "nodus-agent ready ".len()..];
        let mut node = None;
        let mut quic = None;
        for word in rest.split_whitespace() {
            if let Some(v) = word.strip_prefix("node=") {
                node = v.parse().ok();
            } else if let Some(v) = word.strip_prefix("quic=") {
                quic = v.parse().ok();
            }
        }
        Some(Self { node: node?, quic })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn ready_line_parses_with_noise_around() {
        let key = nodus_identity::SecretKey::generate().unwrap().public();
        let id = NodeId::from(key);
        let line = format!(
            "\x1b[0m[    4.2] nodus-agent ready node={id} quic=0.0.0.0:7447 socket=/run/nodus/agent.sock"
        );
        let r = Ready::parse(&clean(&line)).unwrap();
        assert_eq!(r.node, id);
        assert_eq!(r.quic, Some("0.0.0.0:7447".parse().unwrap()));
        assert!(Ready::parse("nodus-agent ready node=garbage").is_none());
        assert!(Ready::parse("something else").is_none());
    }

    #[test]
    fn watch_returns_whole_lines_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serial.log");
        let mut w = SerialWatch::new(p.clone());
        assert!(w.new_lines().is_empty());
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"one\r\ntw").unwrap();
        assert_eq!(w.new_lines(), vec!["one"]);
        f.write_all(b"o\x1b[2J\nthree").unwrap();
        assert_eq!(w.new_lines(), vec!["two"]);
        assert!(w.new_lines().is_empty());
    }
}
