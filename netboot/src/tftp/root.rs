//! Resolving a requested name under a served directory, with no way out of it.
//!
//! Names are split on `/` and `\` (Windows-flavoured PXE clients send the latter);
//! empty and `.` parts are dropped, so `/undionly.kpxe` and `undionly.kpxe` are the
//! same file; any `..` part is refused outright rather than normalised away. The
//! result is canonicalised and must still lie under the canonical root, which
//! refuses symlinks that point outside. Only regular files are served.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

/// Why a name was refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The name contains `..`, NUL, or is empty.
    #[error("Name {0:?} is not allowed")]
    Forbidden(String),
    /// Resolves outside the root (through a symlink).
    #[error("Name {0:?} leads outside the served directory")]
    Escapes(String),
    /// No such file.
    #[error("No file {0:?}")]
    NotFound(String),
    /// Not a regular file.
    #[error("{0:?} is not a regular file")]
    NotAFile(String),
    /// Opening or reading metadata failed.
    #[error("Cannot open {name:?}")]
    Io {
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A directory files are served from.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// Serves `dir`, which must exist.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            dir: dir.canonicalize()?,
        })
    }

    /// The canonical directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path a requested name refers to, checked to stay under the root.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, PathError> {
        let forbidden = || PathError::Forbidden(name.chars().take(200).collect());
        if name.contains('\0') {
            return Err(forbidden());
        }
        let mut path = self.dir.clone();
        let mut parts = 0;
        for part in name.split(['/', '\\']) {
            match part {
                "" | "." => {}
                ".." => return Err(forbidden()),
                p => {
                    path.push(p);
                    parts += 1;
                }
            }
        }
        if parts == 0 {
            return Err(forbidden());
        }
        let real = match path.canonicalize() {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PathError::NotFound(name.to_owned()));
            }
            Err(source) => {
                return Err(PathError::Io {
                    name: name.to_owned(),
                    source,
                });
            }
        };
        if !real.starts_with(&self.dir) {
            return Err(PathError::Escapes(name.to_owned()));
        }
        Ok(real)
    }

    /// Opens a requested name; returns the file and its size.
    pub fn open(&self, name: &str) -> Result<(File, u64), PathError> {
        let path = self.resolve(name)?;
        let io = |source| PathError::Io {
            name: name.to_owned(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(PathError::NotAFile(name.to_owned()));
        }
        Ok((file, meta.len()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn setup() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.efi"), b"a").unwrap();
        std::fs::write(root.join("sub/b"), b"b").unwrap();
        std::fs::write(t.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/b", root.join("in")).unwrap();
        let r = Root::new(&root).unwrap();
        (t, r)
    }

    #[test]
    fn names_resolve_under_the_root() {
        let (_t, r) = setup();
        for ok in ["a.efi", "/a.efi", "./a.efi", "//sub//b", "sub\\b", "in"] {
            let (_, size) = r.open(ok).unwrap();
            assert_eq!(size, 1, "{ok}");
        }
    }

    #[test]
    fn traversal_is_refused() {
        let (_t, r) = setup();
        for bad in [
            "../secret",
            "sub/../../secret",
            "..\\secret",
            "sub/..",
            "",
            "/",
            "a\0b",
        ] {
            assert!(
                matches!(r.resolve(bad), Err(PathError::Forbidden(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(r.resolve("out"), Err(PathError::Escapes(_))));
        assert!(matches!(
            r.resolve("/etc/passwd"),
            Err(PathError::NotFound(_))
        ));
        assert!(matches!(r.open("sub"), Err(PathError::NotAFile(_))));
    }
}
