//! The node runtime on loopback QUIC, in one process: clients submit and query
//! over `nodus/chain/1`, validators gossip, a stopped validator catches up, and a
//! restarted one resumes from its store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use nodus_identity::{AccountId, SecretKey};
use nodus_validator::consensus::EngineConfig;
use nodus_validator::mempool::{MempoolConfig, MempoolError};
use nodus_validator::node::config::{Endpoint, NodeConfig};
use nodus_validator::node::{self, MAX_FRAME_LEN, NodeHandle};
use nodus_validator::rpc::{Query, Request, Response, TxLocation};
use nodus_validator::state::Address;
use nodus_validator::storage::{DiskStore, MemStore, Store};
use nodus_validator::{Genesis, SignedTx, Tx, TxBody, TxError, TxStatus};
use nodus_wire::{Alpn, Client, Connection};

const CHAIN: &str = "nodetest";

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

fn genesis(validators: &[SecretKey], accounts: &[SecretKey]) -> Genesis {
    let accounts: Vec<String> = accounts
        .iter()
        .map(|k| {
            format!(
                r#"{{"id":"{}","balance":1000000000}}"#,
                AccountId::from(k.public())
            )
        })
        .collect();
    let vals: Vec<String> = validators
        .iter()
        .map(|k| format!(r#"{{"id":"{}","stake":1000}}"#, AccountId::from(k.public())))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Genesis::from_json(&format!(
        r#"{{"chain_id":"{CHAIN}","genesis_time":{now},"accounts":[{}],"validators":[{}]}}"#,
        accounts.join(","),
        vals.join(",")
    ))
    .unwrap()
}

fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config(listen: SocketAddr, peers: Vec<Endpoint>) -> NodeConfig {
    NodeConfig {
        keystore: "unused".into(),
        passphrase_file: None,
        genesis: "unused".into(),
        data_dir: "unused".into(),
        listen,
        peers,
        mempool: MempoolConfig::default(),
        max_block_txs: 1000,
        max_block_bytes: 1 << 20,
        consensus: EngineConfig {
            commit_delay_ms: 50,
            ..EngineConfig::default()
        },
    }
}

async fn client_conn(ep: &Endpoint) -> Connection {
    let mut client = Client::new(&SecretKey::generate().unwrap()).unwrap();
    client.set_max_frame_len(MAX_FRAME_LEN);
    client.connect(ep.addr, ep.key, Alpn::Chain).await.unwrap()
}

async fn wait_height(node: &NodeHandle, at_least: u64) {
    let mut head = node.head();
    tokio::time::timeout(Duration::from_secs(60), async {
        while head.borrow().height < at_least {
            head.changed().await.unwrap();
        }
    })
    .await
    .expect("height reached in time");
}

fn transfer(from: &SecretKey, nonce: u64, to: Address, amount: u128) -> SignedTx {
    Tx {
        nonce,
        fee: 1_000,
        body: TxBody::Transfer { to, amount },
    }
    .sign(CHAIN, from)
    .unwrap()
}

async fn submit(conn: &Connection, txs: Vec<SignedTx>) -> Vec<Result<[u8; 32], MempoolError>> {
    match conn.request(&Request::Submit(txs)).await.unwrap() {
        Response::Submitted(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

async fn included(conn: &Connection, id: [u8; 32]) -> u64 {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Response::Tx(TxLocation::Included { height, .. }) =
                conn.request(&Request::Query(Query::Tx(id))).await.unwrap()
            {
                return height;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("included in time")
}

async fn balance(conn: &Connection, a: Address) -> u128 {
    match conn
        .request(&Request::Query(Query::Account(a)))
        .await
        .unwrap()
    {
        Response::Account(info) => info.balance,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_validator_serves_clients_and_resumes_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let v = key(1);
    let alice = key(10);
    let bob = Address::from(key(11).public());
    let g = genesis(std::slice::from_ref(&v), std::slice::from_ref(&alice));
    let listen = free_addr();
    let store = DiskStore::open(&dir.path().join("chain.redb")).unwrap();
    let node = node::start(v.clone(), g.clone(), &config(listen, vec![]), store)
        .await
        .unwrap();
    let conn = client_conn(&node.endpoint()).await;

    // A good transfer, a replay of its nonce and a forged one.
    let good = transfer(&alice, 0, bob, 500);
    let mut forged = transfer(&alice, 1, bob, 1);
    forged.statement.payload.fee = 2_000;
    let r = submit(
        &conn,
        vec![good.clone(), transfer(&alice, 0, bob, 7), forged],
    )
    .await;
    let id = *r[0].as_ref().unwrap();
    assert_eq!(r[1], Err(MempoolError::NonceUsed { next: 1, found: 0 }));
    assert!(
        matches!(r[2], Err(MempoolError::Tx(TxError::Signature(_)))),
        "{r:?}"
    );
    let height = included(&conn, id).await;
    assert_eq!(balance(&conn, bob).await, 500);
    match conn
        .request(&Request::Query(Query::Block(height)))
        .await
        .unwrap()
    {
        Response::Block(Some((b, receipts))) => {
            assert_eq!(b.block.txs, vec![good]);
            assert_eq!(receipts.len(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    wait_height(&node, height + 1).await;
    node.shutdown().await.unwrap();

    // Restarted on the same file: the transfer is still there and blocks go on.
    let store = DiskStore::open(&dir.path().join("chain.redb")).unwrap();
    assert!(store.last_committed().unwrap().unwrap().0.height() > height);
    let node = node::start(v, g, &config(free_addr(), vec![]), store)
        .await
        .unwrap();
    let conn = client_conn(&node.endpoint()).await;
    assert_eq!(balance(&conn, bob).await, 500);
    // The transaction's result and the block's receipts came back from the
    // store, not from memory.
    match conn.request(&Request::Query(Query::Tx(id))).await.unwrap() {
        Response::Tx(location) => assert_eq!(
            location,
            TxLocation::Included {
                height,
                status: TxStatus::Applied
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
    match conn
        .request(&Request::Query(Query::Block(height)))
        .await
        .unwrap()
    {
        Response::Block(Some((_, receipts))) => assert_eq!(receipts, vec![TxStatus::Applied]),
        other => panic!("unexpected {other:?}"),
    }
    let h = node.head().borrow().height;
    wait_height(&node, h + 2).await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_gossip_transactions_and_a_stopped_one_catches_up() {
    let keys: Vec<SecretKey> = (1..=4).map(key).collect();
    let alice = key(10);
    let bob = Address::from(key(11).public());
    let g = genesis(&keys, std::slice::from_ref(&alice));
    let addrs: Vec<SocketAddr> = (0..4).map(|_| free_addr()).collect();
    let eps: Vec<Endpoint> = keys
        .iter()
        .zip(&addrs)
        .map(|(k, a)| Endpoint {
            key: k.public(),
            addr: *a,
        })
        .collect();
    let peers_of = |i: usize| -> Vec<Endpoint> {
        eps.iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| e.clone())
            .collect()
    };
    let stores: Vec<MemStore> = (0..4).map(|_| MemStore::new()).collect();
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(Some(
            node::start(
                keys[i].clone(),
                g.clone(),
                &config(addrs[i], peers_of(i)),
                stores[i].clone(),
            )
            .await
            .unwrap(),
        ));
    }
    wait_height(nodes[0].as_ref().unwrap(), 2).await;

    // Submitted to validator 1, included whoever proposes, visible at validator 2.
    let c1 = client_conn(&eps[1]).await;
    let c2 = client_conn(&eps[2]).await;
    let ids: Vec<[u8; 32]> = submit(&c1, (0..5).map(|n| transfer(&alice, n, bob, 10)).collect())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut last = 0;
    for id in ids {
        last = last.max(included(&c1, id).await);
    }
    wait_height(nodes[2].as_ref().unwrap(), last).await;
    assert_eq!(balance(&c2, bob).await, 50);

    // Validator 3 stops; the other three go on (more than 2/3 of the power).
    let stopped = nodes[3].take().unwrap();
    stopped.shutdown().await.unwrap();
    let h = nodes[0].as_ref().unwrap().head().borrow().height;
    wait_height(nodes[0].as_ref().unwrap(), h + 4).await;

    // Back on its store and its old address, it catches up with the others.
    // The stopped endpoint's socket can outlive `shutdown` for a moment (quinn
    // drains its connections), so binding the same port again is retried.
    let mut attempt = 0;
    let back = loop {
        match node::start(
            keys[3].clone(),
            g.clone(),
            &config(addrs[3], peers_of(3)),
            stores[3].clone(),
        )
        .await
        {
            Ok(n) => break n,
            Err(e) if attempt < 50 => {
                attempt += 1;
                eprintln!("restart attempt {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart failed 50 times: {e}"),
        }
    };
    let target = nodes[0].as_ref().unwrap().head().borrow().height;
    wait_height(&back, target).await;
    let c3 = client_conn(&eps[3]).await;
    assert_eq!(balance(&c3, bob).await, 50);
    back.shutdown().await.unwrap();
    for n in nodes.into_iter().flatten() {
        n.shutdown().await.unwrap();
    }
}
