//! The Linux i2c-dev backends: `/dev/i2c-N` with combined transfers
//! (`linux_embedded_hal::I2cdev`, `I2C_RDWR`) or with SMBus commands
//! (`i2cdev`'s `I2C_SMBUS` ioctls) under [`SmbusI2c`].

use i2cdev::{
    core::I2CDevice,
    linux::{LinuxI2CDevice, LinuxI2CError},
};

use super::smbus::{Smbus, SmbusI2c};

/// SMBus commands on `/dev/i2c-N`. The i2c-dev file is bound to one slave address
/// at a time (`I2C_SLAVE`); it is re-bound when a call names another one.
#[derive(Debug)]
pub struct LinuxSmbus {
    dev: LinuxI2CDevice,
    address: u16,
}

impl LinuxSmbus {
    /// Opens `/dev/i2c-<bus>`.
    pub fn open(bus: u32, first_address: u8) -> Result<Self, LinuxI2CError> {
        let address = u16::from(first_address);
        // `new` (I2C_SLAVE, not I2C_SLAVE_FORCE) fails with EBUSY when a kernel
        // driver owns the address: that chip belongs to hwmon, not to us.
        let dev = LinuxI2CDevice::new(format!("/dev/i2c-{bus}"), address)?;
        Ok(Self { dev, address })
    }

    fn at(&mut self, addr: u8) -> Result<&mut LinuxI2CDevice, LinuxI2CError> {
        if self.address != u16::from(addr) {
            self.dev.set_slave_address(u16::from(addr))?;
            self.address = u16::from(addr);
        }
        Ok(&mut self.dev)
    }
}

impl Smbus for LinuxSmbus {
    type Error = LinuxI2CError;

    fn write_byte(&mut self, addr: u8, value: u8) -> Result<(), Self::Error> {
        self.at(addr)?.smbus_write_byte(value)
    }

    fn read_byte(&mut self, addr: u8) -> Result<u8, Self::Error> {
        self.at(addr)?.smbus_read_byte()
    }

    fn write_byte_data(&mut self, addr: u8, reg: u8, value: u8) -> Result<(), Self::Error> {
        self.at(addr)?.smbus_write_byte_data(reg, value)
    }

    fn read_byte_data(&mut self, addr: u8, reg: u8) -> Result<u8, Self::Error> {
        self.at(addr)?.smbus_read_byte_data(reg)
    }

    fn write_word_data(&mut self, addr: u8, reg: u8, value: u16) -> Result<(), Self::Error> {
        self.at(addr)?.smbus_write_word_data(reg, value)
    }

    fn read_word_data(&mut self, addr: u8, reg: u8) -> Result<u16, Self::Error> {
        self.at(addr)?.smbus_read_word_data(reg)
    }

    fn read_i2c_block(&mut self, addr: u8, reg: u8, buf: &mut [u8]) -> Result<(), Self::Error> {
        // The caller (SmbusI2c) keeps `buf` within the 32-byte SMBus limit.
        let len = u8::try_from(buf.len()).unwrap_or(u8::MAX);
        let data = self.at(addr)?.smbus_read_i2c_block_data(reg, len)?;
        for (b, d) in buf.iter_mut().zip(data.iter().chain(std::iter::repeat(&0))) {
            *b = *d;
        }
        Ok(())
    }

    fn write_i2c_block(&mut self, addr: u8, reg: u8, data: &[u8]) -> Result<(), Self::Error> {
        self.at(addr)?.smbus_write_i2c_block_data(reg, data)
    }
}

/// An opened bus, in the transfer mode the board configuration chose. The one
/// place where the I2C backend is selected.
pub enum LinuxBus {
    /// Combined I2C transfers.
    I2c(linux_embedded_hal::I2cdev),
    /// SMBus commands (boxed: the adapter carries a pointer per address).
    Smbus(Box<SmbusI2c<LinuxSmbus>>),
}

/// Opens `/dev/i2c-<bus>` for `transfer`.
pub fn open(
    bus: u32,
    first_address: u8,
    transfer: super::Transfer,
) -> Result<LinuxBus, LinuxI2CError> {
    Ok(match transfer {
        super::Transfer::I2c => {
            LinuxBus::I2c(linux_embedded_hal::I2cdev::new(format!("/dev/i2c-{bus}"))?)
        }
        super::Transfer::Smbus => LinuxBus::Smbus(Box::new(SmbusI2c::new(LinuxSmbus::open(
            bus,
            first_address,
        )?))),
    })
}

impl std::fmt::Debug for LinuxBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::I2c(_) => f.write_str("LinuxBus::I2c"),
            Self::Smbus(b) => f.debug_tuple("LinuxBus::Smbus").field(b).finish(),
        }
    }
}
