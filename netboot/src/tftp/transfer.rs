//! One read transfer, sans-IO: feed datagrams and timeouts, poll datagrams to send.
//!
//! Lock-step (RFC 1350) is the window size 1 case of RFC 7440: the server sends a
//! window of blocks, the client acknowledges the last block it received in order,
//! the server continues after it. Duplicate ACKs never cause a resend (RFC 1123
//! §4.2.3.1, the "Sorcerer's Apprentice" bug); only timeouts and ACKs that move the
//! window do.

use std::{collections::VecDeque, time::Duration, time::Instant};

use super::packet::{self, ErrorCode, Packet};

/// Block size when the client asks for none (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;
/// Largest block size RFC 2348 allows.
pub const MAX_BLKSIZE_RFC: u16 = 65464;
/// Smallest block size RFC 2348 allows.
pub const MIN_BLKSIZE_RFC: u16 = 8;

/// What the server allows clients to negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest block size granted (larger requests are lowered to this).
    pub max_blksize: u16,
    /// Largest window size granted.
    pub max_windowsize: u16,
    /// Retransmission timeout when the client does not ask for one.
    pub timeout: Duration,
    /// Retransmissions of the same window before giving up.
    pub max_retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Fits an Ethernet frame with IP and UDP headers: 1500 - 20 - 8 - 4.
            max_blksize: 1468,
            max_windowsize: 64,
            timeout: Duration::from_secs(1),
            max_retries: 5,
        }
    }
}

/// Something a transfer can read blocks from.
pub trait Source {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl Source for std::fs::File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

impl Source for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// OACK sent, waiting for ACK 0.
    Negotiating,
    /// Sending data.
    Sending,
    /// The last block was acknowledged.
    Done,
    /// Given up (timeouts, peer error, read error).
    Failed,
}

/// Options granted to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// Block size.
    pub blksize: u16,
    /// Window size.
    pub windowsize: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
}

/// One read transfer.
#[derive(Debug)]
pub struct Transfer<S> {
    src: S,
    size: u64,
    granted: Granted,
    oack: Option<Vec<u8>>,
    state: State,
    /// Highest block acknowledged, counted from 1 without wrapping (0 = none).
    acked: u64,
    /// Highest block sent.
    sent: u64,
    /// Number of the final (short) block.
    last: u64,
    deadline: Option<Instant>,
    retries: u32,
    max_retries: u32,
    out: VecDeque<Vec<u8>>,
    /// Read-ahead: file bytes from `cache_at`, so small blocks do not cost one
    /// read each.
    cache: Vec<u8>,
    cache_at: u64,
}

/// How much is read from the file at a time.
const READ_AHEAD: usize = 256 * 1024;

impl<S: Source> Transfer<S> {
    /// Starts a transfer of `src` (`size` bytes) for a read request with `options`.
    /// Unknown options are ignored, as RFC 2347 asks.
    pub fn start(
        options: &[(&str, &str)],
        src: S,
        size: u64,
        limits: Limits,
        now: Instant,
    ) -> Self {
        let mut granted = Granted {
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            timeout: limits.timeout,
        };
        let mut reply: Vec<(&str, String)> = Vec::new();
        for (name, value) in options {
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "blksize" => {
                    if let Ok(v) = value.parse::<u32>()
                        && v >= u32::from(MIN_BLKSIZE_RFC)
                    {
                        let v = v.min(u32::from(limits.max_blksize.min(MAX_BLKSIZE_RFC)));
                        granted.blksize = v as u16; // ≤ 65464 by the min above
                        reply.push(("blksize", v.to_string()));
                    }
                }
                "tsize" => reply.push(("tsize", size.to_string())),
                "timeout" => {
                    if let Ok(v) = value.parse::<u64>()
                        && (1..=255).contains(&v)
                    {
                        granted.timeout = Duration::from_secs(v);
                        reply.push(("timeout", v.to_string()));
                    }
                }
                "windowsize" => {
                    if let Ok(v) = value.parse::<u32>()
                        && (1..=65535).contains(&v)
                    {
                        let v = v.min(u32::from(limits.max_windowsize.max(1)));
                        granted.windowsize = v as u16; // ≤ 65535 by the range check
                        reply.push(("windowsize", v.to_string()));
                    }
                }
                _ => {}
            }
        }
        let mut t = Self {
            src,
            size,
            granted,
            oack: None,
            state: State::Sending,
            acked: 0,
            sent: 0,
            last: size / u64::from(granted.blksize) + 1,
            deadline: None,
            retries: 0,
            max_retries: limits.max_retries,
            out: VecDeque::new(),
            cache: Vec::new(),
            cache_at: 0,
        };
        if reply.is_empty() {
            t.send_window(now);
        } else {
            let o = packet::oack(&reply);
            t.out.push_back(o.clone());
            t.oack = Some(o);
            t.state = State::Negotiating;
            t.deadline = Some(now + granted.timeout);
        }
        t
    }

    /// What was granted.
    pub fn granted(&self) -> Granted {
        self.granted
    }

    /// The transfer's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once done or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// The next datagram to send to the client.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When [`Transfer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_finished() {
            None
        } else {
            self.deadline
        }
    }

    /// Handles a datagram from the client.
    pub fn handle(&mut self, datagram: &[u8], now: Instant) {
        if self.is_finished() {
            return;
        }
        match Packet::decode(datagram) {
            Ok(Packet::Ack { block }) => self.on_ack(block, now),
            Ok(Packet::Error { code, message }) => {
                tracing::debug!(code, message, "tftp client ended the transfer");
                self.state = State::Failed;
            }
            Ok(_) | Err(_) => {
                self.out.push_back(packet::error(
                    ErrorCode::IllegalOperation,
                    "Only ACK is expected",
                ));
            }
        }
    }

    /// Handles the retransmission timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_finished() || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.retries += 1;
        if self.retries > self.max_retries {
            self.state = State::Failed;
            self.deadline = None;
            return;
        }
        match (&self.state, &self.oack) {
            (State::Negotiating, Some(o)) => {
                self.out.push_back(o.clone());
                self.deadline = Some(now + self.granted.timeout);
            }
            _ => self.send_window(now),
        }
    }

    fn on_ack(&mut self, block: u16, now: Instant) {
        if self.state == State::Negotiating {
            if block == 0 {
                self.state = State::Sending;
                self.retries = 0;
                self.send_window(now);
            }
            return;
        }
        // Map the 16-bit number onto the blocks in flight; the window is at most
        // 65535 blocks, so at most one matches.
        let Some(abs) = (self.acked..=self.sent).find(|a| (*a % 65536) as u16 == block) else {
            return;
        };
        if abs <= self.acked {
            return; // Duplicate: never resend on it.
        }
        self.acked = abs;
        self.retries = 0;
        if self.acked >= self.last {
            self.state = State::Done;
            self.deadline = None;
            return;
        }
        if self.acked < self.sent {
            // A gap on the client side: RFC 7440 §4, restart after the ACKed block.
            self.out.clear();
        }
        self.send_window(now);
    }

    /// Queues the window after the last acknowledged block.
    fn send_window(&mut self, now: Instant) {
        let bs = u64::from(self.granted.blksize);
        let end = (self.acked + u64::from(self.granted.windowsize)).min(self.last);
        for b in self.acked + 1..=end {
            let offset = (b - 1) * bs;
            let len = bs.min(self.size.saturating_sub(offset)) as usize; // ≤ blksize
            if let Err(e) = self.fill(offset, len) {
                tracing::warn!(error = %e, "tftp read failed");
                self.out
                    .push_back(packet::error(ErrorCode::Undefined, "Read error"));
                self.state = State::Failed;
                return;
            }
            let start = (offset - self.cache_at) as usize; // inside the cache, by fill
            let d = packet::data((b % 65536) as u16, &self.cache[start..start + len]);
            self.out.push_back(d);
        }
        self.sent = self.sent.max(end);
        self.deadline = Some(now + self.granted.timeout);
    }

    /// Makes `offset..offset + len` available in the read-ahead cache.
    fn fill(&mut self, offset: u64, len: usize) -> std::io::Result<()> {
        let cached_end = self.cache_at + self.cache.len() as u64;
        if offset >= self.cache_at && offset + len as u64 <= cached_end {
            return Ok(());
        }
        let want = (READ_AHEAD.max(len) as u64).min(self.size.saturating_sub(offset)) as usize;
        self.cache.resize(want, 0);
        self.cache_at = offset;
        read_full(&mut self.src, offset, &mut self.cache)
    }
}

fn read_full<S: Source>(src: &mut S, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = src.read_at(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
