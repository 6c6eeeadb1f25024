//! SMART health through `smartctl --json`.
//!
//! smartctl is run behind the [`SmartRunner`] trait (real: [`Smartctl`]; tests:
//! [`Recorded`]) and always with `-n standby`, so a spun-down HDD is reported as
//! [`SmartStatus::Standby`] instead of being woken. Its exit status is a bit mask
//! (smartctl(8), "RETURN VALUES"), decoded into [`ExitBits`]; NVMe's
//! `critical_warning` byte (NVMe base spec, SMART / Health Information log, byte 0)
//! into [`NvmeWarnings`]. A host without smartctl is [`SmartStatus::NotInstalled`],
//! not an error.

use std::{io, path::Path, process::Command, time::Duration};

use serde::{Deserialize, Serialize};

pub mod nvme_log;

/// Why smartctl could not be run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The `smartctl` binary is not on this system.
    #[error("smartctl is not installed")]
    NotInstalled,
    /// It exists but could not be started.
    #[error("Cannot start smartctl")]
    Spawn(#[source] io::Error),
    /// It was killed by a signal (no exit status).
    #[error("smartctl was killed by a signal")]
    Killed,
    /// It did not finish in time (a hung disk or controller); it was killed.
    #[error("smartctl did not finish within {0:?}")]
    Timeout(Duration),
}

/// One smartctl run: its exit status and standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartOutput {
    /// The exit status (a bit mask, see [`ExitBits`]).
    pub exit_status: u8,
    /// What it printed (JSON).
    pub stdout: Vec<u8>,
}

/// Runs smartctl for one device.
pub trait SmartRunner {
    /// Runs `smartctl --json -a -n standby DEVICE`.
    fn run(&self, device: &Path) -> Result<SmartOutput, RunError>;
}

/// The arguments every run uses. `-n standby`: do not spin up a sleeping disk.
pub const SMARTCTL_ARGS: &[&str] = &["--json=c", "--all", "-n", "standby"];

/// How long one smartctl run may take. A healthy disk answers in well under a
/// second; a dying one can hang a command for the SCSI layer's 30 s timeout and
/// its retries, and the inventory must not hang with it.
pub const SMARTCTL_TIMEOUT: Duration = Duration::from_secs(20);

/// The real smartctl: `smartctl` on `PATH`, or a given program.
#[derive(Debug, Clone)]
pub struct Smartctl {
    program: std::path::PathBuf,
}

impl Default for Smartctl {
    fn default() -> Self {
        Self {
            program: "smartctl".into(),
        }
    }
}

impl Smartctl {
    /// Runs `program` instead of `smartctl` from `PATH` (a pinned install, or a
    /// stand-in in tests).
    pub fn with_program(program: impl Into<std::path::PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }
}

impl SmartRunner for Smartctl {
    fn run(&self, device: &Path) -> Result<SmartOutput, RunError> {
        use std::{io::Read, process::Stdio, time::Instant};
        let mut child = Command::new(&self.program)
            .args(SMARTCTL_ARGS)
            .arg(device)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    RunError::NotInstalled
                } else {
                    RunError::Spawn(e)
                }
            })?;
        // Drain stdout on a thread so a large report cannot fill the pipe and stall
        // smartctl while this thread waits for it to exit.
        let reader = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = out.read_to_end(&mut buf);
                buf
            })
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait().map_err(RunError::Spawn)? {
                Some(st) => break st,
                None if start.elapsed() >= SMARTCTL_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RunError::Timeout(SMARTCTL_TIMEOUT));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let stdout = reader.and_then(|h| h.join().ok()).unwrap_or_default();
        let code = status.code().ok_or(RunError::Killed)?;
        Ok(SmartOutput {
            exit_status: (code & 0xff) as u8,
            stdout,
        })
    }
}

/// A runner that replays recorded outputs by device path; any other device is
/// "not installed". For tests and captured machines.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    outputs: Vec<(String, SmartOutput)>,
}

impl Recorded {
    /// Adds the output to replay for `device`.
    pub fn with(mut self, device: &str, exit_status: u8, stdout: &str) -> Self {
        self.outputs.push((
            device.to_owned(),
            SmartOutput {
                exit_status,
                stdout: stdout.as_bytes().to_vec(),
            },
        ));
        self
    }
}

impl SmartRunner for Recorded {
    fn run(&self, device: &Path) -> Result<SmartOutput, RunError> {
        self.outputs
            .iter()
            .find(|(d, _)| Path::new(d) == device)
            .map(|(_, o)| o.clone())
            .ok_or(RunError::NotInstalled)
    }
}

/// smartctl's exit-status bits (smartctl(8), "RETURN VALUES").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitBits(pub u8);

impl ExitBits {
    /// Bit 0: the command line did not parse.
    pub const BAD_COMMAND_LINE: u8 = 1 << 0;
    /// Bit 1: the device could not be opened, did not identify, or is in a low-power
    /// mode (with `-n`).
    pub const OPEN_FAILED: u8 = 1 << 1;
    /// Bit 2: a SMART or other command to the disk failed, or a SMART data structure
    /// had a checksum error.
    pub const COMMAND_FAILED: u8 = 1 << 2;
    /// Bit 3: SMART status check returned "DISK FAILING".
    pub const DISK_FAILING: u8 = 1 << 3;
    /// Bit 4: prefail attributes at or below their threshold now.
    pub const PREFAIL_NOW: u8 = 1 << 4;
    /// Bit 5: status OK, but some attributes were at or below threshold in the past.
    pub const THRESHOLD_PAST: u8 = 1 << 5;
    /// Bit 6: the device error log has records.
    pub const ERROR_LOG: u8 = 1 << 6;
    /// Bit 7: the self-test log has errors.
    pub const SELF_TEST_ERRORS: u8 = 1 << 7;

    const NAMES: [&'static str; 8] = [
        "bad_command_line",
        "open_failed_or_low_power",
        "command_failed",
        "disk_failing",
        "prefail_at_threshold",
        "threshold_crossed_in_past",
        "error_log_entries",
        "self_test_errors",
    ];

    /// Whether `bit` (one of the constants) is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Names of the set bits, lowest first.
    pub fn names(self) -> Vec<&'static str> {
        (0..8)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| Self::NAMES[i])
            .collect()
    }
}

/// NVMe `critical_warning` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NvmeWarnings(pub u8);

impl NvmeWarnings {
    /// Bit 0: available spare capacity fell below its threshold.
    pub const SPARE_LOW: u8 = 1 << 0;
    /// Bit 1: a temperature is above an over- or below an under-temperature threshold.
    pub const TEMPERATURE: u8 = 1 << 1;
    /// Bit 2: reliability degraded by media or internal errors.
    pub const RELIABILITY_DEGRADED: u8 = 1 << 2;
    /// Bit 3: media placed in read-only mode.
    pub const READ_ONLY: u8 = 1 << 3;
    /// Bit 4: the volatile memory backup device failed.
    pub const VOLATILE_BACKUP_FAILED: u8 = 1 << 4;
    /// Bit 5: the persistent memory region became read-only (NVMe 1.4).
    pub const PMR_READ_ONLY: u8 = 1 << 5;

    const NAMES: [&'static str; 6] = [
        "available_spare_below_threshold",
        "temperature_threshold",
        "reliability_degraded",
        "media_read_only",
        "volatile_memory_backup_failed",
        "persistent_memory_read_only",
    ];

    /// Names of the set (defined) bits, lowest first; reserved bits 6-7 are named
    /// `reserved_bit_N`.
    pub fn names(self) -> Vec<String> {
        (0..8)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| {
                Self::NAMES
                    .get(i)
                    .map_or_else(|| format!("reserved_bit_{i}"), |s| (*s).to_owned())
            })
            .collect()
    }
}

/// What came of asking smartctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmartStatus {
    /// SMART data was read.
    Ok,
    /// The disk is spun down; smartctl did not wake it (`-n standby`).
    Standby,
    /// smartctl is not installed on this host.
    NotInstalled,
    /// Not asked: a captured tree, or a virtual device with no SMART.
    NotRun,
    /// smartctl ran but the device gave no usable SMART data.
    Unavailable,
    /// smartctl could not be run or its output was not JSON.
    Error,
}

/// NVMe health log values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NvmeHealth {
    /// The raw `critical_warning` byte.
    pub critical_warning: u8,
    /// Names of its set bits.
    pub critical_warnings: Vec<String>,
    /// Spare capacity left, %.
    pub available_spare: Option<u8>,
    /// Below this spare % the drive raises bit 0.
    pub available_spare_threshold: Option<u8>,
    /// Vendor estimate of endurance used, % (may exceed 100).
    pub percentage_used: Option<u16>,
    /// Unrecovered data-integrity errors.
    pub media_errors: Option<u64>,
    /// Power losses without a clean shutdown.
    pub unsafe_shutdowns: Option<u64>,
}

/// SMART data of one disk, as far as it was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Smart {
    /// What came of asking.
    pub status: SmartStatus,
    /// Why, when not `ok` (smartctl's own message where it gave one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// smartctl's exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u8>,
    /// Names of the set exit-status bits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exit_bits: Vec<&'static str>,
    /// The overall health self-assessment (`smart_status.passed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Current temperature, °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_celsius: Option<f64>,
    /// Power-on hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_on_hours: Option<u64>,
    /// Rotation rate in RPM; 0 means a solid-state device (ATA/SCSI only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_rate: Option<u32>,
    /// ATA attribute 5 raw value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reallocated_sectors: Option<u64>,
    /// ATA attribute 197 raw value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_sectors: Option<u64>,
    /// ATA attribute 198 raw value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_uncorrectable: Option<u64>,
    /// SCSI grown defect list length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grown_defects: Option<u64>,
    /// Names of ATA attributes that are failing now (`when_failed` = `now`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_attributes: Vec<String>,
    /// NVMe health log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvme: Option<NvmeHealth>,
}

impl Smart {
    /// A result with only a status and why.
    pub fn status(status: SmartStatus, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: Some(detail.into()),
            exit_status: None,
            exit_bits: Vec::new(),
            passed: None,
            temperature_celsius: None,
            power_on_hours: None,
            rotation_rate: None,
            reallocated_sectors: None,
            pending_sectors: None,
            offline_uncorrectable: None,
            grown_defects: None,
            failing_attributes: Vec::new(),
            nvme: None,
        }
    }

    /// The smartctl exit bits.
    pub fn bits(&self) -> ExitBits {
        ExitBits(self.exit_status.unwrap_or(0))
    }
}

// The subset of smartctl's JSON schema (smartmontools `--json`, format version 1)
// that the agent uses. Unknown fields are ignored on purpose: smartctl adds fields
// in every release.
#[derive(Debug, Default, Deserialize)]
struct Json {
    #[serde(default)]
    smartctl: JsonSmartctl,
    smart_status: Option<JsonStatus>,
    temperature: Option<JsonTemperature>,
    power_on_time: Option<JsonPowerOn>,
    rotation_rate: Option<u32>,
    ata_smart_attributes: Option<JsonAtaAttrs>,
    nvme_smart_health_information_log: Option<JsonNvmeLog>,
    scsi_grown_defect_list: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct JsonSmartctl {
    #[serde(default)]
    messages: Vec<JsonMessage>,
}

#[derive(Debug, Deserialize)]
struct JsonMessage {
    string: String,
}

#[derive(Debug, Deserialize)]
struct JsonStatus {
    passed: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct JsonTemperature {
    current: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct JsonPowerOn {
    hours: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct JsonAtaAttrs {
    #[serde(default)]
    table: Vec<JsonAtaAttr>,
}

#[derive(Debug, Deserialize)]
struct JsonAtaAttr {
    id: u16,
    #[serde(default)]
    name: String,
    #[serde(default)]
    when_failed: String,
    raw: Option<JsonRaw>,
}

#[derive(Debug, Deserialize)]
struct JsonRaw {
    value: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct JsonNvmeLog {
    critical_warning: Option<u8>,
    temperature: Option<f64>,
    available_spare: Option<u8>,
    available_spare_threshold: Option<u8>,
    percentage_used: Option<u16>,
    media_errors: Option<u64>,
    unsafe_shutdowns: Option<u64>,
    power_on_hours: Option<u64>,
}

fn is_low_power(messages: &[JsonMessage]) -> Option<&str> {
    messages.iter().map(|m| m.string.as_str()).find(|s| {
        let u = s.to_ascii_uppercase();
        u.contains("STANDBY")
            || u.contains("SLEEP")
            || u.contains("LOW-POWER")
            || u.contains("LOW POWER")
    })
}

/// Turns one smartctl run into a [`Smart`].
pub fn parse(out: &SmartOutput) -> Smart {
    let bits = ExitBits(out.exit_status);
    let text = String::from_utf8_lossy(&out.stdout);
    let json: Json = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => {
            let mut s = Smart::status(
                SmartStatus::Error,
                format!("smartctl output is not JSON: {e}"),
            );
            s.exit_status = Some(out.exit_status);
            s.exit_bits = bits.names();
            return s;
        }
    };
    let first_message = json.smartctl.messages.first().map(|m| m.string.clone());
    let mut s = Smart::status(SmartStatus::Ok, String::new());
    s.detail = None;
    s.exit_status = Some(out.exit_status);
    s.exit_bits = bits.names();

    if bits.has(ExitBits::BAD_COMMAND_LINE) {
        s.status = SmartStatus::Error;
        s.detail = first_message.or(Some("smartctl rejected its command line".into()));
        return s;
    }
    if bits.has(ExitBits::OPEN_FAILED) {
        // With -n standby, bit 1 plus a power-mode message means "asleep, left alone".
        if let Some(m) = is_low_power(&json.smartctl.messages) {
            s.status = SmartStatus::Standby;
            s.detail = Some(m.to_owned());
        } else {
            s.status = SmartStatus::Unavailable;
            s.detail = first_message.or(Some("device open failed".into()));
        }
        return s;
    }

    s.passed = json.smart_status.and_then(|st| st.passed);
    s.temperature_celsius = json.temperature.and_then(|t| t.current);
    s.power_on_hours = json.power_on_time.and_then(|p| p.hours);
    s.rotation_rate = json.rotation_rate;
    s.grown_defects = json.scsi_grown_defect_list;
    if let Some(attrs) = json.ata_smart_attributes {
        for a in &attrs.table {
            let raw = a.raw.as_ref().and_then(|r| r.value);
            match a.id {
                5 => s.reallocated_sectors = raw,
                197 => s.pending_sectors = raw,
                198 => s.offline_uncorrectable = raw,
                _ => {}
            }
            if a.when_failed == "now" {
                s.failing_attributes.push(if a.name.is_empty() {
                    a.id.to_string()
                } else {
                    a.name.clone()
                });
            }
        }
    }
    if let Some(log) = json.nvme_smart_health_information_log {
        let cw = log.critical_warning.unwrap_or(0);
        s.temperature_celsius = s.temperature_celsius.or(log.temperature);
        s.power_on_hours = s.power_on_hours.or(log.power_on_hours);
        s.nvme = Some(NvmeHealth {
            critical_warning: cw,
            critical_warnings: NvmeWarnings(cw).names(),
            available_spare: log.available_spare,
            available_spare_threshold: log.available_spare_threshold,
            percentage_used: log.percentage_used,
            media_errors: log.media_errors,
            unsafe_shutdowns: log.unsafe_shutdowns,
        });
    }
    if bits.has(ExitBits::COMMAND_FAILED) && s.passed.is_none() && s.nvme.is_none() {
        s.status = SmartStatus::Unavailable;
        s.detail = first_message.or(Some("SMART command failed".into()));
    }
    s
}

/// Whether `device` is an NVMe namespace or controller node (`nvme0n1`, `nvme0`).
fn is_nvme(device: &Path) -> bool {
    device
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("nvme"))
}

/// Asks `runner` about `device` and parses the answer; never fails.
pub fn query(runner: &dyn SmartRunner, device: &Path) -> Smart {
    match runner.run(device) {
        Ok(out) => parse(&out),
        Err(RunError::NotInstalled) if is_nvme(device) => match nvme_log::read(device) {
            // Without smartctl (the boot image has none), an NVMe drive's own
            // health log still gives the critical warning that matters most.
            Ok(log) => nvme_log::decode(&log),
            Err(e) => Smart::status(
                SmartStatus::NotInstalled,
                format!(
                    "smartctl is not installed, and the NVMe health log could not be read: {e}"
                ),
            ),
        },
        Err(RunError::NotInstalled) => {
            Smart::status(SmartStatus::NotInstalled, "smartctl is not installed")
        }
        Err(e) => Smart::status(SmartStatus::Error, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_bits_are_named_in_order() {
        assert_eq!(ExitBits(0).names(), Vec::<&str>::new());
        assert_eq!(
            ExitBits(0b1100_0000).names(),
            vec!["error_log_entries", "self_test_errors"]
        );
        assert_eq!(ExitBits(0xff).names().len(), 8);
        assert!(ExitBits(8).has(ExitBits::DISK_FAILING));
    }

    #[test]
    fn nvme_warning_bits_including_reserved() {
        assert_eq!(
            NvmeWarnings(0b0000_1001).names(),
            vec!["available_spare_below_threshold", "media_read_only"]
        );
        assert_eq!(NvmeWarnings(0x80).names(), vec!["reserved_bit_7"]);
    }

    #[test]
    fn garbage_output_is_an_error_status() {
        let s = parse(&SmartOutput {
            exit_status: 0,
            stdout: b"not json".to_vec(),
        });
        assert_eq!(s.status, SmartStatus::Error);
    }

    #[test]
    fn missing_smartctl_is_a_status_not_an_error() {
        let s = query(&Recorded::default(), Path::new("/dev/sda"));
        assert_eq!(s.status, SmartStatus::NotInstalled);
    }

    #[test]
    fn real_runner_reports_exit_status_output_and_absence() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("smartctl");
        // Echoes its arguments as a JSON message and exits with bits 1 and 6 set.
        std::fs::write(
            &fake,
            "#!/bin/sh\nprintf '{\"smartctl\":{\"messages\":[{\"string\":\"%s\"}]}}' \"$*\"\nexit 66\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Smartctl::with_program(&fake)
            .run(Path::new("/dev/sdq"))
            .unwrap();
        assert_eq!(out.exit_status, 66);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("--json=c --all -n standby /dev/sdq"),
            "{text}"
        );
        let missing = Smartctl::with_program(dir.path().join("nope")).run(Path::new("/dev/sdq"));
        assert!(matches!(missing, Err(RunError::NotInstalled)));
    }

    #[test]
    fn real_runner_passes_no_standby_wakeup() {
        assert!(SMARTCTL_ARGS.windows(2).any(|w| w == ["-n", "standby"]));
    }
}
