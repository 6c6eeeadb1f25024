//! A small agent that serves the console protocol (`nodus/console/1` and
//! `nodus/grant/1` over QUIC, and the same conversation over a Unix socket),
//! for testing the console's data sources without the real daemon. It keeps
//! the rules a console can observe: unknown keys refused in the handshake,
//! grants admitting a key, operator role for actions, the typed confirmation,
//! observe mode refusing destructive actions, idempotent request ids.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nodus_identity::{AccountId, NodeId, PublicKey, SecretKey};
use nodus_wire::console::{
    self as wire, Action, ClientMsg, Delta, GrantAnswer, GrantOffer, Outcome, RefusalCode, Request,
    RequestId, Response, ServerMsg,
};
use nodus_wire::framed::{FrameReader, FrameWriter};
use nodus_wire::quic::{RecvFrames, SendFrames};
use nodus_wire::unix::{PeerCred, UnixServer};
use nodus_wire::{Alpn, Connection, Refusal, Role, Server, ServerBuilder};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast;

/// What the fake agent remembers; tests read it.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Keys admitted on `nodus/console/1`, with their roles.
    pub(crate) keys: HashMap<PublicKey, Role>,
    /// Every action run, in order (replays are not run again).
    pub(crate) audit: Vec<(RequestId, Action, Role)>,
    /// First outcome per request id.
    pub(crate) outcomes: HashMap<RequestId, Outcome>,
    /// Every `Hello` received.
    pub(crate) hellos: Vec<wire::Hello>,
}

/// A running fake agent.
pub(crate) struct FakeAgent {
    pub(crate) node: SecretKey,
    pub(crate) node_id: NodeId,
    pub(crate) managed: bool,
    pub(crate) inventory_json: String,
    pub(crate) series: Vec<wire::Series>,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) deltas: broadcast::Sender<Delta>,
    server: Option<Server>,
    socket: Option<PathBuf>,
}

/// A conversation's receiving side.
enum SRead {
    Quic(RecvFrames),
    Local(FrameReader<OwnedReadHalf>),
}

impl SRead {
    async fn recv(&mut self) -> Option<ClientMsg> {
        match self {
            SRead::Quic(r) => r.recv().await.ok().flatten(),
            SRead::Local(r) => r.recv().await.ok().flatten(),
        }
    }
}

/// A conversation's sending side.
enum SWrite {
    Quic(SendFrames),
    Local(FrameWriter<OwnedWriteHalf>),
}

impl SWrite {
    async fn send(&mut self, msg: &ServerMsg) -> bool {
        match self {
            SWrite::Quic(w) => w.send(msg).await.is_ok(),
            SWrite::Local(w) => w.send(msg).await.is_ok(),
        }
    }
}

pub(crate) fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The fixture inventory of the console tests.
pub(crate) fn fixture_inventory() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory.json"),
    )
    .unwrap()
}

impl FakeAgent {
    /// A fake agent with the fixture inventory and one hour of CPU history.
    pub(crate) fn new(managed: bool) -> Self {
        let node = SecretKey::generate().unwrap();
        let node_id = NodeId::from(node.public());
        let now = now_unix_s();
        let series = vec![wire::Series {
            name: "cpu.busy_pct".into(),
            start_unix_s: now - 600,
            step_s: 1,
            values: (0..600).map(|i| Some((i % 50) as f32)).collect(),
        }];
        FakeAgent {
            node,
            node_id,
            managed,
            inventory_json: fixture_inventory(),
            series,
            state: Arc::default(),
            deltas: broadcast::channel(1_024).0,
            server: None,
            socket: None,
        }
    }

    /// Admits `key` with `role` on the console protocol.
    pub(crate) fn admit(&self, key: PublicKey, role: Role) {
        self.state.lock().unwrap().keys.insert(key, role);
    }

    /// The confirmation token (the node's short id).
    pub(crate) fn token(&self) -> String {
        self.node_id.short()
    }

    fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared {
            node_id: self.node_id,
            managed: self.managed,
            inventory_json: self.inventory_json.clone(),
            series: self.series.clone(),
            state: self.state.clone(),
            deltas: self.deltas.clone(),
        })
    }

    /// Serves QUIC on `addr` (use port 0); returns the bound address.
    pub(crate) fn serve_quic(&mut self, addr: SocketAddr) -> SocketAddr {
        self.try_serve_quic(addr).unwrap()
    }

    /// Serves QUIC on `addr`, or says why not.
    pub(crate) fn try_serve_quic(
        &mut self,
        addr: SocketAddr,
    ) -> Result<SocketAddr, nodus_wire::quic::ServerError> {
        let state = self.state.clone();
        let authorizer = move |peer: &PublicKey, alpn: Alpn| match alpn {
            Alpn::Grant => Ok(Role::Viewer),
            Alpn::Console => state
                .lock()
                .unwrap()
                .keys
                .get(peer)
                .copied()
                .ok_or(Refusal::UnknownKey),
            _ => Err(Refusal::WrongProtocol),
        };
        let shared = self.shared();
        let grant_state = self.state.clone();
        let node_id = self.node_id;
        let server = ServerBuilder::new(&self.node, Arc::new(authorizer))
            .route(Alpn::Console, move |conn: Connection| {
                let shared = shared.clone();
                async move {
                    let role = conn.role();
                    let Ok((send, recv)) = conn.accept_bi().await else {
                        return;
                    };
                    converse(shared, role, SRead::Quic(recv), SWrite::Quic(send)).await;
                    // Keep the connection until the client goes.
                    let _ = conn.closed().await;
                }
            })
            .route(Alpn::Grant, move |conn: Connection| {
                let state = grant_state.clone();
                let node_id = node_id;
                async move {
                    let Ok((mut send, mut recv)) = conn.accept_bi().await else {
                        return;
                    };
                    let Ok(Some(offer)) = recv.recv::<GrantOffer>().await else {
                        return;
                    };
                    let answer =
                        match nodus_identity::grant::SignedGrant::from_bytes(&offer.grant.0) {
                            Ok(g) => {
                                let p = &g.statement.payload;
                                if p.grantee != AccountId::from(*conn.peer()) {
                                    GrantAnswer::Rejected("grant is for another key".into())
                                } else if p.node != node_id {
                                    GrantAnswer::Rejected("grant is for another node".into())
                                } else {
                                    state.lock().unwrap().keys.insert(*conn.peer(), p.role);
                                    GrantAnswer::Accepted(p.role)
                                }
                            }
                            Err(e) => GrantAnswer::Rejected(e.to_string()),
                        };
                    let _ = send.send(&answer).await;
                    let _ = send.finish();
                    let _ = conn.closed().await;
                }
            })
            .bind(addr)?;
        let bound = server.local_addr();
        self.server = Some(server);
        Ok(bound)
    }

    /// Serves the Unix socket at `path`: root is operator, others viewers.
    pub(crate) fn serve_unix(&mut self, path: &Path) {
        let policy = |cred: &PeerCred| {
            Some(if cred.uid == 0 {
                Role::Operator
            } else {
                Role::Viewer
            })
        };
        let server = UnixServer::bind(path, Arc::new(policy)).unwrap();
        let shared = self.shared();
        tokio::spawn(async move {
            while let Ok(conn) = server.accept().await {
                let role = conn.role();
                let (r, w) = conn.into_split();
                tokio::spawn(converse(
                    shared.clone(),
                    role,
                    SRead::Local(r),
                    SWrite::Local(w),
                ));
            }
        });
        self.socket = Some(path.to_owned());
    }

    /// Stops serving QUIC (every connection closes).
    pub(crate) fn stop_quic(&mut self) {
        if let Some(s) = self.server.take() {
            s.close();
        }
    }

    /// Sends a sample batch to every console.
    pub(crate) fn sample(&self, name: &str, value: f64) {
        let _ = self.deltas.send(Delta::Samples {
            unix_s: now_unix_s(),
            values: vec![(name.to_owned(), value)],
        });
    }
}

struct Shared {
    node_id: NodeId,
    managed: bool,
    inventory_json: String,
    series: Vec<wire::Series>,
    state: Arc<Mutex<State>>,
    deltas: broadcast::Sender<Delta>,
}

async fn converse(shared: Arc<Shared>, role: Role, mut r: SRead, mut w: SWrite) {
    let Some(ClientMsg::Hello(hello)) = r.recv().await else {
        return;
    };
    shared.state.lock().unwrap().hellos.push(hello);
    let mut deltas = shared.deltas.subscribe();
    let welcome = wire::Welcome {
        version: wire::VERSION,
        capabilities: wire::capability::ACTIONS,
        role,
        node_id: shared.node_id.to_string(),
        confirm_token: shared.node_id.short(),
    };
    let now = now_unix_s();
    let snapshot = wire::Snapshot {
        facts: wire::NodeFacts {
            node_id: shared.node_id.to_string(),
            farm: None,
            mode: if shared.managed {
                wire::Mode::Managed
            } else {
                wire::Mode::Observe
            },
            agent_version: "0.0.0-fake".into(),
            uptime_s: 4_000,
            as_of_unix_s: now,
        },
        inventory_json: shared.inventory_json.clone(),
        used: wire::Units::default(),
        events: vec![wire::Event {
            seq: 1,
            unix_s: now,
            level: wire::Level::Info,
            source: "agent".into(),
            message: "fake agent started".into(),
        }],
        stake: wire::Stake::NotConnected,
        series: u32::try_from(shared.series.len()).unwrap(),
    };
    if !w.send(&ServerMsg::Welcome(welcome)).await
        || !w.send(&ServerMsg::Snapshot(Box::new(snapshot))).await
    {
        return;
    }
    for s in &shared.series {
        if !w.send(&ServerMsg::Series(s.clone())).await {
            return;
        }
    }
    loop {
        tokio::select! {
            msg = r.recv() => match msg {
                Some(ClientMsg::Request(req)) => {
                    let resp = answer(&shared, role, req);
                    if !w.send(&ServerMsg::Response(resp)).await {
                        return;
                    }
                }
                Some(ClientMsg::Hello(_)) | None => return,
            },
            d = deltas.recv() => match d {
                Ok(d) => {
                    if !w.send(&ServerMsg::Delta(d)).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

fn answer(shared: &Shared, role: Role, req: Request) -> Response {
    let mut st = shared.state.lock().unwrap();
    if let Some(first) = st.outcomes.get(&req.id) {
        return Response {
            id: req.id,
            replayed: true,
            outcome: first.clone(),
        };
    }
    let refuse = |code, message: String| Outcome::Refused { code, message };
    let outcome = if !role.covers(req.action.required_role()) {
        refuse(
            RefusalCode::NotAuthorized,
            format!(
                "{} needs the operator role; this key is {role}",
                req.action.name()
            ),
        )
    } else if req.confirm != shared.node_id.short() {
        refuse(
            RefusalCode::BadConfirmation,
            "confirmation token does not match this node's short id".into(),
        )
    } else if !shared.managed && req.action.is_destructive() {
        refuse(
            RefusalCode::ObserveMode,
            format!("observe mode: {} is refused", req.action.name()),
        )
    } else {
        st.audit.push((req.id, req.action.clone(), role));
        Outcome::Done(format!("{} started", req.action.name()))
    };
    st.outcomes.insert(req.id, outcome.clone());
    Response {
        id: req.id,
        replayed: false,
        outcome,
    }
}
