//! The QMP commands the harness uses, with typed arguments and returns
//! (schemas from QEMU's `qapi/*.json`).

use serde::{Deserialize, Serialize};

use super::Command;

/// `qmp_capabilities`: leaves capability negotiation mode. Sent by
/// [`super::Qmp::connect`] itself.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QmpCapabilities;

impl Command for QmpCapabilities {
    const NAME: &'static str = "qmp_capabilities";
    type Returns = Empty;
}

/// The `{}` that commands without a result return.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct Empty {}

/// `query-status`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueryStatus;

impl Command for QueryStatus {
    const NAME: &'static str = "query-status";
    type Returns = StatusInfo;
}

/// `query-status`'s result.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct StatusInfo {
    /// Whether the guest CPUs run.
    pub running: bool,
    /// The run state.
    pub status: RunState,
}

/// QEMU's `RunState` (the values the harness distinguishes; others are `Other`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Executing.
    Running,
    /// Stopped by `-S` or `stop`.
    Prelaunch,
    /// Paused.
    Paused,
    /// The guest shut down (with `-no-shutdown`).
    Shutdown,
    /// The guest panicked.
    GuestPanicked,
    /// Any other state.
    #[serde(other)]
    Other,
}

/// `cont`: starts the CPUs of a VM started with `-S`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cont;

impl Command for Cont {
    const NAME: &'static str = "cont";
    type Returns = Empty;
}

/// `set_link`: sets a NIC's carrier. The guest sees it on virtio-net (the device
/// raises a config interrupt with the new status). It is not dependable on
/// e1000e (the emulated PHY and the guest driver's link polling do not follow it
/// reliably), so profiles change links on virtio NICs only.
#[derive(Debug, Clone, Serialize)]
pub struct SetLink {
    /// The NIC device id (`nic-<id>`) or its netdev id.
    pub name: String,
    /// Carrier on or off.
    pub up: bool,
}

impl Command for SetLink {
    const NAME: &'static str = "set_link";
    type Returns = Empty;
}

/// `device_del`: unplugs a device. Completion is the `DEVICE_DELETED` event,
/// which comes only once the guest has released it (PCIe hot-unplug).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceDel {
    /// The device id.
    pub id: String,
}

impl Command for DeviceDel {
    const NAME: &'static str = "device_del";
    type Returns = Empty;
}

/// `human-monitor-command`: runs an HMP command. The harness needs it only for
/// `drive_del`, which has no QMP equivalent for a drive attached to a device that
/// cannot be unplugged (AHCI ports).
#[derive(Debug, Clone, Serialize)]
pub struct HumanMonitorCommand {
    /// The HMP command line.
    #[serde(rename = "command-line")]
    pub command_line: String,
}

impl Command for HumanMonitorCommand {
    const NAME: &'static str = "human-monitor-command";
    /// HMP's text output (empty on success for most commands).
    type Returns = String;
}

/// `qom-set`: sets a QOM property, e.g. an NVMe controller's
/// `smart_critical_warning`.
#[derive(Debug, Clone, Serialize)]
pub struct QomSet {
    /// The object path, e.g. `/machine/peripheral/disk-nvme0`.
    pub path: String,
    /// The property.
    pub property: String,
    /// The value.
    pub value: serde_json::Value,
}

impl Command for QomSet {
    const NAME: &'static str = "qom-set";
    type Returns = Empty;
}

/// `qom-get`.
#[derive(Debug, Clone, Serialize)]
pub struct QomGet {
    /// The object path.
    pub path: String,
    /// The property.
    pub property: String,
}

impl Command for QomGet {
    const NAME: &'static str = "qom-get";
    type Returns = serde_json::Value;
}

/// `system_powerdown`: presses the ACPI power button.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SystemPowerdown;

impl Command for SystemPowerdown {
    const NAME: &'static str = "system_powerdown";
    type Returns = Empty;
}

/// `quit`: QEMU exits at once.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Quit;

impl Command for Quit {
    const NAME: &'static str = "quit";
    type Returns = Empty;
}

/// `query-kvm`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueryKvm;

impl Command for QueryKvm {
    const NAME: &'static str = "query-kvm";
    type Returns = KvmInfo;
}

/// `query-kvm`'s result.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct KvmInfo {
    /// KVM is in use.
    pub enabled: bool,
    /// KVM is available.
    pub present: bool,
}
