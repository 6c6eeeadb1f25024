//! `nodus agent run`: flags, key loading, signals and the ready line.

use std::{io::Write as _, path::PathBuf};

use nodus_identity::{Keystore, Passphrase, SecretKey, keystore::KdfParams};

use super::{
    DaemonError,
    config::{self, Config, ConfigError, Overrides},
};
use crate::inventory::Mode;

/// Passphrase of the node keystore when `$NODUS_PASSPHRASE` is not set.
///
/// A network-booted node has nobody to type a passphrase and, without a TPM, no
/// place to keep one that is safer than the key file itself. Its key file is
/// protected by its mode (0600, root) and by living in the node's own storage;
/// this constant only satisfies the keystore format. Set `NODUS_PASSPHRASE`
/// where a real secret is available.
pub const UNATTENDED_PASSPHRASE: &str = "nodus-unattended-node-key";

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeFlag {
    /// Read only.
    Observe,
    /// Full control of disks, NICs and power.
    Managed,
}

/// Flags of `nodus agent run`; each overrides the config file and the kernel
/// command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The config file (TOML). Unknown keys are refused.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// observe (read only; the default by hand) or managed (the default when
    /// booted by the `nodus` init).
    #[arg(long, value_enum)]
    pub mode: Option<ModeFlag>,
    /// QUIC address of the console protocol (`127.0.0.1:7447` by hand,
    /// `0.0.0.0:7447` when booted; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The local console's Unix socket (default /run/nodus/agent.sock; `none` for no socket).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// D-Bus to serve `org.nodus.Agent1` on: `system`, `none` or an address.
    #[arg(long = "dbus-address", value_name = "ADDR|system|none")]
    pub dbus: Option<String>,
    /// The node key's keystore; created if absent. Passphrase from
    /// $NODUS_PASSPHRASE.
    #[arg(long, value_name = "KEYSTORE")]
    pub key: Option<PathBuf>,
    /// The owner's account (`acct1…`).
    #[arg(long, value_name = "ACCOUNT")]
    pub owner: Option<String>,
    /// Read the hardware under DIR instead of `/`.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Persistent state directory (grants, audit log, approvals, probe results).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Why `nodus agent run` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration is invalid.
    #[error("Invalid configuration")]
    Config(#[from] ConfigError),
    /// The node key could not be opened or created.
    #[error("Cannot use the node key {path}")]
    Key {
        /// The keystore.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nodus_identity::KeystoreError,
    },
    /// A new key could not be generated.
    #[error("Cannot generate the node key")]
    Generate(#[source] nodus_identity::KeyError),
    /// The async runtime or signal handlers could not start.
    #[error("Cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// The daemon failed.
    #[error("The agent failed")]
    Daemon(#[from] DaemonError),
}

/// A node key created at this start: in use at once, while its keystore is
/// sealed on a thread of its own (the KDF is the slowest step of a boot under
/// software emulation, and answering needs only the key).
#[derive(Debug)]
pub struct Sealing {
    path: PathBuf,
    thread: std::thread::JoinHandle<Result<(), nodus_identity::KeystoreError>>,
    durable: Option<tokio::sync::oneshot::Receiver<bool>>,
}

impl Sealing {
    /// Resolves to whether the keystore reached the disk; the daemon's chain
    /// client waits for it (see [`super::NodeKey`]). Taken once.
    pub fn durable(&mut self) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        self.durable.take()
    }

    /// Waits until the keystore is on disk. A failure is reported, not
    /// returned: the agent ran with the key either way, and the next start
    /// creates another one.
    pub fn wait(self) {
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(path = %self.path.display(), %error, "cannot write the node key");
            }
            Err(_) => tracing::error!(path = %self.path.display(), "sealing the node key panicked"),
        }
    }
}

/// The KDF cost of a new node keystore. Under [`UNATTENDED_PASSPHRASE`], which is
/// published, the KDF protects nothing, so it costs no more than the keystore's
/// floor: the default costs about 12 s of a boot under QEMU's software emulation
/// (and as much at every agent restart, which opens the file).
fn kdf_params(unattended: bool) -> KdfParams {
    if unattended {
        KdfParams::FLOOR
    } else {
        KdfParams::DEFAULT
    }
}

/// Opens the node keystore at `path`, or generates a fresh key on first start
/// and seals it to `path` (creating its directory) in the background; the
/// returned [`Sealing`] must be waited for before the process exits.
pub fn load_or_create_key(
    path: &std::path::Path,
) -> Result<(SecretKey, Option<Sealing>), RunError> {
    let given = std::env::var("NODUS_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty());
    let unattended = given.is_none();
    let pass = Passphrase::new(given.unwrap_or_else(|| UNATTENDED_PASSPHRASE.to_owned()));
    let key_err = |source| RunError::Key {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return Ok((Keystore::open(path, &pass).map_err(key_err)?, None));
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(dir);
    }
    let key = SecretKey::generate().map_err(RunError::Generate)?;
    let sealed = key.clone();
    let file = path.to_owned();
    let (durable_tx, durable) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("seal-node-key".into())
        .spawn(move || {
            let written = Keystore::create(&file, &sealed, &pass, kdf_params(unattended));
            let _ = durable_tx.send(written.is_ok());
            written?;
            tracing::info!(path = %file.display(), "created the node key");
            Ok(())
        })
        .map_err(RunError::Runtime)?;
    Ok((
        key,
        Some(Sealing {
            path: path.to_owned(),
            thread,
            durable: Some(durable),
        }),
    ))
}

impl RunArgs {
    /// Resolves the configuration from the flags, the kernel command line and
    /// the file.
    pub fn resolve(&self) -> Result<Config, RunError> {
        let file = match &self.config {
            Some(p) => config::load_file(p)?,
            None => config::RawConfig::default(),
        };
        let kernel = config::kernel_params()?;
        let flags = Overrides {
            mode: self.mode.map(|m| match m {
                ModeFlag::Observe => Mode::Observe,
                ModeFlag::Managed => Mode::Managed,
            }),
            listen: self.listen.clone(),
            socket: self.socket.clone(),
            dbus: self.dbus.clone(),
            key: self.key.clone(),
            owner: self.owner.clone(),
            root: self.root.clone(),
            state_dir: self.state_dir.clone(),
        };
        Ok(Config::resolve(file, kernel, flags, config::booted())?)
    }

    /// Runs the daemon until SIGTERM or SIGINT; prints the ready line to stdout.
    pub fn run(self) -> Result<(), RunError> {
        let config = self.resolve()?;
        crate::boot::timeline::mark("agent", "configured");
        let (key, mut sealing) = load_or_create_key(&config.key)?;
        let key = super::NodeKey {
            key,
            durable: sealing.as_mut().and_then(Sealing::durable),
        };
        crate::boot::timeline::mark("agent", "node key ready");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(RunError::Runtime)?;
        let ran = rt.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).map_err(RunError::Runtime)?;
            let mut int = signal(SignalKind::interrupt()).map_err(RunError::Runtime)?;
            let shutdown = async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            };
            super::run(
                config,
                key,
                |ready| {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{ready}");
                    let _ = out.flush();
                },
                shutdown,
            )
            .await?;
            Ok(())
        });
        if let Some(s) = sealing {
            s.wait();
        }
        ran
    }
}
