//! Board bring-up for sensor chips simulated by the kernel's `i2c-stub`: what the
//! init does with the kernel command line's `nodus.i2c=` entries before it starts
//! the agent.
//!
//! A virtual machine has no LM75 or INA219, so a hardware profile describes its
//! chips on the kernel command line (`hw-profiles`' `i2c_kernel_args`):
//! `i2c_stub.chip_addr=` makes the stub answer SMBus commands at those addresses
//! from a register file that starts zeroed, and one `nodus.i2c=` entry per chip
//! says what the chip is and what its registers hold. The init then
//!
//! 1. parses every entry ([`parse_entry`]); a bad one is printed with the reason
//!    and skipped, the others still come up;
//! 2. finds the stub's adapters by name ([`stub_adapters`]): on q35 the i801
//!    SMBus controller registers an adapter too, and which one gets `i2c-0`
//!    depends on load order;
//! 3. writes each chip's registers into the stub through `/dev/i2c-N`
//!    ([`seed`], SMBus word writes through [`SmbusI2c`]);
//! 4. writes the [`BoardConfig`] the agent reads,
//!    [`crate::sensors::i2c::BOARD_FILE`] ([`write_board_file`]).
//!
//! Writing registers is the bring-up of a simulated board and touches only the
//! stub. The agent itself never writes a chip (see [`crate::sensors::i2c`]).
//!
//! # Entry format
//!
//! `nodus.i2c=<chip>@<bus>:0x<addr>:<reg>=<value>/<reg>=<value>…[:shunt=<ohms>]`,
//! e.g. `nodus.i2c=lm75@0:0x48:00=1a80/03=5000` or
//! `nodus.i2c=ina219@0:0x40:01=0fa0/02=5d98:shunt=0.1`. Registers and values are
//! hexadecimal (`0x` optional); values are written as the datasheet gives the
//! 16-bit register, most significant byte first. `shunt` is the INA2xx shunt
//! resistance in ohms (required for them, refused for the others).
//!
//! `bus` is the profile's bus index, not a Linux bus number: bus *k* is the
//! *k*-th adapter named [`STUB_ADAPTER_NAME`] in adapter-number order. The
//! kernel's i2c-stub registers one adapter, so bus 0 is the only one that
//! exists; the chip's sensors then carry the Linux number (`i2c-<N>/0x48`).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
};

use embedded_hal::i2c::I2c;

use crate::sensors::i2c::{Board, BoardConfig, ChipConfig, Model, SmbusI2c, Transfer};

/// The `name` the kernel's i2c-stub gives its adapter
/// (`drivers/i2c/i2c-stub.c`).
pub const STUB_ADAPTER_NAME: &str = "SMBus stub driver";

/// The most addresses i2c-stub accepts in `chip_addr` (`MAX_CHIPS` in its
/// source).
pub const STUB_MAX_CHIPS: usize = 10;

/// One chip of a `nodus.i2c=` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StubChip {
    /// Which chip.
    pub model: Model,
    /// The profile's bus index (see the module docs).
    pub bus: u32,
    /// 7-bit address.
    pub address: u8,
    /// Initial register contents, register → 16-bit value as the datasheet
    /// writes it (most significant byte first on the wire).
    pub registers: BTreeMap<u8, u16>,
    /// INA2xx shunt resistance, Ω.
    pub shunt_ohms: Option<f64>,
}

impl fmt::Display for StubChip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{:#04x}", self.model, self.bus, self.address)
    }
}

/// A `nodus.i2c=` entry that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Bad nodus.i2c={entry:?}: {reason}")]
pub struct EntryError {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

fn hex_u16(s: &str) -> Option<u16> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

/// Parses one `nodus.i2c=` value (see the module docs for the format).
pub fn parse_entry(entry: &str) -> Result<StubChip, EntryError> {
    let bad = |reason: String| EntryError {
        entry: entry.to_owned(),
        reason,
    };
    let mut parts = entry.split(':');
    let head = parts.next().unwrap_or_default();
    let (name, bus) = head
        .split_once('@')
        .ok_or_else(|| bad("expected <chip>@<bus>:0x<addr>:<registers>".to_owned()))?;
    let model = Model::from_name(name).ok_or_else(|| {
        bad(format!(
            "unknown chip {name:?} (expected lm75, tmp102, ina219 or ina226)"
        ))
    })?;
    let bus: u32 = bus
        .parse()
        .map_err(|_| bad(format!("bus {bus:?} is not a number")))?;
    let addr_text = parts
        .next()
        .ok_or_else(|| bad("missing :0x<addr>".to_owned()))?;
    let address = addr_text
        .strip_prefix("0x")
        .and_then(|a| u8::from_str_radix(a, 16).ok())
        .filter(|a| model.addresses().contains(a))
        .ok_or_else(|| {
            let r = model.addresses();
            bad(format!(
                "address {addr_text:?} is not a {model} address (0x{:02x}-0x{:02x})",
                r.start(),
                r.end()
            ))
        })?;
    let mut registers = BTreeMap::new();
    for pair in parts
        .next()
        .unwrap_or_default()
        .split('/')
        .filter(|p| !p.is_empty())
    {
        let (r, v) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("register {pair:?} is not <reg>=<value>")))?;
        let reg = hex_u16(r)
            .and_then(|r| u8::try_from(r).ok())
            .ok_or_else(|| bad(format!("register {r:?} is not hex 00..ff")))?;
        let value = hex_u16(v)
            .ok_or_else(|| bad(format!("value {v:?} of register {r} is not hex 0000..ffff")))?;
        registers.insert(reg, value);
    }
    let mut shunt_ohms = None;
    for opt in parts {
        match opt.split_once('=') {
            Some(("shunt", v)) => {
                let ohms = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| bad(format!("shunt {v:?} is not a resistance > 0")))?;
                shunt_ohms = Some(ohms);
            }
            _ => {
                return Err(bad(format!(
                    "unknown option {opt:?} (expected shunt=<ohms>)"
                )));
            }
        }
    }
    match (model.measures_power(), shunt_ohms) {
        (true, None) => return Err(bad(format!("{model} needs :shunt=<ohms>"))),
        (false, Some(_)) => return Err(bad(format!("{model} has no shunt"))),
        _ => {}
    }
    Ok(StubChip {
        model,
        bus,
        address,
        registers,
        shunt_ohms,
    })
}

/// The `chip_addr=` parameter i2c-stub needs for `chips` (each address once, in
/// entry order), for when the command line has no `i2c_stub.chip_addr=`.
pub fn chip_addr_param(chips: &[StubChip]) -> String {
    let mut seen = BTreeSet::new();
    let addrs: Vec<String> = chips
        .iter()
        .filter(|c| seen.insert(c.address))
        .take(STUB_MAX_CHIPS)
        .map(|c| format!("0x{:02x}", c.address))
        .collect();
    format!("chip_addr={}", addrs.join(","))
}

/// The Linux bus numbers of i2c-stub's adapters under `sys`
/// (`class/i2c-adapter/i2c-N/name`), ascending.
pub fn stub_adapters(sys: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(sys.join("class/i2c-adapter")) else {
        return Vec::new();
    };
    let mut out: Vec<u32> = dir
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_prefix("i2c-")?.parse().ok()?;
            let name = std::fs::read_to_string(e.path().join("name")).ok()?;
            (name.trim() == STUB_ADAPTER_NAME).then_some(n)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Why a chip could not be brought up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BringUpError {
    /// The profile's bus has no stub adapter.
    #[error("No i2c-stub adapter for bus {bus} ({found} found)")]
    NoAdapter {
        /// The profile's bus index.
        bus: u32,
        /// How many stub adapters exist.
        found: usize,
    },
    /// `/dev/i2c-N` could not be opened.
    #[error("Cannot open /dev/i2c-{adapter}: {message}")]
    Open {
        /// The Linux bus number.
        adapter: u32,
        /// The OS error.
        message: String,
    },
    /// A register write failed.
    #[error("Writing register {reg:#04x} failed: {message}")]
    Write {
        /// The register.
        reg: u8,
        /// The bus error.
        message: String,
    },
    /// The chip cannot join the agent's board configuration (e.g. a second chip
    /// at the same address).
    #[error("Refused by the board configuration: {0}")]
    Config(String),
}

/// Writes `chip`'s registers over `i2c`, in register order, as I2C register
/// writes `[reg, msb, lsb]`. Over [`SmbusI2c`] each becomes an SMBus write word
/// whose low byte (sent first) is the register's most significant byte, which
/// is the byte order these chips use and the one [`SmbusI2c`] reads back.
/// Returns how many registers were written.
pub fn seed<I: I2c>(i2c: &mut I, chip: &StubChip) -> Result<usize, BringUpError> {
    for (&reg, &value) in &chip.registers {
        let [msb, lsb] = value.to_be_bytes();
        i2c.write(chip.address, &[reg, msb, lsb])
            .map_err(|e| BringUpError::Write {
                reg,
                message: format!("{e:?}"),
            })?;
    }
    Ok(chip.registers.len())
}

/// What [`bring_up`] did.
#[derive(Debug, Default)]
pub struct BringUp {
    /// The chips that came up, for the agent ([`write_board_file`]).
    pub board: BoardConfig,
    /// One line per chip that came up, e.g. `lm75@0:0x48 on i2c-1: 3 registers`.
    pub done: Vec<String>,
    /// The chips that did not, with why.
    pub failed: Vec<(StubChip, BringUpError)>,
}

/// Seeds each chip on its stub adapter (`adapters`: Linux bus numbers from
/// [`stub_adapters`]; `open` opens one as an SMBus adapter) and builds the
/// board configuration of those that came up. One failing chip never stops the
/// others.
pub fn bring_up<S, E>(
    chips: &[StubChip],
    adapters: &[u32],
    mut open: impl FnMut(u32, u8) -> Result<S, E>,
) -> BringUp
where
    S: crate::sensors::i2c::Smbus,
    E: fmt::Display,
{
    let mut out = BringUp::default();
    for chip in chips {
        let r = (|| {
            let adapter = usize::try_from(chip.bus)
                .ok()
                .and_then(|b| adapters.get(b))
                .copied()
                .ok_or(BringUpError::NoAdapter {
                    bus: chip.bus,
                    found: adapters.len(),
                })?;
            let cfg = ChipConfig {
                bus: adapter,
                address: chip.address,
                model: chip.model,
                transfer: Transfer::Smbus,
                shunt_ohms: chip.shunt_ohms,
                label: None,
            };
            // Validate before writing anything: the agent must be able to read
            // every chip the init announces.
            let mut next = out.board.clone();
            next.chips.push(cfg);
            Board::try_from(next.clone()).map_err(|e| BringUpError::Config(e.to_string()))?;
            let bus = open(adapter, chip.address).map_err(|e| BringUpError::Open {
                adapter,
                message: e.to_string(),
            })?;
            let n = seed(&mut SmbusI2c::new(bus), chip)?;
            Ok((next, adapter, n))
        })();
        match r {
            Ok((next, adapter, n)) => {
                out.board = next;
                out.done
                    .push(format!("{chip} on i2c-{adapter}: {n} registers"));
            }
            Err(e) => out.failed.push((chip.clone(), e)),
        }
    }
    out
}

/// Writes `board` as JSON to `path` (creating its directory), replacing any
/// previous file in one rename so the agent never reads half of it.
pub fn write_board_file(path: &Path, board: &BoardConfig) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec_pretty(board).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sensors::i2c::{FakeSmbus, collect_with, smbus::FakeNack};

    const LM75: &str = "lm75@0:0x48:00=1a80/02=4b00/03=5000";
    const INA219: &str = "ina219@0:0x40:00=399f/01=0fa0/02=5d98:shunt=0.1";

    #[test]
    fn entries_parse_as_hw_profiles_writes_them() {
        let c = parse_entry(LM75).unwrap();
        assert_eq!((c.model, c.bus, c.address), (Model::Lm75, 0, 0x48));
        assert_eq!(
            c.registers,
            BTreeMap::from([(0x00, 0x1a80), (0x02, 0x4b00), (0x03, 0x5000)])
        );
        assert_eq!(c.shunt_ohms, None);
        let c = parse_entry(INA219).unwrap();
        assert_eq!(c.shunt_ohms, Some(0.1));
        assert_eq!(c.registers[&0x02], 0x5d98);
        // No registers at all is a chip that reads zeroes.
        let c = parse_entry("tmp102@2:0x49:").unwrap();
        assert!(c.registers.is_empty());
        assert_eq!(c.to_string(), "tmp102@2:0x49");
    }

    #[test]
    fn bad_entries_name_the_entry_and_the_reason() {
        for (entry, reason) in [
            ("lm75", "expected <chip>@<bus>"),
            ("lm76@0:0x48:", "unknown chip \"lm76\""),
            ("lm75@x:0x48:", "bus \"x\" is not a number"),
            ("lm75@0", "missing :0x<addr>"),
            (
                "lm75@0:72:",
                "address \"72\" is not a lm75 address (0x48-0x4f)",
            ),
            ("lm75@0:0x40:", "not a lm75 address"),
            ("lm75@0:0x48:00", "register \"00\" is not <reg>=<value>"),
            ("lm75@0:0x48:100=1", "register \"100\" is not hex"),
            ("lm75@0:0x48:00=12345", "value \"12345\" of register 00"),
            ("lm75@0:0x48:00=1:shunt=0.1", "lm75 has no shunt"),
            ("ina219@0:0x40:00=1", "ina219 needs :shunt=<ohms>"),
            (
                "ina219@0:0x40::shunt=0",
                "shunt \"0\" is not a resistance > 0",
            ),
            (
                "ina219@0:0x40::shunt=0.1:gain=8",
                "unknown option \"gain=8\"",
            ),
        ] {
            let e = parse_entry(entry).unwrap_err();
            assert_eq!(e.entry, entry);
            assert!(e.reason.contains(reason), "{entry}: {}", e.reason);
            assert!(
                e.to_string()
                    .starts_with(&format!("Bad nodus.i2c={entry:?}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn chip_addr_lists_each_address_once() {
        let a = parse_entry(LM75).unwrap();
        let b = parse_entry(INA219).unwrap();
        let mut a2 = a.clone();
        a2.bus = 1;
        assert_eq!(chip_addr_param(&[a, b, a2]), "chip_addr=0x48,0x40");
    }

    #[test]
    fn the_stub_adapter_is_found_by_name_not_by_number() {
        let dir = tempfile::tempdir().unwrap();
        for (n, name) in [
            (0, "SMBus I801 adapter at 0580"),
            (1, STUB_ADAPTER_NAME),
            (10, STUB_ADAPTER_NAME),
            (2, "i915 gmbus dpb"),
        ] {
            let d = dir.path().join(format!("class/i2c-adapter/i2c-{n}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(stub_adapters(dir.path()), [1, 10]);
        assert!(stub_adapters(&dir.path().join("nothing")).is_empty());
    }

    /// Seeds the fake as the init would, then reads it back through the agent's
    /// own drivers: the byte order of the write path and the read path agree.
    #[test]
    fn seeded_registers_read_back_through_the_agents_drivers() {
        let chips = [parse_entry(LM75).unwrap(), parse_entry(INA219).unwrap()];
        let mut bus = SmbusI2c::new(FakeSmbus::default());
        for c in &chips {
            assert_eq!(seed(&mut bus, c).unwrap(), 3);
        }
        let seeded = bus.into_inner();
        let log = seeded.log();
        // 0x1a80 on the wire is 0x1a then 0x80: SMBus sends the low byte first.
        assert_eq!(log[0], "write_word_data 0x48 0x00 0x801a");
        assert_eq!(log.len(), 6);
        let mut opened = Vec::new();
        let up = bring_up(&chips, &[3], |adapter, addr| {
            opened.push((adapter, addr));
            Ok::<_, String>(FakeSmbus::default())
        });
        assert!(up.failed.is_empty(), "{:?}", up.failed);
        assert_eq!(opened, [(3, 0x48), (3, 0x40)]);
        assert_eq!(
            up.done,
            [
                "lm75@0:0x48 on i2c-3: 3 registers",
                "ina219@0:0x40 on i2c-3: 3 registers"
            ]
        );
        let board = Board::try_from(up.board.clone()).unwrap();
        assert_eq!(board.chips[0].id(), "i2c-3/0x48");
        assert_eq!(board.chips[1].transfer, Transfer::Smbus);
        let mut gaps = crate::hal::Gaps::default();
        let r = collect_with(
            &board,
            |_| Ok::<_, String>(SmbusI2c::new(seeded.clone())),
            &mut gaps,
        );
        assert!(gaps.0.is_empty(), "{gaps:?}");
        let v: Vec<(&str, f64)> = r
            .sensors
            .iter()
            .map(|s| (s.sensor.as_str(), (s.value.unwrap() * 1e4).round() / 1e4))
            .collect();
        // 0x1a80 = 26.5 °C; 0x5d98 >> 3 = 2995 × 4 mV = 11.98 V;
        // 4000 × 10 µV = 40 mV over 0.1 Ω = 0.4 A; 11.98 V × 0.4 A = 4.792 W.
        assert_eq!(
            v,
            [
                ("temp1", 26.5),
                ("in1", 11.98),
                ("curr1", 0.4),
                ("power1", 4.792)
            ]
        );
    }

    #[test]
    fn one_bad_chip_does_not_stop_the_others() {
        let mut chips = vec![
            parse_entry(LM75).unwrap(),
            parse_entry("lm75@1:0x49:00=1900").unwrap(),
            parse_entry("tmp102@0:0x48:00=1900").unwrap(),
            parse_entry(INA219).unwrap(),
        ];
        chips.push(parse_entry("tmp102@0:0x4a:00=1900").unwrap());
        let up = bring_up(&chips, &[0], |_, addr| {
            if addr == 0x4a {
                Err("No such device".to_owned())
            } else {
                Ok(FakeSmbus::default())
            }
        });
        let failed: Vec<String> = up.failed.iter().map(|(c, e)| format!("{c}: {e}")).collect();
        assert_eq!(
            failed,
            [
                "lm75@1:0x49: No i2c-stub adapter for bus 1 (1 found)",
                "tmp102@0:0x48: Refused by the board configuration: chips[1]: bus 0 address \
                 0x48 is already taken",
                "tmp102@0:0x4a: Cannot open /dev/i2c-0: No such device",
            ]
        );
        assert_eq!(up.board.chips.len(), 2);
    }

    #[test]
    fn a_failed_register_write_names_the_register() {
        struct Refuses;
        impl crate::sensors::i2c::Smbus for Refuses {
            type Error = FakeNack;
            fn write_byte(&mut self, _: u8, _: u8) -> Result<(), FakeNack> {
                Err(FakeNack)
            }
            fn read_byte(&mut self, _: u8) -> Result<u8, FakeNack> {
                Err(FakeNack)
            }
            fn write_byte_data(&mut self, _: u8, _: u8, _: u8) -> Result<(), FakeNack> {
                Err(FakeNack)
            }
            fn read_byte_data(&mut self, _: u8, _: u8) -> Result<u8, FakeNack> {
                Err(FakeNack)
            }
            fn write_word_data(&mut self, _: u8, _: u8, _: u16) -> Result<(), FakeNack> {
                Err(FakeNack)
            }
            fn read_word_data(&mut self, _: u8, _: u8) -> Result<u16, FakeNack> {
                Err(FakeNack)
            }
            fn read_i2c_block(&mut self, _: u8, _: u8, _: &mut [u8]) -> Result<(), FakeNack> {
                Err(FakeNack)
            }
            fn write_i2c_block(&mut self, _: u8, _: u8, _: &[u8]) -> Result<(), FakeNack> {
                Err(FakeNack)
            }
        }
        let up = bring_up(&[parse_entry(LM75).unwrap()], &[0], |_, _| {
            Ok::<_, String>(Refuses)
        });
        assert!(up.board.chips.is_empty());
        let e = up.failed[0].1.to_string();
        assert!(e.starts_with("Writing register 0x00 failed"), "{e}");
    }

    #[test]
    fn the_board_file_is_what_the_agent_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/nodus/i2c-board.json");
        let chips = [parse_entry(LM75).unwrap(), parse_entry(INA219).unwrap()];
        let up = bring_up(&chips, &[1], |_, _| Ok::<_, String>(FakeSmbus::default()));
        write_board_file(&path, &up.board).unwrap();
        let board = crate::sensors::i2c::load_board_file(&path)
            .unwrap()
            .unwrap();
        assert_eq!(board.chips.len(), 2);
        assert_eq!(board.chips[1].id(), "i2c-1/0x40");
        assert_eq!(board.chips[1].shunt_ohms, Some(0.1));
        assert!(!path.with_extension("json.tmp").exists());
    }
}
