//! The data sources against a fake agent on loopback: QUIC with an authorized
//! key, an unknown key, a grant; the Unix socket; actions and their refusals;
//! reconnecting after the link drops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_agent::FakeAgent;
use nodus_console::model::{ActionState, Connection, Model, Update};
use nodus_console::source::{self, Endpoint, Remote, Tagged};
use nodus_identity::{AccountId, SecretKey};
use nodus_wire::console::{Action, Request, RequestId};
use nodus_wire::quic::Backoff;
use nodus_wire::{Client, Role};
use tokio::sync::mpsc;

struct Console {
    model: Model,
    updates: mpsc::Receiver<Tagged>,
    requests: mpsc::Sender<Request>,
    task: tokio::task::JoinHandle<()>,
}

fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
    }
}

impl Console {
    fn start(endpoint: Endpoint) -> Self {
        let (tx, updates) = mpsc::channel(1_024);
        let (requests, req_rx) = mpsc::channel(8);
        let task = tokio::spawn(source::run(endpoint, 0, tx, req_rx, fast()));
        Console {
            model: Model::default(),
            updates,
            requests,
            task,
        }
    }

    /// Applies updates until `pred` holds (bounded so a hang fails, not a timing
    /// assertion).
    async fn until(&mut self, what: &str, pred: impl Fn(&Model) -> bool) {
        let wait = async {
            while !pred(&self.model) {
                let (tab, u) = self.updates.recv().await.expect("source ended");
                assert_eq!(tab, 0);
                self.model.apply(u);
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("waiting for {what}: {:?}", self.model.connection));
    }

    async fn act(&mut self, action: Action, confirm: &str) -> ActionState {
        let id = RequestId::random();
        // As the App does: the request is pending from the moment it is sent.
        self.model
            .apply(Update::Action(nodus_console::model::ActionStatus {
                id: id.to_string(),
                what: action.name().to_owned(),
                state: ActionState::Pending,
            }));
        self.requests
            .send(Request {
                id,
                action,
                confirm: confirm.into(),
            })
            .await
            .unwrap();
        let hex = id.to_string();
        self.until("the response", |m| {
            m.action
                .as_ref()
                .is_some_and(|a| a.id == hex && a.state != ActionState::Pending)
        })
        .await;
        self.model.action.clone().unwrap().state
    }
}

fn remote(agent: &FakeAgent, addr: std::net::SocketAddr, key: &SecretKey) -> Endpoint {
    Endpoint::Remote(Box::new(Remote {
        node: agent.node_id,
        addr: addr.to_string(),
        client: Client::new(key).unwrap(),
        grant: None,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_key_gets_the_snapshot_with_history_then_live_samples() {
    let mut agent = FakeAgent::new(false);
    let key = SecretKey::generate().unwrap();
    agent.admit(key.public(), Role::Owner);
    let addr = agent.serve_quic("127.0.0.1:0".parse().unwrap());
    let mut c = Console::start(remote(&agent, addr, &key));
    c.until("connected", |m| m.connection == Connection::Connected)
        .await;
    assert_eq!(c.model.facts.node_id, agent.node_id.to_string());
    assert_eq!(c.model.session.as_ref().unwrap().role, Role::Owner);
    assert_eq!(
        c.model.session.as_ref().unwrap().confirm_token,
        agent.token()
    );
    // The backfill arrived with the snapshot: a full graph from the start.
    assert_eq!(c.model.series("cpu.busy_pct").unwrap().values.len(), 600);
    assert_eq!(c.model.inventory.cpu.logical, Some(16));
    let hello = agent.state.lock().unwrap().hellos[0].clone();
    assert_eq!(hello.backfill_s, 3_600);
    agent.sample("power.fake.wall.watts", 123.5);
    c.until("a live sample", |m| {
        m.latest("power.fake.wall.watts") == Some(123.5)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_refused_and_the_source_stops() {
    let mut agent = FakeAgent::new(false);
    let addr = agent.serve_quic("127.0.0.1:0".parse().unwrap());
    let stranger = SecretKey::generate().unwrap();
    let mut c = Console::start(remote(&agent, addr, &stranger));
    c.until("refused", |m| {
        matches!(m.connection, Connection::Refused(_))
    })
    .await;
    let Connection::Refused(why) = &c.model.connection else {
        unreachable!()
    };
    assert!(why.starts_with("Not authorized"), "{why}");
    // A refusal is final: the source ends instead of hammering the node.
    tokio::time::timeout(Duration::from_secs(10), &mut c.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_admits_an_operator_who_can_identify() {
    let mut agent = FakeAgent::new(false);
    let addr = agent.serve_quic("127.0.0.1:0".parse().unwrap());
    let owner = SecretKey::generate().unwrap();
    let operator = SecretKey::generate().unwrap();
    let grant = nodus_identity::grant::issue(
        &owner,
        "devnet",
        nodus_identity::grant::Grant {
            grantee: AccountId::from(operator.public()),
            role: Role::Operator,
            node: agent.node_id,
        },
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("op.grant");
    std::fs::write(&file, nodus_identity::grant::to_file_text(&grant).unwrap()).unwrap();
    let bytes = nodus_console::cli::read_grant(&file).unwrap();
    let Endpoint::Remote(mut r) = remote(&agent, addr, &operator) else {
        unreachable!()
    };
    r.grant = Some(Arc::new(bytes));
    let mut c = Console::start(Endpoint::Remote(r));
    c.until("connected", |m| m.connection == Connection::Connected)
        .await;
    assert_eq!(c.model.session.as_ref().unwrap().role, Role::Operator);
    let token = agent.token();
    assert!(matches!(
        c.act(Action::Identify, &token).await,
        ActionState::Done(_)
    ));
    // Observe mode refuses destructive actions; the words are the agent's.
    assert_eq!(
        c.act(Action::Reboot, &token).await,
        ActionState::Refused("observe mode: reboot is refused".into())
    );
    assert!(matches!(
        c.act(Action::Identify, "node1wrong").await,
        ActionState::Refused(m) if m.contains("confirmation")
    ));
    let audit = agent.state.lock().unwrap().audit.clone();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].1, Action::Identify);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_refused_identify() {
    let mut agent = FakeAgent::new(true);
    let key = SecretKey::generate().unwrap();
    agent.admit(key.public(), Role::Viewer);
    let addr = agent.serve_quic("127.0.0.1:0".parse().unwrap());
    let mut c = Console::start(remote(&agent, addr, &key));
    c.until("connected", |m| m.connection == Connection::Connected)
        .await;
    assert!(!c.model.session.as_ref().unwrap().may_act());
    let state = c.act(Action::Identify, &agent.token()).await;
    assert!(
        matches!(&state, ActionState::Refused(m) if m.contains("operator role")),
        "{state:?}"
    );
    assert!(agent.state.lock().unwrap().audit.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_drops_goes_stale_and_reconnects() {
    let mut agent = FakeAgent::new(false);
    let key = SecretKey::generate().unwrap();
    agent.admit(key.public(), Role::Owner);
    let addr = agent.serve_quic("127.0.0.1:0".parse().unwrap());
    let mut c = Console::start(remote(&agent, addr, &key));
    c.until("connected", |m| m.connection == Connection::Connected)
        .await;
    agent.stop_quic();
    c.until("stale", |m| {
        matches!(m.connection, Connection::Stale { .. })
    })
    .await;
    // The last state is kept while stale.
    assert_eq!(c.model.facts.node_id, agent.node_id.to_string());
    assert_eq!(c.model.inventory.cpu.logical, Some(16));
    // The old endpoint may hold the port for a moment after closing.
    while agent.try_serve_quic(addr).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.until("reconnected", |m| m.connection == Connection::Connected)
        .await;
    assert_eq!(agent.state.lock().unwrap().hellos.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_gives_the_local_role() {
    let mut agent = FakeAgent::new(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    agent.serve_unix(&path);
    let mut c = Console::start(Endpoint::Local {
        socket: path.clone(),
    });
    c.until("connected", |m| m.connection == Connection::Connected)
        .await;
    let uid = nix_uid();
    let role = c.model.session.as_ref().unwrap().role;
    assert_eq!(
        role,
        if uid == 0 {
            Role::Operator
        } else {
            Role::Viewer
        }
    );
    if uid == 0 {
        // Managed mode, operator, right token: reboot runs (in the fake, only
        // the audit entry).
        assert!(matches!(
            c.act(Action::Reboot, &agent.token()).await,
            ActionState::Done(_)
        ));
    }
}

fn nix_uid() -> u32 {
    // Our uid from /proc, to avoid a dependency for one call.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn updates_keep_what_was_asked() {
    let mut m = Model::default();
    m.apply(Update::Action(nodus_console::model::ActionStatus {
        id: "aa".into(),
        what: "identify node1x".into(),
        state: ActionState::Pending,
    }));
    m.apply(Update::Action(nodus_console::model::ActionStatus {
        id: "aa".into(),
        what: String::new(),
        state: ActionState::Done("ok".into()),
    }));
    assert_eq!(m.action.as_ref().unwrap().what, "identify node1x");
    // A late answer to an older request does not hide the newest.
    m.apply(Update::Action(nodus_console::model::ActionStatus {
        id: "bb".into(),
        what: String::new(),
        state: ActionState::Done("late".into()),
    }));
    assert_eq!(m.action.as_ref().unwrap().id, "aa");
}
