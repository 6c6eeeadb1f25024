//! LM75 (and LM75A/B, compatible parts): temperature, 9-bit by default, in the
//! upper bits of the 16-bit register 0x00 (LM75B datasheet, NXP, §7.4.3).
//!
//! Read through the maintained `lm75` crate (1.0, embedded-hal 1.0).

use embedded_hal::i2c::I2c;

/// Reads the temperature, °C.
pub fn read_celsius<I: I2c>(i2c: I, address: u8) -> Result<f64, lm75::Error<I::Error>> {
    let mut dev = lm75::Lm75::new(i2c, lm75::Address::from(address));
    dev.read_temperature().map(f64::from)
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    use super::*;

    #[test]
    fn reads_register_zero_as_half_degrees() {
        // 9-bit two's complement in bits 15..7, 0.5 °C per bit (LM75B table 10):
        // 0x1980 → 0x033 = 25.5 °C, 0xE700 → 0x1CE = -25 °C.
        let expectations = [
            Transaction::write_read(0x48, vec![0x00], vec![0x19, 0x80]),
            Transaction::write_read(0x4f, vec![0x00], vec![0xe7, 0x00]),
        ];
        let mut i2c = Mock::new(&expectations);
        assert_eq!(read_celsius(&mut i2c, 0x48).unwrap(), 25.5);
        assert_eq!(read_celsius(&mut i2c, 0x4f).unwrap(), -25.0);
        i2c.done();
    }
}
