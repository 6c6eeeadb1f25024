//! Building a boot image: `vmlinuz`, a gzip-compressed cpio `initramfs` with
//! `nodus` as `/init`, and the signed outer [`manifest`].
//!
//! The initramfs holds the `nodus` binary with the shared libraries its ELF
//! header names (and their own, and the dynamic loader), the kernel modules the
//! hardware profiles need in load order ([`modules`]), and a signed
//! [`ContentManifest`] of every entry, which the init checks at boot against the
//! key on the kernel command line before it starts anything ([`content`]).
//!
//! It deliberately holds no shell and no busybox: `nodus` is the only program.
//!
//! The principal types are [`ImageSpec`] (what goes in), [`Tree`] (the archive's
//! entries, before packing) and [`Built`] (what came out).

pub mod content;
pub mod cpio;
pub mod elf;
pub mod modules;

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
};

use nodus_identity::{SecretKey, Statement, statement::purpose};
use sha2::Digest as _;

pub use content::{CONTENT_MANIFEST_PATH, ContentManifest, Entry, EntryKind, MODULE_LIST_PATH};

use crate::manifest::{self, ManifestError};

/// Directories searched for shared libraries, in the loader's default order for
/// x86-64 Debian (multiarch first).
pub const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Where `nodus` sits in the image; `/init` links to it.
pub const NODUS_PATH: &str = "bin/nodus";

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading an input or writing the output failed.
    #[error("Cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The `nodus` binary or a library is not a usable ELF file.
    #[error("Cannot read ELF file {path}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: elf::ElfError,
    },
    /// `strip` failed or is not installed.
    #[error("Cannot strip {0} (is binutils installed?)")]
    Strip(PathBuf),
    /// A needed shared library is not in any library directory.
    #[error("Shared library {0} not found in {LIBRARY_DIRS:?}")]
    LibraryNotFound(String),
    /// Resolving kernel modules failed.
    #[error("Kernel modules")]
    Modules(#[from] modules::ModulesError),
    /// Signing a manifest failed.
    #[error("Signing the manifest")]
    Sign(#[from] nodus_identity::statement::StatementError),
    /// Writing the outer manifest failed.
    #[error("Writing the image manifest")]
    Manifest(#[from] ManifestError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What goes into an image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The kernel (`vmlinuz`).
    pub kernel: PathBuf,
    /// The module directory (`lib/modules/<release>`), if modules are wanted.
    pub modules_dir: Option<PathBuf>,
    /// Module names to include (dependencies are added).
    pub modules: Vec<String>,
    /// The `nodus` binary to run as init.
    pub nodus: PathBuf,
    /// The farm id.
    pub farm: String,
    /// The network (chain id) the signatures are valid on.
    pub network: String,
    /// Strip symbols and debug info from the `nodus` copy (binutils `strip`): a
    /// debug build is mostly DWARF.
    pub strip: bool,
}

/// One entry of the archive, with its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir(u32),
    /// A file: permission bits and contents.
    File(u32, Vec<u8>),
    /// A symbolic link to a target.
    Symlink(String),
    /// A character device: permission bits, major, minor.
    CharDev(u32, u32, u32),
}

/// The archive's entries by path (no leading slash), before packing.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Entries; parents are added as directories automatically.
    pub nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Adds an entry and any missing parent directories.
    pub fn insert(&mut self, path: &str, node: Node) {
        let path = path.trim_start_matches('/');
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.nodes
                .entry(p.to_string_lossy().into_owned())
                .or_insert(Node::Dir(0o755));
            parent = p.parent();
        }
        self.nodes.insert(path.to_owned(), node);
    }

    /// The content manifest of every entry (the manifest itself excluded).
    pub fn content_manifest(&self, farm: &str, kernel_release: &str) -> ContentManifest {
        let entries = self
            .nodes
            .iter()
            .filter(|(p, _)| p.as_str() != CONTENT_MANIFEST_PATH)
            .map(|(path, n)| Entry {
                path: path.clone(),
                kind: match n {
                    Node::Dir(mode) => EntryKind::Dir { mode: *mode },
                    Node::File(mode, data) => EntryKind::File {
                        mode: *mode,
                        size: data.len() as u64,
                        sha256: sha2::Sha256::digest(data).into(),
                    },
                    Node::Symlink(t) => EntryKind::Symlink { target: t.clone() },
                    Node::CharDev(mode, major, minor) => EntryKind::CharDev {
                        mode: *mode,
                        major: *major,
                        minor: *minor,
                    },
                },
            })
            .collect();
        ContentManifest {
            farm: farm.to_owned(),
            kernel_release: kernel_release.to_owned(),
            entries,
        }
    }

    /// Packs the tree as a cpio newc archive (parents before children).
    pub fn to_cpio(&self) -> std::io::Result<Vec<u8>> {
        let mut w = cpio::CpioWriter::new(Vec::new());
        for (path, n) in &self.nodes {
            match n {
                Node::Dir(mode) => w.dir(path, *mode)?,
                Node::File(mode, data) => w.file(path, *mode, data)?,
                Node::Symlink(t) => w.symlink(path, t)?,
                Node::CharDev(mode, major, minor) => w.char_dev(path, *mode, *major, *minor)?,
            }
        }
        w.finish()
    }

    /// Writes the tree under `dir`, as the kernel would unpack it (device nodes are
    /// skipped: tests run unprivileged where they cannot be made).
    pub fn unpack_to(&self, dir: &Path) -> Result<(), ImageError> {
        use std::os::unix::fs::PermissionsExt as _;
        for (path, n) in &self.nodes {
            let p = dir.join(path);
            match n {
                Node::Dir(mode) => {
                    std::fs::create_dir_all(&p).map_err(io(&p))?;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
                        .map_err(io(&p))?;
                }
                Node::File(mode, data) => {
                    std::fs::write(&p, data).map_err(io(&p))?;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
                        .map_err(io(&p))?;
                }
                Node::Symlink(t) => std::os::unix::fs::symlink(t, &p).map_err(io(&p))?,
                Node::CharDev(..) => {}
            }
        }
        Ok(())
    }
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// Size of the compressed initramfs, bytes.
    pub initramfs_bytes: u64,
    /// Size of the uncompressed cpio archive, bytes.
    pub cpio_bytes: u64,
    /// Entries in the archive.
    pub entries: usize,
    /// Shared libraries included (image paths).
    pub libraries: Vec<String>,
    /// Modules included, in load order.
    pub modules: Vec<String>,
    /// Wanted modules that are built into the kernel.
    pub builtin_modules: Vec<String>,
    /// The kernel release of the modules.
    pub kernel_release: String,
}

fn find_library(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| p.exists());
    }
    LIBRARY_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// The dynamic loader and every shared library `exe` needs, transitively, as
/// (image path, host path), in a stable order.
pub fn library_closure(exe: &Path) -> Result<Vec<(String, PathBuf)>, ImageError> {
    let elf_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ImageError::Elf { path, source }
    };
    let data = std::fs::read(exe).map_err(io(exe))?;
    let d = elf::dynamic(&data).map_err(elf_err(exe))?;
    let mut out = BTreeMap::new();
    if let Some(interp) = &d.interpreter {
        out.insert(
            interp.trim_start_matches('/').to_owned(),
            PathBuf::from(interp),
        );
    }
    let mut queue = d.needed;
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let host = find_library(&name).ok_or_else(|| ImageError::LibraryNotFound(name.clone()))?;
        let bytes = std::fs::read(&host).map_err(io(&host))?;
        queue.extend(elf::dynamic(&bytes).map_err(elf_err(&host))?.needed);
        out.insert(
            host.to_string_lossy().trim_start_matches('/').to_owned(),
            host,
        );
    }
    Ok(out.into_iter().collect())
}

/// `exe` without symbols and debug info.
fn stripped(exe: &Path) -> Result<Vec<u8>, ImageError> {
    let dir = std::env::temp_dir().join(format!("nodus-strip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let out = dir.join("nodus");
    let ok = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&out)
        .arg(exe)
        .status()
        .is_ok_and(|s| s.success());
    let data = if ok {
        std::fs::read(&out).map_err(io(&out))
    } else {
        Err(ImageError::Strip(exe.to_owned()))
    };
    let _ = std::fs::remove_dir_all(&dir);
    data
}

/// Assembles the archive's tree (everything but the signed content manifest).
pub fn assemble(spec: &ImageSpec) -> Result<(Tree, Built), ImageError> {
    let mut t = Tree::default();
    for d in [
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "etc/nodus",
        "var/lib/nodus",
    ] {
        t.insert(d, Node::Dir(0o755));
    }
    t.insert("tmp", Node::Dir(0o1777));
    t.insert("root", Node::Dir(0o700));
    // The kernel's own default rootfs holds /dev/console; listing it keeps the
    // verifier's "nothing unlisted" rule true, and gives the init a console before
    // devtmpfs is mounted.
    t.insert("dev/console", Node::CharDev(0o600, 5, 1));
    let nodus = if spec.strip {
        stripped(&spec.nodus)?
    } else {
        std::fs::read(&spec.nodus).map_err(io(&spec.nodus))?
    };
    t.insert(NODUS_PATH, Node::File(0o755, nodus));
    t.insert("init", Node::Symlink(format!("/{NODUS_PATH}")));
    let libs = library_closure(&spec.nodus)?;
    for (image_path, host) in &libs {
        let data = std::fs::read(host).map_err(io(host))?;
        t.insert(image_path, Node::File(0o755, data));
    }
    let mut built = Built {
        initramfs_bytes: 0,
        cpio_bytes: 0,
        entries: 0,
        libraries: libs.into_iter().map(|(p, _)| p).collect(),
        modules: Vec::new(),
        builtin_modules: Vec::new(),
        kernel_release: String::new(),
    };
    let mut list = String::new();
    if let Some(dir) = &spec.modules_dir {
        let release = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = modules::resolve(dir, &spec.modules)?;
        for m in r.load_order {
            let path = format!("lib/modules/{release}/{}", m.rel_path);
            list.push_str(&format!("{} /{path}\n", m.name));
            built.modules.push(m.name);
            t.insert(&path, Node::File(0o644, m.data));
        }
        built.builtin_modules = r.builtin;
        built.kernel_release = release;
    }
    t.insert(MODULE_LIST_PATH, Node::File(0o644, list.into_bytes()));
    Ok((t, built))
}

/// Signs the tree's content manifest with `key` and adds it to the tree.
pub fn seal(
    tree: &mut Tree,
    farm: &str,
    kernel_release: &str,
    key: &SecretKey,
    network: &str,
) -> Result<(), ImageError> {
    let m = tree.content_manifest(farm, kernel_release);
    let signed =
        Statement::new(purpose::BOOT_MANIFEST, network, key.public(), None, m).sign(key)?;
    tree.insert(CONTENT_MANIFEST_PATH, Node::File(0o644, signed.to_bytes()?));
    Ok(())
}

/// Builds the image into `out`: `vmlinuz`, `initramfs` (gzip'd cpio) and the
/// signed `manifest`.
pub fn build(spec: &ImageSpec, key: &SecretKey, out: &Path) -> Result<Built, ImageError> {
    let (mut tree, mut built) = assemble(spec)?;
    seal(
        &mut tree,
        &spec.farm,
        &built.kernel_release,
        key,
        &spec.network,
    )?;
    let cpio = tree.to_cpio().map_err(io(out))?;
    built.cpio_bytes = cpio.len() as u64;
    built.entries = tree.nodes.len();
    std::fs::create_dir_all(out).map_err(io(out))?;
    let initramfs = out.join(manifest::INITRAMFS);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&cpio).map_err(io(&initramfs))?;
    let packed = gz.finish().map_err(io(&initramfs))?;
    built.initramfs_bytes = packed.len() as u64;
    std::fs::write(&initramfs, packed).map_err(io(&initramfs))?;
    let kernel = out.join(manifest::KERNEL);
    std::fs::copy(&spec.kernel, &kernel).map_err(io(&kernel))?;
    let signed = manifest::Manifest::of_dir(out, &spec.farm)?.sign(key, &spec.network)?;
    manifest::write(out, &signed)?;
    Ok(built)
}
