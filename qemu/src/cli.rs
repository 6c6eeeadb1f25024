//! `nodus qemu …`: fetch the kernel, boot a profile interactively, run the
//! profile suite.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use nodus_hw_profiles::Profile;
use nodus_identity::{Keystore, Passphrase, SecretKey, keystore::KdfParams};

use crate::{
    accel::{AccelChoice, resolve},
    kernel::{self, KernelPaths},
    suite::{self, Image, Line, Options},
    vm::Serial,
};

/// Subcommands of `nodus qemu`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Download Debian's current kernel (`linux-image-amd64`) into the cache,
    /// unless it is there already, and print its paths.
    FetchKernel {
        /// Cache directory (default: ~/.cache/nodus/kernel).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Boot one profile with the serial console attached; prints the agent's
    /// QUIC address and NodeId. Ctrl-C ends it.
    Run {
        /// The profile.
        profile: PathBuf,
        /// Kernel, image and accelerator.
        #[command(flatten)]
        boot: BootArgs,
    },
    /// Boot each profile, check `[expect]`, play `[[faults]]`; one PASS/FAIL line
    /// per check, non-zero exit on any failure.
    Test {
        /// The profiles, run one after another.
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
        /// Kernel, image and accelerator.
        #[command(flatten)]
        boot: BootArgs,
        /// Keep the VM directory (serial log, disks) of a profile that failed.
        #[arg(long)]
        keep_failed: bool,
    },
}

/// How to boot: kernel, image, accelerator.
#[derive(Debug, Clone, clap::Args)]
pub struct BootArgs {
    /// The kernel (else $NODUS_KERNEL_DIR, else the fetch-kernel cache).
    #[arg(long, value_name = "VMLINUZ")]
    pub kernel: Option<PathBuf>,
    /// The kernel's module directory (default: beside --kernel).
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// A built image directory (vmlinuz, initramfs) instead of building one.
    #[arg(long, value_name = "DIR", requires = "boot_key")]
    pub image: Option<PathBuf>,
    /// The keystore whose key signed --image.
    #[arg(long, value_name = "KEYSTORE")]
    pub boot_key: Option<PathBuf>,
    /// The `nodus` binary that builds the image and runs in it (default:
    /// $NODUS_GUEST_BIN, else this one). An optimised build boots much faster
    /// under emulation: `cargo build --profile guest --bin nodus`.
    #[arg(long, value_name = "PATH", env = "NODUS_GUEST_BIN")]
    pub nodus: Option<PathBuf>,
    /// The accelerator. KVM hangs on the machines this was built on; `auto`
    /// probes it with a 3 s timeout first.
    #[arg(long, value_enum, default_value_t = AccelChoice::Tcg)]
    pub accel: AccelChoice,
    /// Seconds the guest may take to print the agent's ready line.
    #[arg(long, value_name = "S", default_value_t = 180)]
    pub boot_timeout: u64,
}

/// Why a `nodus qemu` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No kernel, or fetching it failed.
    #[error(transparent)]
    Kernel(#[from] kernel::KernelError),
    /// A profile is invalid.
    #[error(transparent)]
    Profile(#[from] nodus_hw_profiles::ProfileError),
    /// The image could not be built or found.
    #[error(transparent)]
    Suite(#[from] suite::SuiteError),
    /// The async runtime or a file failed.
    #[error("I/O")]
    Io(#[from] std::io::Error),
    /// A keystore could not be read or written.
    #[error(transparent)]
    Keystore(#[from] nodus_identity::KeystoreError),
    /// A key could not be generated.
    #[error(transparent)]
    Key(#[from] nodus_identity::KeyError),
    /// Checks failed.
    #[error("{failed} of {total} checks failed")]
    ChecksFailed {
        /// Failed checks.
        failed: usize,
        /// All checks.
        total: usize,
    },
    /// The VM did not start.
    #[error(transparent)]
    Vm(#[from] crate::vm::VmError),
}

impl Command {
    /// Runs the command.
    pub fn run(self, json: bool) -> Result<(), Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            // Ctrl-C, SIGTERM (`timeout`, a CI runner) and SIGHUP (a closed
            // terminal) drop the command's future, and with it every VM (whose
            // drop kills its process group).
            let mut term = signal(SignalKind::terminate())?;
            let mut hup = signal(SignalKind::hangup())?;
            tokio::select! {
                r = self.run_async(json) => r,
                _ = tokio::signal::ctrl_c() => interrupted("interrupted"),
                _ = term.recv() => interrupted("terminated"),
                _ = hup.recv() => interrupted("hung up"),
            }
        })
    }

    async fn run_async(self, json: bool) -> Result<(), Error> {
        match self {
            Command::FetchKernel { dir } => {
                let k = tokio::task::spawn_blocking(move || kernel::fetch(dir.as_deref()))
                    .await
                    .map_err(std::io::Error::other)??;
                print_kernel(&k, json);
                Ok(())
            }
            Command::Run { profile, boot } => run_interactive(&profile, &boot).await,
            Command::Test {
                profiles,
                boot,
                keep_failed,
            } => run_tests(&profiles, &boot, keep_failed).await,
        }
    }
}

fn interrupted(how: &str) -> Result<(), Error> {
    eprintln!("{how}; VMs stopped");
    Err(Error::Io(std::io::Error::from(
        std::io::ErrorKind::Interrupted,
    )))
}

fn print_kernel(k: &KernelPaths, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"kernel": k.kernel, "modules": k.modules})
        );
    } else {
        println!("kernel  {}", k.kernel.display());
        println!("modules {}", k.modules.display());
    }
}

async fn image(boot: &BootArgs) -> Result<Image, Error> {
    if let (Some(dir), Some(ks)) = (&boot.image, &boot.boot_key) {
        let key = Keystore::read_public(ks)?;
        return Ok(Image::existing(dir, key)?);
    }
    let k = kernel::locate(boot.kernel.as_deref(), boot.modules.as_deref())?;
    let nodus = match &boot.nodus {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    Ok(Image::build(&nodus, &k).await?)
}

async fn options(boot: &BootArgs, keep_failed: bool) -> Options {
    Options {
        accel: resolve(boot.accel).await,
        boot_timeout: Duration::from_secs(boot.boot_timeout),
        keep_failed,
    }
}

async fn run_tests(profiles: &[PathBuf], boot: &BootArgs, keep_failed: bool) -> Result<(), Error> {
    let loaded: Vec<Profile> = profiles
        .iter()
        .map(|p| Profile::load(p))
        .collect::<Result<_, _>>()?;
    let image = image(boot).await?;
    let opts = options(boot, keep_failed).await;
    let (mut failed, mut total) = (0, 0);
    for p in &loaded {
        let name = p.name().to_owned();
        let mut report = |c: &suite::Check| {
            println!(
                "{}",
                Line {
                    profile: &name,
                    check: c
                }
            );
            let _ = std::io::stdout().flush();
        };
        let out = suite::run_profile(p, &image, &opts, &mut report).await;
        total += out.checks.len();
        failed += out.checks.iter().filter(|c| !c.ok).count();
        if let Some(dir) = &out.kept {
            println!("  {name}: VM directory kept at {}", dir.display());
        }
    }
    println!("{} checks, {} failed", total, failed);
    if failed > 0 || total == 0 {
        return Err(Error::ChecksFailed { failed, total });
    }
    Ok(())
}

async fn run_interactive(profile: &Path, boot: &BootArgs) -> Result<(), Error> {
    let p = Profile::load(profile)?;
    let image = image(boot).await?;
    let opts = options(boot, false).await;
    let owner = SecretKey::generate()?;
    // The console key, so `nodus console` can connect as the owner.
    let keydir = tempfile::Builder::new()
        .prefix("nodus-qemu-run-")
        .tempdir()?;
    let keystore = keydir.path().join("console.key");
    Keystore::create(
        &keystore,
        &owner,
        &Passphrase::new(suite::THROWAWAY_PASSPHRASE),
        KdfParams::FLOOR,
    )?;
    let mut report = |c: &suite::Check| {
        eprintln!(
            "\r\n[nodus qemu] {}\r",
            Line {
                profile: p.name(),
                check: c
            }
        );
    };
    let (vm, agent, _) =
        suite::boot_and_connect(&p, &image, &owner, &opts, Serial::Stdio, &mut report).await;
    let Some(mut vm) = vm else {
        return Ok(());
    };
    if let (Some(addr), Some((ready, _view))) = (vm.quic_addr(), agent.as_ref()) {
        eprintln!(
            "\r\n[nodus qemu] agent {} at quic {addr}; owner console key {} (passphrase {:?})\r",
            ready.node,
            keystore.display(),
            suite::THROWAWAY_PASSPHRASE
        );
    }
    // Until QEMU exits (the guest powers off, or Ctrl-C reaches QEMU through the
    // serial console).
    loop {
        if vm.wait_exit(Duration::from_secs(3600)).await.is_some() {
            break;
        }
    }
    Ok(())
}
