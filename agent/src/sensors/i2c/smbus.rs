//! [`SmbusI2c`]: an `embedded_hal::i2c::I2c` bus built from SMBus commands.
//!
//! Drivers written against embedded-hal issue plain I2C transactions, typically
//! "write the register pointer, repeated start, read N bytes". Linux `I2cdev`
//! sends those as one combined `I2C_RDWR` transfer, which many PC SMBus host
//! controllers (i801, piix4 …) and the kernel's `i2c-stub` do not implement. Those
//! adapters only offer the SMBus protocol commands (SMBus 3.1 §6.5: send/receive
//! byte, write/read byte data, write/read word data, I2C block read/write). This
//! adapter translates transactions into them:
//!
//! | transaction                        | SMBus command                          |
//! |------------------------------------|----------------------------------------|
//! | `write [r]` + `read 1`             | read byte data (r)                     |
//! | `write [r]` + `read 2`             | read word data (r)                     |
//! | `write [r]` + `read 3..=32`        | I2C block read (r)                     |
//! | `write [r]`                        | send byte (r): sets the pointer        |
//! | `write [r, a]`                     | write byte data (r, a)                 |
//! | `write [r, a, b]`                  | write word data (r, a \| b << 8)       |
//! | `write [r, ..32 bytes]`            | I2C block write (r)                    |
//! | `read n` after `write [r]`         | as `write [r]` + `read n`              |
//! | `read 1` with no known pointer     | receive byte                           |
//!
//! Byte order: SMBus words travel low byte first (§6.5.5), while these sensor chips
//! send their 16-bit registers most significant byte first. Both describe the same
//! bytes on the wire: the first byte clocked out is the low byte of the SMBus word.
//! So `read word data` is returned to the driver as `word.to_le_bytes()`, which is
//! exactly the wire order the driver expects for its big-endian register, and a
//! driver's `[r, msb, lsb]` write becomes the word `msb | lsb << 8`.
//!
//! A lone `read` after a lone pointer `write` (how the `ina226` crate reads) is
//! served by re-sending the pointer inside a read-data command. That relies on the
//! chip keeping its register pointer between transactions, which the pointer-
//! register chips this is for (LM75, TMP102, INA219, INA226) do by design.

use std::fmt;

use embedded_hal::i2c::{self, ErrorKind, ErrorType, Operation, SevenBitAddress};

/// Longest I2C block transfer SMBus allows (`I2C_SMBUS_BLOCK_MAX`).
pub const BLOCK_MAX: usize = 32;

/// The SMBus commands an adapter offers, addressed per call.
pub trait Smbus {
    /// The adapter's error.
    type Error: fmt::Debug;
    /// Send byte: one data byte, no register (sets a pointer register).
    fn write_byte(&mut self, addr: u8, value: u8) -> Result<(), Self::Error>;
    /// Receive byte: one data byte, no register.
    fn read_byte(&mut self, addr: u8) -> Result<u8, Self::Error>;
    /// Write byte data.
    fn write_byte_data(&mut self, addr: u8, reg: u8, value: u8) -> Result<(), Self::Error>;
    /// Read byte data.
    fn read_byte_data(&mut self, addr: u8, reg: u8) -> Result<u8, Self::Error>;
    /// Write word data; `value`'s low byte goes on the wire first.
    fn write_word_data(&mut self, addr: u8, reg: u8, value: u16) -> Result<(), Self::Error>;
    /// Read word data; the first byte on the wire is the low byte of the result.
    fn read_word_data(&mut self, addr: u8, reg: u8) -> Result<u16, Self::Error>;
    /// I2C block read of `buf.len()` (≤ [`BLOCK_MAX`]) bytes starting at `reg`.
    fn read_i2c_block(&mut self, addr: u8, reg: u8, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// I2C block write of up to [`BLOCK_MAX`] bytes starting at `reg`.
    fn write_i2c_block(&mut self, addr: u8, reg: u8, data: &[u8]) -> Result<(), Self::Error>;
}

/// Why a transaction could not be carried out over SMBus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmbusError<E: fmt::Debug> {
    /// The adapter failed the command.
    #[error("SMBus command failed: {0:?}")]
    Bus(E),
    /// The transaction has a shape no SMBus command expresses (e.g. a bare 2-byte
    /// read with no register pointer, or a transfer longer than 32 bytes).
    #[error("Transaction cannot be expressed in SMBus commands: {0}")]
    Unsupported(&'static str),
}

impl<E: fmt::Debug> i2c::Error for SmbusError<E> {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// An embedded-hal I2C bus over an [`Smbus`] adapter. See the module docs.
#[derive(Debug)]
pub struct SmbusI2c<B> {
    bus: B,
    /// The last register pointer written to each 7-bit address.
    pointers: [Option<u8>; 128],
}

impl<B: Smbus> SmbusI2c<B> {
    /// Wraps an adapter.
    pub fn new(bus: B) -> Self {
        Self {
            bus,
            pointers: [None; 128],
        }
    }

    /// The adapter back.
    pub fn into_inner(self) -> B {
        self.bus
    }

    fn read_register(
        &mut self,
        addr: u8,
        reg: u8,
        buf: &mut [u8],
    ) -> Result<(), SmbusError<B::Error>> {
        match buf.len() {
            0 => {}
            1 => {
                buf[0] = self
                    .bus
                    .read_byte_data(addr, reg)
                    .map_err(SmbusError::Bus)?
            }
            2 => {
                let w = self
                    .bus
                    .read_word_data(addr, reg)
                    .map_err(SmbusError::Bus)?;
                buf.copy_from_slice(&w.to_le_bytes());
            }
            n if n <= BLOCK_MAX => self
                .bus
                .read_i2c_block(addr, reg, buf)
                .map_err(SmbusError::Bus)?,
            _ => return Err(SmbusError::Unsupported("read longer than 32 bytes")),
        }
        self.pointers[usize::from(addr & 0x7f)] = Some(reg);
        Ok(())
    }

    fn write(&mut self, addr: u8, data: &[u8]) -> Result<(), SmbusError<B::Error>> {
        let r = match *data {
            [] => return Err(SmbusError::Unsupported("empty write (SMBus quick command)")),
            [reg] => self.bus.write_byte(addr, reg),
            [reg, a] => self.bus.write_byte_data(addr, reg, a),
            [reg, a, b] => self
                .bus
                .write_word_data(addr, reg, u16::from_le_bytes([a, b])),
            [reg, ref rest @ ..] if rest.len() <= BLOCK_MAX => {
                self.bus.write_i2c_block(addr, reg, rest)
            }
            _ => return Err(SmbusError::Unsupported("write longer than 32 bytes")),
        };
        r.map_err(SmbusError::Bus)?;
        // Writing to a pointer-register chip leaves the pointer at the register.
        self.pointers[usize::from(addr & 0x7f)] = Some(data[0]);
        Ok(())
    }
}

impl<B: Smbus> ErrorType for SmbusI2c<B> {
    type Error = SmbusError<B::Error>;
}

impl<B: Smbus> i2c::I2c<SevenBitAddress> for SmbusI2c<B> {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let mut i = 0;
        while i < operations.len() {
            let (head, tail) = operations.split_at_mut(i + 1);
            match (&mut head[i], tail.first_mut()) {
                (Operation::Write([reg]), Some(Operation::Read(buf))) => {
                    let reg = *reg;
                    self.read_register(address, reg, buf)?;
                    i += 2;
                }
                (Operation::Write(data), _) => {
                    self.write(address, data)?;
                    i += 1;
                }
                (Operation::Read(buf), _) => {
                    match self.pointers[usize::from(address & 0x7f)] {
                        Some(reg) => self.read_register(address, reg, buf)?,
                        None if buf.len() == 1 => {
                            buf[0] = self.bus.read_byte(address).map_err(SmbusError::Bus)?;
                        }
                        None if buf.is_empty() => {}
                        None => {
                            return Err(SmbusError::Unsupported(
                                "multi-byte read without a register",
                            ));
                        }
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }
}

/// A fake SMBus adapter: a register file per address, and a log of the commands it
/// was given. Words are stored as the bytes a chip would clock out, first byte
/// first, so a test writes registers as in the datasheet (`0x1980` = 25.5 °C on an
/// LM75).
#[derive(Debug, Default, Clone)]
pub struct FakeSmbus {
    /// (address, register) → big-endian 16-bit register content.
    pub registers: std::collections::BTreeMap<(u8, u8), u16>,
    /// Every command, in order, e.g. `read_word_data 0x48 0x00`; shared by clones,
    /// so one log follows a fake handed to several drivers.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The fake's error: no device at that address (NACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeNack;

impl FakeSmbus {
    /// The commands so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn record(&self, entry: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(entry);
        }
    }

    fn reg(&self, addr: u8, reg: u8) -> Result<u16, FakeNack> {
        self.registers.get(&(addr, reg)).copied().ok_or(FakeNack)
    }
}

impl Smbus for FakeSmbus {
    type Error = FakeNack;

    fn write_byte(&mut self, addr: u8, value: u8) -> Result<(), FakeNack> {
        self.record(format!("write_byte {addr:#04x} {value:#04x}"));
        Ok(())
    }

    fn read_byte(&mut self, addr: u8) -> Result<u8, FakeNack> {
        self.record(format!("read_byte {addr:#04x}"));
        Err(FakeNack)
    }

    fn write_byte_data(&mut self, addr: u8, reg: u8, value: u8) -> Result<(), FakeNack> {
        self.record(format!(
            "write_byte_data {addr:#04x} {reg:#04x} {value:#04x}"
        ));
        self.registers.insert((addr, reg), u16::from(value) << 8);
        Ok(())
    }

    fn read_byte_data(&mut self, addr: u8, reg: u8) -> Result<u8, FakeNack> {
        self.record(format!("read_byte_data {addr:#04x} {reg:#04x}"));
        Ok(self.reg(addr, reg)?.to_be_bytes()[0])
    }

    fn write_word_data(&mut self, addr: u8, reg: u8, value: u16) -> Result<(), FakeNack> {
        self.record(format!(
            "write_word_data {addr:#04x} {reg:#04x} {value:#06x}"
        ));
        // Low byte first on the wire = the register's high byte.
        self.registers.insert((addr, reg), value.swap_bytes());
        Ok(())
    }

    fn read_word_data(&mut self, addr: u8, reg: u8) -> Result<u16, FakeNack> {
        self.record(format!("read_word_data {addr:#04x} {reg:#04x}"));
        Ok(self.reg(addr, reg)?.swap_bytes())
    }

    fn read_i2c_block(&mut self, addr: u8, reg: u8, buf: &mut [u8]) -> Result<(), FakeNack> {
        self.record(format!(
            "read_i2c_block {addr:#04x} {reg:#04x} {}",
            buf.len()
        ));
        let w = self.reg(addr, reg)?.to_be_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = w.get(i).copied().unwrap_or(0);
        }
        Ok(())
    }

    fn write_i2c_block(&mut self, addr: u8, reg: u8, data: &[u8]) -> Result<(), FakeNack> {
        self.record(format!(
            "write_i2c_block {addr:#04x} {reg:#04x} {}",
            data.len()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal::i2c::I2c;

    use super::*;

    #[test]
    fn write_then_read_becomes_read_word_data_in_wire_order() {
        let mut fake = FakeSmbus::default();
        fake.registers.insert((0x48, 0x00), 0x1980);
        let mut bus = SmbusI2c::new(fake);
        let mut buf = [0; 2];
        bus.write_read(0x48, &[0x00], &mut buf).unwrap();
        assert_eq!(buf, [0x19, 0x80], "MSB first, as the chip sends it");
        let mut one = [0; 1];
        bus.write_read(0x48, &[0x00], &mut one).unwrap();
        assert_eq!(one, [0x19]);
        assert_eq!(
            bus.into_inner().log(),
            ["read_word_data 0x48 0x00", "read_byte_data 0x48 0x00"]
        );
    }

    #[test]
    fn split_pointer_write_and_read_use_the_remembered_pointer() {
        let mut fake = FakeSmbus::default();
        fake.registers.insert((0x40, 0x02), 0x2580);
        let mut bus = SmbusI2c::new(fake);
        bus.write(0x40, &[0x02]).unwrap();
        let mut buf = [0; 2];
        bus.read(0x40, &mut buf).unwrap();
        assert_eq!(buf, [0x25, 0x80]);
        assert_eq!(
            bus.into_inner().log(),
            ["write_byte 0x40 0x02", "read_word_data 0x40 0x02"]
        );
    }

    #[test]
    fn register_writes_map_to_byte_word_and_block_commands() {
        let mut bus = SmbusI2c::new(FakeSmbus::default());
        bus.write(0x48, &[0x01, 0x60]).unwrap();
        bus.write(0x48, &[0x03, 0x50, 0x00]).unwrap();
        bus.write(0x48, &[0x04, 1, 2, 3, 4]).unwrap();
        let fake = bus.into_inner();
        assert_eq!(
            fake.log(),
            [
                "write_byte_data 0x48 0x01 0x60",
                // [0x50, 0x00] on the wire: low byte 0x50 first.
                "write_word_data 0x48 0x03 0x0050",
                "write_i2c_block 0x48 0x04 4",
            ]
        );
        assert_eq!(
            fake.registers[&(0x48, 0x03)],
            0x5000,
            "T_OS = 80 °C as the chip holds it"
        );
    }

    #[test]
    fn multi_register_transaction_is_split_into_reads() {
        use embedded_hal::i2c::Operation;
        let mut fake = FakeSmbus::default();
        fake.registers.insert((0x40, 0x01), 0x0102);
        fake.registers.insert((0x40, 0x02), 0x0304);
        let mut bus = SmbusI2c::new(fake);
        let (mut a, mut b) = ([0; 2], [0; 2]);
        bus.transaction(
            0x40,
            &mut [
                Operation::Write(&[0x01]),
                Operation::Read(&mut a),
                Operation::Write(&[0x02]),
                Operation::Read(&mut b),
            ],
        )
        .unwrap();
        assert_eq!((a, b), ([1, 2], [3, 4]));
    }

    #[test]
    fn inexpressible_shapes_are_refused_not_guessed() {
        let mut bus = SmbusI2c::new(FakeSmbus::default());
        let mut buf = [0; 2];
        assert!(matches!(
            bus.read(0x48, &mut buf),
            Err(SmbusError::Unsupported(_))
        ));
        assert!(matches!(
            bus.write(0x48, &[]),
            Err(SmbusError::Unsupported(_))
        ));
        assert!(matches!(
            bus.write(0x48, &[0; 40]),
            Err(SmbusError::Unsupported(_))
        ));
        let mut b = [0; 2];
        assert!(matches!(
            bus.write_read(0x49, &[0], &mut b),
            Err(SmbusError::Bus(FakeNack))
        ));
    }
}
