//! Shared fixtures for the wire integration tests: keys, an authorizer backed by
//! a key set, and a small request/response protocol.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use nodus_identity::{AccountId, PublicKey, SecretKey};
use nodus_wire::{Alpn, Authorizer, Connection, Refusal, Role, Server, ServerBuilder};
use serde::{Deserialize, Serialize};

/// A deterministic key, so failures are reproducible.
pub fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

/// The test protocol's requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Req {
    /// Add two numbers.
    Add(u64, u64),
    /// Who am I, according to the server?
    WhoAmI,
}

/// The test protocol's responses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Resp {
    /// The sum.
    Sum(u64),
    /// The caller's account id as the server verified it, the protocol and role.
    You {
        id: String,
        alpn: String,
        role: Role,
    },
}

/// An authorizer over a fixed table of (key, protocol) → role, that counts calls.
#[derive(Default)]
pub struct Table {
    pub grants: Mutex<HashMap<(PublicKey, Alpn), Role>>,
    pub calls: AtomicUsize,
}

impl Table {
    pub fn grant(&self, key: PublicKey, alpn: Alpn, role: Role) {
        self.grants.lock().unwrap().insert((key, alpn), role);
    }
}

impl Authorizer for Table {
    fn authorize(&self, peer: &PublicKey, alpn: Alpn) -> Result<Role, Refusal> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.grants
            .lock()
            .unwrap()
            .get(&(*peer, alpn))
            .copied()
            .ok_or(Refusal::UnknownKey)
    }
}

/// Serves the test protocol on one connection until it ends.
pub async fn serve(conn: Connection) {
    let id = AccountId::from(*conn.peer()).to_string();
    let alpn = conn.alpn().to_string();
    let role = conn.role();
    let _ = conn
        .serve_requests(move |req: Req| {
            let resp = match req {
                Req::Add(a, b) => Resp::Sum(a.wrapping_add(b)),
                Req::WhoAmI => Resp::You {
                    id: id.clone(),
                    alpn: alpn.clone(),
                    role,
                },
            };
            async move { resp }
        })
        .await;
}

/// A server on loopback with `node` as its key serving `alpns` with [`serve`],
/// counting connections handed to handlers.
pub struct Fixture {
    pub server: Server,
    pub table: Arc<Table>,
    pub handled: Arc<AtomicUsize>,
}

impl Fixture {
    pub fn new(node: &SecretKey, alpns: &[Alpn]) -> Self {
        let table = Arc::new(Table::default());
        let handled = Arc::new(AtomicUsize::new(0));
        let mut builder = ServerBuilder::new(node, table.clone());
        for &alpn in alpns {
            let handled = handled.clone();
            builder = builder.route(alpn, move |conn| {
                handled.fetch_add(1, Ordering::SeqCst);
                serve(conn)
            });
        }
        let server = builder.bind(loopback()).unwrap();
        Self {
            server,
            table,
            handled,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
