//! `nodus-qemu`: the harness that boots hardware profiles under QEMU.
//!
//! It will start QEMU with software emulation (`accel=tcg`), drive QMP to inject
//! faults (links, disks, power button), read the serial console, and check the
//! agent's view from outside over QUIC, the way a farmer's console sees it.
//!
//! It deliberately is not part of the node image.
