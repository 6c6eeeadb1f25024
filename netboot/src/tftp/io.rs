//! TFTP on tokio: requests on one socket; each transfer on its own socket (its own
//! transfer id, RFC 1350 §4) on a blocking thread, driven by the sans-IO
//! [`Transfer`].

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use tokio::net::UdpSocket;

use super::{
    Limits, Root, Transfer,
    packet::{self, ErrorCode, Packet},
};
use crate::events::{BootEvent, EventLog, unix_now};

/// Largest datagram a client sends us (requests are capped far below this).
const RECV_BUF: usize = 4096;

/// A running TFTP service.
#[derive(Debug, Clone)]
pub struct TftpService {
    root: Arc<Root>,
    limits: Limits,
    log: EventLog,
}

impl TftpService {
    /// Serves `root` with the given option limits.
    pub fn new(root: Root, limits: Limits, log: EventLog) -> Self {
        Self {
            root: Arc::new(root),
            limits,
            log,
        }
    }

    /// Answers requests arriving on `socket` until it fails.
    pub async fn serve(self, socket: UdpSocket) -> std::io::Result<()> {
        let local_ip = socket.local_addr()?.ip();
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let (n, peer) = socket.recv_from(&mut buf).await?;
            let reply = self.request(&buf[..n], peer, local_ip);
            if let Some(r) = reply {
                let _ = socket.send_to(&r, peer).await;
            }
        }
    }

    /// Handles one request; returns an error datagram to send from the main socket,
    /// or `None` when a transfer task took over.
    fn request(&self, bytes: &[u8], peer: SocketAddr, local_ip: IpAddr) -> Option<Vec<u8>> {
        let event = |asked: &str, answered: String| BootEvent {
            time: unix_now(),
            service: "tftp",
            mac: None,
            uuid: None,
            arch: None,
            peer: Some(peer.ip()),
            asked: asked.to_owned(),
            answered,
        };
        match Packet::decode(bytes) {
            Ok(Packet::Rrq {
                file,
                mode,
                options,
            }) => {
                // netascii is served as octet: boot files are binary, and no boot
                // client asks for netascii.
                let _ = mode;
                match self.root.open(file) {
                    Ok((f, size)) => {
                        self.log
                            .record(&event(file, format!("sending {size} bytes")));
                        let opts: Vec<(String, String)> = options
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect();
                        let limits = self.limits;
                        // A blocking thread per transfer: lock-step TFTP is one
                        // datagram per round trip, and a plain blocking socket turns
                        // each around in two syscalls, where the reactor adds a
                        // wake-up and a timer per block.
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = run_transfer(f, size, opts, limits, peer, local_ip) {
                                tracing::warn!(%peer, error = %e, "tftp transfer failed");
                            }
                        });
                        None
                    }
                    Err(e) => {
                        self.log.record(&event(file, format!("refused: {e}")));
                        let code = match e {
                            super::PathError::NotFound(_) => ErrorCode::NotFound,
                            _ => ErrorCode::AccessViolation,
                        };
                        Some(packet::error(code, &e.to_string()))
                    }
                }
            }
            Ok(Packet::Wrq) => Some(packet::error(
                ErrorCode::AccessViolation,
                "This server is read-only",
            )),
            Ok(_) => Some(packet::error(ErrorCode::UnknownTid, "Unknown transfer")),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "tftp datagram dropped");
                None
            }
        }
    }
}

fn run_transfer(
    file: std::fs::File,
    size: u64,
    options: Vec<(String, String)>,
    limits: Limits,
    peer: SocketAddr,
    local_ip: IpAddr,
) -> std::io::Result<()> {
    let sock = std::net::UdpSocket::bind(SocketAddr::new(local_ip, 0))?;
    sock.connect(peer)?;
    let opts: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut t = Transfer::start(&opts, file, size, limits, Instant::now());
    let mut buf = vec![0u8; RECV_BUF];
    // The receive timeout is set once, to the retransmission timeout: every send
    // moves the deadline that far out, so a receive that times out is at (or just
    // past) it. One syscall less per block than re-arming it each time.
    sock.set_read_timeout(Some(t.granted().timeout))?;
    // Bounded: every iteration either sends, receives or times out, and the state
    // machine gives up after its retries.
    loop {
        while let Some(d) = t.poll_transmit() {
            sock.send(&d)?;
        }
        let Some(deadline) = t.poll_timeout() else {
            break;
        };
        if Instant::now() >= deadline {
            // Stale datagrams kept the receive busy past the deadline.
            t.handle_timeout(Instant::now());
            continue;
        }
        match sock.recv(&mut buf) {
            Ok(n) => t.handle(&buf[..n], Instant::now()),
            // ICMP port unreachable from a client that went away shows up here.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                t.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    tracing::debug!(%peer, state = ?t.state(), "tftp transfer ended");
    Ok(())
}
