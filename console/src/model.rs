//! The console's own view of one node: what the screens render.
//!
//! The model is built only from data that crosses the console protocol: the
//! agent's inventory JSON (the contract in `agent/INVENTORY.md`, read tolerantly:
//! unknown keys are ignored, missing ones default), telemetry history series,
//! events, stake status and node facts. A data source turns what it receives into
//! [`Update`]s; [`Model::apply`] is pure, so every screen can be tested from a
//! fixed model.

use std::collections::VecDeque;

use serde::Deserialize;

/// Most events kept; older ones fall off the front.
pub const MAX_EVENTS: usize = 2_000;

/// Most values kept per series: one hour at the agent's default 1 s step, the
/// span the Power chart shows.
pub const MAX_SERIES_POINTS: usize = 3_600;

/// A health level, as the inventory and events spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Nothing to report.
    #[default]
    Ok,
    /// Informational event; renders like `Ok` in health cells.
    Info,
    /// Needs attention.
    Warning,
    /// Broken or about to break.
    Critical,
    /// A value this console does not know (a newer agent).
    #[serde(other)]
    Unknown,
}

/// `dmi` of the inventory (only what the console shows).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dmi {
    /// `sys_vendor`.
    pub vendor: Option<String>,
    /// `product_name`.
    pub product: Option<String>,
    /// `product_serial` (root only).
    pub serial: Option<String>,
}

/// `cpu` of the inventory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// Online logical CPUs.
    pub logical: Option<u32>,
    /// Physical cores.
    pub cores: Option<u32>,
    /// Packages.
    pub sockets: Option<u32>,
    /// Model name.
    pub model: Option<String>,
}

/// `memory` of the inventory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// `MemTotal`, bytes.
    pub total_bytes: Option<u64>,
}

/// `disks[].smart`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Smart {
    /// `ok`, `standby`, `not_installed`, `not_run`, `unavailable`, `error`.
    pub status: String,
    /// Why, when not `ok`.
    pub detail: Option<String>,
    /// The drive's own verdict.
    pub passed: Option<bool>,
    /// Drive temperature, °C.
    pub temperature_celsius: Option<f64>,
    /// Power-on hours.
    pub power_on_hours: Option<u64>,
}

/// `disks[].temperature` (NVMe controllers).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DiskTemperature {
    /// Current, °C.
    pub celsius: Option<f64>,
    /// Warning threshold, °C.
    pub max: Option<f64>,
    /// Critical threshold, °C.
    pub crit: Option<f64>,
}

/// One of `disks[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Disk {
    /// Kernel name.
    pub name: String,
    /// Size, bytes.
    pub size_bytes: Option<u64>,
    /// `ssd`, `hdd`, `nvme`, `unknown`.
    pub kind: String,
    /// Transport (`nvme`, `ata`, `virtio` …).
    pub transport: String,
    /// Model.
    pub model: Option<String>,
    /// Serial number: what an owner's disk approval names.
    pub serial: Option<String>,
    /// A storage pool may take it.
    pub eligible: bool,
    /// SMART.
    pub smart: Smart,
    /// NVMe controller temperature.
    pub temperature: Option<DiskTemperature>,
}

impl Disk {
    /// Best temperature reading: SMART's, else the NVMe controller's.
    pub fn celsius(&self) -> Option<f64> {
        self.smart
            .temperature_celsius
            .or_else(|| self.temperature.as_ref().and_then(|t| t.celsius))
    }
}

/// One of `nics[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Nic {
    /// Interface name.
    pub name: String,
    /// MAC address.
    pub mac: Option<String>,
    /// Kernel operstate.
    pub operstate: String,
    /// Carrier present.
    pub carrier: bool,
    /// Link speed, Mb/s.
    pub speed_mbps: Option<u64>,
    /// Backed by a device (not a bridge, veth, lo …).
    pub physical: bool,
    /// CIDR addresses.
    pub addresses: Vec<String>,
}

/// One of `sensors[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Sensor {
    /// Chip name.
    pub chip: String,
    /// Stable chip identity.
    pub chip_id: String,
    /// hwmon file stem (`temp1`).
    pub sensor: String,
    /// Label.
    pub label: Option<String>,
    /// `temperature`, `fan`, `voltage` …
    pub kind: String,
    /// Reading in SI units.
    pub value: Option<f64>,
    /// Lower threshold.
    pub min: Option<f64>,
    /// Upper threshold.
    pub max: Option<f64>,
    /// Critical threshold.
    pub crit: Option<f64>,
    /// Any alarm bit set.
    pub alarm: Option<bool>,
}

impl Sensor {
    /// The unit symbol of the sensor's kind.
    pub fn unit(&self) -> &'static str {
        match self.kind.as_str() {
            "temperature" => "°C",
            "fan" => "RPM",
            "voltage" => "V",
            "current" => "A",
            "power" => "W",
            "energy" => "J",
            "humidity" => "%",
            _ => "",
        }
    }

    /// Level of the reading against its own thresholds.
    pub fn level(&self) -> Level {
        let Some(v) = self.value else {
            return Level::Unknown;
        };
        if self.crit.is_some_and(|c| v >= c) {
            Level::Critical
        } else if self.alarm == Some(true)
            || self.max.is_some_and(|m| v >= m)
            || self.min.is_some_and(|m| v < m)
        {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// One of `power[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PowerMeter {
    /// `rapl`, `hwmon`, `power_supply`, `i2c`, `dcmi`, `estimate`.
    pub source: String,
    /// Unique within its source.
    pub name: String,
    /// Instantaneous power, W.
    pub watts: Option<f64>,
}

impl PowerMeter {
    /// The telemetry series of this meter.
    pub fn series_name(&self) -> String {
        format!("power.{}.{}.watts", self.source, self.name)
    }
}

/// The four capacity units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Units {
    /// Logical CPUs.
    pub cru: u64,
    /// Memory, bytes.
    pub mru_bytes: u64,
    /// SSD storage, bytes.
    pub sru_bytes: u64,
    /// HDD storage, bytes.
    pub hru_bytes: u64,
}

/// `capacity` of the inventory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Capacity {
    /// Logical CPUs.
    pub cru: u64,
    /// Memory, bytes.
    pub mru_bytes: u64,
    /// SSD storage, bytes.
    pub sru_bytes: u64,
    /// HDD storage, bytes.
    pub hru_bytes: u64,
    /// What the system keeps.
    pub reserved: Units,
}

impl Capacity {
    /// The totals as [`Units`].
    pub fn total(&self) -> Units {
        Units {
            cru: self.cru,
            mru_bytes: self.mru_bytes,
            sru_bytes: self.sru_bytes,
            hru_bytes: self.hru_bytes,
        }
    }
}

/// One of `health.findings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Finding {
    /// `disk sda`, `sensor coretemp/temp2` …
    pub component: String,
    /// Its level.
    pub level: Level,
    /// Why.
    pub reason: String,
}

/// `health` of the inventory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Health {
    /// The worst level.
    pub status: Level,
    /// Every component that is not ok, worst first.
    pub findings: Vec<Finding>,
}

/// The inventory JSON (`nodus agent inventory --json`), as far as the console
/// uses it. Unknown keys are ignored and missing ones default, so a newer or
/// older agent still renders.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Inventory {
    /// Machine identity.
    pub dmi: Dmi,
    /// CPU topology.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// Whole block devices.
    pub disks: Vec<Disk>,
    /// Network interfaces.
    pub nics: Vec<Nic>,
    /// hwmon and I2C sensors.
    pub sensors: Vec<Sensor>,
    /// Power meters.
    pub power: Vec<PowerMeter>,
    /// What the node offers.
    pub capacity: Capacity,
    /// Overall health.
    pub health: Health,
}

impl Inventory {
    /// Parses the inventory JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The worst finding level of one component (`disk sda`, `nic eth0`).
    pub fn component_level(&self, component: &str) -> Level {
        self.health
            .findings
            .iter()
            .filter(|f| f.component == component)
            .map(|f| f.level)
            .max()
            .unwrap_or(Level::Ok)
    }
}

/// One telemetry series: evenly spaced values, `None` where no sample was taken.
/// The shape of the agent's history runs (`HistorySnapshot` → `SeriesHistory`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// `<class>.<device>.<metric>`, e.g. `power.rapl.package-0.watts`.
    pub name: String,
    /// Unit symbol for axes (`W`, `%`, `B/s`).
    pub unit: String,
    /// Time of `values[0]`, Unix seconds.
    pub start_unix_s: u64,
    /// Seconds between values; never 0 once built.
    pub step_s: u32,
    /// The values.
    pub values: Vec<Option<f32>>,
}

impl Series {
    /// Unix time just past the last value.
    pub fn end_unix_s(&self) -> u64 {
        self.start_unix_s + self.values.len() as u64 * u64::from(self.step_s.max(1))
    }

    /// The newest value, if the newest slot has one.
    pub fn latest(&self) -> Option<f32> {
        self.values.last().copied().flatten()
    }

    /// Records `v` at `unix_s`, padding skipped slots with gaps. Samples older
    /// than the newest slot are dropped (the agent never sends them).
    pub fn push(&mut self, unix_s: u64, v: f32) {
        let step = u64::from(self.step_s.max(1));
        if self.values.is_empty() {
            self.start_unix_s = unix_s - unix_s % step;
        }
        if unix_s < self.start_unix_s {
            return;
        }
        let slot = usize::try_from((unix_s - self.start_unix_s) / step).unwrap_or(usize::MAX);
        if slot + 1 < self.values.len() {
            return;
        }
        if slot >= self.values.len() {
            // A gap longer than the window: start over rather than pad.
            if slot - self.values.len() >= MAX_SERIES_POINTS {
                self.values.clear();
                self.start_unix_s = unix_s - unix_s % step;
                self.values.push(Some(v));
                return;
            }
            self.values.resize(slot + 1, None);
        }
        if let Some(last) = self.values.last_mut() {
            *last = Some(v);
        }
        let excess = self.values.len().saturating_sub(MAX_SERIES_POINTS);
        if excess > 0 {
            self.values.drain(..excess);
            self.start_unix_s += excess as u64 * step;
        }
    }

    /// `(unix_s, value)` of every sample at or after `since_unix_s`.
    pub fn points_since(&self, since_unix_s: u64) -> impl Iterator<Item = (u64, f32)> + '_ {
        let step = u64::from(self.step_s.max(1));
        self.values.iter().enumerate().filter_map(move |(i, v)| {
            let t = self.start_unix_s + i as u64 * step;
            match v {
                Some(v) if t >= since_unix_s => Some((t, *v)),
                _ => None,
            }
        })
    }
}

/// The unit of a series from its name, per the agent's naming scheme.
pub fn series_unit(name: &str) -> &'static str {
    let class = name.split('.').next().unwrap_or("");
    let metric = name.rsplit('.').next().unwrap_or("");
    match class {
        "cpu" => "%",
        "mem" => "B",
        "disk" | "nic" if metric.ends_with("_bps") => "B/s",
        "power" => "W",
        _ => "",
    }
}

/// One sample batch: values taken at the same moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// When, Unix seconds.
    pub unix_s: u64,
    /// `(series name, value)`.
    pub values: Vec<(String, f64)>,
}

/// One event of the node's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Sequence number, increasing; duplicates are dropped.
    pub seq: u64,
    /// When, Unix seconds.
    pub unix_s: u64,
    /// Severity.
    pub level: Level,
    /// What emitted it (`health`, `agent`, `disk sda` …).
    pub source: String,
    /// The text.
    pub message: String,
}

/// A validator's standing on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidatorStatus {
    /// Not a validator.
    None,
    /// Validating.
    Active,
    /// Bonded but not in the active set.
    Waiting,
    /// Jailed for misbehaviour or downtime.
    Jailed,
}

/// The farmer's stake, read from the chain. Amounts are in the chain's smallest
/// unit (micro-tokens), so they are exact.
#[derive(Debug, Clone, PartialEq)]
pub struct StakeInfo {
    /// Free balance.
    pub balance: u128,
    /// Bonded stake.
    pub bonded: u128,
    /// Farming rewards of the last settled epoch, for this node.
    pub rewards: u128,
    /// This node's uptime ratio, parts per million: the last settled epoch's,
    /// else the open epoch's so far.
    pub uptime_ppm: u32,
    /// Validator standing.
    pub validator: ValidatorStatus,
}

/// Stake as far as the console knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum StakeStatus {
    /// No chain client yet (until the chain exists, always).
    #[default]
    NotConnected,
    /// Read from the chain.
    Known(StakeInfo),
}

/// The agent's mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Read-only.
    #[default]
    Observe,
    /// Full control.
    Managed,
}

impl Mode {
    /// `observe` or `managed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Managed => "managed",
        }
    }
}

/// Facts about the node that are not inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    /// Node id text (`node1…`).
    pub node_id: String,
    /// Farm id, when registered.
    pub farm: Option<u64>,
    /// Agent mode.
    pub mode: Mode,
    /// Agent version.
    pub agent_version: String,
    /// Uptime at `as_of_unix_s`, seconds.
    pub uptime_s: u64,
    /// When the facts were taken, Unix seconds.
    pub as_of_unix_s: u64,
}

/// The link to the agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Connection {
    /// Not connected yet.
    #[default]
    Connecting,
    /// Live.
    Connected,
    /// Lost at `since_unix_s`; the last state is kept while reconnecting.
    Stale {
        /// When the link dropped, Unix seconds.
        since_unix_s: u64,
    },
    /// The agent refused us (unknown key, no grant).
    Refused(String),
    /// A file rendered offline (`--demo`): no agent behind it.
    Offline,
}

/// Everything at once: what a data source sends first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Node facts.
    pub facts: NodeFacts,
    /// The inventory.
    pub inventory: Inventory,
    /// Capacity in use by workloads.
    pub used: Units,
    /// Telemetry history (backfill).
    pub history: Vec<Series>,
    /// Recent events.
    pub events: Vec<Event>,
    /// Stake.
    pub stake: StakeStatus,
}

/// What the agent told this console about itself when it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The role the agent gave this console's key or local user.
    pub role: nodus_wire::Role,
    /// The confirmation token destructive actions need (the node's short id).
    pub confirm_token: String,
    /// The agent accepts actions on this link.
    pub actions: bool,
}

impl Session {
    /// Whether this session may run operator actions.
    pub fn may_act(&self) -> bool {
        self.actions && self.role.covers(nodus_wire::Role::Operator)
    }
}

/// Where an action stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionState {
    /// Sent; no answer yet.
    Pending,
    /// Done (or started), with the agent's words.
    Done(String),
    /// Refused, with the agent's words verbatim.
    Refused(String),
    /// The link dropped before the answer came.
    Lost,
}

/// The last action this console sent to the node, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStatus {
    /// The request id, in hex.
    pub id: String,
    /// What was asked (`identify`, `approve-disk sdb` …).
    pub what: String,
    /// Its state.
    pub state: ActionState,
}

/// A change a data source sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Replace everything (first message, and after a reconnect).
    Snapshot(Box<Snapshot>),
    /// The agent's welcome: role and confirmation token.
    Session(Session),
    /// A new inventory document (hardware, capacity, health, power).
    Inventory(Box<Inventory>),
    /// Node facts changed.
    Facts(NodeFacts),
    /// Stake changed.
    Stake(StakeStatus),
    /// Capacity in use changed.
    Used(Units),
    /// An action was sent or answered.
    Action(ActionStatus),
    /// New telemetry samples.
    Samples(Samples),
    /// A new event.
    Event(Event),
    /// The link changed.
    Connection(Connection),
    /// Wall-clock time passed (drives uptime, stale age and chart windows).
    Clock(u64),
}

/// The console's view of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// Node facts.
    pub facts: NodeFacts,
    /// The inventory.
    pub inventory: Inventory,
    /// Capacity in use.
    pub used: Units,
    /// Series, sorted by name.
    pub series: Vec<Series>,
    /// Events, oldest first.
    pub events: VecDeque<Event>,
    /// Stake.
    pub stake: StakeStatus,
    /// The link.
    pub connection: Connection,
    /// Latest wall-clock time seen, Unix seconds.
    pub now_unix_s: u64,
    /// The session, once the agent welcomed us.
    pub session: Option<Session>,
    /// The last action sent from this console.
    pub action: Option<ActionStatus>,
    /// The newest live identify request (an event from source `identify`),
    /// shown as a banner until dismissed or [`IDENTIFY_BANNER_S`] pass.
    pub identify: Option<Event>,
}

/// How long an identify banner stays up: long enough to walk to the rack.
pub const IDENTIFY_BANNER_S: u64 = 300;

impl Model {
    /// Applies one update. Pure: no clock, no I/O.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Snapshot(s) => {
                let s = *s;
                self.now_unix_s = self.now_unix_s.max(s.facts.as_of_unix_s);
                self.facts = s.facts;
                self.inventory = s.inventory;
                self.used = s.used;
                self.series = s.history;
                self.series.sort_by(|a, b| a.name.cmp(&b.name));
                self.events = s.events.into();
                self.trim_events();
                self.stake = s.stake;
            }
            Update::Samples(batch) => {
                self.now_unix_s = self.now_unix_s.max(batch.unix_s);
                for (name, v) in batch.values {
                    let i = match self.series.binary_search_by(|s| s.name.as_str().cmp(&name)) {
                        Ok(i) => i,
                        Err(i) => {
                            let unit = series_unit(&name).to_owned();
                            self.series.insert(
                                i,
                                Series {
                                    name,
                                    unit,
                                    step_s: 1,
                                    ..Series::default()
                                },
                            );
                            i
                        }
                    };
                    // f32 is the history's own precision.
                    self.series[i].push(batch.unix_s, v as f32);
                }
            }
            Update::Event(e) => {
                if self.events.back().is_some_and(|last| e.seq <= last.seq) {
                    return;
                }
                if e.source == "identify" {
                    self.identify = Some(e.clone());
                }
                self.events.push_back(e);
                self.trim_events();
            }
            Update::Session(s) => self.session = Some(s),
            Update::Inventory(inv) => self.inventory = *inv,
            Update::Facts(f) => {
                self.now_unix_s = self.now_unix_s.max(f.as_of_unix_s);
                self.facts = f;
            }
            Update::Stake(s) => self.stake = s,
            Update::Used(u) => self.used = u,
            Update::Action(mut a) => match &self.action {
                // An answer names only the id: keep what was asked.
                Some(cur) if cur.id == a.id => {
                    if a.what.is_empty() {
                        a.what.clone_from(&cur.what);
                    }
                    self.action = Some(a);
                }
                // An answer for an older request never hides the newest one.
                Some(_) if a.state != ActionState::Pending => {}
                _ => self.action = Some(a),
            },
            Update::Connection(c) => {
                if !matches!(c, Connection::Connected)
                    && let Some(a) = &mut self.action
                    && a.state == ActionState::Pending
                {
                    a.state = ActionState::Lost;
                }
                self.connection = c;
            }
            Update::Clock(t) => self.now_unix_s = self.now_unix_s.max(t),
        }
    }

    fn trim_events(&mut self) {
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }

    /// A series by name.
    pub fn series(&self, name: &str) -> Option<&Series> {
        self.series
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.series[i])
    }

    /// The newest value of a series.
    pub fn latest(&self, name: &str) -> Option<f32> {
        self.series(name).and_then(Series::latest)
    }

    /// Uptime now, seconds.
    pub fn uptime_s(&self) -> u64 {
        self.facts.uptime_s + self.now_unix_s.saturating_sub(self.facts.as_of_unix_s)
    }

    /// Health findings plus warning and critical events are alerts; this counts
    /// the findings (events come and go, findings stay until fixed).
    pub fn alert_count(&self) -> usize {
        self.inventory
            .health
            .findings
            .iter()
            .filter(|f| f.level >= Level::Warning)
            .count()
    }

    /// The meters whose sum is the node's power draw: a wall meter when there is
    /// one (DCMI, I2C, a power supply), else the RAPL packages (sub-zones such as
    /// `package-0/core` are inside their package and would count twice).
    pub fn primary_meters(&self) -> (Vec<&PowerMeter>, PowerConfidence) {
        let meters = &self.inventory.power;
        for (src, conf) in [
            ("dcmi", PowerConfidence::Wall),
            ("i2c", PowerConfidence::Wall),
            ("power_supply", PowerConfidence::Wall),
        ] {
            let m: Vec<_> = meters.iter().filter(|m| m.source == src).collect();
            if !m.is_empty() {
                return (m, conf);
            }
        }
        let rapl: Vec<_> = meters
            .iter()
            .filter(|m| m.source == "rapl" && !m.name.contains('/'))
            .collect();
        if !rapl.is_empty() {
            return (rapl, PowerConfidence::CpuOnly);
        }
        let rest: Vec<_> = meters.iter().collect();
        let conf = if rest.is_empty() {
            PowerConfidence::None
        } else {
            PowerConfidence::Estimate
        };
        (rest, conf)
    }

    /// Power now, W: the sum of the primary meters' newest samples (else their
    /// inventory readings).
    pub fn watts_now(&self) -> Option<f64> {
        let (meters, _) = self.primary_meters();
        let mut sum = None;
        for m in meters {
            let v = self.latest(&m.series_name()).map(f64::from).or(m.watts);
            if let Some(v) = v {
                *sum.get_or_insert(0.0) += v;
            }
        }
        sum
    }

    /// Power over time, `(unix_s, watts)`, summed over the primary meters, since
    /// `since_unix_s`.
    pub fn power_points(&self, since_unix_s: u64) -> Vec<(u64, f64)> {
        let (meters, _) = self.primary_meters();
        let mut acc: std::collections::BTreeMap<u64, f64> = std::collections::BTreeMap::new();
        for m in meters {
            if let Some(s) = self.series(&m.series_name()) {
                for (t, v) in s.points_since(since_unix_s) {
                    *acc.entry(t).or_insert(0.0) += f64::from(v);
                }
            }
        }
        acc.into_iter().collect()
    }

    /// Energy since midnight UTC, watt-hours, integrated from the history
    /// (each sample held for one step; gaps count as nothing).
    pub fn energy_today_wh(&self) -> f64 {
        let midnight = self.now_unix_s - self.now_unix_s % 86_400;
        let (meters, _) = self.primary_meters();
        let mut joules = 0.0;
        for m in meters {
            if let Some(s) = self.series(&m.series_name()) {
                let step = f64::from(s.step_s.max(1));
                joules += s
                    .points_since(midnight)
                    .map(|(_, v)| f64::from(v) * step)
                    .sum::<f64>();
            }
        }
        joules / 3_600.0
    }
}

/// How far the power reading can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerConfidence {
    /// Measured at the wall or the supply: the whole machine.
    Wall,
    /// RAPL: CPU packages (and DRAM) only; the whole machine draws more.
    CpuOnly,
    /// Some other meter; treat as an estimate.
    Estimate,
    /// No meter.
    None,
}

impl PowerConfidence {
    /// Words for the screen.
    pub fn describe(self) -> &'static str {
        match self {
            PowerConfidence::Wall => "high: whole machine, measured",
            PowerConfidence::CpuOnly => "partial: CPU packages only (RAPL)",
            PowerConfidence::Estimate => "low: estimate",
            PowerConfidence::None => "none: no power meter",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_ignores_unknown_keys_and_defaults_missing_ones() {
        let inv = Inventory::from_json(
            r#"{"cpu": {"logical": 4, "future": 1}, "disks": [{"name": "sda",
                "smart": {"status": "ok", "passed": true}, "new_key": [1]}],
                "health": {"status": "meltdown"}, "brand_new": {}}"#,
        )
        .unwrap();
        assert_eq!(inv.cpu.logical, Some(4));
        assert_eq!(inv.disks[0].smart.passed, Some(true));
        assert_eq!(inv.disks[0].kind, "");
        assert_eq!(inv.health.status, Level::Unknown);
        assert!(inv.nics.is_empty());
    }

    #[test]
    fn samples_create_series_and_pad_gaps() {
        let mut m = Model::default();
        m.apply(Update::Samples(Samples {
            unix_s: 100,
            values: vec![("cpu.busy_pct".into(), 5.0)],
        }));
        m.apply(Update::Samples(Samples {
            unix_s: 103,
            values: vec![("cpu.busy_pct".into(), 7.0)],
        }));
        let s = m.series("cpu.busy_pct").unwrap();
        assert_eq!(s.unit, "%");
        assert_eq!(s.start_unix_s, 100);
        assert_eq!(s.values, vec![Some(5.0), None, None, Some(7.0)]);
        assert_eq!(m.now_unix_s, 103);
    }

    #[test]
    fn series_keeps_one_window() {
        let mut s = Series {
            step_s: 1,
            ..Series::default()
        };
        for t in 0..(MAX_SERIES_POINTS as u64 + 10) {
            s.push(t, 1.0);
        }
        assert_eq!(s.values.len(), MAX_SERIES_POINTS);
        assert_eq!(s.start_unix_s, 10);
        assert_eq!(s.end_unix_s(), MAX_SERIES_POINTS as u64 + 10);
    }

    #[test]
    fn duplicate_events_are_dropped() {
        let mut m = Model::default();
        let e = Event {
            seq: 3,
            ..Event::default()
        };
        m.apply(Update::Event(e.clone()));
        m.apply(Update::Event(e));
        assert_eq!(m.events.len(), 1);
    }

    #[test]
    fn rapl_subzones_do_not_count_twice() {
        let mut m = Model::default();
        m.inventory.power = vec![
            PowerMeter {
                source: "rapl".into(),
                name: "package-0".into(),
                watts: Some(10.0),
            },
            PowerMeter {
                source: "rapl".into(),
                name: "package-0/core".into(),
                watts: Some(6.0),
            },
        ];
        assert_eq!(m.watts_now(), Some(10.0));
        assert_eq!(m.primary_meters().1, PowerConfidence::CpuOnly);
    }
}
