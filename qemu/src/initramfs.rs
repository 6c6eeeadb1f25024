//! Trivial initramfs images: busybox-static as `/init` running a shell script.
//!
//! They are the harness's yardsticks, not node images: the boot floor (the same
//! kernel reaching a trivial `/init`, measured beside the real image) and the
//! guest of the QMP tests. The archive is uncompressed cpio `newc`
//! (`Documentation/driver-api/early-userspace/buffer-format.rst`), which the kernel
//! unpacks without a decompressor.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// The line the floor image prints once `/init` runs.
pub const FLOOR_MARKER: &str = "NODUS-FLOOR-READY";

/// Where busybox-static is looked for (override with `$NODUS_BUSYBOX`).
pub fn busybox_path() -> PathBuf {
    std::env::var_os("NODUS_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"))
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitramfsError {
    /// A source file (busybox, a module) could not be read.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The archive could not be written.
    #[error("Cannot write {path}")]
    Write {
        /// The archive.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A cpio `newc` archive being written.
#[derive(Debug, Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let namesize = name.len() + 1;
        // Header fields are 8 hex digits each; sizes beyond u32 cannot occur in
        // an image of a few MiB.
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            namesize,
            0
        );
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// Adds a directory (`name` without a leading slash).
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    /// Adds a regular file with permission bits `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, (0, 0), data);
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, (major, minor), &[]);
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, (0, 0), target.as_bytes());
    }

    /// Finishes the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        // The kernel reads the initrd in 512-byte blocks; pad like cpio(1) does.
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
}

/// Writes an image whose `/init` is `script` run by busybox `sh`, with `modules`
/// copied to `/m/` in the given order (the script loads them with `insmod`).
pub fn write_busybox_image(
    out: &Path,
    script: &str,
    modules: &[PathBuf],
) -> Result<(), InitramfsError> {
    let bb_path = busybox_path();
    let busybox = std::fs::read(&bb_path).map_err(|source| InitramfsError::Read {
        path: bb_path.clone(),
        source,
    })?;
    let mut c = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "m", "tmp"] {
        c.dir(d);
    }
    // Without /dev/console in the archive, /init starts with no stdin/stdout.
    c.char_dev("dev/console", 5, 1);
    c.file("bin/busybox", 0o755, &busybox);
    c.symlink("bin/sh", "busybox");
    c.file("init", 0o755, format!("#!/bin/sh\n{script}").as_bytes());
    for m in modules {
        let data = std::fs::read(m).map_err(|source| InitramfsError::Read {
            path: m.clone(),
            source,
        })?;
        let name = m
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.file(&format!("m/{name}"), 0o644, &data);
    }
    let bytes = c.finish();
    std::fs::File::create(out)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|source| InitramfsError::Write {
            path: out.to_owned(),
            source,
        })
}

/// The floor: print [`FLOOR_MARKER`] as soon as `/init` runs, then power off.
pub fn write_floor_image(out: &Path) -> Result<(), InitramfsError> {
    write_busybox_image(
        out,
        &format!("/bin/busybox echo {FLOOR_MARKER}\n/bin/busybox poweroff -f\n"),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_terminated() {
        let mut c = Cpio::new();
        c.dir("bin");
        c.file("init", 0o755, b"#!/bin/sh\n");
        c.char_dev("dev/console", 5, 1);
        let bytes = c.finish();
        assert_eq!(bytes.len() % 512, 0);
        assert!(bytes.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&bytes);
        // The first header: ino 1, mode 040755, namesize 4 ("bin\0").
        assert_eq!(&text[6..14], "00000001");
        assert_eq!(&text[14..22], "000041ed");
        assert_eq!(&text[94..102], "00000004");
        // Header (110) + "bin\0" = 114, padded to 116: the next header starts there.
        assert_eq!(&text[116..122], "070701");
        // The device node carries its rdev major/minor.
        let dev = text.find("dev/console").unwrap();
        let hdr = &text[dev - 110..dev];
        assert_eq!(&hdr[78..86], "00000005");
        assert_eq!(&hdr[86..94], "00000001");
        assert!(text.contains("TRAILER!!!"));
    }

    #[test]
    fn roundtrips_through_cpio_when_available() {
        // cpio(1) is installed by the test script; without it this test has
        // nothing to compare against.
        if std::process::Command::new("cpio")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("cpio(1) missing: skipping the cross-check");
            return;
        }
        let mut c = Cpio::new();
        c.dir("etc");
        c.file("etc/hello", 0o644, b"hello world\n");
        c.symlink("etc/link", "hello");
        let bytes = c.finish();
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-idm", "--quiet"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read(dir.path().join("etc/hello")).unwrap(),
            b"hello world\n"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("etc/link")).unwrap(),
            Path::new("hello")
        );
    }
}
