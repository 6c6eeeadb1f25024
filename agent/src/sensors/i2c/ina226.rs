//! INA226: bus voltage (register 0x02, 1.25 mV per bit) and shunt voltage
//! (register 0x01, signed, 2.5 µV per bit) (TI INA226 datasheet, SBOS547, §7.6).
//!
//! Read through the maintained `ina226` crate (0.3, embedded-hal 1.0), which sets
//! the register pointer and reads in two separate transactions; on SMBus-only
//! adapters [`super::SmbusI2c`] turns that pair into one read-word command. As for
//! the INA219, calibration is never written; current and power are derived from
//! the shunt voltage and the configured shunt resistance.

use embedded_hal::i2c::I2c;

use super::PowerReading;

/// Reads bus voltage, shunt current and power through `shunt_ohms`.
pub fn read<I: I2c>(i2c: I, address: u8, shunt_ohms: f64) -> Result<PowerReading, I::Error> {
    let mut dev = ina226::INA226::new(i2c, address);
    let volts = dev.bus_voltage_millivolts()? / 1000.0;
    let amps = dev.shunt_voltage_microvolts()? / 1e6 / shunt_ohms;
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
    fn bus_and_shunt_voltage_through_a_2_milliohm_shunt() {
        // Bus 0x2580 = 9600 × 1.25 mV = 12 V. Shunt 0xFE0C = -500 × 2.5 µV =
        // -1.25 mV → -0.625 A through 2 mΩ (current flowing back).
        let expectations = [
            Transaction::write(0x41, vec![0x02]),
            Transaction::read(0x41, vec![0x25, 0x80]),
            Transaction::write(0x41, vec![0x01]),
            Transaction::read(0x41, vec![0xfe, 0x0c]),
        ];
        let mut i2c = Mock::new(&expectations);
        let r = read(&mut i2c, 0x41, 0.002).unwrap();
        assert_eq!(r.volts, 12.0);
        assert!((r.amps + 0.625).abs() < 1e-12, "{}", r.amps);
        assert!((r.watts + 7.5).abs() < 1e-9, "{}", r.watts);
        i2c.done();
    }
}
