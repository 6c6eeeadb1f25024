//! Operator actions: identify, reboot, power off, approve a disk (wipe).
//!
//! Every request goes through the same gate, in this order, and every answer —
//! refusals included — is written to the audit log before it is sent:
//!
//! 1. a request id that already ran for this peer gets its first outcome back
//!    (`replayed`), and nothing runs again;
//! 2. the peer's role, as proven by its transport, must cover the action;
//! 3. the typed confirmation token must be the node's short id;
//! 4. observe mode refuses anything destructive;
//! 5. the action's own checks (a disk must exist, be unused, and carry no foreign
//!    data unless the owner approved it).

use std::{
    collections::BTreeSet,
    io::{Seek as _, SeekFrom, Write as _},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::BoxFuture;
use nodus_identity::{PublicKey, Role};
use nodus_wire::console::{Action, Level, Outcome, RefusalCode, Request, Response};

use super::{
    audit::{Audit, Entry, result_word},
    authz::Authz,
    hub::{Hub, unix_now},
};
use crate::{
    hal::SysRoot,
    inventory::Mode,
    power::logind::{PowerControl, PowerError},
};

/// How long a reboot or power-off waits after answering, so the answer (and the
/// audit line) reach the operator before the machine goes away.
const POWER_DELAY: Duration = Duration::from_millis(500);

/// Bytes zeroed at each end of a disk on approval: partition tables (MBR, GPT
/// and its backup), file-system superblocks and md/LVM labels all live within
/// the first or last MiB.
const WIPE_SPAN: u64 = 1 << 20;

/// Who is asking, as the transport proved it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// For the audit log and idempotency: `acct1…`, `uid=0`, `dbus`.
    pub label: String,
    /// The verified key (QUIC); `None` on the Unix socket and D-Bus.
    pub key: Option<PublicKey>,
    /// The role the transport gave at connect time (re-checked per request for
    /// keys, since a grant can expire while connected).
    pub role: Role,
}

/// Power actions that change nothing: for tests and demos (config
/// `power_backend = "simulated"`). Counts what it was asked to do.
#[derive(Debug, Default)]
pub struct SimulatedPower {
    /// `reboot`/`poweroff`, in order.
    pub calls: Mutex<Vec<&'static str>>,
}

impl PowerControl for SimulatedPower {
    fn reboot(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push("reboot");
            Ok(())
        })
    }
    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push("poweroff");
            Ok(())
        })
    }
}

/// Runs actions.
pub struct Actions {
    mode: Mode,
    confirm_token: String,
    audit: Audit,
    authz: Arc<Authz>,
    hub: Arc<Hub>,
    power: Arc<dyn PowerControl>,
    identify_tty: Option<PathBuf>,
    root: SysRoot,
    approved_path: PathBuf,
    approved: Mutex<BTreeSet<String>>,
    /// Asks the inventory loop for a pass now (after a wipe).
    refresh: tokio::sync::mpsc::Sender<()>,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What [`Actions::new`] needs.
pub struct ActionsSetup {
    /// Observe or managed.
    pub mode: Mode,
    /// The node's short id.
    pub confirm_token: String,
    /// The audit log.
    pub audit: Audit,
    /// Roles.
    pub authz: Arc<Authz>,
    /// Shared state.
    pub hub: Arc<Hub>,
    /// Power backend.
    pub power: Arc<dyn PowerControl>,
    /// Identify's tty.
    pub identify_tty: Option<PathBuf>,
    /// Hardware root (disk device nodes live under `dev/`).
    pub root: SysRoot,
    /// `<state>/approved-disks.json`.
    pub approved_path: PathBuf,
    /// Inventory refresh trigger.
    pub refresh: tokio::sync::mpsc::Sender<()>,
}

fn refused(code: RefusalCode, message: impl Into<String>) -> Outcome {
    Outcome::Refused {
        code,
        message: message.into(),
    }
}

/// Loads the serials the owner approved, kept across restarts.
pub fn load_approved(path: &std::path::Path) -> BTreeSet<String> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl Actions {
    /// Builds the action runner.
    pub fn new(s: ActionsSetup) -> Self {
        let approved = load_approved(&s.approved_path);
        Self {
            mode: s.mode,
            confirm_token: s.confirm_token,
            audit: s.audit,
            authz: s.authz,
            hub: s.hub,
            power: s.power,
            identify_tty: s.identify_tty,
            root: s.root,
            approved_path: s.approved_path,
            approved: Mutex::new(approved),
            refresh: s.refresh,
        }
    }

    /// Serials approved for wiping (inventory marks them eligible).
    pub fn approved_serials(&self) -> BTreeSet<String> {
        self.approved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The role `peer` has right now.
    fn current_role(&self, peer: &Peer) -> Result<Role, String> {
        match &peer.key {
            Some(k) => self
                .authz
                .role_of(k)
                .map_err(|r| format!("{r}: this key has no role on this node any more")),
            None => Ok(peer.role),
        }
    }

    /// Handles one request end to end (gate, action, audit) and returns the
    /// answer to send.
    pub async fn handle(&self, peer: &Peer, req: Request) -> Response {
        if let Some(first) = self.audit.replay(&peer.label, req.id) {
            return Response {
                id: req.id,
                replayed: true,
                outcome: first,
            };
        }
        let (role, outcome) = match self.current_role(peer) {
            Err(why) => (peer.role, refused(RefusalCode::NotAuthorized, why)),
            Ok(role) => (role, self.gate_and_run(role, peer, &req).await),
        };
        let target = match &req.action {
            Action::ApproveDisk { disk, .. } => Some(disk.clone()),
            _ => None,
        };
        let entry = Entry {
            unix_s: unix_now(),
            peer: peer.label.clone(),
            role: role.as_str().to_owned(),
            request_id: req.id.to_string(),
            action: req.action.name().to_owned(),
            target,
            result: result_word(&outcome).to_owned(),
            message: match &outcome {
                Outcome::Done(m) | Outcome::Refused { message: m, .. } => m.clone(),
            },
        };
        let outcome = match self.audit.record(&entry, req.id, &outcome) {
            Ok(()) => outcome,
            // An action whose audit line cannot be written is reported as
            // failed, even if it ran: the operator must know the record is gone.
            Err(e) => refused(
                RefusalCode::Failed,
                format!("{e}; the action was not recorded"),
            ),
        };
        let level = match &outcome {
            Outcome::Done(_) => Level::Info,
            Outcome::Refused { .. } => Level::Warning,
        };
        self.hub.event(
            level,
            "audit",
            format!(
                "{} by {} ({}): {}",
                req.action.name(),
                peer.label,
                role,
                entry.message
            ),
        );
        // The power action itself runs only once the answer is on its way.
        if matches!(outcome, Outcome::Done(_)) {
            match req.action {
                Action::Reboot => self.schedule_power(true),
                Action::PowerOff => self.schedule_power(false),
                _ => {}
            }
        }
        Response {
            id: req.id,
            replayed: false,
            outcome,
        }
    }

    async fn gate_and_run(&self, role: Role, peer: &Peer, req: &Request) -> Outcome {
        let needed = req.action.required_role();
        if !role.covers(needed) {
            return refused(
                RefusalCode::NotAuthorized,
                format!(
                    "{} needs the {needed} role; {} has {role}",
                    req.action.name(),
                    peer.label
                ),
            );
        }
        if req.confirm.trim() != self.confirm_token {
            return refused(
                RefusalCode::BadConfirmation,
                format!(
                    "confirmation token {:?} is not this node's short id {}",
                    req.confirm.chars().take(64).collect::<String>(),
                    self.confirm_token
                ),
            );
        }
        if req.action.is_destructive() && self.mode == Mode::Observe {
            return refused(
                RefusalCode::ObserveMode,
                format!(
                    "the agent runs in observe mode and never does {}; restart it in managed mode",
                    req.action.name()
                ),
            );
        }
        match &req.action {
            Action::Identify => self.identify(&peer.label),
            Action::Reboot => Outcome::Done("rebooting".into()),
            Action::PowerOff => Outcome::Done("powering off".into()),
            Action::ApproveDisk { disk, approval } => {
                self.approve_disk(role, disk, approval.as_ref()).await
            }
        }
    }

    /// Identify: an event every console shows as a banner (the on-node console
    /// included), plus a banner and bell on the configured tty.
    pub fn identify(&self, by: &str) -> Outcome {
        self.hub.event(
            Level::Info,
            "identify",
            format!("IDENTIFY: this node was asked to show itself by {by}"),
        );
        if let Some(tty) = &self.identify_tty {
            let banner = format!(
                "\x07\r\n\x1b[7m  NODUS IDENTIFY  {}  \x1b[0m\x07\r\n",
                self.hub.node_id()
            );
            let written = std::fs::OpenOptions::new()
                .write(true)
                .open(tty)
                .and_then(|mut f| f.write_all(banner.as_bytes()));
            if let Err(error) = written {
                tracing::warn!(%error, tty = %tty.display(), "identify banner not shown");
            }
        }
        Outcome::Done("identify banner shown".into())
    }

    fn schedule_power(&self, reboot: bool) {
        let power = self.power.clone();
        let hub = self.hub.clone();
        tokio::spawn(async move {
            tokio::time::sleep(POWER_DELAY).await;
            // sync(2) first: logind does it too, but the syscall path must.
            nix::unistd::sync();
            let r = if reboot {
                power.reboot().await
            } else {
                power.power_off().await
            };
            if let Err(e) = r {
                hub.event(
                    Level::Critical,
                    "power",
                    format!(
                        "{} failed: {e}",
                        if reboot { "reboot" } else { "power off" }
                    ),
                );
            }
        });
    }

    async fn approve_disk(
        &self,
        role: Role,
        name: &str,
        approval: Option<&nodus_wire::Blob>,
    ) -> Outcome {
        let inv = self.hub.inventory();
        let Some(disk) = inv
            .disks
            .iter()
            .find(|d| d.name == name || d.serial.as_deref() == Some(name))
        else {
            return refused(
                RefusalCode::NotFound,
                format!("no disk named {name:?} on this node"),
            );
        };
        let Some(serial) = disk.serial.clone() else {
            return refused(
                RefusalCode::Invalid,
                format!(
                    "disk {} reports no serial number; an approval could not follow it",
                    disk.name
                ),
            );
        };
        if !disk.mounts.is_empty() || !disk.holders.is_empty() || !disk.members.is_empty() {
            let mut uses: Vec<String> = disk.mounts.clone();
            uses.extend(disk.holders.iter().map(|h| format!("held by {h}")));
            return refused(
                RefusalCode::Invalid,
                format!(
                    "disk {} is in use ({}); not wiping it",
                    disk.name,
                    uses.join(", ")
                ),
            );
        }
        if disk.read_only {
            return refused(
                RefusalCode::Invalid,
                format!("disk {} is read-only", disk.name),
            );
        }
        if !disk.signatures.is_empty() && role != Role::Owner {
            let sigs: Vec<&str> = disk.signatures.iter().map(|s| s.name()).collect();
            let verdict = match approval {
                None => Err(format!(
                    "none was presented; the owner can make one with `nodus id approve-disk \
                     --node {} --serial {serial:?} --disk {} --out FILE`, passed with \
                     --approval FILE",
                    self.hub.node_id(),
                    disk.name
                )),
                Some(blob) => self.owner_approved(blob, &serial),
            };
            if let Err(why) = verdict {
                return refused(
                    RefusalCode::NotAuthorized,
                    format!(
                        "disk {} holds {}: wiping data the node did not create needs the owner's signed approval ({why})",
                        disk.name,
                        sigs.join(", ")
                    ),
                );
            }
        }
        let dev = self.root.path(&format!("dev/{}", disk.name));
        let size = disk.size_bytes;
        let wiped = tokio::task::spawn_blocking(move || wipe_ends(&dev, size)).await;
        match wiped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return refused(
                    RefusalCode::Failed,
                    format!("wiping {} failed: {e}", disk.name),
                );
            }
            Err(_) => return refused(RefusalCode::Failed, "the wipe task panicked"),
        }
        let saved = {
            let mut set = self.approved.lock().unwrap_or_else(|e| e.into_inner());
            set.insert(serial.clone());
            serde_json::to_vec(&*set)
        };
        if let Ok(bytes) = saved
            && let Err(e) = super::authz::write_atomic(&self.approved_path, &bytes)
        {
            return refused(
                RefusalCode::Failed,
                format!(
                    "disk {} was wiped but its approval could not be saved: {e}",
                    disk.name
                ),
            );
        }
        let _ = self.refresh.try_send(());
        Outcome::Done(format!(
            "disk {} ({serial}) wiped and approved for pool use",
            disk.name
        ))
    }

    /// Checks a presented disk approval: signed by this node's owner for this
    /// network, unexpired, naming this node and the disk's `serial`. The error
    /// says which of those failed, for the operator holding the file.
    fn owner_approved(&self, blob: &nodus_wire::Blob, serial: &str) -> Result<(), String> {
        let Some(owner) = self.authz.owner() else {
            return Err("this node has no owner configured to approve it".to_owned());
        };
        let signed =
            nodus_identity::Signed::<nodus_identity::grant::DiskApproval>::from_bytes(&blob.0)
                .map_err(|e| format!("the one presented is not a signed approval: {e}"))?;
        let expect = nodus_identity::statement::Expect::new(
            nodus_identity::statement::purpose::DISK_APPROVAL,
            self.authz.network(),
            unix_now(),
        )
        .signed_by(owner);
        let approval = signed.verify(&expect).map_err(|e| {
            format!(
                "the one presented does not verify against this node's owner key on network \
                     {}: {e}",
                self.authz.network()
            )
        })?;
        let me = self.hub.node_id();
        if approval.node.to_string() != me {
            return Err(format!(
                "the one presented is for node {}, not this node {me}",
                approval.node
            ));
        }
        if approval.serial != serial {
            return Err(format!(
                "the one presented names serial {:?}; this disk's is {serial:?}",
                approval.serial
            ));
        }
        Ok(())
    }
}

/// Zeroes the first and last [`WIPE_SPAN`] bytes of the device at `path`.
fn wipe_ends(path: &std::path::Path, size: Option<u64>) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let size = match size {
        Some(s) => s,
        None => f.seek(SeekFrom::End(0))?,
    };
    let zeros = vec![0u8; usize::try_from(WIPE_SPAN.min(size)).unwrap_or(0)];
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&zeros)?;
    if size > WIPE_SPAN {
        let tail = size.saturating_sub(WIPE_SPAN).max(WIPE_SPAN.min(size));
        f.seek(SeekFrom::Start(tail))?;
        f.write_all(&zeros[..usize::try_from(size - tail).unwrap_or(0)])?;
    }
    f.sync_all()
}
