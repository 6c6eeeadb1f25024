//! [`SysRoot`]: the filesystem root that every sysfs and procfs read goes through.
//!
//! `/` on a live host; a directory holding `sys/` and/or `proc/` for a captured
//! machine. Reads never panic: a missing, unreadable or garbled file is a typed
//! [`ReadError`], and collectors record what they could not read as [`Gaps`] so an
//! inventory still completes with everything else.

use std::{
    fmt, io,
    path::{Path, PathBuf},
    str::FromStr,
};

/// Why a root could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootError {
    /// The directory does not exist or is not a directory.
    #[error("Hardware root {0} does not exist or is not a directory")]
    Missing(PathBuf),
}

/// Why one file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file does not exist.
    #[error("{0}: not present")]
    NotFound(String),
    /// The file exists but only a more privileged user may read it.
    #[error("{0}: permission denied")]
    PermissionDenied(String),
    /// The driver has no value right now (ENODATA, EAGAIN, EIO from a sysfs attribute).
    #[error("{0}: no data")]
    NoData(String),
    /// The file was read but its content is not what the kernel ABI promises.
    #[error("{path}: unexpected value {value:?}")]
    Parse {
        /// The file, relative to the root.
        path: String,
        /// What it held, cut to 64 characters.
        value: String,
    },
    /// Any other I/O error.
    #[error("{path}: {message}")]
    Io {
        /// The file, relative to the root.
        path: String,
        /// The OS error text.
        message: String,
    },
}

impl ReadError {
    fn from_io(rel: &str, e: &io::Error) -> Self {
        let path = rel.to_owned();
        match e.kind() {
            io::ErrorKind::NotFound => Self::NotFound(path),
            io::ErrorKind::PermissionDenied => Self::PermissionDenied(path),
            _ => match e.raw_os_error() {
                // ENODATA (61), EAGAIN (11), EIO (5), ENXIO (6): sysfs attributes whose
                // device has no reading right now.
                Some(61 | 11 | 5 | 6) => Self::NoData(path),
                _ => Self::Io {
                    path,
                    message: e.to_string(),
                },
            },
        }
    }

    /// True when the file simply is not there (the feature is absent), as opposed to
    /// present but unreadable.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

/// One thing a collector could not read, kept so the report can say so.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// What was being read, e.g. `disk sda serial` or a path relative to the root.
    pub what: String,
    /// Why it could not be read.
    pub reason: String,
}

/// What an inventory pass could not read. Collected, never fatal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Gaps(pub Vec<Gap>);

impl Gaps {
    /// Records a gap.
    pub fn push(&mut self, what: impl Into<String>, reason: impl fmt::Display) {
        self.0.push(Gap {
            what: what.into(),
            reason: reason.to_string(),
        });
    }

    /// Records `err` unless it only says the file is absent, and returns the value.
    pub fn note<T>(&mut self, what: &str, r: Result<T, ReadError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                self.push(what, e);
                None
            }
        }
    }
}

/// Largest file [`SysRoot::read_bytes`] accepts (a 256-CPU `/proc/cpuinfo` is
/// about 0.4 MiB).
const MAX_FILE: usize = 16 << 20;

/// The root under which `sys/` and `proc/` (and `dev/` for block-device reads) live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    base: PathBuf,
    /// `base` with symlinks resolved, computed once: [`Self::resolve`] strips it
    /// from every answer.
    canon: PathBuf,
}

impl SysRoot {
    /// The live host: `/`.
    pub fn host() -> Self {
        Self {
            base: PathBuf::from("/"),
            canon: PathBuf::from("/"),
        }
    }

    /// A captured machine at `dir`. `dir/sys` and `dir/proc` may each be missing.
    pub fn at(dir: impl Into<PathBuf>) -> Result<Self, RootError> {
        let base = dir.into();
        if !base.is_dir() {
            return Err(RootError::Missing(base));
        }
        let canon = std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone());
        Ok(Self { base, canon })
    }

    /// True for the live host, where devices and netlink are real.
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    /// The root directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Absolute path of `rel` (e.g. `sys/class/hwmon`) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel.trim_start_matches('/'))
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Reads a whole file as UTF-8 (lossy), without trimming.
    ///
    /// Only regular files are read: a FIFO or socket planted in a captured tree would
    /// otherwise block the whole inventory forever, so it is opened non-blocking and
    /// refused, and a directory gives an I/O error instead of a panic.
    pub fn read_raw(&self, rel: &str) -> Result<String, ReadError> {
        self.read_bytes(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Reads a whole file as bytes (binary attributes such as `vpd_pg80`), with the
    /// same regular-file rule as [`Self::read_raw`].
    pub fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, ReadError> {
        use std::{io::Read, os::unix::fs::OpenOptionsExt};
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(self.path(rel))
            .map_err(|e| ReadError::from_io(rel, &e))?;
        let not_regular = || ReadError::Io {
            path: rel.to_owned(),
            message: "not a regular file".to_owned(),
        };
        // Sysfs attributes fit in one page and arrive in one read; a plain loop
        // avoids the extra size-hint syscalls of `read_to_end` (this runs a few
        // thousand times per inventory). The file type is only checked when the
        // first read gives nothing or fails, which is where a FIFO (no writer: end
        // of file at once) or a directory (EISDIR) shows; a character device that
        // never ends is cut off at the cap.
        let mut b = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut first = true;
        // sysfs hands over a whole attribute (at most a page) in one read, so a
        // short first read there is the end of the file: one syscall saved per
        // attribute, a few thousand per inventory. procfs (seq_file) may return
        // less than asked before its end, so it is read to EOF.
        let one_read = rel.starts_with("sys/");
        loop {
            let r = file.read(&mut chunk);
            if first && !matches!(r, Ok(n) if n > 0) && file.metadata().is_ok_and(|m| !m.is_file())
            {
                return Err(not_regular());
            }
            first = false;
            match r {
                Ok(0) => break,
                Ok(n) => {
                    b.extend_from_slice(&chunk[..n]);
                    if one_read && n < chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::from_io(rel, &e)),
            }
            if b.len() > MAX_FILE {
                return Err(ReadError::Io {
                    path: rel.to_owned(),
                    message: format!("larger than {MAX_FILE} bytes"),
                });
            }
        }
        Ok(b)
    }

    /// Reads a sysfs attribute: trimmed, and an empty file counts as no data.
    pub fn read_string(&self, rel: &str) -> Result<String, ReadError> {
        let s = self.read_raw(rel)?;
        let t = s.trim();
        if t.is_empty() {
            return Err(ReadError::NoData(rel.to_owned()));
        }
        Ok(t.to_owned())
    }

    /// Reads and parses a sysfs attribute.
    pub fn read_parse<T: FromStr>(&self, rel: &str) -> Result<T, ReadError> {
        let s = self.read_string(rel)?;
        s.parse().map_err(|_| ReadError::Parse {
            path: rel.to_owned(),
            value: s.chars().take(64).collect(),
        })
    }

    /// Names in directory `rel`, sorted so output is stable.
    pub fn list(&self, rel: &str) -> Result<Vec<String>, ReadError> {
        let rd = std::fs::read_dir(self.path(rel)).map_err(|e| ReadError::from_io(rel, &e))?;
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Resolves symlinks in `rel` and returns the result relative to the root (e.g.
    /// `sys/devices/pci0000:00/...`), so the answer is the same for a fixture tree
    /// as for the host. Links that point outside the root are refused.
    pub fn resolve(&self, rel: &str) -> Result<String, ReadError> {
        let real =
            std::fs::canonicalize(self.path(rel)).map_err(|e| ReadError::from_io(rel, &e))?;
        real.strip_prefix(&self.canon)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|_| ReadError::Parse {
                path: rel.to_owned(),
                value: real.to_string_lossy().chars().take(64).collect(),
            })
    }

    /// Reads up to `buf.len()` bytes of file `rel` starting at byte `offset` (a
    /// block device under `dev/`, for signature detection) and returns how many were
    /// read; fewer than asked only at the end of the file. Opened read-only, so the
    /// kernel never sees a write; on a fixture root `dev/` is usually absent, which is
    /// [`ReadError::NotFound`].
    pub fn read_at(&self, rel: &str, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let file = self.open_read(rel)?;
        read_full_at(&file, rel, offset, buf)
    }

    /// Opens `rel` read-only (a block device under `dev/`), for several
    /// [`read_full_at`] calls on one descriptor.
    pub fn open_read(&self, rel: &str) -> Result<std::fs::File, ReadError> {
        std::fs::File::open(self.path(rel)).map_err(|e| ReadError::from_io(rel, &e))
    }
}

/// Reads up to `buf.len()` bytes of `file` (opened as `rel`) at `offset`; fewer only
/// at the end of the file.
pub fn read_full_at(
    file: &std::fs::File,
    rel: &str,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, ReadError> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::from_io(rel, &e)),
        }
    }
    Ok(done)
}

impl SysRoot {
    /// The target of the symlink `rel` as written (e.g. `../devices/pci0000:00/…`),
    /// with leading `../` removed: one `readlink`, where [`Self::resolve`] needs one
    /// per path component. Enough to see which buses a device hangs off.
    pub fn link_text(&self, rel: &str) -> Result<String, ReadError> {
        let target = std::fs::read_link(self.path(rel)).map_err(|e| ReadError::from_io(rel, &e))?;
        let t = target.to_string_lossy();
        let mut t: &str = &t;
        while let Some(rest) = t.strip_prefix("../") {
            t = rest;
        }
        Ok(t.to_owned())
    }

    /// The last path component of the symlink `rel` points to (e.g. a driver name
    /// from `device/driver`).
    pub fn link_name(&self, rel: &str) -> Result<String, ReadError> {
        let target = std::fs::read_link(self.path(rel)).map_err(|e| ReadError::from_io(rel, &e))?;
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| ReadError::Parse {
                path: rel.to_owned(),
                value: target.to_string_lossy().chars().take(64).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_root_is_a_clear_error() {
        let err = SysRoot::at("/definitely/not/here").unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"));
    }

    #[test]
    fn reads_trim_parse_and_classify_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/a")).unwrap();
        std::fs::write(dir.path().join("sys/a/n"), "42\n").unwrap();
        std::fs::write(dir.path().join("sys/a/bad"), "forty\n").unwrap();
        std::fs::write(dir.path().join("sys/a/empty"), "\n").unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        assert_eq!(root.read_parse::<u64>("sys/a/n"), Ok(42));
        assert!(matches!(
            root.read_parse::<u64>("sys/a/bad"),
            Err(ReadError::Parse { .. })
        ));
        assert!(matches!(
            root.read_string("sys/a/empty"),
            Err(ReadError::NoData(_))
        ));
        assert!(root.read_string("sys/a/none").unwrap_err().is_not_found());
        assert_eq!(root.list("sys/a").unwrap(), vec!["bad", "empty", "n"]);
    }
}
