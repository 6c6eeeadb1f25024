//! INA219: bus voltage (register 0x02, bits 15..3, 4 mV per bit) and shunt voltage
//! (register 0x01, signed, 10 µV per bit) (TI INA219 datasheet, SBOS448, §8.6.3).
//!
//! Read through the maintained `ina219` crate (0.2, embedded-hal 1.0). The agent
//! never writes the calibration register (observe mode must not reconfigure
//! hardware), so the chip's current and power registers read 0; current is
//! derived as shunt voltage / shunt resistance and power as bus voltage × current,
//! which is the same arithmetic the chip would do (§8.5.1).

use embedded_hal::i2c::I2c;
use ina219::{SyncIna219, address::Address, calibration::UnCalibrated};

use super::PowerReading;

/// Why an INA219 could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ina219Error<E: std::fmt::Debug> {
    /// The address is outside the chip's range (0x40–0x4F).
    #[error("Address {0:#04x} is not an INA219 address (0x40-0x4f)")]
    Address(u8),
    /// The bus transfer failed.
    #[error("I2C transfer failed: {0:?}")]
    Bus(E),
    /// The chip returned a value outside what its configuration allows.
    #[error("Reading out of range: {0}")]
    Range(String),
}

/// Reads bus voltage, shunt current and power through `shunt_ohms`.
pub fn read<I: I2c>(
    i2c: I,
    address: u8,
    shunt_ohms: f64,
) -> Result<PowerReading, Ina219Error<I::Error>> {
    let addr = Address::from_byte(address).map_err(|_| Ina219Error::Address(address))?;
    let mut dev = SyncIna219::new_unchecked(i2c, addr, UnCalibrated);
    let bus = dev.bus_voltage().map_err(|e| match e {
        ina219::errors::BusVoltageReadError::I2cError(e) => Ina219Error::Bus(e),
        other => Ina219Error::Range(format!("{other:?}")),
    })?;
    let shunt = dev.shunt_voltage().map_err(|e| match e {
        ina219::errors::ShuntVoltageReadError::I2cError(e) => Ina219Error::Bus(e),
        other => Ina219Error::Range(format!("{other:?}")),
    })?;
    let volts = f64::from(bus.voltage_mv()) / 1000.0;
    let amps = f64::from(shunt.shunt_voltage_uv()) / 1e6 / shunt_ohms;
    Ok(PowerReading {
        volts,
        amps,
        watts: volts * amps,
    })
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    use super::*;

    #[test]
    fn bus_and_shunt_voltage_through_a_100_milliohm_shunt() {
        // Bus 0x5DA2: 0x5DA2 >> 3 = 2996 × 4 mV = 11.984 V (CNVR set).
        // Shunt 0x07D0 = 2000 × 10 µV = 20 mV → 0.2 A through 0.1 Ω.
        let expectations = [
            Transaction::write_read(0x40, vec![0x02], vec![0x5d, 0xa2]),
            Transaction::write_read(0x40, vec![0x01], vec![0x07, 0xd0]),
        ];
        let mut i2c = Mock::new(&expectations);
        let r = read(&mut i2c, 0x40, 0.1).unwrap();
        assert_eq!(r.volts, 11.984);
        assert!((r.amps - 0.2).abs() < 1e-12, "{}", r.amps);
        assert!((r.watts - 2.3968).abs() < 1e-9, "{}", r.watts);
        i2c.done();
    }
}
