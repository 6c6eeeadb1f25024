//! DMI (SMBIOS) identity from `sys/class/dmi/id`.
//!
//! The kernel makes the serial numbers and the UUID readable by root only (mode
//! 0400), so an unprivileged run sees the rest and lists those fields in
//! [`Dmi::restricted`] instead of failing.

use serde::Serialize;

use crate::hal::{Gaps, ReadError, SysRoot};

const DMI_DIR: &str = "sys/class/dmi/id";

/// Values vendors leave in SMBIOS fields they did not fill. Reported as absent:
/// a serial of "To Be Filled By O.E.M." identifies nothing and, used as a key,
/// would make unrelated machines collide.
const PLACEHOLDERS: &[&str] = &[
    "to be filled by o.e.m",
    "to be filled by oem",
    "default string",
    "not specified",
    "not applicable",
    "not available",
    "none",
    "n/a",
    "system serial number",
    "system product name",
    "system manufacturer",
    "system version",
    "base board serial number",
    "chassis serial number",
    "0123456789",
    "123456789",
    "0",
    "00000000-0000-0000-0000-000000000000",
    "03000200-0400-0500-0006-000700080009",
];

/// True for an SMBIOS string that carries no information.
pub(crate) fn is_placeholder(s: &str) -> bool {
    let t = s.trim().trim_matches('.').trim();
    t.is_empty()
        || PLACEHOLDERS.contains(&t.to_ascii_lowercase().as_str())
        || t.chars()
            .all(|c| c == 'x' || c == 'X' || c == '0' || c == 'f' || c == 'F')
}

/// DMI identity of the machine. Every field is `null` when absent or a vendor
/// placeholder.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dmi {
    /// System vendor (`sys_vendor`).
    pub vendor: Option<String>,
    /// Product name (`product_name`).
    pub product: Option<String>,
    /// Product version (`product_version`).
    pub product_version: Option<String>,
    /// Product family (`product_family`).
    pub family: Option<String>,
    /// System serial number (`product_serial`, root-only).
    pub serial: Option<String>,
    /// System UUID (`product_uuid`, root-only).
    pub uuid: Option<String>,
    /// Baseboard.
    pub board: Board,
    /// Firmware.
    pub bios: Bios,
    /// Chassis.
    pub chassis: Chassis,
    /// Fields that exist but could not be read without privilege, by JSON path
    /// (e.g. `serial`, `board.serial`).
    pub restricted: Vec<String>,
}

/// Baseboard identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Board {
    /// `board_vendor`.
    pub vendor: Option<String>,
    /// `board_name`.
    pub name: Option<String>,
    /// `board_version`.
    pub version: Option<String>,
    /// `board_serial` (root-only).
    pub serial: Option<String>,
}

/// Firmware identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bios {
    /// `bios_vendor`.
    pub vendor: Option<String>,
    /// `bios_version`.
    pub version: Option<String>,
    /// `bios_date`, as the firmware writes it (usually MM/DD/YYYY).
    pub date: Option<String>,
}

/// Chassis identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Chassis {
    /// `chassis_vendor`.
    pub vendor: Option<String>,
    /// SMBIOS chassis type number (`chassis_type`; 3 desktop, 10 notebook, 17 main
    /// server chassis, 23 rack mount chassis, 1 other …).
    pub kind: Option<u8>,
    /// `chassis_serial` (root-only).
    pub serial: Option<String>,
}

struct Reader<'a> {
    root: &'a SysRoot,
    gaps: &'a mut Gaps,
    restricted: Vec<String>,
}

impl Reader<'_> {
    fn field(&mut self, file: &str, json: &str) -> Option<String> {
        let rel = format!("{DMI_DIR}/{file}");
        match self.root.read_string(&rel) {
            Ok(v) if is_placeholder(&v) => None,
            // Firmware sometimes leaves binary junk; control characters would garble
            // a terminal, so they are dropped and the rest reported as written.
            Ok(v) => Some(v.chars().filter(|c| !c.is_control()).collect()),
            Err(ReadError::PermissionDenied(_)) => {
                self.restricted.push(json.to_owned());
                None
            }
            Err(e) => {
                // An empty file is the firmware leaving the field blank: absent, not
                // a failure to read.
                if !matches!(e, ReadError::NoData(_)) {
                    self.gaps.note::<()>(&format!("dmi {json}"), Err(e));
                }
                None
            }
        }
    }
}

/// Reads the DMI identity under `root`.
pub(super) fn collect(root: &SysRoot, gaps: &mut Gaps) -> Dmi {
    if !root.exists(DMI_DIR) {
        // Machines without SMBIOS (most ARM boards) have no DMI directory at all.
        return Dmi::default();
    }
    let mut r = Reader {
        root,
        gaps,
        restricted: Vec::new(),
    };
    let mut dmi = Dmi {
        vendor: r.field("sys_vendor", "vendor"),
        product: r.field("product_name", "product"),
        product_version: r.field("product_version", "product_version"),
        family: r.field("product_family", "family"),
        serial: r.field("product_serial", "serial"),
        uuid: r.field("product_uuid", "uuid"),
        board: Board {
            vendor: r.field("board_vendor", "board.vendor"),
            name: r.field("board_name", "board.name"),
            version: r.field("board_version", "board.version"),
            serial: r.field("board_serial", "board.serial"),
        },
        bios: Bios {
            vendor: r.field("bios_vendor", "bios.vendor"),
            version: r.field("bios_version", "bios.version"),
            date: r.field("bios_date", "bios.date"),
        },
        chassis: Chassis {
            vendor: r.field("chassis_vendor", "chassis.vendor"),
            kind: None,
            serial: r.field("chassis_serial", "chassis.serial"),
        },
        restricted: Vec::new(),
    };
    if let Some(t) = r.field("chassis_type", "chassis.kind") {
        match t.parse() {
            Ok(k) => dmi.chassis.kind = Some(k),
            Err(_) => r
                .gaps
                .push("dmi chassis.kind", format!("unexpected value {t:?}")),
        }
    }
    dmi.restricted = r.restricted;
    dmi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_absent_values() {
        for p in [
            "To Be Filled By O.E.M.",
            "Default string",
            "  ",
            "0000000",
            "XXXXXXXX",
        ] {
            assert!(is_placeholder(p), "{p}");
        }
        for v in ["7N62AI2", "PowerEdge R6515", ".7N62AI2.GRTCL6944100GP."] {
            assert!(!is_placeholder(v), "{v}");
        }
    }

    #[test]
    fn root_only_fields_are_listed_as_restricted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join(DMI_DIR);
        std::fs::create_dir_all(&id).unwrap();
        std::fs::write(id.join("sys_vendor"), "Acme\n").unwrap();
        std::fs::write(id.join("product_serial"), "S1\n").unwrap();
        std::fs::set_permissions(
            id.join("product_serial"),
            std::fs::Permissions::from_mode(0o400),
        )
        .unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let mut gaps = Gaps::default();
        let dmi = collect(&root, &mut gaps);
        assert_eq!(dmi.vendor.as_deref(), Some("Acme"));
        // Root reads 0400 files; anyone else gets EACCES and the field is restricted.
        let is_root = std::fs::read(id.join("product_serial")).is_ok();
        if is_root {
            assert_eq!(dmi.serial.as_deref(), Some("S1"));
        } else {
            assert_eq!(dmi.restricted, vec!["serial"]);
        }
    }
}
