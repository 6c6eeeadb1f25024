//! IPMI DCMI power reading from the BMC, through `ipmitool dcmi power reading`.
//!
//! DCMI (Data Center Manageability Interface 1.5, "Get Power Reading") gives the
//! whole system's input power as the BMC measures it at the PSUs: the only meter
//! that includes fans, disks and PSU losses. The agent does not speak IPMI itself;
//! it runs `ipmitool`, when the host has it and an IPMI device, behind the small
//! [`Ipmitool`] trait so the parser is tested with recorded output.

use std::io;

use super::{Meter, PowerSource};
use crate::hal::{Gaps, SysRoot};

/// Why no DCMI reading could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DcmiError {
    /// `ipmitool` is not installed.
    #[error("ipmitool is not installed")]
    Missing,
    /// `ipmitool` could not be started.
    #[error("Cannot run ipmitool")]
    Spawn(#[source] io::Error),
    /// `ipmitool` ran and failed (no BMC, no DCMI support).
    #[error("ipmitool failed: {0}")]
    Failed(String),
    /// The output had no instantaneous reading.
    #[error("No power reading in ipmitool output")]
    Unparsable,
}

/// The BMC's answer to "Get Power Reading".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerReading {
    /// Instantaneous input power, W.
    pub watts: f64,
    /// Minimum over the sampling period, W.
    pub min_watts: Option<f64>,
    /// Maximum over the sampling period, W.
    pub max_watts: Option<f64>,
    /// Average over the sampling period, W.
    pub average_watts: Option<f64>,
    /// Whether power measurement is active; a deactivated reading is stale.
    pub active: bool,
}

/// Something that answers `ipmitool dcmi power reading`.
pub trait Ipmitool {
    /// The command's standard output.
    fn power_reading(&self) -> Result<String, DcmiError>;
}

/// The real `ipmitool` on `PATH`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemIpmitool;

impl Ipmitool for SystemIpmitool {
    fn power_reading(&self) -> Result<String, DcmiError> {
        let out = std::process::Command::new("ipmitool")
            .args(["dcmi", "power", "reading"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => DcmiError::Missing,
                _ => DcmiError::Spawn(e),
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(DcmiError::Failed(err.trim().chars().take(200).collect()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// True when the host has an IPMI system interface device (the `ipmi_devintf`
/// node under its various names), so running ipmitool can succeed.
pub fn bmc_present(root: &SysRoot) -> bool {
    ["dev/ipmi0", "dev/ipmi/0", "dev/ipmidev/0"]
        .iter()
        .any(|p| root.exists(p))
}

/// Parses `ipmitool dcmi power reading` output, e.g.
/// `    Instantaneous power reading:                   220 Watts`.
pub fn parse_power_reading(text: &str) -> Result<PowerReading, DcmiError> {
    let mut watts = None;
    let mut reading = PowerReading {
        watts: 0.0,
        min_watts: None,
        max_watts: None,
        average_watts: None,
        active: true,
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let w = || {
            value
                .strip_suffix("Watts")
                .and_then(|n| n.trim().parse::<f64>().ok())
        };
        if key.starts_with("instantaneous power reading") {
            watts = w();
        } else if key.starts_with("minimum during sampling period") {
            reading.min_watts = w();
        } else if key.starts_with("maximum during sampling period") {
            reading.max_watts = w();
        } else if key.starts_with("average power reading") {
            reading.average_watts = w();
        } else if key.starts_with("power reading state") {
            reading.active = value.eq_ignore_ascii_case("activated");
        }
    }
    reading.watts = watts.ok_or(DcmiError::Unparsable)?;
    Ok(reading)
}

/// Reads the BMC through `ipmitool`. No meter when the reading is deactivated
/// (the BMC then repeats a stale value).
pub fn collect(ipmitool: &impl Ipmitool, gaps: &mut Gaps) -> Option<Meter> {
    let reading = match ipmitool
        .power_reading()
        .and_then(|t| parse_power_reading(&t))
    {
        Ok(r) => r,
        Err(e) => {
            gaps.push("dcmi power reading", e);
            return None;
        }
    };
    if !reading.active {
        gaps.push(
            "dcmi power reading",
            "power measurement is deactivated on the BMC",
        );
        return None;
    }
    let mut m = Meter::new(PowerSource::Dcmi, "system");
    m.device = Some("ipmitool".to_owned());
    m.watts = Some(reading.watts);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded in the layout ipmitool's `ipmi_dcmi.c` prints for "dcmi power
    /// reading" (values from a two-socket server).
    const ACTIVE: &str = "
    Instantaneous power reading:                   220 Watts
    Minimum during sampling period:                 56 Watts
    Maximum during sampling period:                388 Watts
    Average power reading over sample period:      219 Watts
    IPMI timestamp:                           Wed Nov 25 17:02:26 2026
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated

";

    const DEACTIVATED: &str = "
    Instantaneous power reading:                     0 Watts
    Minimum during sampling period:                  0 Watts
    Maximum during sampling period:                  0 Watts
    Average power reading over sample period:        0 Watts
    IPMI timestamp:                           Thu Jan  1 00:00:00 1970
    Sampling period:                          00000000 Seconds.
    Power reading state is:                   deactivated
";

    struct Recorded(Result<&'static str, ()>);

    impl Ipmitool for Recorded {
        fn power_reading(&self) -> Result<String, DcmiError> {
            self.0
                .map(str::to_owned)
                .map_err(|()| DcmiError::Failed("Could not open device at /dev/ipmi0".into()))
        }
    }

    #[test]
    fn parses_a_recorded_reading() {
        let r = parse_power_reading(ACTIVE).unwrap();
        assert_eq!(
            r,
            PowerReading {
                watts: 220.0,
                min_watts: Some(56.0),
                max_watts: Some(388.0),
                average_watts: Some(219.0),
                active: true,
            }
        );
        let mut gaps = Gaps::default();
        let m = collect(&Recorded(Ok(ACTIVE)), &mut gaps).unwrap();
        assert_eq!((m.source, m.watts), (PowerSource::Dcmi, Some(220.0)));
        assert!(gaps.0.is_empty());
    }

    #[test]
    fn deactivated_or_failing_bmc_gives_a_gap_not_a_meter() {
        let mut gaps = Gaps::default();
        assert!(!parse_power_reading(DEACTIVATED).unwrap().active);
        assert_eq!(collect(&Recorded(Ok(DEACTIVATED)), &mut gaps), None);
        assert_eq!(collect(&Recorded(Err(())), &mut gaps), None);
        assert_eq!(gaps.0.len(), 2);
        assert!(matches!(
            parse_power_reading("garbage"),
            Err(DcmiError::Unparsable)
        ));
    }
}
