//! `nodus-hw-profiles`: machine descriptions as data.
//!
//! A profile (`profiles/*.toml`, schema in `SCHEMA.md`) describes one machine
//! shape: CPUs and sockets, NUMA, memory, DMI identity, disks on their buses, NICs
//! and their link state, I2C sensor chips, power truth, a fault timeline, and what
//! the agent must report about it. The same file drives three things:
//!
//! - [`render::render`]: a fake `sys/` + `proc/` tree for unit tests that need no
//!   QEMU;
//! - [`qemu_args::machine_args`]: the machine part of a QEMU argv for the harness;
//! - `[expect]`: the checks the harness (and the render tests) run against the
//!   agent's inventory.
//!
//! It deliberately boots nothing itself; `nodus-qemu` does.
//!
//! ```
//! let text = std::fs::read_to_string(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/profiles/office-minipc.toml"
//! ))
//! .unwrap();
//! let profile = nodus_hw_profiles::Profile::from_toml(&text, "office-minipc.toml").unwrap();
//! assert_eq!(profile.raw.machine.memory_mib, 4096);
//! ```

pub mod qemu_args;
pub mod render;
pub mod schema;

pub use schema::{Profile, ProfileError};

/// The directory of the profiles shipped with this crate.
pub fn bundled_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// Loads every `*.toml` in `dir`, sorted by file name.
pub fn load_dir(dir: &std::path::Path) -> Result<Vec<Profile>, ProfileError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ProfileError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Profile::load(p)).collect()
}
