//! The connection wrapper both sides use once a peer is authenticated.

use std::{future::Future, net::SocketAddr};

use bytes::Bytes;
use nodus_identity::PublicKey;
use serde::{Serialize, de::DeserializeOwned};

use super::ErrorCode;
use crate::{Alpn, FrameDecoder, FrameError, Role, frame};

/// Errors on a stream of an established connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The connection is gone (closed by either side, timed out, or reset).
    #[error("Connection lost")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to the stream failed.
    #[error("Stream write failed")]
    Write(#[from] quinn::WriteError),
    /// Reading from the stream failed.
    #[error("Stream read failed")]
    Read(#[from] quinn::ReadError),
    /// The stream was already finished or reset locally.
    #[error("Stream already closed")]
    Closed(#[from] quinn::ClosedStream),
    /// A frame did not parse; the connection has been closed with the matching
    /// [`ErrorCode`].
    #[error("Malformed frame")]
    Frame(#[from] FrameError),
    /// The peer finished the stream where a frame was required.
    #[error("Stream ended before the expected frame")]
    Ended,
}

impl StreamError {
    /// The application error code the peer closed the connection with, if it did.
    pub fn peer_error_code(&self) -> Option<ErrorCode> {
        let err = match self {
            StreamError::Connection(e) => e,
            StreamError::Write(quinn::WriteError::ConnectionLost(e)) => e,
            StreamError::Read(quinn::ReadError::ConnectionLost(e)) => e,
            _ => return None,
        };
        match err {
            quinn::ConnectionError::ApplicationClosed(close) => {
                ErrorCode::from_varint(close.error_code)
            }
            _ => None,
        }
    }
}

/// An authenticated QUIC connection: the verified peer key, the negotiated
/// protocol, the role the server granted, and framed streams.
///
/// Cheap to clone; all clones share the connection. Upper layers authorize each
/// request from [`peer`](Self::peer): the [`role`](Self::role) is the authorizer's
/// answer at connect time, which a revocation may since have changed.
#[derive(Clone)]
pub struct Connection {
    inner: quinn::Connection,
    peer: PublicKey,
    alpn: Alpn,
    role: Role,
    max_frame_len: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("alpn", &self.alpn)
            .field("role", &self.role)
            .field("remote", &self.inner.remote_address())
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(
        inner: quinn::Connection,
        peer: PublicKey,
        alpn: Alpn,
        role: Role,
        max_frame_len: usize,
    ) -> Self {
        Self {
            inner,
            peer,
            alpn,
            role,
            max_frame_len,
        }
    }

    /// The peer's public key, as verified in the TLS handshake.
    pub fn peer(&self) -> &PublicKey {
        &self.peer
    }

    /// The negotiated protocol.
    pub fn alpn(&self) -> Alpn {
        self.alpn
    }

    /// The role the server's authorizer granted the client at connect time.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's UDP address.
    pub fn remote_address(&self) -> SocketAddr {
        self.inner.remote_address()
    }

    /// The largest frame body this side accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The underlying quinn connection, for what this wrapper does not cover
    /// (statistics, datagrams, raw streams in benchmarks).
    pub fn quinn(&self) -> &quinn::Connection {
        &self.inner
    }

    /// Sends `req` on a new bidirectional stream and waits for the one response.
    pub async fn request<Req, Resp>(&self, req: &Req) -> Result<Resp, StreamError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        // Encode before opening: a stream dropped unwritten would reach the peer as
        // an empty request.
        let frame = frame::encode_frame(req, self.max_frame_len)?;
        let (mut send, mut recv) = self.open_bi().await?;
        send.send_encoded(frame).await?;
        send.finish()?;
        recv.recv().await?.ok_or(StreamError::Ended)
    }

    /// Waits for the next request stream from the peer and reads its request.
    ///
    /// Requests are read one after the other here; a server that answers many
    /// requests per connection should prefer [`serve_requests`](Self::serve_requests),
    /// which reads each in its own task.
    ///
    /// Returns `None` once the peer closed the connection in an orderly way (code
    /// [`ErrorCode::Closed`]) or this side closed it. A request that does not parse
    /// closes the connection with the documented code and returns the error.
    pub async fn accept_request<Req: DeserializeOwned>(
        &self,
    ) -> Result<Option<(Req, Responder)>, StreamError> {
        let (send, mut recv) = match self.accept_bi().await {
            Ok(pair) => pair,
            Err(StreamError::Connection(e)) if is_orderly(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        match recv.recv().await? {
            Some(req) => Ok(Some((req, Responder { send }))),
            None => {
                self.close(
                    ErrorCode::ProtocolViolation,
                    "request stream without request",
                );
                Err(StreamError::Ended)
            }
        }
    }

    /// Serves requests until the connection ends: each request stream gets its own
    /// task, which reads the request, awaits `handler` and sends its response, so a
    /// slow request never delays the others.
    ///
    /// Returns `Ok(())` after an orderly close, or the error that ended the
    /// connection. A malformed request closes the connection with the documented
    /// code (see [`RecvFrames`]).
    pub async fn serve_requests<Req, Resp, F, Fut>(&self, handler: F) -> Result<(), StreamError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Resp> + Send + 'static,
    {
        let handler = std::sync::Arc::new(handler);
        loop {
            let (send, mut recv) = match self.accept_bi().await {
                Ok(pair) => pair,
                Err(StreamError::Connection(e)) if is_orderly(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            let handler = handler.clone();
            let conn = self.clone();
            tokio::spawn(async move {
                let req = match recv.recv::<Req>().await {
                    Ok(Some(req)) => req,
                    Ok(None) => {
                        conn.close(
                            ErrorCode::ProtocolViolation,
                            "request stream without request",
                        );
                        return;
                    }
                    // The connection is already closed with the right code.
                    Err(_) => return,
                };
                let resp = handler(req).await;
                // Encode first, so `Resp` need not be `Sync` across the write.
                let encoded = frame::encode_frame(&resp, send.max_frame_len);
                drop(resp);
                let mut send = send;
                let sent = match encoded {
                    Ok(frame) => match send.send_encoded(frame).await {
                        Ok(()) => send.finish(),
                        Err(e) => Err(e),
                    },
                    Err(e) => {
                        // Our own response is too large: tell the client, keep serving.
                        (Responder { send }).reject(ErrorCode::Internal);
                        Err(e.into())
                    }
                };
                if let Err(error) = sent {
                    tracing::debug!(%error, "response not delivered");
                }
            });
        }
    }

    /// Opens a bidirectional stream of frames, for exchanges longer than one
    /// request and one response.
    pub async fn open_bi(&self) -> Result<(SendFrames, RecvFrames), StreamError> {
        let (send, recv) = self.inner.open_bi().await?;
        Ok((self.send_frames(send), self.recv_frames(recv)))
    }

    /// Accepts the next bidirectional stream the peer opened.
    pub async fn accept_bi(&self) -> Result<(SendFrames, RecvFrames), StreamError> {
        let (send, recv) = self.inner.accept_bi().await?;
        Ok((self.send_frames(send), self.recv_frames(recv)))
    }

    /// Pushes one message to the peer on its own unidirectional stream. Pushes are
    /// independent of each other and may arrive in any order.
    pub async fn push<T: Serialize + ?Sized>(&self, msg: &T) -> Result<(), StreamError> {
        let frame = frame::encode_frame(msg, self.max_frame_len)?;
        let mut s = self.open_push_stream().await?;
        s.send_encoded(frame).await?;
        s.finish()
    }

    /// Opens a unidirectional stream for an ordered feed of many frames.
    pub async fn open_push_stream(&self) -> Result<SendFrames, StreamError> {
        let send = self.inner.open_uni().await?;
        Ok(self.send_frames(send))
    }

    /// Accepts the next unidirectional stream the peer opened; `None` once the
    /// connection closed in an orderly way.
    pub async fn accept_push_stream(&self) -> Result<Option<RecvFrames>, StreamError> {
        match self.inner.accept_uni().await {
            Ok(recv) => Ok(Some(self.recv_frames(recv))),
            Err(e) if is_orderly(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Receives the next single-message push (see [`push`](Self::push)).
    pub async fn accept_push<T: DeserializeOwned>(&self) -> Result<Option<T>, StreamError> {
        match self.accept_push_stream().await? {
            Some(mut s) => s.recv().await?.map(Some).ok_or(StreamError::Ended),
            None => Ok(None),
        }
    }

    /// Closes the connection with `code`; pending streams are abandoned.
    pub fn close(&self, code: ErrorCode, reason: &str) {
        self.inner.close(code.to_varint(), reason.as_bytes());
    }

    /// Waits until the connection is closed, and says why.
    pub async fn closed(&self) -> quinn::ConnectionError {
        self.inner.closed().await
    }

    fn send_frames(&self, stream: quinn::SendStream) -> SendFrames {
        SendFrames {
            stream,
            max_frame_len: self.max_frame_len,
        }
    }

    fn recv_frames(&self, stream: quinn::RecvStream) -> RecvFrames {
        RecvFrames::new(stream, self.inner.clone(), self.max_frame_len)
    }
}

/// Whether a connection error is an orderly end rather than a failure.
fn is_orderly(e: &quinn::ConnectionError) -> bool {
    match e {
        quinn::ConnectionError::LocallyClosed => true,
        quinn::ConnectionError::ApplicationClosed(close) => {
            ErrorCode::from_varint(close.error_code) == Some(ErrorCode::Closed)
        }
        _ => false,
    }
}

/// The answering half of a request stream.
#[derive(Debug)]
pub struct Responder {
    send: SendFrames,
}

impl Responder {
    /// Sends the one response and finishes the stream.
    pub async fn respond<T: Serialize + ?Sized>(mut self, resp: &T) -> Result<(), StreamError> {
        self.send.send(resp).await?;
        self.send.finish()
    }

    /// Abandons the request: the client's `request` fails with a reset carrying
    /// `code`.
    pub fn reject(mut self, code: ErrorCode) {
        // The stream was just accepted and never finished, so reset cannot fail;
        // if the peer already went away there is nobody to tell.
        let _ = self.send.stream.reset(code.to_varint());
    }
}

/// The sending half of a framed stream.
#[derive(Debug)]
pub struct SendFrames {
    stream: quinn::SendStream,
    max_frame_len: usize,
}

impl SendFrames {
    /// Encodes and sends one message.
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), StreamError> {
        let frame = frame::encode_frame(msg, self.max_frame_len)?;
        self.send_encoded(frame).await
    }

    /// Sends a frame already built with [`encode_frame`](crate::encode_frame),
    /// without copying it (to fan one message out to many streams).
    pub async fn send_encoded(&mut self, frame: Bytes) -> Result<(), StreamError> {
        self.stream.write_chunk(frame).await?;
        Ok(())
    }

    /// Finishes the stream: the peer reads end-of-stream after the last frame.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        self.stream.finish()?;
        Ok(())
    }

    /// The underlying quinn stream.
    pub fn quinn(&mut self) -> &mut quinn::SendStream {
        &mut self.stream
    }
}

/// The receiving half of a framed stream.
///
/// A frame that does not parse closes the whole connection with
/// [`ErrorCode::MalformedFrame`] or [`ErrorCode::FrameTooLarge`]: after a bad
/// length prefix the byte stream cannot be trusted again, and a peer that sends
/// one is broken or hostile.
#[derive(Debug)]
pub struct RecvFrames {
    stream: quinn::RecvStream,
    conn: quinn::Connection,
    decoder: FrameDecoder,
    pending: Bytes,
}

impl RecvFrames {
    pub(super) fn new(
        stream: quinn::RecvStream,
        conn: quinn::Connection,
        max_frame_len: usize,
    ) -> Self {
        Self {
            stream,
            conn,
            decoder: FrameDecoder::new(max_frame_len),
            pending: Bytes::new(),
        }
    }

    /// Reads the next frame body; `None` at a clean end of stream.
    ///
    /// For decoding with a borrowing message type ([`decode_body`](crate::decode_body)).
    /// If that decoding fails, close the connection with
    /// [`ErrorCode::MalformedFrame`] as [`recv`](Self::recv) would.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        loop {
            if !self.pending.is_empty() {
                let used = self.decoder.feed(&self.pending).map_err(|e| self.fail(e))?;
                let _ = self.pending.split_to(used);
            }
            if let Some(body) = self.decoder.poll_frame() {
                return Ok(Some(body));
            }
            // Read into quinn's own buffers (no copy) and feed the decoder from them.
            match self.stream.read_chunk(usize::MAX, true).await? {
                Some(chunk) => self.pending = chunk.bytes,
                None => {
                    self.decoder.finish().map_err(|e| self.fail(e))?;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads and decodes the next message; `None` at a clean end of stream.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, StreamError> {
        match self.recv_frame().await? {
            Some(body) => frame::decode_body(&body)
                .map(Some)
                .map_err(|e| self.fail(e)),
            None => Ok(None),
        }
    }

    /// Closes the connection with the code for `e`, and hands `e` back.
    fn fail(&mut self, e: FrameError) -> StreamError {
        let code = ErrorCode::for_frame_error(&e);
        tracing::warn!(
            peer = %self.conn.remote_address(),
            code = code.to_u32(),
            error = %e,
            "closing connection after a malformed frame"
        );
        self.conn.close(code.to_varint(), e.to_string().as_bytes());
        StreamError::Frame(e)
    }

    /// The underlying quinn stream.
    pub fn quinn(&mut self) -> &mut quinn::RecvStream {
        &mut self.stream
    }
}
