//! `nodus netboot serve`: DHCP, TFTP and HTTP together, from [`Settings`].

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, UdpSocket};

use crate::{
    config::Settings,
    dhcp::{self, Leases, io::DhcpService},
    events::EventLog,
    http::HttpService,
    manifest::{self, ManifestError},
    tftp::{Root, io::TftpService},
};

/// File name of the lease table in the state directory.
pub const LEASE_FILE: &str = "leases.json";
/// File name of the boot-event log in the state directory.
pub const EVENT_LOG: &str = "boot-events.jsonl";

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state directory or a served directory is unusable.
    #[error("Directory {path}")]
    Dir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The lease file is unreadable.
    #[error("Leases")]
    Leases(#[from] dhcp::lease::LeaseError),
    /// The image's manifest does not verify.
    #[error("Image manifest")]
    Manifest(#[from] ManifestError),
    /// A socket could not be bound, or failed.
    #[error("{what}")]
    Socket {
        /// Which service.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The first IPv4 address of an interface.
pub fn interface_address(name: &str) -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|i| {
        if i.interface_name != name {
            return None;
        }
        let a = i.address?;
        a.as_sockaddr_in().map(|s| s.ip())
    })
}

/// A started server: the settings it runs with, and what it found in the image.
#[derive(Debug)]
pub struct Started {
    /// The HTTP address actually bound.
    pub http: SocketAddr,
    /// The TFTP address actually bound.
    pub tftp: SocketAddr,
}

/// Binds everything, then serves until a service fails or the future is dropped.
/// `ready` is called once all sockets are bound.
pub async fn run(mut s: Settings, ready: impl FnOnce(&Started)) -> Result<(), ServeError> {
    let dir_err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| ServeError::Dir { path, source }
    };
    std::fs::create_dir_all(&s.state_dir).map_err(dir_err(&s.state_dir))?;
    let log = EventLog::open(&s.state_dir.join(EVENT_LOG)).map_err(dir_err(&s.state_dir))?;
    let tftp_root = Root::new(&s.tftp_root).map_err(dir_err(&s.tftp_root))?;
    let image = match &s.image {
        Some(dir) => {
            let signed = manifest::read(dir)?;
            let signer = s.public_key.unwrap_or(signed.statement.signer);
            let m = manifest::verify_image(
                dir,
                &signer,
                &s.scripts.network,
                nodus_identity::statement::unix_now(),
            )?;
            tracing::info!(farm = %m.farm, "image manifest verified");
            s.scripts.public_key = Some(nodus_identity::AccountId::from(signer).to_string());
            Some(Root::new(dir).map_err(dir_err(dir))?)
        }
        None => None,
    };
    let lease_file = s.state_dir.join(LEASE_FILE);
    let leases = Leases::load(&lease_file)?;
    let server = dhcp::Server::new(s.address, s.mode.clone(), s.boot.clone(), leases)
        .with_known_servers(s.known_dhcp_servers.clone());
    let full = matches!(s.mode, dhcp::Mode::Dhcp(_));
    let dhcp = DhcpService {
        server,
        interface: s.interface.clone(),
        lease_file: full.then_some(lease_file),
        binl: true,
        watch: true,
        log: log.clone(),
    };
    let sock = |what| move |source| ServeError::Socket { what, source };
    let tftp_sock = UdpSocket::bind(SocketAddr::from((s.address, s.tftp_port)))
        .await
        .map_err(sock("TFTP socket"))?;
    let http = TcpListener::bind(s.http)
        .await
        .map_err(sock("HTTP socket"))?;
    let started = Started {
        http: http.local_addr().map_err(sock("HTTP socket"))?,
        tftp: tftp_sock.local_addr().map_err(sock("TFTP socket"))?,
    };
    let tftp = TftpService::new(tftp_root.clone(), s.tftp_limits, log.clone());
    let http_svc = HttpService {
        scripts: s.scripts.clone(),
        image,
        ipxe: Some(tftp_root),
        log,
    };
    let dhcp_sockets = dhcp.bind().map_err(sock("DHCP socket"))?;
    ready(&started);
    tokio::select! {
        r = dhcp.serve_on(dhcp_sockets) => r.map_err(sock("DHCP")),
        r = tftp.serve(tftp_sock) => r.map_err(sock("TFTP")),
        r = http_svc.serve(http) => r.map_err(sock("HTTP")),
    }
}
