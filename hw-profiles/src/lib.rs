//! `nodus-hw-profiles`: machine descriptions as data.
//!
//! It will hold the profile schema (`profiles/*.toml`: CPUs, memory, disks, NICs,
//! DMI, I2C sensors, power truth, fault timelines and expectations), a renderer into
//! fake sysfs trees for unit tests, and QEMU argument generation for the harness.
//!
//! It deliberately boots nothing itself; `nodus-qemu` does.
