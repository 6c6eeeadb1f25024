//! The NVMe SMART / Health Information log read straight from the controller
//! with an admin Get Log Page command, for hosts without smartctl (the node's
//! boot image carries none).
//!
//! Layout: NVMe Base Specification 2.0, figure 207 ("SMART / Health Information
//! Log Page", log identifier 02h, 512 bytes, little-endian).

use std::{os::fd::AsRawFd as _, path::Path};

use super::{NvmeHealth, NvmeWarnings, Smart, SmartStatus};

/// The log's size in bytes.
pub const LOG_LEN: usize = 512;

/// Log identifier of the SMART / Health Information log.
const LID_SMART: u32 = 0x02;
/// Admin opcode Get Log Page.
const OPCODE_GET_LOG_PAGE: u8 = 0x02;
/// The whole controller, not one namespace.
const NSID_ALL: u32 = 0xFFFF_FFFF;

/// `struct nvme_passthru_cmd` of `<linux/nvme_ioctl.h>`.
#[repr(C)]
#[derive(Debug, Default)]
struct PassthruCmd {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

mod sys {
    //! The ioctl wrapper `nix` generates:
    //! `NVME_IOCTL_ADMIN_CMD = _IOWR('N', 0x41, struct nvme_admin_cmd)`.
    #![allow(missing_docs, unreachable_pub)]
    nix::ioctl_readwrite!(nvme_admin_cmd, b'N', 0x41, super::PassthruCmd);
}

fn le_u64(b: &[u8]) -> Option<u64> {
    // The log's 128-bit counters: the low 64 bits are plenty (2^64 hours).
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

/// Decodes a SMART / Health log into [`Smart`] (status ok, `nvme` filled).
pub fn decode(log: &[u8; LOG_LEN]) -> Smart {
    let cw = log[0];
    let kelvin = u16::from_le_bytes([log[1], log[2]]);
    let mut s = Smart::status(SmartStatus::Ok, "read from the controller's health log");
    s.detail = None;
    s.temperature_celsius = (kelvin > 0).then(|| f64::from(kelvin) - 273.15);
    s.power_on_hours = le_u64(&log[128..144]);
    s.passed = Some(cw == 0);
    s.nvme = Some(NvmeHealth {
        critical_warning: cw,
        critical_warnings: NvmeWarnings(cw).names(),
        available_spare: Some(log[3]),
        available_spare_threshold: Some(log[4]),
        percentage_used: Some(u16::from(log[5])),
        media_errors: le_u64(&log[160..176]),
        unsafe_shutdowns: le_u64(&log[144..160]),
    });
    s
}

/// Reads the log from the NVMe device at `device` (`/dev/nvme0n1` or
/// `/dev/nvme0`). Needs `CAP_SYS_ADMIN`.
pub fn read(device: &Path) -> std::io::Result<[u8; LOG_LEN]> {
    let file = std::fs::File::open(device)?;
    let mut buf = [0u8; LOG_LEN];
    let numd = u32::try_from(LOG_LEN / 4 - 1).unwrap_or(0);
    let mut cmd = PassthruCmd {
        opcode: OPCODE_GET_LOG_PAGE,
        nsid: NSID_ALL,
        addr: buf.as_mut_ptr() as u64,
        data_len: u32::try_from(LOG_LEN).unwrap_or(0),
        cdw10: LID_SMART | ((numd & 0xFFFF) << 16),
        timeout_ms: 5_000,
        ..PassthruCmd::default()
    };
    // SAFETY: `cmd` is a correctly laid out `nvme_passthru_cmd`; `addr` points at
    // `buf`, which is `data_len` bytes long and outlives the call; the kernel
    // writes at most `data_len` bytes there and into `cmd.result`.
    let status =
        unsafe { sys::nvme_admin_cmd(file.as_raw_fd(), &mut cmd) }.map_err(std::io::Error::from)?;
    if status != 0 {
        return Err(std::io::Error::other(format!(
            "Get Log Page failed with NVMe status {status:#x}"
        )));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_warning_temperature_and_counters() {
        let mut log = [0u8; LOG_LEN];
        log[0] = 0b0000_0100; // reliability degraded
        log[1..3].copy_from_slice(&310u16.to_le_bytes()); // 36.85 °C
        log[3] = 90;
        log[4] = 10;
        log[5] = 7;
        log[128..136].copy_from_slice(&1234u64.to_le_bytes());
        log[144..152].copy_from_slice(&5u64.to_le_bytes());
        log[160..168].copy_from_slice(&2u64.to_le_bytes());
        let s = decode(&log);
        assert_eq!(s.status, SmartStatus::Ok);
        assert_eq!(s.passed, Some(false));
        assert!((s.temperature_celsius.unwrap() - 36.85).abs() < 1e-9);
        assert_eq!(s.power_on_hours, Some(1234));
        let n = s.nvme.unwrap();
        assert_eq!(n.critical_warning, 4);
        assert_eq!(n.critical_warnings, vec!["reliability_degraded"]);
        assert_eq!(
            (n.available_spare, n.media_errors, n.unsafe_shutdowns),
            (Some(90), Some(2), Some(5))
        );
    }

    #[test]
    fn a_file_that_is_not_an_nvme_device_is_an_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(read(f.path()).is_err());
    }

    #[test]
    fn passthru_struct_matches_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<PassthruCmd>(), 72);
    }
}
