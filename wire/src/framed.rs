//! Frames over any tokio byte stream (the Unix socket uses it; QUIC streams have
//! their own zero-copy reader in [`crate::quic`]).

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{FrameDecoder, FrameError, frame};

/// Size of the read buffer: one typical frame, and few syscalls for bulk data.
const READ_BUF_LEN: usize = 64 * 1024;

/// Errors reading or writing frames on a byte stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FramedError {
    /// The underlying stream failed.
    #[error("Stream I/O failed")]
    Io(#[from] std::io::Error),
    /// A frame did not parse, or a message was too large to send.
    #[error("Malformed frame")]
    Frame(#[from] FrameError),
}

/// Reads frames from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    decoder: FrameDecoder,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader refusing bodies over `max_frame_len` bytes.
    pub fn new(inner: R, max_frame_len: usize) -> Self {
        Self {
            inner,
            decoder: FrameDecoder::new(max_frame_len),
            buf: vec![0u8; READ_BUF_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Reads the next frame body; `None` at a clean end of stream.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, FramedError> {
        loop {
            if self.start < self.end {
                let used = self.decoder.feed(&self.buf[self.start..self.end])?;
                self.start += used;
            }
            if let Some(body) = self.decoder.poll_frame() {
                return Ok(Some(body));
            }
            let n = self.inner.read(&mut self.buf).await?;
            if n == 0 {
                self.decoder.finish()?;
                return Ok(None);
            }
            self.start = 0;
            self.end = n;
        }
    }

    /// Reads and decodes the next message; `None` at a clean end of stream.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FramedError> {
        match self.recv_frame().await? {
            Some(body) => Ok(Some(frame::decode_body(&body)?)),
            None => Ok(None),
        }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// Writes frames to a byte stream.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    max_frame_len: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer refusing to send bodies over `max_frame_len` bytes.
    pub fn new(inner: W, max_frame_len: usize) -> Self {
        Self {
            inner,
            max_frame_len,
        }
    }

    /// Encodes and writes one message.
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), FramedError> {
        let frame = frame::encode_frame(msg, self.max_frame_len)?;
        self.send_encoded(&frame).await
    }

    /// Writes a frame already built with [`encode_frame`](crate::encode_frame).
    pub async fn send_encoded(&mut self, frame: &Bytes) -> Result<(), FramedError> {
        self.inner.write_all(frame).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Shuts down the write side: the peer reads end-of-stream.
    pub async fn shutdown(&mut self) -> Result<(), FramedError> {
        self.inner.shutdown().await?;
        Ok(())
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}
