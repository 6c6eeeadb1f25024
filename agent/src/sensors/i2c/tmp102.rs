//! TMP102 (and TMP112): temperature, 12 bits left-aligned in register 0x00 at
//! 0.0625 °C per bit (TI TMP102 datasheet, SBOS397, §7.5.4). Address 0x48–0x4B
//! by the ADD0 pin (§7.5.4.1 table 4).
//!
//! Read through the maintained `tmp1x2` crate (1.1, embedded-hal 1.0). The chip is
//! read in its power-on continuous-conversion mode; nothing is written to it.

use embedded_hal::i2c::I2c;
use tmp1x2::{SlaveAddr, Tmp1x2};

/// Why a TMP102 could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Tmp102Error<E: std::fmt::Debug> {
    /// The address is not one the ADD0 pin can select (0x48–0x4B).
    #[error("Address {0:#04x} is not a TMP102 address (0x48-0x4b)")]
    Address(u8),
    /// The bus transfer failed.
    #[error("I2C transfer failed: {0:?}")]
    Bus(tmp1x2::Error<E>),
}

/// The crate's A1/A0 form of a 7-bit address.
fn slave_addr(address: u8) -> Option<SlaveAddr> {
    match address {
        0x48 => Some(SlaveAddr::Default),
        0x49..=0x4b => Some(SlaveAddr::Alternative(
            address & 0b10 != 0,
            address & 0b01 != 0,
        )),
        _ => None,
    }
}

/// Reads the temperature, °C.
pub fn read_celsius<I: I2c>(i2c: I, address: u8) -> Result<f64, Tmp102Error<I::Error>> {
    let addr = slave_addr(address).ok_or(Tmp102Error::Address(address))?;
    let mut dev = Tmp1x2::new(i2c, addr);
    dev.read_temperature()
        .map(f64::from)
        .map_err(Tmp102Error::Bus)
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    use super::*;

    #[test]
    fn reads_register_zero_in_sixteenths() {
        // Datasheet table 5: 0x190 = 25 °C, 0xE70 = -25 °C (12-bit, left-aligned).
        let expectations = [
            Transaction::write_read(0x48, vec![0x00], vec![0x19, 0x00]),
            Transaction::write_read(0x4b, vec![0x00], vec![0xe7, 0x00]),
            Transaction::write_read(0x49, vec![0x00], vec![0x01, 0x10]),
        ];
        let mut i2c = Mock::new(&expectations);
        assert_eq!(read_celsius(&mut i2c, 0x48).unwrap(), 25.0);
        assert_eq!(read_celsius(&mut i2c, 0x4b).unwrap(), -25.0);
        assert_eq!(read_celsius(&mut i2c, 0x49).unwrap(), 1.0625);
        assert!(matches!(
            read_celsius(&mut i2c, 0x50),
            Err(Tmp102Error::Address(0x50))
        ));
        i2c.done();
    }
}
