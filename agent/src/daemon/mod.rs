//! `nodus agent run`: the node daemon.
//!
//! It ties the hardware layer to the agent's three APIs:
//!
//! - the console protocol (`nodus/console/1`, [`nodus_wire::console`]) over QUIC
//!   for remote consoles, authorized from the verified peer key ([`authz`]);
//! - the same protocol on a Unix socket for the console on the node's own
//!   screen, authorized from the peer's credentials;
//! - `org.nodus.Agent1` on D-Bus for local system tools.
//!
//! State kept on disk, under the state directory (`/var/lib/nodus` for root,
//! `$XDG_STATE_HOME/nodus` otherwise; `--state-dir` or `state_dir` to move it):
//!
//! | path | what |
//! |---|---|
//! | `node.key` | the node's keystore (its identity), unless `--key` names another |
//! | `grants/<acct>.grant` | grants presented by operators and viewers |
//! | `audit.log` | one JSON line per action request, allowed or refused |
//! | `approved-disks.json` | serials the owner approved for pool use (wiped) |
//! | `disk-probe/` | seek-probe results, by serial (managed mode) |
//!
//! Nothing else is written: in observe mode the daemon never formats,
//! partitions, mounts, reconfigures or powers anything.

pub mod actions;
pub mod audit;
pub mod authz;
pub mod cli;
pub mod config;
pub mod hub;
pub mod session;

use std::{fmt, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use nodus_identity::{AccountId, NodeId, SecretKey};
use nodus_wire::{
    Alpn, ServerBuilder,
    console::{Delta, GrantAnswer, GrantOffer, Level},
    unix::{GroupPolicy, RolePolicy, UnixServer},
};
use tokio::sync::{mpsc, watch};

use self::{
    actions::{Actions, ActionsSetup, Peer, SimulatedPower},
    audit::Audit,
    authz::{Authz, QuicAuthorizer},
    config::{Config, PowerBackend},
    hub::Hub,
};
use crate::{
    api::dbus::{BusChoice, DbusService, DbusState, IdentifyFailed, IdentifyHook},
    hal::SysRoot,
    health::Assessor,
    inventory::{Inventory, Mode, Options},
    power::{PowerSource, logind::PowerControl},
};

/// Seconds between uptime refreshes sent to consoles.
const FACTS_EVERY: Duration = Duration::from_secs(30);
/// Link events arriving within this window cause one inventory pass, not many.
const LINK_DEBOUNCE: Duration = Duration::from_millis(200);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The hardware root could not be opened.
    #[error("Cannot read the hardware")]
    Root(#[from] crate::hal::RootError),
    /// The state directory could not be created.
    #[error("Cannot create the state directory {path}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The grant store could not be opened.
    #[error("Cannot open the grant store")]
    Grants(#[from] authz::GrantStoreError),
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// The QUIC endpoint could not start.
    #[error("Cannot serve the console protocol on {addr}")]
    Quic {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: nodus_wire::quic::ServerError,
    },
    /// The Unix socket's directory could not be created.
    #[error("Cannot create the socket directory {path}")]
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The Unix socket could not be bound.
    #[error("Cannot serve the console protocol on {path}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nodus_wire::unix::UnixError,
    },
}

/// What the daemon serves, once it serves; printed as the ready line.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The node id.
    pub node_id: NodeId,
    /// The QUIC address actually bound (the port is known even for `:0`).
    pub quic: SocketAddr,
    /// The Unix socket, if any.
    pub socket: Option<PathBuf>,
}

impl fmt::Display for Ready {
    /// `nodus-agent ready node=<NodeId> quic=<addr:port> socket=<path>`: the one
    /// line scripts wait for. `socket=-` when there is none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodus-agent ready node={} quic={} socket={}",
            self.node_id,
            self.quic,
            self.socket
                .as_ref()
                .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
        )
    }
}

/// Whole-node power now: a DCMI reading (the BMC measures the whole box) beats
/// the sum of RAPL packages (CPU and DRAM only), which beats nothing.
pub fn node_watts(inv: &Inventory) -> Option<f64> {
    if let Some(w) = inv
        .power
        .iter()
        .find(|m| m.source == PowerSource::Dcmi)
        .and_then(|m| m.watts)
    {
        return Some(w);
    }
    let packages: Vec<f64> = inv
        .power
        .iter()
        .filter(|m| m.source == PowerSource::Rapl && !m.name.contains('/'))
        .filter_map(|m| m.watts)
        .collect();
    (!packages.is_empty()).then(|| packages.iter().sum())
}

/// The inventory pass the daemon runs: collect, then judge health with the
/// stateful assessor (which remembers links that had carrier) and the telemetry
/// history (trend rules).
struct Inventorier {
    root: SysRoot,
    mode: Mode,
    state_dir: PathBuf,
    assessor: Assessor,
}

impl Inventorier {
    fn pass(
        &mut self,
        approved: std::collections::BTreeSet<String>,
        history: Option<&crate::telemetry::History>,
    ) -> Inventory {
        let mut opts = Options::for_root(&self.root);
        opts.mode = self.mode;
        opts.state_dir = Some(self.state_dir.clone());
        opts.approved_serials = approved;
        let mut inv = crate::inventory::collect_with(&self.root, &opts);
        inv.health = self.assessor.assess(&inv, history);
        inv
    }
}

fn create_state_dir(path: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DaemonError::StateDir {
            path: path.to_owned(),
            source,
        })
}

/// The socket's role policy: root and the configured group are operators,
/// everyone else a viewer. A missing group leaves root alone as operator.
fn socket_policy(group: &str) -> Arc<dyn RolePolicy> {
    match GroupPolicy::with_group(group) {
        Ok(p) => Arc::new(p),
        Err(error) => {
            tracing::info!(group, %error, "socket operator group not found; only root operates locally");
            Arc::new(GroupPolicy::root_only())
        }
    }
}

/// The node key the daemon serves with, and whether it is on disk yet.
///
/// A key created at this start is used at once while its keystore is sealed in
/// the background (see [`cli::load_or_create_key`]). Answering consoles with it
/// is harmless, but the chain client waits for `durable`: an identity registered
/// on the chain must be one the next start still has.
#[derive(Debug)]
pub struct NodeKey {
    /// The key.
    pub key: SecretKey,
    /// `None`: the key was read from disk (or is the caller's to keep).
    /// Otherwise resolves to whether writing its keystore succeeded.
    pub durable: Option<tokio::sync::oneshot::Receiver<bool>>,
}

impl From<SecretKey> for NodeKey {
    fn from(key: SecretKey) -> Self {
        Self { key, durable: None }
    }
}

/// Runs the daemon until `shutdown` resolves. `on_ready` is called once every
/// API serves.
pub async fn run(
    config: Config,
    key: impl Into<NodeKey>,
    on_ready: impl FnOnce(&Ready),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let NodeKey { key, durable } = key.into();
    let root = match &config.root {
        Some(dir) => SysRoot::at(dir)?,
        None => SysRoot::host(),
    };
    create_state_dir(&config.state_dir)?;
    let node_id = NodeId::from(key.public());
    let confirm_token = node_id.short();
    let authz = Arc::new(Authz::load(
        config.owner,
        node_id,
        config.network.clone(),
        config.state_dir.join("grants"),
    )?);
    let audit = Audit::open(&config.state_dir.join("audit.log"))?;
    let approved_path = config.state_dir.join("approved-disks.json");

    let (stop_tx, stop_rx) = watch::channel(false);
    let (telemetry, telemetry_task) =
        crate::telemetry::task::spawn(root.clone(), config.telemetry, stop_rx.clone());

    let mut inventorier = Inventorier {
        root: root.clone(),
        mode: config.mode,
        state_dir: config.state_dir.clone(),
        assessor: Assessor::new(config.health.clone()),
    };
    // Link events are subscribed to before the first pass reads the links: a
    // carrier that rises between that read and a later subscription would
    // otherwise stay unreported until the next timed pass (an e1000e finishes
    // autonegotiating seconds into boot, right about then).
    let link_events = if root.is_host() {
        crate::net::LinkEvents::subscribe()
            .inspect_err(|error| {
                tracing::warn!(%error, "link events unavailable; links refresh on the timer only");
            })
            .ok()
    } else {
        None
    };
    let approved = actions::load_approved(&approved_path);
    let (first, mut inventorier) = tokio::task::spawn_blocking(move || {
        let inv = inventorier.pass(approved, None);
        (inv, inventorier)
    })
    .await
    .map_err(|_| DaemonError::StateDir {
        path: config.state_dir.clone(),
        source: std::io::Error::other("the first inventory pass panicked"),
    })?;
    crate::boot::timeline::mark("agent", "first inventory pass done");
    let first_health = first.health.status;
    let hub = Arc::new(Hub::new(
        node_id.to_string(),
        config.mode,
        config.farm,
        first,
        Some(telemetry.clone()),
    ));
    hub.event(
        Level::Info,
        "agent",
        format!(
            "agent {} started in {} mode",
            env!("CARGO_PKG_VERSION"),
            crate::api::dbus::mode_name(config.mode)
        ),
    );

    // Telemetry samples become deltas.
    {
        let hub = hub.clone();
        let mut live = telemetry.live.subscribe();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    b = live.recv() => match b {
                        Ok(batch) => hub.publish(Delta::Samples {
                            unix_s: batch.unix_s,
                            values: batch.values.clone(),
                        }),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    () = stopped(&mut stop) => return,
                }
            }
        });
    }

    // Power and D-Bus.
    let system_bus = match config.dbus {
        BusChoice::System if config.power_backend == PowerBackend::System => {
            zbus::Connection::system().await.ok()
        }
        _ => None,
    };
    let power: Arc<dyn PowerControl> = match config.power_backend {
        PowerBackend::Simulated => Arc::new(SimulatedPower::default()),
        PowerBackend::System => Arc::from(
            crate::power::logind::choose(system_bus)
                .await
                .into_control(),
        ),
    };
    let (refresh_tx, mut refresh_rx) = mpsc::channel::<()>(4);
    let actions = Arc::new(Actions::new(ActionsSetup {
        mode: config.mode,
        confirm_token: confirm_token.clone(),
        audit,
        authz: authz.clone(),
        hub: hub.clone(),
        power,
        identify_tty: config.identify_tty.clone(),
        root: root.clone(),
        approved_path,
        refresh: refresh_tx.clone(),
    }));
    let identify_hook: IdentifyHook = {
        let actions = actions.clone();
        Arc::new(move || match actions.identify("dbus") {
            nodus_wire::console::Outcome::Done(_) => Ok(()),
            nodus_wire::console::Outcome::Refused { message, .. } => Err(IdentifyFailed(message)),
        })
    };
    let initial = {
        let inv = hub.inventory();
        let watts = node_watts(&inv);
        DbusState::from_inventory(node_id.to_string(), config.mode, inv, watts)
    };
    let dbus = match DbusService::start(config.dbus.clone(), initial, identify_hook).await {
        Ok(h) => Some(h),
        Err(error) => {
            tracing::warn!(%error, "D-Bus service not available; running without it");
            hub.event(
                Level::Warning,
                "dbus",
                format!("D-Bus service not started: {error}"),
            );
            None
        }
    };

    crate::boot::timeline::mark("agent", "D-Bus settled");
    // QUIC.
    let session_ctx = session::Context {
        hub: hub.clone(),
        actions: actions.clone(),
        confirm_token: confirm_token.clone(),
        stop: stop_rx.clone(),
    };
    let quic = {
        let ctx = session_ctx.clone();
        let grant_authz = authz.clone();
        let grant_hub = hub.clone();
        // The grant protocol admits every key (presenting a grant is how a key
        // becomes known), the console only known ones. The TLS verifier judges the
        // ALPN the handshake negotiates, so an unknown key offering the console is
        // refused inside the handshake (access_denied) and never gets a connection.
        ServerBuilder::new(&key, Arc::new(QuicAuthorizer(authz.clone())))
            .route(Alpn::Console, move |conn| {
                let ctx = ctx.clone();
                async move { serve_quic_console(ctx, conn).await }
            })
            .route(Alpn::Grant, move |conn| {
                let authz = grant_authz.clone();
                let hub = grant_hub.clone();
                async move { serve_grant(authz, hub, conn).await }
            })
            .bind(config.listen)
            .map_err(|source| DaemonError::Quic {
                addr: config.listen,
                source,
            })?
    };

    // Unix socket.
    let unix = match &config.socket {
        None => None,
        Some(path) => {
            if let Some(dir) = path.parent()
                && let Err(source) = std::fs::create_dir_all(dir)
            {
                return Err(DaemonError::SocketDir {
                    path: dir.to_owned(),
                    source,
                });
            }
            let server =
                UnixServer::bind(path, socket_policy(&config.socket_group)).map_err(|source| {
                    DaemonError::Socket {
                        path: path.clone(),
                        source,
                    }
                })?;
            // Everyone may connect (as a viewer); the policy decides the role.
            {
                use std::os::unix::fs::PermissionsExt as _;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
            }
            let ctx = session_ctx.clone();
            Some(tokio::spawn(async move {
                loop {
                    match server.accept().await {
                        Ok(conn) => {
                            let ctx = ctx.clone();
                            tokio::spawn(serve_local(ctx, conn));
                        }
                        Err(error) => {
                            tracing::warn!(%error, "local console refused");
                        }
                    }
                }
            }))
        }
    };

    // Inventory loop: on a timer, after actions, and on link events.
    let dbus = dbus.map(Arc::new);
    if let Some(mut events) = link_events {
        let link_refresh = refresh_tx.clone();
        tokio::spawn(async move {
            while events.next().await.is_some() {
                tokio::time::sleep(LINK_DEBOUNCE).await;
                if link_refresh.send(()).await.is_err() {
                    return;
                }
            }
        });
    }
    let inventory_task = {
        let hub = hub.clone();
        let actions = actions.clone();
        let telemetry = telemetry.clone();
        let mut stop = stop_rx.clone();
        let interval = Duration::from_secs(config.inventory_interval_s);
        let dbus = dbus.clone();
        let mode = config.mode;
        tokio::spawn(async move {
            let mut last_health = first_health;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    Some(()) = refresh_rx.recv() => {
                        while refresh_rx.try_recv().is_ok() {}
                    }
                    () = stopped(&mut stop) => return,
                }
                let approved = actions.approved_serials();
                let history = telemetry.history.clone();
                let Ok((inv, back)) = tokio::task::spawn_blocking(move || {
                    let h = history
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let inv = inventorier.pass(approved, Some(&h));
                    drop(h);
                    (inv, inventorier)
                })
                .await
                else {
                    hub.event(
                        Level::Critical,
                        "agent",
                        "inventory pass panicked; stopping inventory updates",
                    );
                    return;
                };
                inventorier = back;
                let status = inv.health.status;
                if status != last_health {
                    health_event(&hub, last_health, &inv);
                    last_health = status;
                }
                for (level, change) in address_changes(&hub.inventory().nics, &inv.nics) {
                    hub.event(level, "network", change);
                }
                hub.set_inventory(inv);
                if let Some(d) = &dbus {
                    let inv = hub.inventory();
                    let watts = node_watts(&inv);
                    let state = DbusState::from_inventory(hub.node_id(), mode, inv, watts);
                    if let Err(error) = d.update(state).await {
                        tracing::debug!(%error, "D-Bus update failed");
                    }
                }
            }
        })
    };

    let chain_task = match config.chain.clone() {
        Some(c) => match crate::chain::spawn(c, key.clone(), durable, hub.clone(), stop_rx.clone())
        {
            Ok(t) => Some(t),
            Err(error) => {
                hub.event(
                    Level::Warning,
                    "chain",
                    format!("chain client not started: {error}"),
                );
                None
            }
        },
        None => None,
    };

    crate::boot::timeline::mark("agent", "serving");
    on_ready(&Ready {
        node_id,
        quic: quic.local_addr(),
        socket: config.socket.clone(),
    });

    let mut facts = tokio::time::interval(FACTS_EVERY);
    facts.tick().await;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = facts.tick() => hub.refresh_facts(),
        }
    }

    tracing::info!("shutting down");
    hub.event(Level::Info, "agent", "agent stopping");
    let _ = stop_tx.send(true);
    // Give sessions a moment to send their goodbye.
    tokio::time::sleep(Duration::from_millis(100)).await;
    quic.close();
    if let Some(t) = unix {
        t.abort();
    }
    if let Some(path) = &config.socket {
        let _ = std::fs::remove_file(path);
    }
    inventory_task.abort();
    if let Some(t) = chain_task {
        t.abort();
    }
    let _ = telemetry_task.await;
    let _ = inventory_task.await;
    if let Some(d) = dbus.and_then(|d| Arc::try_unwrap(d).ok()) {
        let _ = d.stop().await;
    }
    Ok(())
}

/// Resolves once `stop` says so (or its sender is gone). Returns nothing, so
/// no lock guard of the channel lives on in a `select!`.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Records a change of overall health as an event, naming the worst finding.
/// One event per physical NIC whose IPv4 addresses differ between two passes
/// (`eth0: IPv4 10.77.0.5/24 -> 10.78.0.5/24`): a lease taken, lost or moved
/// to another network, which the init's network bring-up otherwise reports on
/// the node's own console only. Losing the last address is a warning. IPv6 is
/// left out: temporary addresses come and go on their own.
fn address_changes(before: &[crate::net::Nic], after: &[crate::net::Nic]) -> Vec<(Level, String)> {
    let v4 = |nic: Option<&crate::net::Nic>| -> Vec<String> {
        let mut a: Vec<String> = nic
            .map(|n| {
                n.addresses
                    .iter()
                    .filter(|a| !a.contains(':'))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        a.sort();
        a
    };
    let shown = |a: &[String]| {
        if a.is_empty() {
            "none".to_owned()
        } else {
            a.join(", ")
        }
    };
    after
        .iter()
        .filter(|n| n.physical)
        .filter_map(|n| {
            let old = v4(before.iter().find(|b| b.name == n.name));
            let new = v4(Some(n));
            (old != new).then(|| {
                let level = if new.is_empty() {
                    Level::Warning
                } else {
                    Level::Info
                };
                (
                    level,
                    format!("{}: IPv4 {} -> {}", n.name, shown(&old), shown(&new)),
                )
            })
        })
        .collect()
}

fn health_event(hub: &Hub, was: crate::health::Level, inv: &Inventory) {
    let status = inv.health.status;
    let reason = inv
        .health
        .findings
        .iter()
        .max_by_key(|f| f.level)
        .map(|f| format!(" ({}: {})", f.component, f.reason))
        .unwrap_or_default();
    let level = match status {
        crate::health::Level::Critical => Level::Critical,
        crate::health::Level::Warning => Level::Warning,
        _ => Level::Ok,
    };
    hub.event(
        level,
        "health",
        format!(
            "health {} -> {}{reason}",
            crate::api::dbus::level_name(was),
            crate::api::dbus::level_name(status)
        ),
    );
}

async fn serve_quic_console(ctx: session::Context, conn: nodus_wire::Connection) {
    let peer = Peer {
        label: AccountId::from(*conn.peer()).to_string(),
        key: Some(*conn.peer()),
        role: conn.role(),
    };
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let ctx = ctx.clone();
                let peer = peer.clone();
                tokio::spawn(async move {
                    if let Err(error) = session::run(ctx, peer.clone(), send, recv).await {
                        tracing::debug!(peer = %peer.label, %error, "console session ended");
                    }
                });
            }
            Err(_) => return,
        }
    }
}

async fn serve_grant(authz: Arc<Authz>, hub: Arc<Hub>, conn: nodus_wire::Connection) {
    let Ok((mut send, mut recv)) = conn.accept_bi().await else {
        return;
    };
    let Ok(Some(offer)) = recv.recv::<GrantOffer>().await else {
        return;
    };
    let peer = AccountId::from(*conn.peer());
    let answer = match nodus_identity::grant::SignedGrant::from_bytes(&offer.grant.0) {
        Err(e) => GrantAnswer::Rejected(format!("not a signed grant: {e}")),
        Ok(grant) => match authz.accept(&grant, conn.peer()) {
            Ok(role) => {
                hub.event(
                    Level::Info,
                    "grant",
                    format!("{peer} presented a {role} grant"),
                );
                GrantAnswer::Accepted(role)
            }
            Err(e) => {
                hub.event(
                    Level::Warning,
                    "grant",
                    format!("grant from {peer} refused: {e}"),
                );
                GrantAnswer::Rejected(e.to_string())
            }
        },
    };
    let _ = send.send(&answer).await;
    let _ = send.finish();
    // Let the answer drain before the handler returns and the connection drops.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
}

async fn serve_local(ctx: session::Context, conn: nodus_wire::unix::LocalConnection) {
    let (label, role) = match conn.peer_cred() {
        Some(c) => (format!("uid={}", c.uid), conn.role()),
        None => ("local".to_owned(), conn.role()),
    };
    let peer = Peer {
        label,
        key: None,
        role,
    };
    let (reader, writer) = conn.into_split();
    if let Err(error) = session::run(ctx, peer.clone(), writer, reader).await {
        tracing::debug!(peer = %peer.label, %error, "local console session ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, physical: bool, addresses: &[&str]) -> crate::net::Nic {
        let mut n = crate::net::Nic::new(name);
        n.physical = physical;
        n.addresses = addresses.iter().map(|a| (*a).to_owned()).collect();
        n
    }

    #[test]
    fn ipv4_changes_on_physical_nics_become_events() {
        let before = [
            nic("eth0", true, &["10.77.0.5/24", "fe80::1/64"]),
            nic("eth1", true, &["10.0.2.15/24"]),
            nic("eth2", true, &[]),
            nic("docker0", false, &["172.17.0.1/16"]),
        ];
        let after = [
            // Moved to another network; IPv6 churn alone is no event.
            nic("eth0", true, &["10.78.0.9/24", "fe80::2/64"]),
            // Lease lost.
            nic("eth1", true, &["fe80::3/64"]),
            // Lease taken.
            nic("eth2", true, &["192.168.1.4/24"]),
            // Virtual interfaces are not the node's network.
            nic("docker0", false, &[]),
            // A NIC that appeared with an address.
            nic("eth3", true, &["10.9.0.2/24"]),
        ];
        assert_eq!(
            address_changes(&before, &after),
            vec![
                (
                    Level::Info,
                    "eth0: IPv4 10.77.0.5/24 -> 10.78.0.9/24".to_owned()
                ),
                (Level::Warning, "eth1: IPv4 10.0.2.15/24 -> none".to_owned()),
                (Level::Info, "eth2: IPv4 none -> 192.168.1.4/24".to_owned()),
                (Level::Info, "eth3: IPv4 none -> 10.9.0.2/24".to_owned()),
            ]
        );
        // Same addresses in another order, or only IPv6 changing: nothing.
        let reordered = [nic(
            "eth0",
            true,
            &["10.0.0.2/24", "10.0.0.1/24", "fe80::9/64"],
        )];
        let original = [nic("eth0", true, &["10.0.0.1/24", "10.0.0.2/24"])];
        assert!(address_changes(&original, &reordered).is_empty());
    }
}
