//! DHCP on tokio: port 67 (and 4011 for BINL) bound to one interface with
//! `SO_BINDTODEVICE`, broadcast replies, and a watcher on port 68 that reports other
//! servers' offers.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::PathBuf,
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{BINL_PORT, CLIENT_PORT, Destination, Outcome, Port, SERVER_PORT, Server};
use crate::events::{EventLog, unix_now};

/// How often expired leases are swept.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);

/// A bound UDP socket for DHCP: reusable address, broadcast allowed, pinned to the
/// interface so broadcasts leave through it and only its traffic arrives.
pub fn bind_udp(interface: Option<&str>, port: u16) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    if let Some(ifname) = interface {
        s.bind_device(Some(ifname.as_bytes()))?;
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(s.into())
}

/// The bound sockets of a [`DhcpService`].
#[derive(Debug)]
pub struct Sockets {
    main: UdpSocket,
    binl: Option<UdpSocket>,
    watch: Option<UdpSocket>,
}

/// The DHCP service's sockets and where it keeps state.
#[derive(Debug)]
pub struct DhcpService {
    /// The sans-IO server.
    pub server: Server,
    /// The interface to bind to (all interfaces when `None`).
    pub interface: Option<String>,
    /// Where leases are saved (full mode), if anywhere.
    pub lease_file: Option<PathBuf>,
    /// Whether to listen on 4011 too.
    pub binl: bool,
    /// Whether to watch port 68 for other servers.
    pub watch: bool,
    /// The boot-event log.
    pub log: EventLog,
}

impl DhcpService {
    /// Binds the sockets: 67, 4011 when enabled, and 68 for watching when
    /// enabled and possible (a DHCP client on this host may hold it).
    pub fn bind(&self) -> std::io::Result<Sockets> {
        let iface = self.interface.as_deref();
        let main = bind_udp(iface, SERVER_PORT)?;
        let binl = if self.binl {
            Some(bind_udp(iface, BINL_PORT)?)
        } else {
            None
        };
        let watch = if self.watch {
            match bind_udp(iface, CLIENT_PORT) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch port 68; rogue DHCP detection off");
                    None
                }
            }
        } else {
            None
        };
        Ok(Sockets { main, binl, watch })
    }

    /// Binds, then serves until a socket fails.
    pub async fn serve(self) -> std::io::Result<()> {
        let sockets = self.bind()?;
        self.serve_on(sockets).await
    }

    /// Serves on sockets from [`DhcpService::bind`] until one fails.
    pub async fn serve_on(mut self, sockets: Sockets) -> std::io::Result<()> {
        let Sockets { main, binl, watch } = sockets;
        let mut b1 = vec![0u8; 1500];
        let mut b2 = vec![0u8; 1500];
        let mut b3 = vec![0u8; 1500];
        let mut sweep = tokio::time::interval(EXPIRE_EVERY);
        loop {
            tokio::select! {
                r = main.recv_from(&mut b1) => {
                    let (n, from) = r?;
                    let o = self.server.handle(&b1[..n], Port::Dhcp, v4(from), unix_now());
                    self.finish(o, &main).await;
                }
                r = recv_opt(binl.as_ref(), &mut b2) => {
                    let (n, from) = r?;
                    let o = self.server.handle(&b2[..n], Port::Binl, v4(from), unix_now());
                    // BINL replies go back out of the 4011 socket, to the sender.
                    if let Some(s) = binl.as_ref() {
                        self.finish(o, s).await;
                    }
                }
                r = recv_opt(watch.as_ref(), &mut b3) => {
                    let (n, from) = r?;
                    let o = self.server.handle(&b3[..n], Port::Client, v4(from), unix_now());
                    self.finish(o, &main).await;
                }
                _ = sweep.tick() => {
                    if self.server.expire(unix_now()) {
                        self.save();
                    }
                }
            }
        }
    }

    async fn finish(&mut self, o: Outcome, sock: &UdpSocket) {
        if let Some(ev) = &o.event {
            self.log.record(ev);
        }
        if let Some(r) = &o.rogue {
            tracing::warn!(
                server_id = ?r.server_id,
                offered = %r.offered,
                client = %r.client,
                pxe = r.pxe,
                "another DHCP server is answering on this segment"
            );
        }
        if o.leases_changed {
            self.save();
        }
        if let Some(reply) = o.reply {
            let to = match reply.to {
                Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
                Destination::Unicast(a) => a,
            };
            if let Err(e) = sock.send_to(&reply.packet, to).await {
                tracing::warn!(%to, error = %e, "dhcp reply not sent");
            }
        }
    }

    fn save(&self) {
        if let Some(path) = &self.lease_file
            && let Err(e) = self.server.leases().save(path)
        {
            tracing::error!(error = %e, "leases not saved");
        }
    }
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(
            a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            a.port(),
        ),
    }
}

async fn recv_opt(s: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
