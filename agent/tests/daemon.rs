//! The agent daemon end to end on loopback: real QUIC with raw keys, the real
//! Unix socket, a synthetic machine tree as the hardware, and the simulated power
//! backend (so a "reboot" is audited but does not reboot the test machine).
//!
//! Covers authorization per request from the verified key (owner, operator and
//! viewer grants, unknown keys), every action × role, observe mode, confirmation
//! tokens, idempotent request ids, the audit log and grant presentation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::PathBuf, sync::Arc, time::Duration};

use common::generate::{Spec, build};
use nodus_agent::{
    daemon::{
        Ready,
        audit::read_all,
        config::{Config, KernelParams, Overrides, PowerBackend, RawConfig},
    },
    inventory::Mode,
};
use nodus_identity::{
    AccountId, NodeId, Role, SecretKey,
    grant::{DiskApproval, Grant, approve_disk, issue},
};
use nodus_wire::{
    Alpn, Blob, Client,
    console::{
        Action, ClientMsg, GrantAnswer, GrantOffer, Hello, Outcome, RefusalCode, Request,
        RequestId, ServerMsg, VERSION, Welcome,
    },
    quic::{RecvFrames, SendFrames},
};
use tokio::sync::oneshot;

const NET: &str = nodus_identity::DEFAULT_NETWORK;

struct Agent {
    ready: Ready,
    root: tempfile::TempDir,
    state: tempfile::TempDir,
    owner: SecretKey,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    async fn start(mode: Mode) -> Self {
        let root = tempfile::tempdir().unwrap();
        build(
            root.path(),
            Spec {
                disks: 6,
                nics: 1,
                sensors: 2,
                cpus: 2,
            },
        );
        let state = tempfile::tempdir().unwrap();
        let owner = SecretKey::generate().unwrap();
        let raw = RawConfig {
            power_backend: Some(PowerBackend::Simulated),
            ..RawConfig::default()
        };
        let flags = Overrides {
            mode: Some(mode),
            listen: Some("127.0.0.1:0".into()),
            socket: Some(state.path().join("agent.sock")),
            dbus: Some("none".into()),
            owner: Some(AccountId::from(owner.public()).to_string()),
            root: Some(root.path().to_owned()),
            state_dir: Some(state.path().join("state")),
            key: None,
        };
        let config = Config::resolve(raw, KernelParams::default(), flags, false).unwrap();
        let running = common::spawn_agent(config, SecretKey::generate().unwrap()).await;
        let (ready, stop_tx, task) = (running.ready, running.stop, running.task);
        Self {
            ready,
            root,
            state,
            owner,
            stop: Some(stop_tx),
            task,
        }
    }

    fn node(&self) -> NodeId {
        self.ready.node_id
    }

    fn token(&self) -> String {
        self.ready.node_id.short()
    }

    fn audit(&self) -> Vec<nodus_agent::daemon::audit::Entry> {
        read_all(&self.state.path().join("state/audit.log")).unwrap()
    }

    fn grant_for(&self, to: &SecretKey, role: Role) -> Vec<u8> {
        let g = Grant {
            grantee: AccountId::from(to.public()),
            role,
            node: self.node(),
        };
        issue(&self.owner, NET, g, None)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

struct Console {
    _conn: nodus_wire::Connection,
    send: SendFrames,
    recv: RecvFrames,
    welcome: Welcome,
    snapshot: Box<nodus_wire::console::Snapshot>,
}

impl Console {
    async fn recv_until_response(&mut self) -> nodus_wire::console::Response {
        loop {
            let msg: ServerMsg = tokio::time::timeout(Duration::from_secs(30), self.recv.recv())
                .await
                .expect("no answer in 30 s")
                .unwrap()
                .expect("stream ended");
            if let ServerMsg::Response(r) = msg {
                return r;
            }
        }
    }

    async fn act(&mut self, id: RequestId, action: Action, confirm: &str) -> Outcome {
        self.send
            .send(&ClientMsg::Request(Request {
                id,
                action,
                confirm: confirm.into(),
            }))
            .await
            .unwrap();
        let r = self.recv_until_response().await;
        assert_eq!(r.id, id);
        r.outcome
    }
}

async fn present(agent: &Agent, key: &SecretKey, grant: Vec<u8>) -> GrantAnswer {
    let client = Client::new(key).unwrap();
    let conn = client
        .connect(agent.ready.quic, agent.node().key().to_owned(), Alpn::Grant)
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.send(&GrantOffer { grant: Blob(grant) }).await.unwrap();
    recv.recv::<GrantAnswer>().await.unwrap().unwrap()
}

async fn console(agent: &Agent, key: &SecretKey) -> Result<Console, String> {
    let s = common::open_console(&agent.ready, key, 3_600).await?;
    Ok(Console {
        _conn: s.conn,
        send: s.send,
        recv: s.recv,
        welcome: s.welcome,
        snapshot: s.snapshot,
    })
}

fn code(o: &Outcome) -> Option<RefusalCode> {
    match o {
        Outcome::Done(_) => None,
        Outcome::Refused { code, .. } => Some(*code),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_carries_the_machine_and_an_unknown_key_is_refused() {
    let agent = Agent::start(Mode::Observe).await;
    let owner = agent.owner.clone();
    let mut c = console(&agent, &owner).await.unwrap();
    assert_eq!(c.welcome.role, Role::Owner);
    assert_eq!(c.welcome.node_id, agent.node().to_string());
    assert_eq!(c.welcome.confirm_token, agent.token());
    // The inventory document is the agent's JSON contract.
    let snap = &c.snapshot;
    let inv: serde_json::Value = serde_json::from_str(&snap.inventory_json).unwrap();
    assert_eq!(inv["disks"].as_array().unwrap().len(), 6);
    assert_eq!(snap.facts.mode, nodus_wire::console::Mode::Observe);
    assert!(
        snap.events.iter().any(|e| e.message.contains("started")),
        "{:?}",
        snap.events
    );
    // Live telemetry follows as deltas.
    let delta = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let ServerMsg::Delta(nodus_wire::console::Delta::Samples { values, .. }) =
                c.recv.recv::<ServerMsg>().await.unwrap().unwrap()
            {
                return values;
            }
        }
    })
    .await
    .unwrap();
    assert!(!delta.is_empty());

    // An unknown key is refused inside the TLS handshake (alert 49,
    // access_denied), although the same endpoint admits every key on the grant
    // protocol: the handshake is judged for the console, the ALPN it negotiates.
    let stranger = SecretKey::generate().unwrap();
    let err = Client::new(&stranger)
        .unwrap()
        .connect(
            agent.ready.quic,
            agent.node().key().to_owned(),
            Alpn::Console,
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            nodus_wire::ConnectError::RefusedByServer { alert: 49, .. }
        ),
        "{err:?}"
    );
    // The same key may still open the grant protocol (to present a grant).
    let answer = present(&agent, &stranger, b"not a grant".to_vec()).await;
    assert!(matches!(answer, GrantAnswer::Rejected(_)), "{answer:?}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_for_every_role_in_managed_mode() {
    let agent = Agent::start(Mode::Managed).await;
    let operator = SecretKey::generate().unwrap();
    let viewer = SecretKey::generate().unwrap();
    assert_eq!(
        present(
            &agent,
            &operator,
            agent.grant_for(&operator, Role::Operator)
        )
        .await,
        GrantAnswer::Accepted(Role::Operator)
    );
    assert_eq!(
        present(&agent, &viewer, agent.grant_for(&viewer, Role::Viewer)).await,
        GrantAnswer::Accepted(Role::Viewer)
    );
    let token = agent.token();
    // sda..sdd are blank HDDs in the synthetic machine.
    let actions = |disk: &str| {
        vec![
            Action::Identify,
            Action::Reboot,
            Action::PowerOff,
            Action::ApproveDisk {
                disk: disk.into(),
                approval: None,
            },
        ]
    };
    let owner = agent.owner.clone();
    for (key, role, disk, allowed) in [
        (&owner, Role::Owner, "sda", true),
        (&operator, Role::Operator, "sdb", true),
        (&viewer, Role::Viewer, "sdc", false),
    ] {
        let mut c = console(&agent, key).await.unwrap();
        assert_eq!(c.welcome.role, role);
        for action in actions(disk) {
            let name = action.name();
            let out = c.act(RequestId::random(), action, &token).await;
            if allowed {
                assert_eq!(code(&out), None, "{role} {name}: {out:?}");
            } else {
                assert_eq!(
                    code(&out),
                    Some(RefusalCode::NotAuthorized),
                    "{role} {name}: {out:?}"
                );
            }
        }
        // A wrong confirmation token is refused for everyone allowed to act.
        if allowed {
            let out = c
                .act(RequestId::random(), Action::Reboot, "node1wrong")
                .await;
            assert_eq!(code(&out), Some(RefusalCode::BadConfirmation), "{out:?}");
        }
    }
    // The approved, wiped disks are remembered by serial and become eligible.
    let approved: Vec<String> = serde_json::from_slice(
        &std::fs::read(agent.state.path().join("state/approved-disks.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(approved.len(), 2, "{approved:?}");
    // Every request is in the audit log, refusals included, with who asked.
    let audit = agent.audit();
    assert_eq!(audit.len(), 4 * 3 + 2, "{audit:#?}");
    let viewer_id = AccountId::from(viewer.public()).to_string();
    assert!(
        audit
            .iter()
            .filter(|e| e.peer == viewer_id)
            .all(|e| e.result == "not_authorized" && e.role == "viewer")
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "approve-disk" && e.result == "done")
            .count(),
        2
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_refuses_destructive_actions_but_identifies() {
    let agent = Agent::start(Mode::Observe).await;
    let owner = agent.owner.clone();
    let mut c = console(&agent, &owner).await.unwrap();
    let token = agent.token();
    assert_eq!(
        code(&c.act(RequestId::random(), Action::Identify, &token).await),
        None
    );
    for action in [
        Action::Reboot,
        Action::PowerOff,
        Action::ApproveDisk {
            disk: "sda".into(),
            approval: None,
        },
    ] {
        let out = c.act(RequestId::random(), action, &token).await;
        let Outcome::Refused { code: why, message } = out else {
            panic!("allowed in observe mode");
        };
        assert_eq!(why, RefusalCode::ObserveMode);
        assert!(message.contains("observe mode"), "{message}");
    }
    // Nothing was wiped.
    assert!(
        !agent
            .state
            .path()
            .join("state/approved-disks.json")
            .exists()
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_data_needs_the_owner_and_request_ids_are_idempotent() {
    let agent = Agent::start(Mode::Managed).await;
    let operator = SecretKey::generate().unwrap();
    present(
        &agent,
        &operator,
        agent.grant_for(&operator, Role::Operator),
    )
    .await;
    let token = agent.token();
    let mut op = console(&agent, &operator).await.unwrap();
    // sde and sdf carry a GPT: data the node did not create.
    let dev = agent.root.path().join("dev/sde");
    let before = std::fs::read(&dev).unwrap_or_default();
    let out = op
        .act(
            RequestId::random(),
            Action::ApproveDisk {
                disk: "sde".into(),
                approval: None,
            },
            &token,
        )
        .await;
    let Outcome::Refused { code: why, message } = out else {
        panic!("operator wiped foreign data");
    };
    assert_eq!(why, RefusalCode::NotAuthorized);
    assert!(message.contains("owner's signed approval"), "{message}");
    assert!(message.contains("none was presented"), "{message}");
    assert_eq!(std::fs::read(&dev).unwrap_or_default(), before);

    // With the owner's signed approval for that serial, the operator may.
    let inv = agent_inventory(&agent).await;
    let serial = inv["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "sdf")
        .unwrap()["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let approval = approve_disk(
        &agent.owner,
        NET,
        DiskApproval {
            node: agent.node(),
            serial,
        },
        None,
    )
    .unwrap()
    .to_bytes()
    .unwrap();
    // sdf's approval does not cover sde, and the refusal says why.
    let out = op
        .act(
            RequestId::random(),
            Action::ApproveDisk {
                disk: "sde".into(),
                approval: Some(Blob(approval.clone())),
            },
            &token,
        )
        .await;
    let Outcome::Refused { message, .. } = out else {
        panic!("sdf's approval wiped sde");
    };
    assert!(message.contains("this disk's is"), "{message}");
    assert_eq!(std::fs::read(&dev).unwrap_or_default(), before);
    let id = RequestId::random();
    let wipe = Action::ApproveDisk {
        disk: "sdf".into(),
        approval: Some(Blob(approval)),
    };
    let out = op.act(id, wipe.clone(), &token).await;
    assert_eq!(code(&out), None, "{out:?}");
    // The GPT header at LBA 1 is gone.
    let mut head = vec![0u8; 1024];
    use std::io::Read as _;
    std::fs::File::open(agent.root.path().join("dev/sdf"))
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert!(head.iter().all(|b| *b == 0));

    // The same request id again: the first outcome, marked replayed, run once.
    op.send
        .send(&ClientMsg::Request(Request {
            id,
            action: wipe,
            confirm: token.clone(),
        }))
        .await
        .unwrap();
    let again = op.recv_until_response().await;
    assert!(again.replayed);
    assert_eq!(again.outcome, out);
    let done: Vec<_> = agent
        .audit()
        .into_iter()
        .filter(|e| e.request_id == id.to_string())
        .collect();
    assert_eq!(done.len(), 1, "{done:#?}");
    agent.stop().await;
}

async fn agent_inventory(agent: &Agent) -> serde_json::Value {
    let owner = agent.owner.clone();
    let client = Client::new(&owner).unwrap();
    let conn = client
        .connect(agent.ready.quic, *agent.node().key(), Alpn::Console)
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.send(&ClientMsg::Hello(Hello {
        version: VERSION,
        capabilities: 0,
        backfill_s: 0,
        client: "t".into(),
    }))
    .await
    .unwrap();
    let _w: ServerMsg = recv.recv().await.unwrap().unwrap();
    let Some(ServerMsg::Snapshot(s)) = recv.recv().await.unwrap() else {
        panic!("no snapshot")
    };
    serde_json::from_str(&s.inventory_json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grants_are_rejected_and_good_ones_persist() {
    let agent = Agent::start(Mode::Observe).await;
    let op = SecretKey::generate().unwrap();
    let thief = SecretKey::generate().unwrap();
    // Someone else's grant, and garbage.
    let answer = present(&agent, &thief, agent.grant_for(&op, Role::Operator)).await;
    assert!(
        matches!(answer, GrantAnswer::Rejected(ref m) if m.contains("presented by")),
        "{answer:?}"
    );
    let answer = present(&agent, &thief, vec![1, 2, 3]).await;
    assert!(matches!(answer, GrantAnswer::Rejected(_)), "{answer:?}");
    assert!(console(&agent, &thief).await.is_err());
    // A grant signed by a key that is not the owner.
    let fake_owner = SecretKey::generate().unwrap();
    let forged = issue(
        &fake_owner,
        NET,
        Grant {
            grantee: AccountId::from(thief.public()),
            role: Role::Operator,
            node: agent.node(),
        },
        None,
    )
    .unwrap()
    .to_bytes()
    .unwrap();
    assert!(matches!(
        present(&agent, &thief, forged).await,
        GrantAnswer::Rejected(_)
    ));
    // The real one.
    assert_eq!(
        present(&agent, &op, agent.grant_for(&op, Role::Operator)).await,
        GrantAnswer::Accepted(Role::Operator)
    );
    let c = console(&agent, &op).await.unwrap();
    assert_eq!(c.welcome.role, Role::Operator);
    let stored: Vec<PathBuf> = std::fs::read_dir(agent.state.path().join("state/grants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_speaks_the_same_protocol_with_credential_roles() {
    let agent = Agent::start(Mode::Observe).await;
    let path = agent.ready.socket.clone().unwrap();
    let conn = nodus_wire::unix::LocalConnection::connect(&path)
        .await
        .unwrap();
    let (mut reader, mut writer) = conn.into_split();
    writer
        .send(&ClientMsg::Hello(Hello {
            version: VERSION,
            capabilities: 0,
            backfill_s: 60,
            client: "t".into(),
        }))
        .await
        .unwrap();
    let Some(ServerMsg::Welcome(w)) = reader.recv().await.unwrap() else {
        panic!("no welcome");
    };
    // Tests run as root here: root is an operator locally, never the owner.
    let expected = if nix::unistd::Uid::effective().is_root() {
        Role::Operator
    } else {
        Role::Viewer
    };
    assert_eq!(w.role, expected);
    let id = RequestId::random();
    writer
        .send(&ClientMsg::Request(Request {
            id,
            action: Action::Identify,
            confirm: agent.token(),
        }))
        .await
        .unwrap();
    let resp = loop {
        if let Some(ServerMsg::Response(r)) = reader.recv().await.unwrap() {
            break r;
        }
    };
    if expected == Role::Operator {
        assert_eq!(code(&resp.outcome), None, "{resp:?}");
        let audit = agent.audit();
        assert!(
            audit
                .iter()
                .any(|e| e.peer == "uid=0" && e.action == "identify")
        );
    } else {
        assert_eq!(code(&resp.outcome), Some(RefusalCode::NotAuthorized));
    }
    // A client that speaks another version is told so and let go.
    let conn = nodus_wire::unix::LocalConnection::connect(&path)
        .await
        .unwrap();
    let (mut reader, mut writer) = conn.into_split();
    writer
        .send(&ClientMsg::Hello(Hello {
            version: VERSION + 1,
            capabilities: 0,
            backfill_s: 0,
            client: "t".into(),
        }))
        .await
        .unwrap();
    let Some(ServerMsg::Goodbye(why)) = reader.recv().await.unwrap() else {
        panic!("no goodbye");
    };
    assert!(why.contains("protocol"), "{why}");
    let _ = Arc::new(());
    agent.stop().await;
}
