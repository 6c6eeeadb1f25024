//! An LM75 read through `SmbusI2c` on the kernel's `i2c-stub`, which only speaks
//! SMBus commands (Documentation/i2c/i2c-stub.rst). Needs root, `modprobe` and the
//! module; skipped with the reason otherwise.

use std::process::Command;

use nodus_agent::{
    hal::Gaps,
    sensors::i2c::{Board, BoardConfig, ChipConfig, Model, Smbus, Transfer, linux::LinuxSmbus},
};

/// Loads i2c-stub with one chip at 0x48 and unloads it on drop.
struct Stub;

impl Stub {
    fn load() -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("needs root to load i2c-stub".into());
        }
        for args in [&["i2c-dev"][..], &["i2c-stub", "chip_addr=0x48"][..]] {
            let out = Command::new("modprobe")
                .args(args)
                .output()
                .map_err(|e| format!("modprobe: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "modprobe {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(Self)
    }

    /// The bus number of the stub adapter.
    fn bus() -> Option<u32> {
        std::fs::read_dir("/sys/class/i2c-adapter")
            .ok()?
            .flatten()
            .find_map(|e| {
                let name = std::fs::read_to_string(e.path().join("name")).ok()?;
                if !name.contains("SMBus stub") {
                    return None;
                }
                e.file_name().to_str()?.strip_prefix("i2c-")?.parse().ok()
            })
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = Command::new("modprobe").args(["-r", "i2c-stub"]).status();
    }
}

#[test]
fn lm75_on_i2c_stub_through_smbus() {
    let _stub = match Stub::load() {
        Ok(s) => s,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let bus = Stub::bus().expect("i2c-stub loaded but no SMBus stub adapter listed");
    // Preload the temperature register as the chip would send it: 0x19 then 0x80
    // (25.5 °C); an SMBus word carries its first byte in the low half.
    let mut raw = LinuxSmbus::open(bus, 0x48).unwrap();
    raw.write_word_data(0x48, 0x00, u16::from_le_bytes([0x19, 0x80]))
        .unwrap();

    let board = Board::try_from(BoardConfig {
        chips: vec![ChipConfig {
            bus,
            address: 0x48,
            model: Model::Lm75,
            transfer: Transfer::Smbus,
            shunt_ohms: None,
            label: None,
        }],
    })
    .unwrap();
    let mut gaps = Gaps::default();
    let r = nodus_agent::sensors::i2c::collect(&board, &mut gaps);
    assert!(gaps.0.is_empty(), "{gaps:?}");
    assert_eq!(r.sensors[0].value, Some(25.5));
}
