//! Kernel modules for the image: the wanted names, closed over their dependencies
//! and put in load order.
//!
//! Dependencies come from `modules.dep` when the module tree has one (what
//! `depmod` writes), else from each module's own `.modinfo` `depends=` (the same
//! facts depmod reads; an unpacked `linux-image` package ships no modules.dep).
//! Modules compressed as `.ko.xz`, `.ko.zst` or `.ko.gz` are decompressed here:
//! the init then loads plain ELF with `finit_module`, which works whether or not
//! the kernel was built with `CONFIG_MODULE_DECOMPRESS`.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Read as _,
    path::{Path, PathBuf},
};

use super::elf;

/// Modules the hardware profiles need: disks (SATA/AHCI, SCSI disks, NVMe,
/// virtio), NICs (virtio-net, e1000e), the I2C sensor stack (i2c-stub, lm75,
/// i2c-dev) and the power button (ACPI button, evdev).
///
/// The init loads them in this order (each after its dependencies), so the NIC
/// drivers come first: a link needs a second or more after its driver probes
/// (e1000e's emulated autonegotiation takes about 3 s under QEMU), and that wait
/// then overlaps loading everything else instead of following it. e1000e comes
/// before virtio: a virtio NIC has carrier the moment it is up, so it needs no
/// head start, while every module loaded before e1000e delays its negotiation.
pub const DEFAULT_MODULES: &[&str] = &[
    "e1000e",
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    "nvme",
    "ahci",
    "sd_mod",
    "i2c_dev",
    "i2c_stub",
    "lm75",
    "button",
    "evdev",
];

/// Why modules could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    /// Reading the module tree failed.
    #[error("Cannot read {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A wanted module (or a dependency) is neither a file nor built in.
    #[error("Kernel module {0} is neither in the module tree nor built in")]
    NotFound(String),
    /// A module file is not a kernel module.
    #[error("Kernel module {path} is not a valid ELF object")]
    Elf {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: elf::ElfError,
    },
    /// A compressed module did not decompress.
    #[error("Cannot decompress kernel module {0}")]
    Decompress(PathBuf),
    /// The dependencies form a cycle.
    #[error("Kernel module dependency cycle through {0}")]
    Cycle(String),
}

/// One module to put in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Normalized name (`_` for `-`), as the kernel names it.
    pub name: String,
    /// Path under the module directory, without a compression suffix
    /// (`kernel/drivers/net/virtio_net.ko`).
    pub rel_path: String,
    /// The uncompressed ELF object.
    pub data: Vec<u8>,
}

/// The outcome of resolving the wanted modules.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Modules in load order: every module after its dependencies.
    pub load_order: Vec<Module>,
    /// Wanted or needed modules that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
}

/// A module name as the kernel compares them.
pub fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModulesError + '_ {
    move |source| ModulesError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Strips `.ko[.xz|.zst|.gz]`, returning the stem and the compression suffix.
fn split_module_name(file: &str) -> Option<(&str, &str)> {
    for suffix in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] {
        if let Some(stem) = file.strip_suffix(suffix) {
            return Some((stem, &suffix[3..]));
        }
    }
    None
}

fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) -> Result<(), ModulesError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            walk(&path, base, out)?;
        } else if let Some(file) = path.file_name().and_then(|n| n.to_str())
            && let Some((stem, _)) = split_module_name(file)
            && let Ok(rel) = path.strip_prefix(base)
        {
            out.insert(normalize(stem), rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

fn builtin_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let file = l.rsplit('/').next()?;
            split_module_name(file).map(|(stem, _)| normalize(stem))
        })
        .collect()
}

/// `modules.dep` as name → dependency names, if the tree has one.
fn modules_dep(dir: &Path) -> Option<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(dir.join("modules.dep")).ok()?;
    let name_of = |p: &str| {
        let file = p.rsplit('/').next()?;
        split_module_name(file).map(|(s, _)| normalize(s))
    };
    Some(
        text.lines()
            .filter_map(|l| {
                let (m, deps) = l.split_once(':')?;
                Some((
                    name_of(m.trim())?,
                    deps.split_whitespace().filter_map(name_of).collect(),
                ))
            })
            .collect(),
    )
}

fn read_module(path: &Path) -> Result<Vec<u8>, ModulesError> {
    let raw = std::fs::read(path).map_err(io(path))?;
    let name = path.to_string_lossy();
    let bad = || ModulesError::Decompress(path.to_owned());
    let mut out = Vec::new();
    if name.ends_with(".xz") {
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out).map_err(|_| bad())?;
    } else if name.ends_with(".zst") {
        ruzstd::decoding::StreamingDecoder::new(raw.as_slice())
            .map_err(|_| bad())?
            .read_to_end(&mut out)
            .map_err(|_| bad())?;
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|_| bad())?;
    } else {
        out = raw;
    }
    Ok(out)
}

/// The state of one resolution: what is known, and what is placed so far.
struct Resolver<'a> {
    dir: &'a Path,
    index: BTreeMap<String, String>,
    builtin: BTreeSet<String>,
    dep_file: Option<BTreeMap<String, Vec<String>>>,
    placed: BTreeSet<String>,
    visiting: BTreeSet<String>,
    out: Resolved,
}

impl Resolver<'_> {
    fn deps(&self, name: &str, path: &Path, data: &[u8]) -> Result<Vec<String>, ModulesError> {
        if let Some(d) = self.dep_file.as_ref().and_then(|d| d.get(name)) {
            return Ok(d.clone());
        }
        let info = elf::modinfo(data).map_err(|source| ModulesError::Elf {
            path: path.to_owned(),
            source,
        })?;
        Ok(info
            .into_iter()
            .filter(|(k, _)| k == "depends")
            .flat_map(|(_, v)| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(normalize)
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Places `name` after its dependencies (depth-first, post-order).
    fn visit(&mut self, name: &str) -> Result<(), ModulesError> {
        if self.placed.contains(name) {
            return Ok(());
        }
        let Some(rel) = self.index.get(name).cloned() else {
            if self.builtin.contains(name) {
                self.placed.insert(name.to_owned());
                self.out.builtin.push(name.to_owned());
                return Ok(());
            }
            return Err(ModulesError::NotFound(name.to_owned()));
        };
        if !self.visiting.insert(name.to_owned()) {
            return Err(ModulesError::Cycle(name.to_owned()));
        }
        let path = self.dir.join(&rel);
        let data = read_module(&path)?;
        for d in self.deps(name, &path, &data)? {
            self.visit(&d)?;
        }
        self.visiting.remove(name);
        self.placed.insert(name.to_owned());
        let rel_path = split_module_name(&rel)
            .map(|(stem, _)| format!("{stem}.ko"))
            .unwrap_or(rel);
        self.out.load_order.push(Module {
            name: name.to_owned(),
            rel_path,
            data,
        });
        Ok(())
    }
}

/// Resolves `wanted` (names, `-` or `_`) in the module directory `dir`
/// (`lib/modules/<version>`).
pub fn resolve(dir: &Path, wanted: &[String]) -> Result<Resolved, ModulesError> {
    let mut index = BTreeMap::new();
    walk(dir, dir, &mut index)?;
    let mut r = Resolver {
        dir,
        index,
        builtin: builtin_names(dir),
        dep_file: modules_dep(dir),
        placed: BTreeSet::new(),
        visiting: BTreeSet::new(),
        out: Resolved::default(),
    };
    for w in wanted {
        let name = normalize(w);
        if !name.is_empty() {
            r.visit(&name)?;
        }
    }
    Ok(r.out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn module_names_normalize_and_split() {
        assert_eq!(normalize("i2c-stub"), "i2c_stub");
        assert_eq!(split_module_name("a-b.ko.zst"), Some(("a-b", ".zst")));
        assert_eq!(split_module_name("a.ko"), Some(("a", "")));
        assert_eq!(split_module_name("a.txt"), None);
    }

    #[test]
    fn modules_dep_orders_dependencies_first_and_skips_builtins() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("kernel/x");
        std::fs::create_dir_all(&k).unwrap();
        for m in ["a.ko", "b.ko", "c-d.ko"] {
            std::fs::write(k.join(m), b"not parsed: modules.dep says it all").unwrap();
        }
        std::fs::write(
            d.path().join("modules.dep"),
            "kernel/x/a.ko: kernel/x/b.ko kernel/x/c-d.ko\nkernel/x/b.ko: kernel/x/c-d.ko\nkernel/x/c-d.ko:\n",
        )
        .unwrap();
        std::fs::write(d.path().join("modules.builtin"), "kernel/y/e.ko\n").unwrap();
        let r = resolve(d.path(), &["a".into(), "e".into(), "c-d".into()]).unwrap();
        let names: Vec<_> = r.load_order.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["c_d", "b", "a"]);
        assert_eq!(r.builtin, ["e"]);
        assert!(matches!(
            resolve(d.path(), &["nope".into()]),
            Err(ModulesError::NotFound(n)) if n == "nope"
        ));
    }

    #[test]
    fn a_dependency_cycle_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("kernel")).unwrap();
        std::fs::write(d.path().join("kernel/a.ko"), b"").unwrap();
        std::fs::write(d.path().join("kernel/b.ko"), b"").unwrap();
        std::fs::write(
            d.path().join("modules.dep"),
            "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n",
        )
        .unwrap();
        assert!(matches!(
            resolve(d.path(), &["a".into()]),
            Err(ModulesError::Cycle(_))
        ));
    }
}
