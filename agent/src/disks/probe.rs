//! The seek probe: random small reads across a block device, classified by their
//! median latency. A rotating disk needs a seek plus on average half a revolution
//! for each (several milliseconds); flash answers in tens to hundreds of
//! microseconds. Managed mode only: it costs about a second of disk time and, on
//! an HDD, noise.
//!
//! The device sits behind [`SeekDevice`] so the classifier is tested with a fake
//! whose latencies are given; [`DirectDevice`] is the real one (`O_DIRECT`, so the
//! page cache cannot answer for the disk).

use std::{
    fs::File,
    io,
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::Path,
    time::{Duration, Instant},
};

use super::classify::DiskKind;

/// Bytes per probe read: one 4 KiB page, the smallest O_DIRECT read every
/// 512e/4Kn disk accepts.
pub const READ_LEN: usize = 4096;
/// Reads per probe. 64 random reads take ≈0.5 s on a 7200 rpm disk and give a
/// median that one slow outlier cannot move.
pub const SAMPLES: u32 = 64;
/// A median at or below this is flash. Consumer SATA SSDs read 4 KiB in
/// 0.05–0.3 ms; even a busy one stays under 1 ms.
pub const SSD_MAX: Duration = Duration::from_millis(1);
/// A median at or above this is a rotating disk: a 15k rpm disk has 2 ms average
/// rotational latency before any seek.
pub const HDD_MIN: Duration = Duration::from_micros(2500);

/// A device that can be read at an offset, timing each read.
pub trait SeekDevice {
    /// Size in bytes.
    fn len_bytes(&self) -> u64;
    /// Reads `READ_LEN` bytes at `offset` (a multiple of `READ_LEN`) and returns
    /// how long the read took.
    fn timed_read(&mut self, offset: u64) -> io::Result<Duration>;
}

/// A real block device (or file) opened with `O_DIRECT`.
#[derive(Debug)]
pub struct DirectDevice {
    file: File,
    len: u64,
    buf: Vec<u8>,
    start: usize,
}

impl DirectDevice {
    /// Opens `path` read-only with `O_DIRECT`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
            .open(path)?;
        // Seeking to the end gives a block device's size as well as a file's.
        let len = {
            use std::io::Seek;
            let mut f = &file;
            f.seek(io::SeekFrom::End(0))?
        };
        // O_DIRECT needs a buffer aligned to the logical block size; over-allocate
        // and read into the 4 KiB-aligned window.
        let buf = vec![0u8; READ_LEN * 2];
        let start = (READ_LEN - (buf.as_ptr() as usize % READ_LEN)) % READ_LEN;
        Ok(Self {
            file,
            len,
            buf,
            start,
        })
    }
}

impl SeekDevice for DirectDevice {
    fn len_bytes(&self) -> u64 {
        self.len
    }

    fn timed_read(&mut self, offset: u64) -> io::Result<Duration> {
        let window = &mut self.buf[self.start..self.start + READ_LEN];
        let t = Instant::now();
        let n = self.file.read_at(window, offset)?;
        let took = t.elapsed();
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end of device",
            ));
        }
        Ok(took)
    }
}

/// What the probe measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// `ssd`, `hdd`, or `unknown` when the median falls between the thresholds.
    pub kind: DiskKind,
    /// Median read latency.
    pub median: Duration,
    /// Reads made.
    pub samples: u32,
}

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The device is smaller than a few reads' span.
    #[error("Device too small to probe ({0} bytes)")]
    TooSmall(u64),
    /// A read failed.
    #[error("Probe read failed")]
    Read(#[source] io::Error),
}

/// A small deterministic generator (xorshift64*): the offsets only need to be
/// spread, not secret, and a fixed seed makes the probe reproducible.
struct Offsets(u64);

impl Offsets {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Probes `dev` with [`SAMPLES`] random reads and classifies it.
pub fn probe(dev: &mut dyn SeekDevice) -> Result<ProbeResult, ProbeError> {
    let blocks = dev.len_bytes() / READ_LEN as u64;
    if blocks < 16 {
        return Err(ProbeError::TooSmall(dev.len_bytes()));
    }
    let mut rng = Offsets(0x9E37_79B9_7F4A_7C15);
    let mut lat = Vec::with_capacity(SAMPLES as usize);
    // The first read may pay for spin-up or a controller wake; do not count it.
    dev.timed_read(0).map_err(ProbeError::Read)?;
    for _ in 0..SAMPLES {
        let block = rng.next() % blocks;
        lat.push(
            dev.timed_read(block * READ_LEN as u64)
                .map_err(ProbeError::Read)?,
        );
    }
    lat.sort();
    let median = lat[lat.len() / 2];
    let kind = if median <= SSD_MAX {
        DiskKind::Ssd
    } else if median >= HDD_MIN {
        DiskKind::Hdd
    } else {
        DiskKind::Unknown
    };
    Ok(ProbeResult {
        kind,
        median,
        samples: SAMPLES,
    })
}

/// A fake device whose read latency is a function of the seek distance, for tests
/// of everything that uses the probe.
pub struct FakeDevice {
    /// Size in bytes.
    pub len: u64,
    /// Latency of a read given the previous and the new offset.
    pub latency: Box<dyn FnMut(u64, u64) -> Duration + Send>,
    /// Offsets read so far.
    pub reads: Vec<u64>,
}

impl std::fmt::Debug for FakeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDevice")
            .field("len", &self.len)
            .field("reads", &self.reads.len())
            .finish()
    }
}

impl FakeDevice {
    /// Flash: every read takes `us` microseconds.
    pub fn flash(len: u64, us: u64) -> Self {
        Self {
            len,
            latency: Box::new(move |_, _| Duration::from_micros(us)),
            reads: Vec::new(),
        }
    }

    /// A 7200 rpm disk: 4.17 ms average rotational latency plus a seek that grows
    /// with the square root of the distance (0.5–8 ms full stroke).
    pub fn spinning(len: u64) -> Self {
        Self {
            len,
            latency: Box::new(move |from, to| {
                let frac = from.abs_diff(to) as f64 / len as f64;
                Duration::from_micros(4170 + (500.0 + 7500.0 * frac.sqrt()) as u64)
            }),
            reads: Vec::new(),
        }
    }
}

impl SeekDevice for FakeDevice {
    fn len_bytes(&self) -> u64 {
        self.len
    }

    fn timed_read(&mut self, offset: u64) -> io::Result<Duration> {
        if offset + READ_LEN as u64 > self.len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past end"));
        }
        let prev = self.reads.last().copied().unwrap_or(0);
        self.reads.push(offset);
        Ok((self.latency)(prev, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TB: u64 = 1 << 40;

    #[test]
    fn flash_is_ssd_and_spinning_is_hdd() {
        let r = probe(&mut FakeDevice::flash(TB, 120)).unwrap();
        assert_eq!(
            (r.kind, r.median),
            (DiskKind::Ssd, Duration::from_micros(120))
        );
        let r = probe(&mut FakeDevice::spinning(4 * TB)).unwrap();
        assert_eq!(r.kind, DiskKind::Hdd, "{r:?}");
    }

    #[test]
    fn in_between_is_unknown_and_reads_are_aligned_and_spread() {
        let mut dev = FakeDevice::flash(TB, 1500);
        assert_eq!(probe(&mut dev).unwrap().kind, DiskKind::Unknown);
        assert_eq!(dev.reads.len(), SAMPLES as usize + 1);
        assert!(
            dev.reads
                .iter()
                .all(|o| o % READ_LEN as u64 == 0 && *o < TB)
        );
        // Spread: reads land in both halves of the disk.
        assert!(
            dev.reads.iter().any(|&o| o > TB / 2) && dev.reads.iter().any(|&o| o > 0 && o < TB / 2)
        );
    }

    #[test]
    fn tiny_device_and_failing_reads_are_errors() {
        assert!(matches!(
            probe(&mut FakeDevice::flash(8192, 10)),
            Err(ProbeError::TooSmall(8192))
        ));
        struct Broken;
        impl SeekDevice for Broken {
            fn len_bytes(&self) -> u64 {
                TB
            }
            fn timed_read(&mut self, _: u64) -> io::Result<Duration> {
                Err(io::Error::other("EIO"))
            }
        }
        assert!(matches!(probe(&mut Broken), Err(ProbeError::Read(_))));
    }

    /// The real device on a real file (not tmpfs, which refuses O_DIRECT): the
    /// probe completes and every read went to the disk. No timing is asserted.
    #[test]
    fn direct_device_probes_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        std::fs::write(&path, vec![7u8; 16 << 20]).unwrap();
        let mut dev = match DirectDevice::open(&path) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(22) => {
                eprintln!("O_DIRECT not supported on this file system; skipped");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(dev.len_bytes(), 16 << 20);
        let r = probe(&mut dev).unwrap();
        assert_eq!(r.samples, SAMPLES);
        assert!(r.median > Duration::ZERO);
    }
}
