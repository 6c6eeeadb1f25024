//! I2C/SMBus sensor chips read through embedded-hal 1.0 drivers.
