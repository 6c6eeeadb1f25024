//! Where the guest kernel and its modules come from.
//!
//! In order: `--kernel`/`--modules` on the command line, else `$NODUS_KERNEL_DIR`
//! (an unpacked `linux-image-*` package: `boot/vmlinuz-*`, `lib/modules/*`), else
//! the cache that `nodus qemu fetch-kernel` fills: Debian's current
//! `linux-image-amd64` image, fetched with `apt-get download` into
//! `~/.cache/nodus/kernel/` and unpacked with `dpkg-deb -x`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde::Serialize;

/// The environment variable naming an unpacked kernel package.
pub const KERNEL_DIR_ENV: &str = "NODUS_KERNEL_DIR";

/// A kernel image and its module tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelPaths {
    /// The `vmlinuz`.
    pub kernel: PathBuf,
    /// The module tree (`lib/modules/<version>`).
    pub modules: PathBuf,
}

/// Why no kernel was found or fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A path given does not exist.
    #[error("{what} {path} does not exist")]
    Missing {
        /// Kernel or modules.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The directory holds no unpacked kernel package.
    #[error("No boot/vmlinuz-* with lib/modules/<version> under {0}")]
    NotUnpacked(PathBuf),
    /// None of the sources had a kernel.
    #[error(
        "No kernel: pass --kernel/--modules, set {KERNEL_DIR_ENV}, or run `nodus qemu fetch-kernel`"
    )]
    NoKernel,
    /// The home directory is unknown.
    #[error("Neither $XDG_CACHE_HOME nor $HOME is set")]
    NoCacheDir,
    /// A filesystem operation failed.
    #[error("Cannot use {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A tool (apt-get, apt-cache, dpkg-deb) failed.
    #[error("{tool} failed: {stderr}")]
    Tool {
        /// The command.
        tool: String,
        /// Its standard error.
        stderr: String,
    },
    /// `linux-image-amd64` does not name a versioned image.
    #[error("Cannot resolve linux-image-amd64 to a kernel image package")]
    Unresolved,
}

/// The cache directory: `$XDG_CACHE_HOME/nodus/kernel` or `~/.cache/nodus/kernel`.
pub fn cache_dir() -> Result<PathBuf, KernelError> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or(KernelError::NoCacheDir)?;
    Ok(base.join("nodus").join("kernel"))
}

/// Finds `boot/vmlinuz-<v>` and `lib/modules/<v>` in an unpacked package.
pub fn from_unpacked(root: &Path) -> Result<KernelPaths, KernelError> {
    let boot = root.join("boot");
    let mut kernels: Vec<PathBuf> = std::fs::read_dir(&boot)
        .map_err(|_| KernelError::NotUnpacked(root.to_owned()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    for k in kernels.iter().rev() {
        let name = k.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(version) = name.as_deref().and_then(|n| n.strip_prefix("vmlinuz-")) else {
            continue;
        };
        let modules = root.join("lib/modules").join(version);
        if modules.is_dir() {
            return Ok(KernelPaths {
                kernel: k.clone(),
                modules,
            });
        }
    }
    Err(KernelError::NotUnpacked(root.to_owned()))
}

/// Resolves the kernel from flags, the environment, then the cache.
pub fn locate(kernel: Option<&Path>, modules: Option<&Path>) -> Result<KernelPaths, KernelError> {
    if let Some(k) = kernel {
        if !k.is_file() {
            return Err(KernelError::Missing {
                what: "kernel",
                path: k.to_owned(),
            });
        }
        let modules = match modules {
            Some(m) => m.to_owned(),
            // A kernel from an unpacked tree finds its modules beside it.
            None => {
                let root = k.parent().and_then(Path::parent).unwrap_or(Path::new("/"));
                let v = k
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                root.join("lib/modules")
                    .join(v.strip_prefix("vmlinuz-").unwrap_or(&v))
            }
        };
        if !modules.is_dir() {
            return Err(KernelError::Missing {
                what: "modules directory",
                path: modules,
            });
        }
        return Ok(KernelPaths {
            kernel: k.to_owned(),
            modules,
        });
    }
    if let Some(dir) = std::env::var_os(KERNEL_DIR_ENV).filter(|v| !v.is_empty()) {
        return from_unpacked(Path::new(&dir));
    }
    from_unpacked(&cache_dir()?.join("root")).map_err(|_| KernelError::NoKernel)
}

fn run(cmd: &mut Command) -> Result<String, KernelError> {
    let tool = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| KernelError::Tool {
        tool: tool.clone(),
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(KernelError::Tool {
            tool,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The versioned image package `linux-image-amd64` depends on, from
/// `apt-cache depends` output.
pub fn image_package(depends_output: &str) -> Option<String> {
    depends_output.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends: ")?.trim();
        let rest = dep.strip_prefix("linux-image-")?;
        rest.starts_with(|c: char| c.is_ascii_digit())
            .then(|| dep.to_owned())
    })
}

/// Fills the cache (or `dir`) with Debian's current kernel, unless it already
/// holds one, and returns the paths. Only one `.deb` is ever downloaded into a
/// cache: an existing unpacked tree is reused as is.
pub fn fetch(dir: Option<&Path>) -> Result<KernelPaths, KernelError> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => cache_dir()?,
    };
    let root = dir.join("root");
    if let Ok(k) = from_unpacked(&root) {
        return Ok(k);
    }
    std::fs::create_dir_all(&dir).map_err(|source| KernelError::Io {
        path: dir.clone(),
        source,
    })?;
    let deb = match find_deb(&dir)? {
        Some(deb) => deb,
        None => {
            let mut depends = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
            if depends
                .as_deref()
                .map(image_package)
                .ok()
                .flatten()
                .is_none()
            {
                // A fresh container has no package lists yet.
                run(Command::new("apt-get").args(["update", "-qq"]))?;
                depends = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
            }
            let pkg = image_package(&depends?).ok_or(KernelError::Unresolved)?;
            run(Command::new("apt-get")
                .args(["download", "-qq", &pkg])
                .current_dir(&dir))?;
            find_deb(&dir)?.ok_or(KernelError::Unresolved)?
        }
    };
    let tmp = dir.join("root.partial");
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
    std::fs::rename(&tmp, &root).map_err(|source| KernelError::Io {
        path: root.clone(),
        source,
    })?;
    from_unpacked(&root)
}

fn find_deb(dir: &Path) -> Result<Option<PathBuf>, KernelError> {
    let entries = std::fs::read_dir(dir).map_err(|source| KernelError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut debs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("linux-image-") && n.ends_with(".deb")
            })
        })
        .collect();
    debs.sort();
    Ok(debs.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_versioned_image_from_apt_cache_output() {
        let out =
            "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware\n";
        assert_eq!(
            image_package(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(
            image_package("linux-image-amd64\n  Depends: linux-image-amd64-signed\n"),
            None
        );
    }

    #[test]
    fn unpacked_tree_needs_matching_modules() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("boot")).unwrap();
        std::fs::write(d.path().join("boot/vmlinuz-6.1.0-9-amd64"), b"k").unwrap();
        assert!(matches!(
            from_unpacked(d.path()),
            Err(KernelError::NotUnpacked(_))
        ));
        std::fs::create_dir_all(d.path().join("lib/modules/6.1.0-9-amd64")).unwrap();
        let k = from_unpacked(d.path()).unwrap();
        assert!(k.kernel.ends_with("boot/vmlinuz-6.1.0-9-amd64"));
        assert!(k.modules.ends_with("lib/modules/6.1.0-9-amd64"));
        // --kernel alone finds the modules beside it.
        let k2 = locate(Some(&k.kernel), None).unwrap();
        assert_eq!(k2, k);
        assert!(matches!(
            locate(Some(&d.path().join("nope")), None),
            Err(KernelError::Missing { .. })
        ));
    }
}
