//! What the root package's end-to-end tests share: the `nodus` binary with a
//! test passphrase, keystores made through `nodus id new`, a `nodus agent run`
//! on loopback, and a tmux server of a test's own for the dashboard.
//!
//! Each test binary uses a part of it, so unused items are allowed here.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const NODUS: &str = env!("CARGO_BIN_EXE_nodus");
/// The passphrase of every keystore the tests make.
pub const PASS: &str = "test-pass";
/// How long a tmux wait may take before the test fails: it only bounds a hang.
pub const PANE_PATIENCE: Duration = Duration::from_secs(60);

/// `nodus` with the test passphrase, never as if under the node's init.
pub fn nodus() -> Command {
    let mut c = Command::new(NODUS);
    c.env("NODUS_PASSPHRASE", PASS).env_remove("NODUS_INIT");
    c
}

/// Whether `cmd` is on the PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first line `child` writes to its piped stdout: how a spawned process
/// says it is ready (`nodus-agent ready …`, a bus address). Blocks until then.
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// The exit code (-1 for a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Status and both streams, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fixture machine for `--root`: shared/fixtures/sysfs's procfs trees
/// unpacked into `root`.
pub fn unpack_fixture(root: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = manifest
        .ancestors()
        .map(|up| up.join("shared/fixtures/sysfs"))
        .find(|p| p.is_dir())
        .expect("shared/fixtures/sysfs beside the repository");
    std::fs::create_dir_all(root).unwrap();
    for a in ["procfs-sys.tar.gz", "procfs-proc.tar.gz"] {
        let ok = Command::new("tar")
            .arg("xzf")
            .arg(fixtures.join(a))
            .arg("-C")
            .arg(root)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot unpack {a}");
    }
}

/// The ids `nodus id new` reports for a key.
pub struct Ids {
    /// `acct1…`.
    pub account: String,
    /// `node1…`.
    pub node: String,
    /// The short form, a node's confirmation token.
    pub short: String,
}

/// A fresh keystore at `path`.
pub fn new_key(path: &Path) -> Ids {
    let out = nodus()
        .args(["--json", "id", "new", "--keystore"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    Ids {
        account: s("id"),
        node: s("node_id"),
        short: s("short"),
    }
}

/// `nodus agent run` on loopback in managed mode with the simulated power
/// backend (nothing happens to the host), on a machine root the test fills,
/// owned by a fresh key; killed on drop.
pub struct Agent {
    child: Child,
    /// Its node id.
    pub node: String,
    /// Its QUIC address.
    pub quic: String,
    /// Everything it and the test write.
    pub dir: tempfile::TempDir,
    /// Its `--root`.
    pub root: PathBuf,
    /// The owner's keystore.
    pub owner_key: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Starts it once `fill_root` has built the machine in the given directory,
    /// and waits for its ready line.
    pub fn start(fill_root: impl FnOnce(&Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fill_root(&root);
        let owner_key = dir.path().join("owner.key");
        let owner = new_key(&owner_key).account;
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            "mode = \"managed\"\npower_backend = \"simulated\"\n",
        )
        .unwrap();
        let mut child = nodus()
            .args(["agent", "run", "--listen", "127.0.0.1:0"])
            .args(["--dbus-address", "none"])
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(&root)
            .arg("--socket")
            .arg(dir.path().join("agent.sock"))
            .arg("--key")
            .arg(dir.path().join("node.key"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--owner", &owner])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k}= in {line:?}"))
                .to_owned()
        };
        Agent {
            node: field("node"),
            quic: field("quic"),
            child,
            dir,
            root,
            owner_key,
        }
    }

    /// `name` in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `node@addr`, what `--connect` takes.
    pub fn target(&self) -> String {
        format!("{}@{}", self.node, self.quic)
    }

    /// The node id's short form: the confirmation token.
    pub fn short(&self) -> String {
        self.node[..13].to_owned()
    }

    /// A fresh key with `role` on this node, granted by the owner with
    /// `nodus id grant`: `(keystore, grant file)`.
    pub fn grant(&self, role: &str) -> (PathBuf, PathBuf) {
        let key = self.path(&format!("{role}.key"));
        let acct = new_key(&key).account;
        let file = self.path(&format!("{role}.grant"));
        let out = nodus()
            .args(["id", "grant", "--keystore"])
            .arg(&self.owner_key)
            .args(["--to", &acct, "--role", role, "--node", &self.node, "--out"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        (key, file)
    }

    /// `nodus --json node ACTION… --connect this --confirm CONFIRM --key KEY
    /// [--grant GRANT]`.
    pub fn node_action(
        &self,
        action: &[&str],
        key: &Path,
        grant: Option<&Path>,
        confirm: &str,
    ) -> Output {
        let mut c = nodus();
        c.args(["--json", "node"])
            .args(action)
            .args(["--connect", &self.target(), "--confirm", confirm, "--key"])
            .arg(key);
        if let Some(g) = grant {
            c.arg("--grant").arg(g);
        }
        c.output().unwrap()
    }
}

/// A tmux server of the test's own (its socket named after the test and the
/// process) running one command in a 120×40 pane; killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `cmd` in session `c`.
    pub fn start(name: &str, cmd: &str) -> Self {
        let t = Tmux {
            socket: format!("nodus-{name}-{}", std::process::id()),
        };
        let out = t.run(&["new-session", "-d", "-s", "c", "-x", "120", "-y", "40", cmd]);
        assert!(out.status.success(), "{}", describe(&out));
        t
    }

    /// `tmux -L SOCKET ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// The pane's text now.
    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "c"]).stdout).into_owned()
    }

    /// Polls the pane until `pred` holds on one capture (a capture can land
    /// mid-redraw, so everything checked must be in the same one).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_within(what, PANE_PATIENCE, pred)
    }

    /// [`Tmux::wait_for`] with a longer bound, for slow screens (the chain's
    /// first rewards).
    pub fn wait_within(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let pane = self.capture();
            if pred(&pane) {
                return pane;
            }
            assert!(start.elapsed() < limit, "waiting for {what}; pane:\n{pane}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `send-keys` to the pane.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "c"];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    /// Whether the session still runs.
    pub fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "c"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}
