//! I2C/SMBus sensor chips read through embedded-hal 1.0 drivers.
//!
//! Which chip sits at which bus and address is configuration ([`BoardConfig`],
//! part of the board profile), never a probe: probing an address can wake or
//! reconfigure whatever really sits there (an EEPROM, a PMBus regulator). Chips a
//! kernel driver already handles show up through hwmon instead and are not listed.
//!
//! Drivers, all maintained crates on embedded-hal 1.0 (checked with `cargo info`
//! when this was written; no in-house driver was needed):
//!
//! | chip   | crate            | reads                                   |
//! |--------|------------------|-----------------------------------------|
//! | LM75   | `lm75` 1.0       | temperature                             |
//! | TMP102 | `tmp1x2` 1.1     | temperature                             |
//! | INA219 | `ina219` 0.2     | bus voltage, shunt voltage → A, W       |
//! | INA226 | `ina226` 0.3     | bus voltage, shunt voltage → A, W       |
//!
//! Every chip is only read, never written: the agent may run in observe mode, and
//! the INA2xx calibration register is left alone (current and power are computed
//! from the shunt voltage and the configured shunt resistance).
//!
//! The bus is any `embedded_hal::i2c::I2c`: Linux `I2cdev` with combined transfers,
//! or [`SmbusI2c`] over SMBus commands for controllers (and `i2c-stub`) that cannot
//! do combined transfers; the board configuration says which
//! ([`Transfer`]), and [`linux::open`] is the one place that picks the backend.
//!
//! Where the configuration comes from: the JSON form of [`BoardConfig`] in
//! [`BOARD_FILE`]. On a network-booted node the init writes that file from the
//! kernel command line's `nodus.i2c=` entries (see `crate::boot::i2c`); on any
//! other host an operator may write it by hand. The inventory reads it on every
//! pass through an [`I2cSource`], so a bad file is a gap in the inventory, never
//! a refusal to start.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{Sensor, SensorKind};
use crate::{
    hal::Gaps,
    power::{Meter, PowerSource},
};

pub mod ina219;
pub mod ina226;
pub mod linux;
pub mod lm75;
pub mod smbus;
pub mod tmp102;

pub use smbus::{FakeSmbus, Smbus, SmbusError, SmbusI2c};

/// Where the agent looks for the board's I2C chips (JSON [`BoardConfig`]): under
/// /run because the `nodus` init writes it anew on every boot from the kernel
/// command line, next to the agent's socket.
pub const BOARD_FILE: &str = "/run/nodus/i2c-board.json";

/// The I2C part of a board profile, as written by people.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// The sensor chips on the board's I2C/SMBus buses that no kernel driver
    /// handles.
    #[serde(default)]
    pub chips: Vec<ChipConfig>,
}

/// One chip of a [`BoardConfig`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChipConfig {
    /// The bus number N of `/dev/i2c-N`.
    pub bus: u32,
    /// The chip's 7-bit address.
    pub address: u8,
    /// Which chip it is.
    pub model: Model,
    /// How to talk to the bus: `i2c` (combined transfers, the default) or `smbus`
    /// (SMBus commands, for PC SMBus controllers and `i2c-stub`).
    #[serde(default)]
    pub transfer: Transfer,
    /// The shunt resistor, Ω; required for INA219/INA226, refused for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shunt_ohms: Option<f64>,
    /// A human name for the reading (e.g. `inlet`, `12V rail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A supported chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// LM75 temperature sensor.
    Lm75,
    /// TMP102 temperature sensor.
    Tmp102,
    /// INA219 current/power monitor.
    Ina219,
    /// INA226 current/power monitor.
    Ina226,
}

impl Model {
    /// The chip name used as [`Sensor::chip`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Lm75 => "lm75",
            Self::Tmp102 => "tmp102",
            Self::Ina219 => "ina219",
            Self::Ina226 => "ina226",
        }
    }

    /// The chip named `name` (`lm75`, `tmp102`, `ina219`, `ina226`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Lm75, Self::Tmp102, Self::Ina219, Self::Ina226]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// The addresses the chip's pins can select (from each datasheet).
    pub fn addresses(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Self::Lm75 => 0x48..=0x4f,
            Self::Tmp102 => 0x48..=0x4b,
            Self::Ina219 | Self::Ina226 => 0x40..=0x4f,
        }
    }

    /// Whether it is a current/power monitor (and so needs a shunt).
    pub fn measures_power(self) -> bool {
        matches!(self, Self::Ina219 | Self::Ina226)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a bus is driven.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// Combined I2C transfers (`I2C_RDWR`).
    #[default]
    I2c,
    /// SMBus commands (`I2C_SMBUS`), through [`SmbusI2c`].
    Smbus,
}

/// A board configuration that was refused. Each names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The address is not one the chip can have.
    #[error(
        "chips[{index}].address: {address:#04x} is not a {model} address ({lo:#04x}-{hi:#04x})"
    )]
    Address {
        /// Position in `chips`.
        index: usize,
        /// The chip.
        model: Model,
        /// The address given.
        address: u8,
        /// Lowest valid address.
        lo: u8,
        /// Highest valid address.
        hi: u8,
    },
    /// An INA2xx without a usable shunt resistance.
    #[error("chips[{index}].shunt_ohms: {model} needs a shunt resistance > 0")]
    MissingShunt {
        /// Position in `chips`.
        index: usize,
        /// The chip.
        model: Model,
    },
    /// A shunt given for a chip that has none.
    #[error("chips[{index}].shunt_ohms: {model} has no shunt")]
    UnexpectedShunt {
        /// Position in `chips`.
        index: usize,
        /// The chip.
        model: Model,
    },
    /// Two chips at the same bus and address.
    #[error("chips[{index}]: bus {bus} address {address:#04x} is already taken")]
    Duplicate {
        /// Position in `chips`.
        index: usize,
        /// The bus.
        bus: u32,
        /// The address.
        address: u8,
    },
}

/// A validated chip.
#[derive(Debug, Clone, PartialEq)]
pub struct Chip {
    /// `/dev/i2c-<bus>`.
    pub bus: u32,
    /// 7-bit address.
    pub address: u8,
    /// Which chip.
    pub model: Model,
    /// How the bus is driven.
    pub transfer: Transfer,
    /// Shunt resistance, Ω (INA2xx only).
    pub shunt_ohms: Option<f64>,
    /// Human name.
    pub label: Option<String>,
}

impl Chip {
    /// `i2c-<bus>/0x<address>`: the [`Sensor::chip_id`] and meter name.
    pub fn id(&self) -> String {
        format!("i2c-{}/{:#04x}", self.bus, self.address)
    }
}

/// A validated board configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    /// The chips, in configuration order.
    pub chips: Vec<Chip>,
}

impl TryFrom<BoardConfig> for Board {
    type Error = ConfigError;

    fn try_from(cfg: BoardConfig) -> Result<Self, ConfigError> {
        let mut chips: Vec<Chip> = Vec::with_capacity(cfg.chips.len());
        for (index, c) in cfg.chips.into_iter().enumerate() {
            let range = c.model.addresses();
            if !range.contains(&c.address) {
                return Err(ConfigError::Address {
                    index,
                    model: c.model,
                    address: c.address,
                    lo: *range.start(),
                    hi: *range.end(),
                });
            }
            match (c.model.measures_power(), c.shunt_ohms) {
                (true, Some(r)) if r.is_finite() && r > 0.0 => {}
                (true, _) => {
                    return Err(ConfigError::MissingShunt {
                        index,
                        model: c.model,
                    });
                }
                (false, Some(_)) => {
                    return Err(ConfigError::UnexpectedShunt {
                        index,
                        model: c.model,
                    });
                }
                (false, None) => {}
            }
            if chips
                .iter()
                .any(|o| o.bus == c.bus && o.address == c.address)
            {
                return Err(ConfigError::Duplicate {
                    index,
                    bus: c.bus,
                    address: c.address,
                });
            }
            chips.push(Chip {
                bus: c.bus,
                address: c.address,
                model: c.model,
                transfer: c.transfer,
                shunt_ohms: c.shunt_ohms,
                label: c.label,
            });
        }
        Ok(Self { chips })
    }
}

/// Voltage, current and power from an INA2xx.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerReading {
    /// Bus voltage, V.
    pub volts: f64,
    /// Current through the shunt, A (negative when it flows backwards).
    pub amps: f64,
    /// Power, W.
    pub watts: f64,
}

/// What one chip read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChipReading {
    /// A temperature, °C.
    Celsius(f64),
    /// An INA2xx reading.
    Power(PowerReading),
}

/// A chip that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChipError {
    /// The bus could not be opened.
    #[error("Cannot open /dev/i2c-{bus}: {message}")]
    Open {
        /// The bus.
        bus: u32,
        /// The OS error.
        message: String,
    },
    /// The driver failed.
    #[error("{model} did not answer: {message}")]
    Driver {
        /// The chip.
        model: Model,
        /// The driver's error.
        message: String,
    },
}

/// Reads one chip over `i2c`.
pub fn read_chip<I: embedded_hal::i2c::I2c>(i2c: I, chip: &Chip) -> Result<ChipReading, ChipError> {
    let fail = |e: &dyn fmt::Debug| ChipError::Driver {
        model: chip.model,
        message: format!("{e:?}"),
    };
    // Validated in `TryFrom<BoardConfig>`: INA2xx always have a shunt.
    let shunt = chip.shunt_ohms.unwrap_or(f64::NAN);
    match chip.model {
        Model::Lm75 => lm75::read_celsius(i2c, chip.address)
            .map(ChipReading::Celsius)
            .map_err(|e| fail(&e)),
        Model::Tmp102 => tmp102::read_celsius(i2c, chip.address)
            .map(ChipReading::Celsius)
            .map_err(|e| fail(&e)),
        Model::Ina219 => ina219::read(i2c, chip.address, shunt)
            .map(ChipReading::Power)
            .map_err(|e| fail(&e)),
        Model::Ina226 => ina226::read(i2c, chip.address, shunt)
            .map(ChipReading::Power)
            .map_err(|e| fail(&e)),
    }
}

/// Sensors and meters from the board's I2C chips.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct I2cReadings {
    /// Temperatures (`temp1`), and INA2xx `in1`, `curr1`, `power1`.
    pub sensors: Vec<Sensor>,
    /// One `i2c` meter per INA2xx.
    pub meters: Vec<Meter>,
}

impl I2cReadings {
    fn add(&mut self, chip: &Chip, reading: ChipReading) {
        let id = chip.id();
        let sensor = |stem: &str, kind: SensorKind, value: f64| {
            let mut s = Sensor::new(chip.model.name(), &id, stem, kind);
            s.label = chip.label.clone();
            s.value = Some(value);
            s
        };
        match reading {
            ChipReading::Celsius(c) => {
                self.sensors
                    .push(sensor("temp1", SensorKind::Temperature, c))
            }
            ChipReading::Power(p) => {
                self.sensors
                    .push(sensor("in1", SensorKind::Voltage, p.volts));
                self.sensors
                    .push(sensor("curr1", SensorKind::Current, p.amps));
                self.sensors
                    .push(sensor("power1", SensorKind::Power, p.watts));
                let mut m = Meter::new(
                    PowerSource::I2c,
                    chip.label.clone().unwrap_or_else(|| id.clone()),
                );
                m.device = Some(id);
                m.watts = Some(p.watts);
                m.volts = Some(p.volts);
                m.amps = Some(p.amps);
                self.meters.push(m);
            }
        }
    }
}

/// Reads every chip of `board` over buses from `open`; failures become gaps.
/// Tests pass fakes or mocks as `open`; [`collect`] passes Linux i2c-dev.
pub fn collect_with<I, E>(
    board: &Board,
    mut open: impl FnMut(&Chip) -> Result<I, E>,
    gaps: &mut Gaps,
) -> I2cReadings
where
    I: embedded_hal::i2c::I2c,
    E: fmt::Display,
{
    collect_readings(
        board,
        |chip| {
            open(chip)
                .map_err(|e| ChipError::Open {
                    bus: chip.bus,
                    message: e.to_string(),
                })
                .and_then(|bus| read_chip(bus, chip))
        },
        gaps,
    )
}

/// Reads one chip on this host's `/dev/i2c-<bus>`, in the chip's transfer mode.
pub fn read_linux(chip: &Chip) -> Result<ChipReading, ChipError> {
    match linux::open(chip.bus, chip.address, chip.transfer) {
        Ok(linux::LinuxBus::I2c(mut bus)) => read_chip(&mut bus, chip),
        Ok(linux::LinuxBus::Smbus(mut bus)) => read_chip(&mut *bus, chip),
        // EBUSY from I2C_SLAVE.
        Err(i2cdev::linux::LinuxI2CError::Errno(16)) => Err(ChipError::Open {
            bus: chip.bus,
            message: "a kernel driver owns this address; read it through hwmon".to_owned(),
        }),
        Err(e) => Err(ChipError::Open {
            bus: chip.bus,
            message: e.to_string(),
        }),
    }
}

/// Reads every chip of `board` with `read`; failures become gaps.
pub fn collect_readings(
    board: &Board,
    mut read: impl FnMut(&Chip) -> Result<ChipReading, ChipError>,
    gaps: &mut Gaps,
) -> I2cReadings {
    let mut out = I2cReadings::default();
    for chip in &board.chips {
        match read(chip) {
            Ok(r) => out.add(chip, r),
            Err(e) => gaps.push(format!("{} {}", chip.model, chip.id()), e),
        }
    }
    out
}

/// Reads every chip of `board` on this host's `/dev/i2c-*`.
pub fn collect(board: &Board, gaps: &mut Gaps) -> I2cReadings {
    collect_readings(board, read_linux, gaps)
}

/// A board configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoardFileError {
    /// The file exists but could not be read.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON of the [`BoardConfig`] shape (unknown keys included).
    #[error("{path} is not a board configuration")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (it names the key and position).
        #[source]
        source: serde_json::Error,
    },
    /// A field has a bad value.
    #[error("{path} is invalid")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which field and why.
        #[source]
        source: ConfigError,
    },
}

/// Reads and validates a board file; `Ok(None)` when there is none (a board
/// without configured I2C chips).
pub fn load_board_file(path: &Path) -> Result<Option<Board>, BoardFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BoardFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let cfg: BoardConfig = serde_json::from_str(&text).map_err(|source| BoardFileError::Parse {
        path: path.to_owned(),
        source,
    })?;
    Board::try_from(cfg)
        .map(Some)
        .map_err(|source| BoardFileError::Invalid {
            path: path.to_owned(),
            source,
        })
}

/// Reads one configured chip; [`read_linux`] on a live host, a fake in tests.
pub type ChipReader = Box<dyn Fn(&Chip) -> Result<ChipReading, ChipError> + Send + Sync>;

/// What the inventory's sensor pass needs for I2C: where the board file is and
/// how chips are read.
pub struct I2cSource {
    /// The board file (JSON [`BoardConfig`]); no file means no chips.
    pub board_file: PathBuf,
    /// How each chip is read.
    pub reader: ChipReader,
}

impl I2cSource {
    /// [`BOARD_FILE`] read over this host's `/dev/i2c-*`.
    pub fn host() -> Self {
        Self {
            board_file: PathBuf::from(BOARD_FILE),
            reader: Box::new(read_linux),
        }
    }

    /// Loads the board file and reads its chips. A bad file is one gap (and no
    /// readings); each chip that fails is a gap of its own.
    pub fn collect(&self, gaps: &mut Gaps) -> I2cReadings {
        match load_board_file(&self.board_file) {
            Ok(Some(board)) => collect_readings(&board, &self.reader, gaps),
            Ok(None) => I2cReadings::default(),
            Err(e) => {
                gaps.push("i2c board", crate::inventory::error_chain(&e));
                I2cReadings::default()
            }
        }
    }
}

/// A source over a fake SMBus holding an LM75 at 0x48 reading 26.5 °C and an
/// INA219 at 0x40 reading 40 mV shunt and 11.98 V bus, with `board` (JSON) as
/// its board file in `dir`. For tests of what consumes I2C readings.
#[cfg(test)]
pub(crate) fn fake_source(dir: &Path, board: &str) -> I2cSource {
    let board_file = dir.join("i2c-board.json");
    #[allow(clippy::unwrap_used)]
    std::fs::write(&board_file, board).unwrap();
    let mut fake = FakeSmbus::default();
    fake.registers.insert((0x48, 0x00), 0x1a80);
    fake.registers.insert((0x40, 0x01), 0x0fa0);
    fake.registers.insert((0x40, 0x02), 0x5d98);
    I2cSource {
        board_file,
        reader: Box::new(move |chip| read_chip(SmbusI2c::new(fake.clone()), chip)),
    }
}

impl fmt::Debug for I2cSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("I2cSource")
            .field("board_file", &self.board_file)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    use super::*;

    fn board(json: &str) -> Result<Board, ConfigError> {
        let cfg: BoardConfig = serde_json::from_str(json).unwrap();
        Board::try_from(cfg)
    }

    #[test]
    fn config_is_validated_with_field_names() {
        let ok = board(
            r#"{"chips": [
                {"bus": 1, "address": 72, "model": "lm75", "label": "inlet"},
                {"bus": 1, "address": 64, "model": "ina226", "shunt_ohms": 0.002, "transfer": "smbus"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(ok.chips[1].transfer, Transfer::Smbus);
        assert_eq!(ok.chips[0].id(), "i2c-1/0x48");
        let e = board(r#"{"chips": [{"bus": 0, "address": 80, "model": "tmp102"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "chips[0].address: 0x50 is not a tmp102 address (0x48-0x4b)"
        );
        let e = board(r#"{"chips": [{"bus": 0, "address": 64, "model": "ina219"}]}"#).unwrap_err();
        assert!(e.to_string().starts_with("chips[0].shunt_ohms"), "{e}");
        let e =
            board(r#"{"chips": [{"bus": 0, "address": 72, "model": "lm75", "shunt_ohms": 1.0}]}"#)
                .unwrap_err();
        assert!(matches!(e, ConfigError::UnexpectedShunt { .. }));
        let e = board(
            r#"{"chips": [{"bus": 0, "address": 72, "model": "lm75"}, {"bus": 0, "address": 72, "model": "tmp102"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Duplicate { index: 1, .. }));
        // Unknown fields are refused, not ignored.
        assert!(serde_json::from_str::<BoardConfig>(r#"{"chips": [], "probe": true}"#).is_err());
        assert!(
            serde_json::from_str::<BoardConfig>(
                r#"{"chips": [{"bus": 0, "address": 72, "model": "lm75", "adress": 1}]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn collect_reads_each_chip_and_records_failures() {
        let b = board(
            r#"{"chips": [
                {"bus": 1, "address": 72, "model": "lm75", "label": "inlet"},
                {"bus": 1, "address": 65, "model": "ina226", "shunt_ohms": 0.002},
                {"bus": 2, "address": 73, "model": "tmp102"}
            ]}"#,
        )
        .unwrap();
        let mut mocks = vec![
            Mock::new(&[Transaction::write_read(0x48, vec![0x00], vec![0x19, 0x80])]),
            Mock::new(&[
                Transaction::write(0x41, vec![0x02]),
                Transaction::read(0x41, vec![0x25, 0x80]),
                Transaction::write(0x41, vec![0x01]),
                Transaction::read(0x41, vec![0x03, 0xe8]),
            ]),
        ]
        .into_iter();
        let mut used = Vec::new();
        let mut gaps = Gaps::default();
        let r = collect_with(
            &b,
            |chip| {
                if chip.bus == 2 {
                    return Err("No such file or directory".to_owned());
                }
                let m = mocks.next().unwrap();
                used.push(m.clone());
                Ok(m)
            },
            &mut gaps,
        );
        for mut m in used {
            m.done();
        }
        let t = &r.sensors[0];
        assert_eq!(
            (
                t.chip.as_str(),
                t.chip_id.as_str(),
                t.sensor.as_str(),
                t.value
            ),
            ("lm75", "i2c-1/0x48", "temp1", Some(25.5))
        );
        assert_eq!(t.label.as_deref(), Some("inlet"));
        let stems: Vec<&str> = r.sensors.iter().map(|s| s.sensor.as_str()).collect();
        assert_eq!(stems, ["temp1", "in1", "curr1", "power1"]);
        // 1000 × 2.5 µV = 2.5 mV over 2 mΩ = 1.25 A at 12 V = 15 W.
        let m = &r.meters[0];
        assert_eq!(
            (m.source, m.name.as_str()),
            (PowerSource::I2c, "i2c-1/0x41")
        );
        assert_eq!(m.volts, Some(12.0));
        assert!((m.watts.unwrap() - 15.0).abs() < 1e-9);
        assert_eq!(gaps.0.len(), 1);
        assert_eq!(gaps.0[0].what, "tmp102 i2c-2/0x49");
    }

    #[test]
    fn the_same_drivers_run_over_smbus() {
        let b = board(
            r#"{"chips": [
                {"bus": 0, "address": 72, "model": "lm75", "transfer": "smbus"},
                {"bus": 0, "address": 64, "model": "ina219", "shunt_ohms": 0.1, "transfer": "smbus"},
                {"bus": 0, "address": 65, "model": "ina226", "shunt_ohms": 0.1, "transfer": "smbus"}
            ]}"#,
        )
        .unwrap();
        let mut fake = FakeSmbus::default();
        fake.registers.insert((0x48, 0x00), 0x1980);
        fake.registers.insert((0x40, 0x02), 0x5da2);
        fake.registers.insert((0x40, 0x01), 0x07d0);
        fake.registers.insert((0x41, 0x02), 0x2580);
        fake.registers.insert((0x41, 0x01), 0x1f40);
        let log = fake.log.clone();
        let mut gaps = Gaps::default();
        let r = collect_with(
            &b,
            |_| Ok::<_, String>(SmbusI2c::new(fake.clone())),
            &mut gaps,
        );
        assert!(gaps.0.is_empty(), "{gaps:?}");
        let v: Vec<(String, f64)> = r
            .sensors
            .iter()
            .map(|s| {
                (
                    format!("{}/{}", s.chip, s.sensor),
                    (s.value.unwrap() * 1e6).round() / 1e6,
                )
            })
            .collect();
        assert_eq!(
            v,
            [
                ("lm75/temp1".to_owned(), 25.5),
                ("ina219/in1".to_owned(), 11.984),
                ("ina219/curr1".to_owned(), 0.2),
                ("ina219/power1".to_owned(), 2.3968),
                ("ina226/in1".to_owned(), 12.0),
                // 8000 × 2.5 µV = 20 mV over 0.1 Ω.
                ("ina226/curr1".to_owned(), 0.2),
                ("ina226/power1".to_owned(), 2.4),
            ]
        );
        assert_eq!(
            *log.lock().unwrap(),
            [
                "read_word_data 0x48 0x00",
                "read_word_data 0x40 0x02",
                "read_word_data 0x40 0x01",
                "write_byte 0x41 0x02",
                "read_word_data 0x41 0x02",
                "write_byte 0x41 0x01",
                "read_word_data 0x41 0x01",
            ]
        );
    }
}
