//! `nodus id …`: create, show, back up and restore a keystore.
//!
//! Every command runs without a prompt when given `--passphrase-file F` or the
//! `NODUS_PASSPHRASE` environment variable, so scripts and tests can drive it; on a
//! terminal it asks instead. Passphrases and backup words are never taken from the
//! command line itself, where `ps` would show them to every user.

use std::{
    io::{IsTerminal as _, Read as _},
    path::{Path, PathBuf},
};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::{
    AccountId, Keystore, KeystoreError, Mnemonic, NodeId, Passphrase, PublicKey, SecretKey,
    keystore::KdfParams, mnemonic::MnemonicError,
};

/// Environment variable that may hold the passphrase.
pub const PASSPHRASE_ENV: &str = "NODUS_PASSPHRASE";

/// Where the passphrase comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from this file (first line). Otherwise $NODUS_PASSPHRASE,
    /// otherwise a prompt on the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Arguments of `nodus id grant` (boxed in [`Command`]: they are large).
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    /// The owner's keystore (the node's owner, as configured on the node).
    #[arg(long, value_name = "PATH")]
    keystore: PathBuf,
    /// The account that receives the role (`acct1…`).
    #[arg(long, value_name = "ACCOUNT")]
    to: AccountId,
    /// `operator` (power actions, disk approvals) or `viewer` (read-only).
    #[arg(long)]
    role: crate::Role,
    /// The node it applies to (`node1…`).
    #[arg(long, value_name = "NODE")]
    node: NodeId,
    /// When it stops being valid (RFC 3339, e.g. `2027-01-31T00:00:00Z`).
    /// Without it the grant lasts until revoked.
    #[arg(long, value_name = "RFC3339")]
    expires: Option<String>,
    /// The network (chain id) the grant is valid on.
    #[arg(long, default_value = crate::DEFAULT_NETWORK)]
    network: String,
    /// The grant file to write. An existing file is never overwritten.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Where the passphrase comes from.
    #[command(flatten)]
    pass: PassphraseArgs,
}

/// Arguments of `nodus id approve-disk` (boxed in [`Command`]: they are large).
#[derive(Debug, clap::Args)]
pub struct ApproveDiskArgs {
    /// The owner's keystore (the node's owner, as configured on the node).
    #[arg(long, value_name = "PATH")]
    keystore: PathBuf,
    /// The node the disk is in (`node1…`).
    #[arg(long, value_name = "NODE")]
    node: NodeId,
    /// The disk's serial number, as the node reports it: an operator's refused
    /// `nodus node approve-disk` names it, and so does `nodus agent inventory
    /// --json` on the node (`disks[].serial`).
    #[arg(long, value_name = "SERIAL")]
    serial: String,
    /// The disk's kernel name (`sdb`), written into the file's comments for the
    /// people passing it on. The node goes by the serial only: names change
    /// across reboots.
    #[arg(long, value_name = "NAME")]
    disk: Option<String>,
    /// When it stops being valid: RFC 3339 (e.g. `2027-01-31T00:00:00Z`), or
    /// `never`. Without it, 7 days from now: an approval
    /// is for one job, and one lying around for ever would let an operator wipe
    /// that disk again after it came back holding someone's data.
    #[arg(long, value_name = "RFC3339|never")]
    expires: Option<String>,
    /// The network (chain id) the approval is valid on.
    #[arg(long, default_value = crate::DEFAULT_NETWORK)]
    network: String,
    /// The approval file to write. An existing file is never overwritten.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Where the passphrase comes from.
    #[command(flatten)]
    pass: PassphraseArgs,
}

/// Subcommands of `nodus id`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sign a grant with the owner's key: the key `--to` gets `--role` on `--node`.
    /// The grant file is then presented by that key's console or CLI (`--grant`).
    Grant(Box<GrantArgs>),
    /// Sign the owner's approval to wipe one disk that holds data the node did
    /// not create (a partition table or file system). The file is then presented
    /// by an operator: `nodus node approve-disk DISK --approval FILE`, or
    /// `nodus console --approval FILE`.
    ApproveDisk(Box<ApproveDiskArgs>),
    /// Create a new key in a new keystore and show its backup words once.
    New {
        /// The keystore file to create. An existing file is never overwritten.
        #[arg(long, value_name = "PATH")]
        keystore: PathBuf,
        /// Where the passphrase comes from.
        #[command(flatten)]
        pass: PassphraseArgs,
    },
    /// Show the ids of a keystore's key (no passphrase needed).
    Show {
        /// The keystore file.
        #[arg(long, value_name = "PATH")]
        keystore: PathBuf,
        /// Also open the keystore to prove the passphrase works.
        #[arg(long)]
        verify: bool,
        /// Where the passphrase comes from.
        #[command(flatten)]
        pass: PassphraseArgs,
    },
    /// Print the 24 backup words of a keystore's key.
    ExportMnemonic {
        /// The keystore file.
        #[arg(long, value_name = "PATH")]
        keystore: PathBuf,
        /// Where the passphrase comes from.
        #[command(flatten)]
        pass: PassphraseArgs,
    },
    /// Restore a key from its 24 backup words into a new keystore.
    Restore {
        /// The keystore file to create. An existing file is never overwritten.
        #[arg(long, value_name = "PATH")]
        keystore: PathBuf,
        /// Read the words from this file (`-` for standard input, the default).
        #[arg(long, value_name = "FILE", default_value = "-")]
        mnemonic_file: PathBuf,
        /// Where the passphrase comes from.
        #[command(flatten)]
        pass: PassphraseArgs,
    },
}

/// Errors from `nodus id`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The keystore could not be used.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The backup words are wrong.
    #[error(transparent)]
    Mnemonic(#[from] MnemonicError),
    /// No passphrase source was given and there is no terminal to ask on.
    #[error("No passphrase: pass --passphrase-file FILE or set NODUS_PASSPHRASE")]
    NoPassphrase,
    /// The two typed passphrases differ.
    #[error("Passphrases do not match")]
    PassphraseMismatch,
    /// A file given on the command line could not be read.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key generator failed.
    #[error(transparent)]
    Key(#[from] crate::KeyError),
    /// `--expires` is not an RFC 3339 time in the future.
    #[error("--expires {0:?} is not an RFC 3339 time in the future (e.g. 2027-01-31T00:00:00Z)")]
    BadExpiry(String),
    /// The grant could not be made (e.g. the owner role was asked for).
    #[error(transparent)]
    Grant(#[from] crate::grant::GrantError),
    /// `--serial` is empty.
    #[error("--serial is empty; give the disk's serial number as the node shows it")]
    EmptySerial,
    /// The disk approval could not be signed (e.g. an empty or overlong network).
    #[error("Cannot sign the disk approval")]
    DiskApproval(#[source] crate::statement::StatementError),
    /// The grant file could not be written.
    #[error("Cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Output could not be produced.
    #[error("Cannot encode output")]
    Output(#[source] serde_json::Error),
}

#[derive(Serialize)]
struct IdView {
    /// The account form (`acct1…`).
    id: AccountId,
    /// The node form (`node1…`) of the same key.
    node_id: NodeId,
    /// Short confirmation token.
    short: String,
    keystore: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    mnemonic: Option<String>,
}

impl IdView {
    fn new(key: PublicKey, keystore: &Path, mnemonic: Option<String>) -> Self {
        let node_id = NodeId::from(key);
        Self {
            id: AccountId::from(key),
            short: node_id.short(),
            node_id,
            keystore: keystore.to_owned(),
            mnemonic,
        }
    }

    fn print(&self, json: bool) -> Result<(), Error> {
        if json {
            let text = serde_json::to_string_pretty(self).map_err(Error::Output)?;
            println!("{text}");
            return Ok(());
        }
        println!("id:       {}", self.id);
        println!("node id:  {}", self.node_id);
        println!("short:    {}", self.short);
        println!("keystore: {}", self.keystore.display());
        if let Some(words) = &self.mnemonic {
            println!();
            println!("Backup words (shown once; write them down and keep them offline):");
            for (i, w) in words.split(' ').enumerate() {
                print!("{:>2}. {w:<10}", i + 1);
                if i % 6 == 5 {
                    println!();
                }
            }
        }
        Ok(())
    }
}

impl Command {
    /// Runs the subcommand. `json` selects machine-readable output.
    pub fn run(self, json: bool) -> Result<(), Error> {
        match self {
            Command::Grant(args) => {
                let GrantArgs {
                    keystore,
                    to,
                    role,
                    node,
                    expires,
                    network,
                    out,
                    pass,
                } = *args;
                let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
                refuse_existing(&out)?;
                let owner = open_keystore(&keystore, &pass)?;
                let grant = crate::grant::issue(
                    &owner,
                    &network,
                    crate::grant::Grant {
                        grantee: to,
                        role,
                        node,
                    },
                    expires_at,
                )?;
                let text = crate::grant::to_file_text(&grant)?;
                write_new_file(&out, text.as_bytes())?;
                if json {
                    let v = serde_json::json!({
                        "grant": out,
                        "to": to,
                        "role": role.as_str(),
                        "node": node,
                        "expires_at": expires_at,
                        "network": network,
                    });
                    println!("{v}");
                } else {
                    println!(
                        "{role} grant for {to} on {node} written to {}",
                        out.display()
                    );
                }
                Ok(())
            }
            Command::ApproveDisk(args) => approve_disk(*args, json),
            Command::New { keystore, pass } => {
                if keystore.exists() {
                    return Err(KeystoreError::AlreadyExists(keystore).into());
                }
                let pass = read_passphrase(&pass, true)?;
                let key = SecretKey::generate()?;
                Keystore::create(&keystore, &key, &pass, KdfParams::DEFAULT)?;
                let words = Mnemonic::from_key(&key);
                IdView::new(key.public(), &keystore, Some(words.phrase().to_owned())).print(json)
            }
            Command::Show {
                keystore,
                verify,
                pass,
            } => {
                let public = if verify {
                    let pass = read_passphrase(&pass, false)?;
                    Keystore::open(&keystore, &pass)?.public()
                } else {
                    Keystore::read_public(&keystore)?
                };
                IdView::new(public, &keystore, None).print(json)
            }
            Command::ExportMnemonic { keystore, pass } => {
                let pass = read_passphrase(&pass, false)?;
                let key = Keystore::open(&keystore, &pass)?;
                let words = Mnemonic::from_key(&key);
                if json {
                    let v = serde_json::json!({
                        "id": AccountId::from(key.public()),
                        "mnemonic": words.phrase(),
                    });
                    println!("{v}");
                } else {
                    println!("{}", words.phrase());
                }
                Ok(())
            }
            Command::Restore {
                keystore,
                mnemonic_file,
                pass,
            } => {
                if keystore.exists() {
                    return Err(KeystoreError::AlreadyExists(keystore).into());
                }
                let words = read_secret_file(&mnemonic_file)?;
                let key = Mnemonic::restore(&words)?;
                let pass = read_passphrase(&pass, true)?;
                Keystore::create(&keystore, &key, &pass, KdfParams::DEFAULT)?;
                IdView::new(key.public(), &keystore, None).print(json)
            }
        }
    }
}

/// How long a disk approval made without `--expires` stays valid.
pub const APPROVAL_DEFAULT_DAYS: u64 = 7;

/// `nodus id approve-disk`: checks the input, signs, writes the file.
fn approve_disk(args: ApproveDiskArgs, json: bool) -> Result<(), Error> {
    let ApproveDiskArgs {
        keystore,
        node,
        serial,
        disk,
        expires,
        network,
        out,
        pass,
    } = args;
    // The node compares the serial it reads from sysfs, trimmed, byte for byte.
    let serial = serial.trim().to_owned();
    if serial.is_empty() {
        return Err(Error::EmptySerial);
    }
    let expires_at = match expires.as_deref() {
        None => Some(crate::statement::unix_now() + APPROVAL_DEFAULT_DAYS * 86_400),
        Some("never") => None,
        Some(text) => Some(parse_expiry(text)?),
    };
    refuse_existing(&out)?;
    let owner = open_keystore(&keystore, &pass)?;
    let approval = crate::grant::approve_disk(
        &owner,
        &network,
        crate::grant::DiskApproval {
            node,
            serial: serial.clone(),
        },
        expires_at,
    )
    .map_err(Error::DiskApproval)?;
    let text = crate::grant::disk_approval_to_file_text(&approval, disk.as_deref())
        .map_err(Error::DiskApproval)?;
    write_new_file(&out, text.as_bytes())?;
    if json {
        let v = serde_json::json!({
            "approval": out,
            "node": node,
            "serial": serial,
            "disk": disk,
            "signer": AccountId::from(owner.public()),
            "expires_at": expires_at,
            "network": network,
        });
        println!("{v}");
    } else {
        println!(
            "approval to wipe disk {serial:?} on {node} written to {}",
            out.display()
        );
    }
    Ok(())
}

/// Fails if `out` exists, before any passphrase is asked for.
fn refuse_existing(out: &Path) -> Result<(), Error> {
    if out.exists() {
        return Err(Error::Write {
            path: out.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "file exists; not overwriting it",
            ),
        });
    }
    Ok(())
}

/// Opens a keystore for other commands, with the same passphrase rules.
pub fn open_keystore(path: &Path, pass: &PassphraseArgs) -> Result<SecretKey, Error> {
    let pass = read_passphrase(pass, false)?;
    Ok(Keystore::open(path, &pass)?)
}

/// Opens the keystore at `path`, creating it with a fresh key if it does not exist
/// yet (a node's first boot).
pub fn open_or_create_keystore(path: &Path, pass: &PassphraseArgs) -> Result<SecretKey, Error> {
    if path.exists() {
        return open_keystore(path, pass);
    }
    let pass = read_passphrase(pass, false)?;
    let key = SecretKey::generate()?;
    Keystore::create(path, &key, &pass, KdfParams::DEFAULT)?;
    Ok(key)
}

/// Parses `--expires`: RFC 3339, strictly in the future.
fn parse_expiry(text: &str) -> Result<u64, Error> {
    let bad = || Error::BadExpiry(text.to_owned());
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| bad())?;
    if secs <= crate::statement::unix_now() {
        return Err(bad());
    }
    Ok(secs)
}

/// Creates `path` (never overwriting) with `bytes`, readable by its owner only:
/// a grant is not secret, but nobody else needs it.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut s = Zeroizing::new(String::new());
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut s).map_err(read_err)?;
    } else {
        let mut f = std::fs::File::open(path).map_err(read_err)?;
        f.read_to_string(&mut s).map_err(read_err)?;
    }
    Ok(s)
}

fn read_passphrase(args: &PassphraseArgs, confirm: bool) -> Result<Passphrase, Error> {
    if let Some(path) = &args.passphrase_file {
        let text = read_secret_file(path)?;
        let first = text.lines().next().unwrap_or_default();
        return Ok(Passphrase::new(first));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Passphrase::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::NoPassphrase);
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|source| Error::Read {
                path: PathBuf::from("/dev/tty"),
                source,
            })
    };
    let first = read("Passphrase: ")?;
    if confirm {
        let second = read("Repeat passphrase: ")?;
        if *first != *second {
            return Err(Error::PassphraseMismatch);
        }
    }
    Ok(Passphrase::new(first.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{DiskApprovalFileError, disk_approval_from_file_text};
    use crate::statement::{Expect, purpose};

    struct Owner {
        dir: tempfile::TempDir,
        key: SecretKey,
        pass: PassphraseArgs,
    }

    fn owner() -> Owner {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed(&[7; 32]);
        Keystore::create(
            &dir.path().join("owner.key"),
            &key,
            &Passphrase::new("pw"),
            KdfParams::FLOOR,
        )
        .unwrap();
        let pass_file = dir.path().join("pass");
        std::fs::write(&pass_file, "pw\n").unwrap();
        Owner {
            dir,
            key,
            pass: PassphraseArgs {
                passphrase_file: Some(pass_file),
            },
        }
    }

    fn args(o: &Owner, serial: &str, expires: Option<&str>, out: &str) -> ApproveDiskArgs {
        ApproveDiskArgs {
            keystore: o.dir.path().join("owner.key"),
            node: NodeId::from(SecretKey::from_seed(&[8; 32]).public()),
            serial: serial.to_owned(),
            disk: Some("sdb".into()),
            expires: expires.map(str::to_owned),
            network: crate::DEFAULT_NETWORK.into(),
            out: o.dir.path().join(out),
            pass: o.pass.clone(),
        }
    }

    #[test]
    fn approve_disk_writes_a_file_the_node_accepts() {
        let o = owner();
        let a = args(
            &o,
            "  ATA000005\n",
            Some("2999-01-01T00:00:00Z"),
            "a.approval",
        );
        let (node, out) = (a.node, a.out.clone());
        approve_disk(a, true).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("(seen as sdb)"), "{text}");
        let signed = disk_approval_from_file_text(&text).unwrap();
        let owner_key = o.key.public();
        let now = crate::statement::unix_now();
        let payload = signed
            .verify(
                &Expect::new(purpose::DISK_APPROVAL, crate::DEFAULT_NETWORK, now)
                    .signed_by(&owner_key),
            )
            .unwrap();
        // The serial is trimmed as the node trims what it reads from sysfs.
        assert_eq!(payload.serial, "ATA000005");
        assert_eq!(payload.node, node);
        assert!(signed.statement.expires_at.unwrap() > now);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn approvals_expire_in_a_week_unless_told_never() {
        let o = owner();
        let expiry = |expires: Option<&str>, out: &str| {
            let a = args(&o, "S1", expires, out);
            let path = a.out.clone();
            approve_disk(a, false).unwrap();
            let text = std::fs::read_to_string(path).unwrap();
            disk_approval_from_file_text(&text)
                .unwrap()
                .statement
                .expires_at
        };
        let now = crate::statement::unix_now();
        let week = APPROVAL_DEFAULT_DAYS * 86_400;
        let default = expiry(None, "default.approval").unwrap();
        assert!(
            (now + week..=now + week + 60).contains(&default),
            "{default} vs {now}"
        );
        assert_eq!(expiry(Some("never"), "never.approval"), None);
    }

    #[test]
    fn approve_disk_refuses_bad_input_and_never_overwrites() {
        let o = owner();
        // A past expiry, or not RFC 3339.
        for bad in ["2001-01-01T00:00:00Z", "tomorrow"] {
            let e = approve_disk(args(&o, "S", Some(bad), "x"), false).unwrap_err();
            assert!(matches!(e, Error::BadExpiry(_)), "{e}");
        }
        let e = approve_disk(args(&o, " \t", None, "x"), false).unwrap_err();
        assert!(matches!(e, Error::EmptySerial), "{e}");
        let e = approve_disk(args(&o, " \t", Some("never"), "x"), false).unwrap_err();
        assert!(matches!(e, Error::EmptySerial), "{e}");
        assert!(!o.dir.path().join("x").exists());
        // An existing file is left as it is.
        std::fs::write(o.dir.path().join("x"), "keep me").unwrap();
        let e = approve_disk(args(&o, "S", None, "x"), false).unwrap_err();
        assert!(matches!(e, Error::Write { .. }), "{e}");
        assert_eq!(
            std::fs::read_to_string(o.dir.path().join("x")).unwrap(),
            "keep me"
        );
        assert_eq!(
            disk_approval_from_file_text("keep me"),
            Err(DiskApprovalFileError::NoApprovalLine)
        );
        // A wrong passphrase writes nothing.
        std::fs::write(o.pass.passphrase_file.as_ref().unwrap(), "nope\n").unwrap();
        let e = approve_disk(args(&o, "S", None, "y"), false).unwrap_err();
        assert!(matches!(e, Error::Keystore(_)), "{e}");
        assert!(!o.dir.path().join("y").exists());
    }
}
