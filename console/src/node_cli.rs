//! `nodus node identify|reboot|poweroff|approve-disk`: one operator action for
//! scripts, over the same console protocol as the dashboard.
//!
//! Exit codes (mapped by the binary): not authorized (key refused, grant
//! rejected, role too low, foreign data without a valid owner's approval) is its
//! own code; a wrong confirmation token or a damaged approval file is bad input;
//! an unreachable node is unreachable; other refusals are failures.

use std::path::PathBuf;
use std::sync::Arc;

use nodus_wire::console::{Action, ClientMsg, Outcome, RefusalCode, Request, RequestId, ServerMsg};
use nodus_wire::{Blob, Client};
use serde::Serialize;

use crate::app::LoadedApproval;
use crate::cli::Target;
use crate::source::{self, Conversation, DEFAULT_SOCKET, Endpoint, Remote, SourceError};

/// `nodus node …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Show a banner on the node's screen and beep, to find it in the rack.
    Identify(Common),
    /// Reboot the node.
    Reboot(Common),
    /// Power the node off.
    Poweroff(Common),
    /// Approve a disk for pool use (wipes it).
    ApproveDisk {
        /// The disk: kernel name (`sdb`) or serial number.
        disk: String,
        /// The owner's signed approval (`nodus id approve-disk … --out FILE`),
        /// needed when the disk holds a partition table or file system and this
        /// key is not the owner's.
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Connection and confirmation.
        #[command(flatten)]
        common: Common,
    },
}

/// Flags every action takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The node over QUIC. Without it, the local agent's Unix socket.
    #[arg(long, value_name = "NODE@HOST:PORT")]
    pub connect: Option<Target>,
    /// The keystore whose key this command proves itself with (with `--connect`).
    #[arg(long, value_name = "KEYSTORE")]
    pub key: Option<PathBuf>,
    /// An owner-signed grant for the key, presented before connecting.
    #[arg(long, value_name = "FILE")]
    pub grant: Option<PathBuf>,
    /// The local agent's socket (without `--connect`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// The confirmation token: the node's short id (`nodus id show` of the node
    /// key, or the console's prompt shows it).
    #[arg(long, value_name = "TOKEN")]
    pub confirm: String,
    /// The request id (32 hex digits), to retry an action safely: the node runs
    /// each id once and answers a repeat with the first outcome. Random if absent.
    #[arg(long, value_name = "HEX", value_parser = parse_request_id)]
    pub request_id: Option<RequestId>,
    /// Where the keystore passphrase comes from.
    #[command(flatten)]
    pub pass: nodus_identity::cli::PassphraseArgs,
}

fn parse_request_id(s: &str) -> Result<RequestId, String> {
    let s = s.trim();
    if s.len() != 32 || !s.is_ascii() {
        return Err("expected 32 hex digits".into());
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| "expected 32 hex digits".to_owned())?;
    }
    Ok(RequestId(id))
}

/// Why an action did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The node refused this key or this role.
    #[error("Not authorized: {0}")]
    NotAuthorized(String),
    /// The confirmation token did not match.
    #[error("Bad confirmation: {0}")]
    BadConfirmation(String),
    /// The node could not be reached, or the link broke before the answer.
    #[error("Unreachable: {0}")]
    Unreachable(String),
    /// The node refused the action for another reason (observe mode, no such
    /// disk, failed).
    #[error("Refused ({code:?}): {message}")]
    Refused {
        /// The node's refusal code.
        code: RefusalCode,
        /// The node's words.
        message: String,
    },
    /// `--connect` without `--key`.
    #[error("--connect needs --key KEYSTORE")]
    NoKey,
    /// The keystore, grant or node id could not be used.
    #[error(transparent)]
    Setup(#[from] crate::cli::Error),
    /// The node broke the protocol.
    #[error("Protocol error: {0}")]
    Protocol(String),
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotAuthorized(m) => Error::NotAuthorized(m),
            SourceError::Protocol(m) => Error::Protocol(m),
            other => Error::Unreachable(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    action: &'a str,
    request_id: String,
    outcome: &'a str,
    code: Option<String>,
    message: &'a str,
    replayed: bool,
}

impl Command {
    /// The request, its flags, and the disk approval read from `--approval`.
    fn parts(self) -> Result<(Action, Common, Option<LoadedApproval>), Error> {
        Ok(match self {
            Command::Identify(c) => (Action::Identify, c, None),
            Command::Reboot(c) => (Action::Reboot, c, None),
            Command::Poweroff(c) => (Action::PowerOff, c, None),
            Command::ApproveDisk {
                disk,
                approval,
                common,
            } => {
                let loaded = approval
                    .as_deref()
                    .map(crate::cli::read_approval)
                    .transpose()?;
                (
                    Action::ApproveDisk {
                        disk,
                        approval: loaded.as_ref().map(|a| Blob(a.bytes.clone())),
                    },
                    common,
                    loaded,
                )
            }
        })
    }

    /// Runs the action and prints its outcome (`json`: one JSON object).
    pub fn run(self, json: bool) -> Result<(), Error> {
        let (action, common, _approval) = self.parts()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Unreachable(format!("cannot start the runtime: {e}")))?;
        let id = common.request_id.unwrap_or_else(RequestId::random);
        let name = action.name();
        let answer = runtime.block_on(async {
            let endpoint = endpoint(&common)?;
            send(&endpoint, action, common.confirm.clone(), id).await
        })?;
        // A refused approval is explained by the node itself (what was missing
        // or did not match), so the console and scripts say the same.
        let Answer { replayed, outcome } = answer;
        let (word, code, message) = match &outcome {
            Outcome::Done(m) => ("done", None, m.as_str()),
            Outcome::Refused { code, message } => {
                ("refused", Some(format!("{code:?}")), message.as_str())
            }
        };
        if json {
            let r = Report {
                action: name,
                request_id: id.to_string(),
                outcome: word,
                code,
                message,
                replayed,
            };
            // Serializing this plain struct cannot fail.
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            println!(
                "{name} {word}{}: {message} (request {id})",
                if replayed { " (replayed)" } else { "" }
            );
        }
        match outcome {
            Outcome::Done(_) => Ok(()),
            Outcome::Refused { code, message } => Err(match code {
                RefusalCode::NotAuthorized => Error::NotAuthorized(message),
                RefusalCode::BadConfirmation => Error::BadConfirmation(message),
                code => Error::Refused { code, message },
            }),
        }
    }
}

fn endpoint(c: &Common) -> Result<Endpoint, Error> {
    let Some(target) = &c.connect else {
        return Ok(Endpoint::Local {
            socket: c.socket.clone(),
        });
    };
    let key_path = c.key.as_ref().ok_or(Error::NoKey)?;
    let key = nodus_identity::cli::open_keystore(key_path, &c.pass)
        .map_err(|e| Error::Setup(e.into()))?;
    let client = Client::new(&key).map_err(|e| Error::Setup(crate::cli::Error::Client(e)))?;
    let grant = match &c.grant {
        Some(p) => Some(Arc::new(crate::cli::read_grant(p)?)),
        None => None,
    };
    Ok(Endpoint::Remote(Box::new(Remote {
        node: target
            .node
            .parse()
            .map_err(|_| Error::Setup(crate::cli::Error::NodeId(target.node.clone())))?,
        addr: target.addr.clone(),
        client,
        grant,
    })))
}

/// The node's answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The node answered an earlier request with this id (run once).
    pub replayed: bool,
    /// What happened.
    pub outcome: Outcome,
}

/// Sends one request and waits for its response.
pub async fn send(
    endpoint: &Endpoint,
    action: Action,
    confirm: String,
    id: RequestId,
) -> Result<Answer, Error> {
    let mut conv = Conversation::open(endpoint, source::hello(0)).await?;
    conv.writer
        .send(&ClientMsg::Request(Request {
            id,
            action,
            confirm,
        }))
        .await?;
    let wait = async {
        loop {
            match conv.reader.recv().await? {
                Some(ServerMsg::Response(r)) if r.id == id => {
                    return Ok(Answer {
                        replayed: r.replayed,
                        outcome: r.outcome,
                    });
                }
                Some(ServerMsg::Goodbye(why)) => {
                    return Err(Error::Unreachable(format!("the node said goodbye: {why}")));
                }
                Some(_) => {}
                None => {
                    return Err(Error::Unreachable(
                        "the node closed the stream before answering".into(),
                    ));
                }
            }
        }
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, wait).await {
        Ok(r) => r,
        Err(_) => Err(Error::Unreachable(format!(
            "no answer within {} s",
            ANSWER_TIMEOUT.as_secs()
        ))),
    }
}

/// How long to wait for the node's answer once connected (an approve-disk may
/// take a while to wipe a signature; a reboot answers before it happens).
pub const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Command,
    }

    #[test]
    fn approval_file_is_read_and_attached_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let owner = nodus_identity::SecretKey::from_seed(&[1; 32]);
        let node =
            nodus_identity::NodeId::from(nodus_identity::SecretKey::from_seed(&[2; 32]).public());
        let signed = nodus_identity::grant::approve_disk(
            &owner,
            nodus_identity::DEFAULT_NETWORK,
            nodus_identity::grant::DiskApproval {
                node,
                serial: "SER-B".into(),
            },
            None,
        )
        .unwrap();
        let good = dir.path().join("good");
        std::fs::write(
            &good,
            nodus_identity::grant::disk_approval_to_file_text(&signed, None).unwrap(),
        )
        .unwrap();
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "nodus-disk-approval-v1 !!\n").unwrap();
        let parse = |file: &std::path::Path| {
            Cli::try_parse_from([
                "node",
                "approve-disk",
                "sdb",
                "--confirm",
                "x",
                "--approval",
                file.to_str().unwrap(),
            ])
            .unwrap()
            .cmd
            .parts()
        };
        let (action, _, loaded) = parse(&good).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(
            (loaded.serial.as_str(), loaded.node.clone()),
            ("SER-B", node.to_string())
        );
        assert_eq!(
            action,
            Action::ApproveDisk {
                disk: "sdb".into(),
                approval: Some(Blob(signed.to_bytes().unwrap()))
            }
        );
        let e = parse(&bad).unwrap_err();
        assert!(
            matches!(e, Error::Setup(crate::cli::Error::BadApproval { .. })),
            "{e}"
        );
        let e = parse(&dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(e, Error::Setup(crate::cli::Error::ReadApproval { .. })),
            "{e}"
        );
    }

    #[test]
    fn parses_actions_and_request_ids() {
        let cli = Cli::try_parse_from([
            "node",
            "approve-disk",
            "sdb",
            "--connect",
            "node1abc@10.0.0.2:7447",
            "--key",
            "k",
            "--confirm",
            "node1abc",
            "--request-id",
            "000102030405060708090a0b0c0d0e0f",
        ])
        .unwrap();
        let (action, common, approval) = cli.cmd.parts().unwrap();
        assert_eq!(action.name(), "approve-disk");
        assert_eq!(
            action,
            Action::ApproveDisk {
                disk: "sdb".into(),
                approval: None
            }
        );
        assert!(approval.is_none());
        assert_eq!(
            common.request_id.unwrap().to_string(),
            "000102030405060708090a0b0c0d0e0f"
        );
        assert!(
            Cli::try_parse_from(["node", "identify"]).is_err(),
            "--confirm is required"
        );
        assert!(
            Cli::try_parse_from(["node", "reboot", "--confirm", "x", "--request-id", "zz"])
                .is_err()
        );
        let cli = Cli::try_parse_from(["node", "poweroff", "--confirm", "x"]).unwrap();
        let (action, common, _) = cli.cmd.parts().unwrap();
        assert_eq!(action, Action::PowerOff);
        assert_eq!(common.socket, PathBuf::from(DEFAULT_SOCKET));
    }
}
