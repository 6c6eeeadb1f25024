//! `nodus netboot …`: run the boot server, and sign boot images.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use crate::{
    config::{ConfigError, ModeName, RawConfig},
    manifest::{self, ManifestError},
    serve::{self, ServeError},
};

/// Subcommands of `nodus netboot`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve DHCP or proxyDHCP, TFTP and HTTP boot on one segment.
    Serve(ServeArgs),
    /// Write a signed manifest for an image directory (vmlinuz, initramfs).
    SignImage {
        /// The image directory.
        #[arg(long, value_name = "DIR")]
        image: PathBuf,
        /// The farm id the image is for.
        #[arg(long, value_name = "ID")]
        farm: String,
        /// The chain id (network) the signature is valid on.
        #[arg(long, default_value = crate::config::DEFAULT_NETWORK)]
        network: String,
        /// The netboot keystore (see `nodus id new`).
        #[arg(long, value_name = "PATH")]
        keystore: PathBuf,
        /// Read the keystore passphrase from this file (else $NODUS_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Build a boot image: vmlinuz, initramfs (nodus as /init) and a signed manifest.
    BuildImage(BuildImageArgs),
}

/// `nodus netboot build-image` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildImageArgs {
    /// The kernel image (Debian's `linux-image-amd64` vmlinuz).
    #[arg(long, value_name = "VMLINUZ")]
    pub kernel: PathBuf,
    /// The kernel's module directory, `lib/modules/<release>`.
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// The boot keystore: signs the manifests (see `nodus id new`).
    #[arg(long, value_name = "KEYSTORE")]
    pub boot_key: PathBuf,
    /// Read the keystore passphrase from this file (else $NODUS_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The farm id the image is for.
    #[arg(long, value_name = "ID", default_value = "default")]
    pub farm: String,
    /// The chain id (network) the signatures are valid on.
    #[arg(long, default_value = crate::config::DEFAULT_NETWORK)]
    pub network: String,
    /// Kernel modules to include, comma-separated (dependencies are added);
    /// default: what the hardware profiles need. Empty for none.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub profiles_modules: Option<Vec<String>>,
    /// The `nodus` binary to put in the image (default: this one).
    #[arg(long, value_name = "PATH")]
    pub nodus: Option<PathBuf>,
    /// Strip symbols and debug info from the image's `nodus` (needs binutils).
    #[arg(long)]
    pub strip: bool,
}

/// `nodus netboot serve` flags; each overrides the config file.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Interface to serve on.
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,
    /// Our IPv4 address (default: the interface's first).
    #[arg(long, value_name = "IP")]
    pub address: Option<Ipv4Addr>,
    /// Full DHCP server or proxyDHCP.
    #[arg(long, value_enum)]
    pub mode: Option<ModeName>,
    /// Address pool in dhcp mode.
    #[arg(long, value_name = "FIRST-LAST")]
    pub range: Option<String>,
    /// Image directory (vmlinuz, initramfs, manifest).
    #[arg(long, value_name = "DIR")]
    pub image: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,
    /// The chain's farm number the booted machines join (`nodus.farm=`).
    #[arg(long, value_name = "NUMBER")]
    pub farm: Option<String>,
    /// Extra kernel arguments for every machine.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub kernel_args: Option<String>,
    /// Directory served over TFTP (the iPXE binaries).
    #[arg(long, value_name = "DIR")]
    pub tftp_root: Option<PathBuf>,
    /// State directory (leases, boot-event log).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Errors from `nodus netboot`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server failed.
    #[error("Netboot server")]
    Serve(#[from] ServeError),
    /// The image could not be signed.
    #[error("Signing the image")]
    Manifest(#[from] ManifestError),
    /// The keystore could not be opened.
    #[error("Keystore")]
    Keystore(#[from] nodus_identity::KeystoreError),
    /// No passphrase was given.
    #[error("No passphrase: use --passphrase-file or $NODUS_PASSPHRASE")]
    NoPassphrase,
    /// The image could not be built.
    #[error("Building the image")]
    Image(#[from] crate::image::ImageError),
    /// Reading the passphrase file or starting the runtime failed.
    #[error("I/O")]
    Io(#[from] std::io::Error),
}

impl ServeArgs {
    /// The config file (or an empty one) with these flags applied.
    pub fn merged(self) -> Result<RawConfig, Error> {
        let mut c = match &self.config {
            Some(p) => RawConfig::load(p)?,
            None => RawConfig::default(),
        };
        if self.interface.is_some() {
            c.interface = self.interface;
        }
        if self.address.is_some() {
            c.address = self.address;
        }
        if self.mode.is_some() {
            c.mode = self.mode;
        }
        if self.range.is_some() {
            c.dhcp.range = self.range;
        }
        if self.image.is_some() {
            c.image = self.image;
        }
        if self.http.is_some() {
            c.http = self.http;
        }
        if self.farm.is_some() {
            c.farm = self.farm;
        }
        if self.kernel_args.is_some() {
            c.kernel_args = self.kernel_args;
        }
        if self.tftp_root.is_some() {
            c.tftp_root = self.tftp_root;
        }
        if self.state_dir.is_some() {
            c.state_dir = self.state_dir;
        }
        Ok(c)
    }
}

impl Command {
    /// Runs the command; `json` prints machine-readable output.
    pub fn run(self, json: bool) -> Result<(), Error> {
        match self {
            Self::Serve(args) => {
                let settings = args.merged()?.validate(serve::interface_address)?;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let summary = format!(
                        "mode={} address={}",
                        match settings.mode {
                            crate::dhcp::Mode::Proxy => "proxy",
                            crate::dhcp::Mode::Dhcp(_) => "dhcp",
                        },
                        settings.address
                    );
                    let ready = |s: &serve::Started| {
                        if json {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "event": "ready",
                                    "http": s.http.to_string(),
                                    "tftp": s.tftp.to_string(),
                                })
                            );
                        } else {
                            println!(
                                "nodus netboot ready: {summary} http={} tftp={}",
                                s.http, s.tftp
                            );
                        }
                    };
                    tokio::select! {
                        r = serve::run(settings, ready) => r.map_err(Error::from),
                        _ = shutdown() => Ok(()),
                    }
                })
            }
            Self::BuildImage(a) => {
                let pass = match &a.passphrase_file {
                    Some(p) => std::fs::read_to_string(p)?,
                    None => std::env::var("NODUS_PASSPHRASE").map_err(|_| Error::NoPassphrase)?,
                };
                let pass = nodus_identity::Passphrase::new(pass.lines().next().unwrap_or(""));
                let key = nodus_identity::Keystore::open(&a.boot_key, &pass)?;
                let spec = crate::image::ImageSpec {
                    kernel: a.kernel,
                    modules_dir: a.modules,
                    modules: a.profiles_modules.unwrap_or_else(|| {
                        crate::image::modules::DEFAULT_MODULES
                            .iter()
                            .map(|m| (*m).to_owned())
                            .collect()
                    }),
                    nodus: match a.nodus {
                        Some(p) => p,
                        None => std::env::current_exe()?,
                    },
                    farm: a.farm,
                    network: a.network,
                    strip: a.strip,
                };
                let built = crate::image::build(&spec, &key, &a.out)?;
                let signer = nodus_identity::AccountId::from(key.public()).to_string();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "out": a.out, "signer": signer, "image": built })
                    );
                } else {
                    println!(
                        "built {}: initramfs {} bytes ({} entries, {} modules, {} libraries), \
                         boot key {signer}\nkernel command line: nodus.boot_key={signer}",
                        a.out.display(),
                        built.initramfs_bytes,
                        built.entries,
                        built.modules.len(),
                        built.libraries.len()
                    );
                }
                Ok(())
            }
            Self::SignImage {
                image,
                farm,
                network,
                keystore,
                passphrase_file,
            } => {
                let pass = match passphrase_file {
                    Some(p) => std::fs::read_to_string(p)?,
                    None => std::env::var("NODUS_PASSPHRASE").map_err(|_| Error::NoPassphrase)?,
                };
                let pass = nodus_identity::Passphrase::new(pass.lines().next().unwrap_or(""));
                let key = nodus_identity::Keystore::open(&keystore, &pass)?;
                let signed = manifest::Manifest::of_dir(&image, &farm)?.sign(&key, &network)?;
                manifest::write(&image, &signed)?;
                let signer = nodus_identity::AccountId::from(key.public()).to_string();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "signed": image, "signer": signer })
                    );
                } else {
                    println!("signed {} with {signer}", image.display());
                }
                Ok(())
            }
        }
    }
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: Command,
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netboot.toml");
        std::fs::write(
            &path,
            "interface = \"eth0\"\naddress = \"10.0.0.1\"\nmode = \"proxy\"\nfarm = \"3\"\n\
             kernel_args = \"quiet\"\n",
        )
        .unwrap();
        let top = Top::try_parse_from([
            "x",
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--mode",
            "dhcp",
            "--range",
            "10.0.0.100-10.0.0.120",
            "--farm",
            "4",
            "--kernel-args",
            "console=ttyS0 -- x",
            "--http",
            "10.0.0.1:9000",
        ])
        .unwrap();
        let Command::Serve(args) = top.cmd else {
            panic!()
        };
        let s = args.merged().unwrap().validate(|_| None).unwrap();
        assert_eq!(s.scripts.farm, "4");
        assert_eq!(s.scripts.kernel_args, "console=ttyS0 -- x");
        assert_eq!(s.boot.http_base, "http://10.0.0.1:9000");
        assert_eq!(s.interface.as_deref(), Some("eth0"));
        let crate::dhcp::Mode::Dhcp(a) = s.mode else {
            panic!("mode flag ignored")
        };
        assert_eq!(a.pool.first, Ipv4Addr::new(10, 0, 0, 100));
    }

    #[test]
    fn a_bad_range_flag_names_its_field() {
        let top = Top::try_parse_from([
            "x",
            "serve",
            "--address",
            "10.0.0.1",
            "--farm",
            "5",
            "--mode",
            "dhcp",
            "--range",
            "10.0.0.100",
        ])
        .unwrap();
        let Command::Serve(args) = top.cmd else {
            panic!()
        };
        match args.merged().unwrap().validate(|_| None) {
            Err(ConfigError::Field { field, .. }) => assert_eq!(field, "dhcp.range"),
            other => panic!("{other:?}"),
        }
    }
}
