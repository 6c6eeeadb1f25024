//! The `org.nodus.Agent1` D-Bus service: a read-only summary of the node and one
//! harmless action, for local system tools.
//!
//! It is not the console protocol: the console and every destructive action
//! (reboot, power off, disk approval) go through the authorized QUIC / Unix socket
//! protocol. This service only publishes what the daemon pushes into it and calls
//! the daemon's identify hook.
//!
//! - [`BusChoice`]: which bus to serve on (`system`, `none`, or an address).
//! - [`DbusState`]: what the daemon publishes; [`Handle::update`] pushes a new one.
//! - [`DbusService::start`]: claims [`BUS_NAME`] and serves [`OBJECT_PATH`].
//!
//! # The interface
//!
//! `org.nodus.Agent1` at `/org/nodus/Agent1`:
//!
//! | member | kind | signature | meaning |
//! |---|---|---|---|
//! | `NodeId` | property | `s` | the node's id (text form of its public key); constant |
//! | `Mode` | property | `s` | `observe` or `managed` |
//! | `Health` | property | `s` | overall health: `ok`, `warning` or `critical` |
//! | `Capacity` | property | `a{st}` | capacity in integer units, keys below |
//! | `PowerWatts` | property | `d` | whole-node power now, W; **NaN when nothing measures it** |
//! | `Snapshot()` | method | `→ s` | the inventory as JSON (the contract in `agent/INVENTORY.md`) |
//! | `Identify()` | method | `→ ()` | asks the daemon to identify the node (banner, beep) |
//! | `HealthChanged` | signal | `sss` | `old`, `new`, `reason` when overall health changes |
//!
//! `Capacity` keys: `cru`, `mru_bytes`, `sru_bytes`, `hru_bytes`,
//! `unclassified_bytes` (the totals), `reserved_cru`, `reserved_mru_bytes`,
//! `reserved_sru_bytes`, `reserved_hru_bytes` (what the system keeps) and
//! `available_cru`, `available_mru_bytes`, `available_sru_bytes`,
//! `available_hru_bytes` (what is left for tenants). Every value is a `u64` (`t`),
//! so the fractional grid units (CU, SU) are not in the dict; they are in
//! `Snapshot()`. New keys may be added; clients ignore keys they do not know.
//!
//! `PowerWatts` is NaN, not absent, when no meter gives whole-node watts: D-Bus has
//! no null, a property that fails on read breaks `GetAll` for every other property,
//! and NaN cannot be mistaken for a real reading (`busctl` prints `d nan`).
//!
//! Every property emits `PropertiesChanged` with its new value when
//! [`Handle::update`] changes it (`NodeId` never changes, and is marked const).
//! `HealthChanged` is emitted after the `Health` property's `PropertiesChanged`.

use std::{collections::BTreeMap, fmt, str::FromStr, sync::Arc};

use zbus::{
    Connection, connection,
    fdo::{self, RequestNameFlags},
    interface,
    object_server::{InterfaceRef, SignalEmitter},
};

use crate::{
    capacity::Capacity,
    health::{Health, Level},
    inventory::{Inventory, Mode},
};

/// The well-known bus name the service owns.
pub const BUS_NAME: &str = "org.nodus.Agent1";
/// The object path it serves.
pub const OBJECT_PATH: &str = "/org/nodus/Agent1";
/// The interface name.
pub const INTERFACE: &str = "org.nodus.Agent1";

/// Which bus the service runs on, parsed from the `--dbus-address` flag or the
/// config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusChoice {
    /// The system bus (`system`); the normal case on a node.
    System,
    /// No D-Bus service at all (`none`).
    Disabled,
    /// A bus at this D-Bus address, e.g. `unix:path=/tmp/bus` (tests, private buses).
    Address(String),
}

/// Why a [`BusChoice`] could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusChoiceError {
    /// The text was empty.
    #[error(
        "Empty D-Bus address: expected `system`, `none` or an address such as `unix:path=/run/bus`"
    )]
    Empty,
    /// The text is neither keyword nor a valid D-Bus address.
    #[error(
        "Invalid D-Bus address {text:?}: expected `system`, `none` or an address such as `unix:path=/run/bus`"
    )]
    Invalid {
        /// The text given.
        text: String,
        /// What zbus found wrong with it.
        #[source]
        source: zbus::Error,
    },
}

impl FromStr for BusChoice {
    type Err = BusChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err(BusChoiceError::Empty),
            "system" => Ok(Self::System),
            "none" => Ok(Self::Disabled),
            text => match zbus::Address::from_str(text) {
                Ok(_) => Ok(Self::Address(text.to_owned())),
                Err(source) => Err(BusChoiceError::Invalid {
                    text: text.to_owned(),
                    source,
                }),
            },
        }
    }
}

impl fmt::Display for BusChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Disabled => f.write_str("none"),
            Self::Address(a) => f.write_str(a),
        }
    }
}

/// Why the service could not start or publish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbusError {
    /// No connection to the bus (no system bus on this host, a wrong address, or
    /// the bus refused us).
    #[error("Cannot connect to the D-Bus bus {bus}")]
    Connect {
        /// The bus, as configured.
        bus: BusChoice,
        /// What failed.
        #[source]
        source: zbus::Error,
    },
    /// Another process owns [`BUS_NAME`] (another agent is running), or the bus
    /// policy does not let us own it (see [`SYSTEM_BUS_POLICY`]).
    #[error("Cannot own the D-Bus name org.nodus.Agent1 on {bus}")]
    Name {
        /// The bus, as configured.
        bus: BusChoice,
        /// What failed.
        #[source]
        source: zbus::Error,
    },
    /// Publishing a change (`PropertiesChanged`, `HealthChanged`) failed; the
    /// connection is probably gone.
    #[error("Cannot publish on D-Bus")]
    Publish(#[source] zbus::Error),
}

/// A bus policy for the system bus, to install as
/// `/usr/share/dbus-1/system.d/org.nodus.Agent1.conf`: without one, the system
/// bus lets nobody own the name. Root owns it; everyone may read the properties,
/// introspect and take a snapshot; `Identify` is for root and the `nodus` group,
/// the same people who are operators on the Unix socket.
pub const SYSTEM_BUS_POLICY: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.nodus.Agent1"/>
    <allow send_destination="org.nodus.Agent1"/>
  </policy>
  <policy group="nodus">
    <allow send_destination="org.nodus.Agent1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.nodus.Agent1" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.nodus.Agent1" send_interface="org.freedesktop.DBus.Peer"/>
    <allow send_destination="org.nodus.Agent1" send_interface="org.freedesktop.DBus.Properties" send_member="Get"/>
    <allow send_destination="org.nodus.Agent1" send_interface="org.freedesktop.DBus.Properties" send_member="GetAll"/>
    <allow send_destination="org.nodus.Agent1" send_interface="org.nodus.Agent1" send_member="Snapshot"/>
  </policy>
</busconfig>
"#;

/// What the service publishes. The daemon builds one per update.
#[derive(Debug, Clone)]
pub struct DbusState {
    /// The node's id, text form.
    pub node_id: String,
    /// Observe or managed.
    pub mode: Mode,
    /// Overall health and its findings; `status` is the `Health` property and the
    /// worst finding's reason is `HealthChanged`'s `reason`.
    pub health: Health,
    /// Capacity, for the `Capacity` property.
    pub capacity: Capacity,
    /// Whole-node power now, W; `None` when nothing measures it (published as NaN).
    pub power_watts: Option<f64>,
    /// The inventory `Snapshot()` serializes. Shared: updates that keep the same
    /// inventory cost a pointer copy.
    pub inventory: Arc<Inventory>,
}

impl DbusState {
    /// A state whose health and capacity are the inventory's own.
    pub fn from_inventory(
        node_id: String,
        mode: Mode,
        inventory: Arc<Inventory>,
        power_watts: Option<f64>,
    ) -> Self {
        Self {
            node_id,
            mode,
            health: inventory.health.clone(),
            capacity: inventory.capacity.clone(),
            power_watts,
            inventory,
        }
    }
}

/// Why the daemon refused or failed an identify request; the text goes back to the
/// D-Bus caller as an `org.freedesktop.DBus.Error.Failed` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdentifyFailed(pub String);

/// The daemon's identify action. Called on a zbus task for each `Identify()` call,
/// so it must return quickly (hand the work to the daemon, e.g. over a channel).
pub type IdentifyHook = Arc<dyn Fn() -> Result<(), IdentifyFailed> + Send + Sync>;

/// The `Mode` property's text.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Observe => "observe",
        Mode::Managed => "managed",
    }
}

/// The `Health` property's text.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Ok => "ok",
        Level::Warning => "warning",
        Level::Critical => "critical",
    }
}

/// The `Capacity` property's dict (keys in the module docs).
pub fn capacity_dict(c: &Capacity) -> BTreeMap<String, u64> {
    let entries: [(&str, u64); 13] = [
        ("cru", c.cru.into()),
        ("mru_bytes", c.mru_bytes),
        ("sru_bytes", c.sru_bytes),
        ("hru_bytes", c.hru_bytes),
        ("unclassified_bytes", c.unclassified_bytes),
        ("reserved_cru", c.reserved.cru.into()),
        ("reserved_mru_bytes", c.reserved.mru_bytes),
        ("reserved_sru_bytes", c.reserved.sru_bytes),
        ("reserved_hru_bytes", c.reserved.hru_bytes),
        ("available_cru", c.available.cru.into()),
        ("available_mru_bytes", c.available.mru_bytes),
        ("available_sru_bytes", c.available.sru_bytes),
        ("available_hru_bytes", c.available.hru_bytes),
    ];
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// `HealthChanged`'s reason: the worst finding, or a plain word when all is well.
fn health_reason(health: &Health) -> String {
    match health.findings.first() {
        Some(f) => format!("{}: {}", f.component, f.reason),
        None => "all components ok".to_owned(),
    }
}

/// The object served at [`OBJECT_PATH`].
struct Agent1 {
    state: DbusState,
    identify: IdentifyHook,
}

#[interface(name = "org.nodus.Agent1")]
impl Agent1 {
    /// The node's id (text form of its ed25519 public key).
    #[zbus(property(emits_changed_signal = "const"))]
    fn node_id(&self) -> String {
        self.state.node_id.clone()
    }

    /// `observe` or `managed`.
    #[zbus(property)]
    fn mode(&self) -> String {
        mode_name(self.state.mode).to_owned()
    }

    /// Overall health: `ok`, `warning` or `critical`.
    #[zbus(property)]
    fn health(&self) -> String {
        level_name(self.state.health.status).to_owned()
    }

    /// Capacity in integer units: totals, `reserved_*` and `available_*`.
    #[zbus(property)]
    fn capacity(&self) -> BTreeMap<String, u64> {
        capacity_dict(&self.state.capacity)
    }

    /// Whole-node power now, W; NaN when nothing measures it.
    #[zbus(property)]
    fn power_watts(&self) -> f64 {
        self.state.power_watts.unwrap_or(f64::NAN)
    }

    /// The inventory as JSON.
    fn snapshot(&self) -> fdo::Result<String> {
        serde_json::to_string(&*self.state.inventory)
            .map_err(|e| fdo::Error::Failed(format!("Cannot serialize the inventory: {e}")))
    }

    /// Identifies the node: a banner on its screen, and a beep where possible.
    fn identify(&self) -> fdo::Result<()> {
        (self.identify)().map_err(|e| fdo::Error::Failed(e.0))
    }

    /// Overall health changed from `old` to `new`; `reason` names the worst finding.
    // The Rust name differs: the `Health` property already generates
    // `health_changed` (its PropertiesChanged emitter).
    #[zbus(signal, name = "HealthChanged")]
    async fn health_transition(
        emitter: &SignalEmitter<'_>,
        old: &str,
        new: &str,
        reason: &str,
    ) -> zbus::Result<()>;
}

/// Starts the service.
pub struct DbusService;

impl DbusService {
    /// Connects to `bus`, serves the interface at [`OBJECT_PATH`] with `state`, then
    /// claims [`BUS_NAME`] (so a client that sees the name finds the object).
    ///
    /// With [`BusChoice::Disabled`] nothing connects and the handle's updates do
    /// nothing. When the system bus is missing the error is
    /// [`DbusError::Connect`]; the daemon logs it and runs on without D-Bus.
    pub async fn start(
        bus: BusChoice,
        state: DbusState,
        identify: IdentifyHook,
    ) -> Result<Handle, DbusError> {
        let builder = match &bus {
            BusChoice::Disabled => {
                return Ok(Handle {
                    inner: Inner::Disabled,
                });
            }
            BusChoice::System => connection::Builder::system(),
            BusChoice::Address(a) => connection::Builder::address(a.as_str()),
        };
        let conn = builder
            .serve_at(OBJECT_PATH, Agent1 { state, identify })
            .build()
            .await
            .map_err(|source| DbusError::Connect {
                bus: bus.clone(),
                source,
            })?;
        // Exclusive, and never taken over: a second agent must fail here rather than
        // silently steal the name from the first.
        conn.request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
            .await
            .map_err(|source| DbusError::Name {
                bus: bus.clone(),
                source,
            })?;
        let iface = conn
            .object_server()
            .interface::<_, Agent1>(OBJECT_PATH)
            .await
            .map_err(DbusError::Publish)?;
        Ok(Handle {
            inner: Inner::Serving { conn, iface },
        })
    }
}

/// The running service. Dropping it leaves the connection (and the name) until the
/// last clone of its connection goes; call [`Handle::stop`] for a clean exit.
pub struct Handle {
    inner: Inner,
}

enum Inner {
    Disabled,
    Serving {
        conn: Connection,
        iface: InterfaceRef<Agent1>,
    },
}

impl Handle {
    /// The connection's unique name (`:1.42`), or `None` when D-Bus is disabled.
    pub fn unique_name(&self) -> Option<String> {
        match &self.inner {
            Inner::Disabled => None,
            Inner::Serving { conn, .. } => conn.unique_name().map(|n| n.to_string()),
        }
    }

    /// Publishes `new`: every property whose value changed emits
    /// `PropertiesChanged`, and a change of overall health also emits
    /// `HealthChanged(old, new, reason)`.
    pub async fn update(&self, new: DbusState) -> Result<(), DbusError> {
        let iface = match &self.inner {
            Inner::Disabled => return Ok(()),
            Inner::Serving { iface, .. } => iface,
        };
        let old = {
            let mut obj = iface.get_mut().await;
            std::mem::replace(&mut obj.state, new)
        };
        // Read back under a shared lock: the getters hold no lock across awaits, and
        // the emitters need `&Agent1`.
        let obj = iface.get().await;
        let now = &obj.state;
        let em = iface.signal_emitter();
        if old.mode != now.mode {
            obj.mode_changed(em).await.map_err(DbusError::Publish)?;
        }
        if old.capacity != now.capacity {
            obj.capacity_changed(em).await.map_err(DbusError::Publish)?;
        }
        if old.power_watts.map(f64::to_bits) != now.power_watts.map(f64::to_bits) {
            obj.power_watts_changed(em)
                .await
                .map_err(DbusError::Publish)?;
        }
        if old.health.status != now.health.status {
            obj.health_changed(em).await.map_err(DbusError::Publish)?;
            Agent1::health_transition(
                em,
                level_name(old.health.status),
                level_name(now.health.status),
                &health_reason(&now.health),
            )
            .await
            .map_err(DbusError::Publish)?;
        }
        Ok(())
    }

    /// Releases the name and closes the connection.
    pub async fn stop(self) -> Result<(), DbusError> {
        match self.inner {
            Inner::Disabled => Ok(()),
            Inner::Serving { conn, iface } => {
                // The interface's signal emitter holds a clone of the connection.
                drop(iface);
                conn.release_name(BUS_NAME)
                    .await
                    .map_err(DbusError::Publish)?;
                conn.close().await.map_err(DbusError::Publish)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_choice_parses_keywords_and_addresses() {
        assert_eq!("system".parse::<BusChoice>().ok(), Some(BusChoice::System));
        assert_eq!("none".parse::<BusChoice>().ok(), Some(BusChoice::Disabled));
        assert_eq!(
            "unix:path=/tmp/x".parse::<BusChoice>().ok(),
            Some(BusChoice::Address("unix:path=/tmp/x".into()))
        );
        assert!(matches!(
            "".parse::<BusChoice>(),
            Err(BusChoiceError::Empty)
        ));
        assert!(matches!(
            "/tmp/bus".parse::<BusChoice>(),
            Err(BusChoiceError::Invalid { .. })
        ));
        assert_eq!(
            BusChoice::Address("unix:path=/x".into()).to_string(),
            "unix:path=/x"
        );
    }

    #[test]
    fn capacity_dict_has_totals_reserved_and_available() {
        let mut c = Capacity {
            cru: 8,
            mru_bytes: 16 << 30,
            ..Capacity::default()
        };
        c.reserved.cru = 1;
        c.available.cru = 7;
        let d = capacity_dict(&c);
        assert_eq!(d.get("cru"), Some(&8));
        assert_eq!(d.get("mru_bytes"), Some(&(16 << 30)));
        assert_eq!(d.get("reserved_cru"), Some(&1));
        assert_eq!(d.get("available_cru"), Some(&7));
        assert_eq!(d.len(), 13);
    }
}
