//! Length-prefixed postcard framing, sans-IO.
//!
//! A frame is `varint(len) ‖ body`, where `len` is the body's length in bytes as an
//! unsigned LEB128 varint (at most [`MAX_VARINT_LEN`] bytes, minimal encoding only)
//! and `body` is one postcard-encoded message.
//!
//! [`FrameDecoder`] is the one parser of that format: the QUIC streams, the Unix
//! socket and the fuzz target all feed it bytes and poll it for frames. It checks the
//! announced length against its limit *before* allocating the body, and keeps the
//! prefix in a fixed 10-byte array, so a hostile peer cannot make it allocate more
//! than one frame of at most `max_frame_len` bytes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Longest valid length prefix: ⌈64 / 7⌉ bytes of LEB128.
pub const MAX_VARINT_LEN: usize = 10;

/// Default limit on a frame body: 1 MiB. Large enough for a full telemetry snapshot
/// of a big node, small enough that 1000 connections each holding one frame in
/// flight stay within a node's memory budget.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

/// Errors from encoding or decoding a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announces more bytes than the receiver's limit.
    #[error("Frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced length (or a lower bound of it, when rejected early).
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The length prefix is longer than 10 bytes or overflows 64 bits.
    #[error("Length prefix is longer than 10 bytes")]
    OverlongPrefix,
    /// The length prefix has a redundant trailing zero byte (not minimal LEB128).
    #[error("Length prefix is not minimally encoded")]
    NonMinimalPrefix,
    /// The body is not a valid postcard encoding of the expected message, or has
    /// bytes left over after it.
    #[error("Frame body does not decode: {0}")]
    Body(String),
    /// The stream ended in the middle of a frame.
    #[error("Stream ended inside a frame")]
    Truncated,
}

/// Appends the LEB128 encoding of `value` to `out`.
pub fn put_varint(value: u64, out: &mut Vec<u8>) {
    let mut tmp = [0u8; MAX_VARINT_LEN];
    let n = write_varint(value, &mut tmp);
    out.extend_from_slice(&tmp[..n]);
}

/// Writes `value` as LEB128 into `out`, returning the number of bytes used.
fn write_varint(mut value: u64, out: &mut [u8; MAX_VARINT_LEN]) -> usize {
    let mut i = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

/// Encodes `msg` as one frame, refusing bodies larger than `max_frame_len`.
///
/// The body's size is computed first (a walk without copying), so an oversized
/// message is refused before any buffer is allocated, and the frame is then built
/// in one exactly-sized allocation with the body written straight after its prefix.
pub fn encode_frame<T: Serialize + ?Sized>(
    msg: &T,
    max_frame_len: usize,
) -> Result<Bytes, FrameError> {
    let body_len = postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(|e| FrameError::Body(e.to_string()))?;
    if body_len > max_frame_len {
        return Err(FrameError::TooLarge {
            len: body_len as u64,
            max: max_frame_len,
        });
    }
    let mut prefix = [0u8; MAX_VARINT_LEN];
    let n = write_varint(body_len as u64, &mut prefix);
    let mut buf = Vec::with_capacity(n + body_len);
    buf.extend_from_slice(&prefix[..n]);
    let buf = postcard::serialize_with_flavor(msg, VecFlavor(buf))
        .map_err(|e| FrameError::Body(e.to_string()))?;
    if buf.len() != n + body_len {
        // Only a `Serialize` impl that writes different data on each call gets here.
        return Err(FrameError::Body(
            "message changed size while encoding".into(),
        ));
    }
    Ok(Bytes::from(buf))
}

/// A postcard output that appends to a `Vec` with `memcpy`-speed extends.
struct VecFlavor(Vec<u8>);

impl postcard::ser_flavors::Flavor for VecFlavor {
    type Output = Vec<u8>;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Decodes a whole frame body into a message; trailing bytes are an error.
///
/// The message may borrow from `body` (fields such as `&'a [u8]` or `&'a str`),
/// which saves a copy for bulk payloads received with
/// [`RecvFrames::recv_frame`](crate::quic::RecvFrames::recv_frame).
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Body(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Where the decoder is inside the current frame.
#[derive(Debug)]
enum State {
    /// Reading the length prefix; `value` holds the bits seen so far.
    Prefix { value: u64, len: usize },
    /// Reading a body of `need` bytes into `body` (allocated after the length check).
    Body { need: usize, body: Vec<u8> },
    /// A complete frame waits to be polled.
    Ready(Vec<u8>),
    /// A previous error; the stream cannot be resynchronised.
    Failed(FrameError),
}

/// A sans-IO frame parser: [`feed`](Self::feed) it bytes, [`poll_frame`](Self::poll_frame)
/// it for complete frame bodies.
///
/// Memory is bounded by one body of at most `max_frame_len` bytes, allocated only
/// once its announced length has passed the limit. After an error the decoder stays
/// failed and returns the same error, because a byte stream cannot be resynchronised
/// after a bad frame.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_len: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder refusing bodies longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            state: State::Prefix { value: 0, len: 0 },
        }
    }

    /// The body limit this decoder enforces.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Consumes bytes from `input` until one frame is complete or `input` is used
    /// up, and returns how many bytes it consumed.
    ///
    /// Once a frame is complete it consumes nothing more until that frame has been
    /// taken with [`poll_frame`](Self::poll_frame).
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let mut used = 0;
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Ready(_) => return Ok(used),
                State::Prefix { .. } => {
                    let Some(&byte) = input.get(used) else {
                        return Ok(used);
                    };
                    used += 1;
                    match self.prefix_byte(byte)? {
                        Some(0) => {
                            self.state = State::Ready(Vec::new());
                        }
                        Some(need) => {
                            self.state = State::Body {
                                need,
                                body: Vec::with_capacity(need),
                            };
                        }
                        None => {}
                    }
                }
                State::Body { need, body } => {
                    let rest = &input[used..];
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let take = rest.len().min(*need - body.len());
                    body.extend_from_slice(&rest[..take]);
                    used += take;
                    if body.len() == *need {
                        let body = std::mem::take(body);
                        self.state = State::Ready(body);
                    }
                }
            }
        }
    }

    /// Adds one prefix byte; returns the body length once the prefix is complete.
    fn prefix_byte(&mut self, byte: u8) -> Result<Option<usize>, FrameError> {
        let State::Prefix { value, len } = &mut self.state else {
            return Ok(None);
        };
        let shift = 7 * *len as u32;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only carry the single bit left of a u64.
        if *len == MAX_VARINT_LEN - 1 && bits > 1 {
            return Err(self.fail(FrameError::OverlongPrefix));
        }
        *value |= bits << shift;
        *len += 1;
        let last = byte & 0x80 == 0;
        if last && byte == 0 && *len > 1 {
            return Err(self.fail(FrameError::NonMinimalPrefix));
        }
        let value = *value;
        let len = *len;
        // Later bytes only add higher bits, so a partial value above the limit is
        // already too large: reject it without waiting for the rest.
        if value > self.max_frame_len as u64 {
            return Err(self.fail(FrameError::TooLarge {
                len: value,
                max: self.max_frame_len,
            }));
        }
        if !last {
            if len == MAX_VARINT_LEN {
                return Err(self.fail(FrameError::OverlongPrefix));
            }
            return Ok(None);
        }
        // `value <= max_frame_len`, a usize, so the conversion is lossless.
        Ok(Some(value as usize))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.state = State::Failed(e.clone());
        e
    }

    /// Takes the completed frame body, if one is ready.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        match std::mem::replace(&mut self.state, State::Prefix { value: 0, len: 0 }) {
            State::Ready(body) => Some(body),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Whether the decoder sits between frames (no partial frame buffered). Use it
    /// at end of stream: a stream that ends mid-frame is [`FrameError::Truncated`].
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Prefix { len: 0, .. })
    }

    /// Checks that the stream may end here.
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Prefix { len: 0, .. } | State::Ready(_) => Ok(()),
            _ => Err(FrameError::Truncated),
        }
    }

    /// Bytes of heap the decoder currently holds (the capacity of the partial body).
    pub fn buffered_capacity(&self) -> usize {
        match &self.state {
            State::Body { body, .. } | State::Ready(body) => body.capacity(),
            State::Prefix { .. } | State::Failed(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut FrameDecoder, mut input: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        loop {
            let n = dec.feed(input)?;
            input = &input[n..];
            match dec.poll_frame() {
                Some(f) => out.push(f),
                None if input.is_empty() => return Ok(out),
                None => {}
            }
        }
    }

    #[test]
    fn varint_round_trips_at_the_edges() {
        let lens = [
            (0u64, 1),
            (1, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
        ];
        for (v, n) in lens {
            let mut buf = Vec::new();
            put_varint(v, &mut buf);
            assert_eq!(buf.len(), n, "{v}");
            let mut dec = FrameDecoder::new(1 << 20);
            assert_eq!(dec.feed(&buf).unwrap(), n);
            if v == 0 {
                assert_eq!(dec.poll_frame(), Some(Vec::new()));
            } else {
                // The body is allocated with exactly the announced size.
                assert_eq!(dec.buffered_capacity() as u64, v);
            }
        }
        let mut buf = Vec::new();
        put_varint(u64::MAX, &mut buf);
        assert_eq!(buf.len(), MAX_VARINT_LEN);
        // The longest valid prefix is refused for size, not for its encoding.
        let mut dec = FrameDecoder::new(usize::MAX >> 1);
        assert!(matches!(dec.feed(&buf), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn frames_round_trip_in_any_split() {
        let msgs = vec![
            "hello".to_string(),
            String::new(),
            "x".repeat(300),
            "ünïcødé".to_string(),
        ];
        let mut wire = Vec::new();
        for m in &msgs {
            wire.extend_from_slice(&encode_frame(m, DEFAULT_MAX_FRAME_LEN).unwrap());
        }
        for chunk in [1, 2, 3, 7, 64, wire.len()] {
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                for body in decode_all(&mut dec, piece).unwrap() {
                    got.push(decode_body::<String>(&body).unwrap());
                }
            }
            assert!(dec.is_idle());
            assert_eq!(got, msgs, "chunk size {chunk}");
        }
    }

    #[test]
    fn oversized_prefix_is_rejected_before_allocating() {
        // 4 GiB = 2^32 as LEB128: four continuation bytes of zero bits, then 0x10.
        let prefix = [0x80, 0x80, 0x80, 0x80, 0x10];
        let mut dec = FrameDecoder::new(1 << 20);
        let err = dec.feed(&prefix).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                len: 1 << 32,
                max: 1 << 20
            }
        );
        assert_eq!(dec.buffered_capacity(), 0);
        // The error is sticky and still allocates nothing.
        assert!(dec.feed(&[0u8; 64]).is_err());
        assert_eq!(dec.buffered_capacity(), 0);
    }

    #[test]
    fn oversized_prefix_is_rejected_at_the_first_byte_that_proves_it() {
        // 2 MiB + 1 with a 1 MiB limit: the third byte alone already exceeds it.
        let mut buf = Vec::new();
        put_varint((2 << 20) + 1, &mut buf);
        let mut dec = FrameDecoder::new(1 << 20);
        assert!(dec.feed(&buf[..2]).is_ok());
        assert!(matches!(
            dec.feed(&buf[2..]),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(dec.buffered_capacity(), 0);
    }

    #[test]
    fn a_frame_at_the_limit_passes_and_one_above_fails() {
        let body = vec![7u8; 100];
        let mut wire = Vec::new();
        put_varint(100, &mut wire);
        wire.extend_from_slice(&body);
        let mut dec = FrameDecoder::new(100);
        assert_eq!(decode_all(&mut dec, &wire).unwrap(), vec![body]);
        let mut dec = FrameDecoder::new(99);
        assert!(matches!(
            decode_all(&mut dec, &wire),
            Err(FrameError::TooLarge { len: 100, max: 99 })
        ));
        assert!(matches!(
            encode_frame(&vec![0u8; 200], 100),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_minimal_and_overlong_prefixes_are_refused() {
        let mut dec = FrameDecoder::new(usize::MAX);
        assert_eq!(dec.feed(&[0x80, 0x00]), Err(FrameError::NonMinimalPrefix));
        let mut dec = FrameDecoder::new(usize::MAX);
        assert_eq!(
            dec.feed(&[0x85, 0x80, 0x00]),
            Err(FrameError::NonMinimalPrefix)
        );
        let mut dec = FrameDecoder::new(usize::MAX);
        assert_eq!(dec.feed(&[0xff; 11]), Err(FrameError::OverlongPrefix));
        // Ten bytes whose last carries more than the one remaining bit of a u64.
        let mut dec = FrameDecoder::new(usize::MAX);
        let mut p = [0x80u8; 10];
        p[9] = 0x02;
        assert_eq!(dec.feed(&p), Err(FrameError::OverlongPrefix));
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let wire = encode_frame("hello", 64).unwrap();
        let mut dec = FrameDecoder::new(64);
        decode_all(&mut dec, &wire[..3]).unwrap();
        assert_eq!(dec.finish(), Err(FrameError::Truncated));
        assert!(matches!(
            decode_body::<u8>(&[1, 2]),
            Err(FrameError::Body(_))
        ));
        assert!(matches!(
            decode_body::<String>(&[5, b'a']),
            Err(FrameError::Body(_))
        ));
    }
}
