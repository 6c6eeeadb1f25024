//! The agent's chain client against a real one-validator chain on loopback: the
//! farmer creates a farm and signs an approval; the agent registers the node
//! with it, reports signed uptime, and the console protocol carries the
//! farmer's stake as read from the chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{net::SocketAddr, time::Duration};

use common::generate::{Spec, build};
use nodus_agent::{
    daemon::config::{Config, KernelParams, Overrides, PowerBackend, RawConfig},
    inventory::Mode,
};
use nodus_identity::{AccountId, SecretKey, Statement, statement::purpose};
use nodus_validator::{
    Genesis, Tx, TxBody,
    consensus::EngineConfig,
    mempool::MempoolConfig,
    node::{self, MAX_FRAME_LEN, config::NodeConfig},
    rpc::{Query, Request, Response},
    state::{Address, farm::FarmApproval},
    storage::MemStore,
};
use nodus_wire::{
    Alpn, Client,
    console::{Delta, ServerMsg, Stake, ValidatorStatus},
};

const CHAIN: &str = "agentchain";

fn genesis(validator: &SecretKey, funded: &[&SecretKey]) -> Genesis {
    let accounts: Vec<String> = funded
        .iter()
        .map(|k| {
            format!(
                r#"{{"id":"{}","balance":1000000000}}"#,
                AccountId::from(k.public())
            )
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Genesis::from_json(&format!(
        r#"{{"chain_id":"{CHAIN}","genesis_time":{now},"accounts":[{}],"validators":[{{"id":"{}","stake":1000}}]}}"#,
        accounts.join(","),
        AccountId::from(validator.public())
    ))
    .unwrap()
}

fn free_addr() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn query(conn: &nodus_wire::Connection, q: Query) -> Response {
    conn.request::<_, Response>(&Request::Query(q))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_registers_reports_uptime_and_shows_stake() {
    let validator = SecretKey::generate().unwrap();
    let farmer = SecretKey::generate().unwrap();
    let node_key = SecretKey::generate().unwrap();
    let g = genesis(&validator, &[&farmer, &node_key]);
    let cfg = NodeConfig {
        keystore: "unused".into(),
        passphrase_file: None,
        genesis: "unused".into(),
        data_dir: "unused".into(),
        listen: free_addr(),
        peers: vec![],
        mempool: MempoolConfig::default(),
        max_block_txs: 1000,
        max_block_bytes: 1 << 20,
        consensus: EngineConfig {
            commit_delay_ms: 50,
            ..EngineConfig::default()
        },
    };
    let chain = node::start(validator.clone(), g, &cfg, MemStore::new())
        .await
        .unwrap();
    let endpoint = chain.endpoint();
    let mut client = Client::new(&farmer).unwrap();
    client.set_max_frame_len(MAX_FRAME_LEN);
    let conn = client
        .connect(endpoint.addr, endpoint.key, Alpn::Chain)
        .await
        .unwrap();

    // The farmer creates farm 1 and approves the node for it, offline.
    let tx = Tx {
        nonce: 0,
        fee: 1_000,
        body: TxBody::RegisterFarm {
            name: "rack".into(),
        },
    }
    .sign(CHAIN, &farmer)
    .unwrap();
    let r = conn
        .request::<_, Response>(&Request::Submit(vec![tx]))
        .await
        .unwrap();
    assert!(
        matches!(r, Response::Submitted(ref v) if v[0].is_ok()),
        "{r:?}"
    );
    tokio::time::timeout(Duration::from_secs(60), async {
        while !matches!(query(&conn, Query::Farm(1)).await, Response::Farm(Some(_))) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("farm created");
    let me = Address::from(node_key.public());
    let approval = Statement::new(
        purpose::FARM_APPROVAL,
        CHAIN,
        farmer.public(),
        None,
        FarmApproval { farm: 1, node: me },
    )
    .sign(&farmer)
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let approval_file = dir.path().join("approval.json");
    std::fs::write(&approval_file, serde_json::to_string(&approval).unwrap()).unwrap();

    // The agent, told where the chain is.
    build(
        &dir.path().join("root"),
        Spec {
            disks: 2,
            nics: 1,
            sensors: 1,
            cpus: 2,
        },
    );
    let raw = RawConfig {
        power_backend: Some(PowerBackend::Simulated),
        chain: Some(vec![format!(
            "{}@{}",
            AccountId::from(endpoint.key),
            endpoint.addr
        )]),
        chain_approval: Some(approval_file),
        uptime_report_s: Some(1),
        ..RawConfig::default()
    };
    let flags = Overrides {
        mode: Some(Mode::Observe),
        listen: Some("127.0.0.1:0".into()),
        socket: Some(std::path::PathBuf::from("none")),
        dbus: Some("none".into()),
        owner: Some(AccountId::from(farmer.public()).to_string()),
        root: Some(dir.path().join("root")),
        state_dir: Some(dir.path().join("state")),
        key: None,
    };
    let config = Config::resolve(raw, KernelParams::default(), flags, false).unwrap();
    let agent = common::spawn_agent(config, node_key.clone()).await;
    let ready = agent.ready.clone();

    // Registered with the farm's approval, then uptime reports land.
    let report = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            if let Response::Node(Some(n)) = query(&conn, Query::Node(me)).await
                && let Some(r) = n.last_report
            {
                assert_eq!(n.farm, 1);
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("node registered and reporting");
    assert!(report.uptime_secs > 0);

    // The console sees the farmer's stake as the chain has it.
    let mut c = common::open_console(&ready, &farmer, 0).await.unwrap();
    let first = c.snapshot.stake.clone();
    let stake = tokio::time::timeout(Duration::from_secs(60), async {
        let mut stake = first;
        loop {
            if let Stake::Known(info) = stake {
                return info;
            }
            let msg: ServerMsg = c.recv.recv().await.unwrap().unwrap();
            stake = match msg {
                ServerMsg::Delta(Delta::Stake(s)) => s,
                _ => continue,
            };
        }
    })
    .await
    .expect("stake known");
    let Response::Account(acct) =
        query(&conn, Query::Account(Address::from(farmer.public()))).await
    else {
        panic!("no account");
    };
    assert_eq!(stake.balance, acct.balance);
    assert_eq!(stake.validator, ValidatorStatus::None);
    let _ = agent.stop.send(());
    agent.task.await.unwrap();
    chain.shutdown().await.unwrap();
}
