//! QUIC endpoints on loopback: authentication, ALPN routing, framing errors, load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use common::{Fixture, Req, Resp, key, loopback};
use nodus_identity::AccountId;
use nodus_wire::{
    Alpn, Blob, Client, ConnectError, ErrorCode, Role, ServerBuilder,
    quic::{Backoff, StreamError, connect_with_backoff},
    tls::{LocalIdentity, client_tls_config},
};

/// TLS alert numbers (RFC 8446 §6).
const ALERT_ACCESS_DENIED: u8 = 49;
const ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;

#[tokio::test]
async fn authorized_client_gets_answers() {
    let node = key(1);
    let console = key(2);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    fx.table
        .grant(console.public(), Alpn::Console, Role::Operator);

    let client = Client::new(&console).unwrap();
    let conn = client
        .connect(fx.addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    assert_eq!(
        *conn.peer(),
        node.public(),
        "client sees the pinned server key"
    );
    assert_eq!(conn.role(), Role::Operator, "role from the welcome");
    assert_eq!(conn.alpn(), Alpn::Console);

    let sum: Resp = conn.request(&Req::Add(40, 2)).await.unwrap();
    assert_eq!(sum, Resp::Sum(42));
    // The server's handler sees the client's verified key, protocol and role.
    let me: Resp = conn.request(&Req::WhoAmI).await.unwrap();
    assert_eq!(
        me,
        Resp::You {
            id: AccountId::from(console.public()).to_string(),
            alpn: "nodus/console/1".into(),
            role: Role::Operator,
        }
    );
    assert_eq!(fx.handled(), 1);
}

#[tokio::test]
async fn unknown_client_key_is_refused_in_the_handshake() {
    let node = key(1);
    let known = key(2);
    let stranger = key(3);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    fx.table.grant(known.public(), Alpn::Console, Role::Viewer);

    let err = Client::new(&stranger)
        .unwrap()
        .connect(fx.addr(), node.public(), Alpn::Console)
        .await
        .unwrap_err();
    match err {
        ConnectError::RefusedByServer { alert, .. } => assert_eq!(alert, ALERT_ACCESS_DENIED),
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    // The verifier asked the authorizer (for the negotiated protocol) and nothing
    // else did.
    assert_eq!(fx.table.calls.load(Ordering::SeqCst), 1);

    // A known client connects afterwards; only its connection reached a handler.
    let conn = Client::new(&known)
        .unwrap()
        .connect(fx.addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let _: Resp = conn.request(&Req::Add(1, 1)).await.unwrap();
    assert_eq!(
        fx.handled(),
        1,
        "the refused client never reached a handler"
    );
}

#[tokio::test]
async fn client_refuses_a_server_with_the_wrong_key() {
    let node = key(1);
    let impostor_expected = key(9);
    let console = key(2);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    fx.table
        .grant(console.public(), Alpn::Console, Role::Viewer);

    let err = Client::new(&console)
        .unwrap()
        .connect(fx.addr(), impostor_expected.public(), Alpn::Console)
        .await
        .unwrap_err();
    match &err {
        ConnectError::HandshakeFailed { reason, .. } => {
            assert!(reason.contains("PinMismatch"), "{reason}")
        }
        other => panic!("expected our side to fail the handshake, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn unknown_alpn_is_refused() {
    let node = key(1);
    let console = key(2);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    fx.table
        .grant(console.public(), Alpn::Console, Role::Viewer);
    fx.table.grant(console.public(), Alpn::Chain, Role::Viewer);

    // A protocol Nodus does not know at all, offered through a raw quinn client.
    let identity = LocalIdentity::new(&console).unwrap();
    let tls =
        client_tls_config(&identity, node.public(), vec![b"nodus/console/9".to_vec()]).unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client(loopback()).unwrap();
    let err = endpoint
        .connect_with(
            quinn::ClientConfig::new(Arc::new(crypto)),
            fx.addr(),
            nodus_wire::tls::SERVER_NAME,
        )
        .unwrap()
        .await
        .unwrap_err();
    match err {
        quinn::ConnectionError::ConnectionClosed(close) => {
            assert_eq!(
                u64::from(close.error_code),
                0x100 + u64::from(ALERT_NO_APPLICATION_PROTOCOL)
            );
        }
        other => panic!("expected no_application_protocol, got {other:?}"),
    }

    // A known protocol this server does not serve is refused the same way.
    let err = Client::new(&console)
        .unwrap()
        .connect(fx.addr(), node.public(), Alpn::Chain)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::RefusedByServer {
                alert: ALERT_NO_APPLICATION_PROTOCOL,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn alpn_routes_to_its_handler_and_authorizes_per_protocol() {
    let node = key(1);
    let tenant = key(4);
    let table = Arc::new(common::Table::default());
    // The tenant may use the workload protocol only.
    table.grant(tenant.public(), Alpn::Workload, Role::Tenant);
    let server = ServerBuilder::new(&node, table.clone())
        .route(Alpn::Console, |conn| async move {
            while let Ok(Some((_, reply))) = conn.accept_request::<()>().await {
                let _ = reply.respond("console").await;
            }
        })
        .route(Alpn::Workload, |conn| async move {
            while let Ok(Some((_, reply))) = conn.accept_request::<()>().await {
                let _ = reply.respond("workload").await;
            }
        })
        .bind(loopback())
        .unwrap();
    let client = Client::new(&tenant).unwrap();

    let conn = client
        .connect(server.local_addr(), node.public(), Alpn::Workload)
        .await
        .unwrap();
    assert_eq!(conn.role(), Role::Tenant);
    let who: String = conn.request(&()).await.unwrap();
    assert_eq!(who, "workload");

    // The key is known for *a* served protocol, but the handshake is judged for
    // the console, the protocol it negotiates: refused inside it.
    let err = client
        .connect(server.local_addr(), node.public(), Alpn::Console)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::RefusedByServer {
                alert: ALERT_ACCESS_DENIED,
                ..
            }
        ),
        "{err:?}"
    );
}

/// The agent's case: the grant protocol admits every key (a new operator presents
/// an owner-signed grant there), the console only known ones. An unknown key
/// offering the console must still fail the handshake itself.
#[tokio::test]
async fn unknown_key_is_refused_in_the_handshake_next_to_an_open_protocol() {
    let node = key(1);
    let known = key(2);
    let stranger = key(3);
    let known_key = known.public();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    let authorizer = move |peer: &nodus_identity::PublicKey, alpn: Alpn| {
        log.lock().unwrap().push(alpn);
        match alpn {
            Alpn::Grant => Ok(Role::Viewer),
            Alpn::Console if *peer == known_key => Ok(Role::Operator),
            _ => Err(nodus_wire::Refusal::UnknownKey),
        }
    };
    let console_handled = Arc::new(AtomicUsize::new(0));
    let grant_handled = Arc::new(AtomicUsize::new(0));
    let (c, g) = (console_handled.clone(), grant_handled.clone());
    let server = ServerBuilder::new(&node, Arc::new(authorizer))
        .route(Alpn::Console, move |conn| {
            c.fetch_add(1, Ordering::SeqCst);
            common::serve(conn)
        })
        .route(Alpn::Grant, move |conn| {
            g.fetch_add(1, Ordering::SeqCst);
            common::serve(conn)
        })
        .bind(loopback())
        .unwrap();
    let addr = server.local_addr();

    let stranger_client = Client::new(&stranger).unwrap();
    let err = stranger_client
        .connect(addr, node.public(), Alpn::Console)
        .await
        .unwrap_err();
    match &err {
        ConnectError::RefusedByServer { alert, .. } => assert_eq!(*alert, ALERT_ACCESS_DENIED),
        other => panic!("expected a refusal inside the TLS handshake, got {other:?}"),
    }
    assert!(!err.is_transient());
    // Asked once, in the handshake, about the console only: no connection existed
    // for the post-handshake check to look at.
    assert_eq!(*asked.lock().unwrap(), [Alpn::Console]);
    assert_eq!(console_handled.load(Ordering::SeqCst), 0);

    // The same key may present a grant.
    let conn = stranger_client
        .connect(addr, node.public(), Alpn::Grant)
        .await
        .unwrap();
    assert_eq!(conn.role(), Role::Viewer);
    assert_eq!(conn.alpn(), Alpn::Grant);
    let sum: Resp = conn.request(&Req::Add(2, 2)).await.unwrap();
    assert_eq!(sum, Resp::Sum(4));
    assert_eq!(grant_handled.load(Ordering::SeqCst), 1);

    // A known key gets the console.
    let conn = Client::new(&known)
        .unwrap()
        .connect(addr, node.public(), Alpn::Console)
        .await
        .unwrap();
    assert_eq!(conn.role(), Role::Operator);
    let sum: Resp = conn.request(&Req::Add(1, 2)).await.unwrap();
    assert_eq!(sum, Resp::Sum(3));
    assert_eq!(console_handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn garbage_on_one_connection_does_not_disturb_others() {
    let node = key(1);
    let good_key = key(2);
    let bad_key = key(3);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    fx.table
        .grant(good_key.public(), Alpn::Console, Role::Viewer);
    fx.table
        .grant(bad_key.public(), Alpn::Console, Role::Viewer);

    let good = Client::new(&good_key)
        .unwrap()
        .connect(fx.addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let bad_client = Client::new(&bad_key).unwrap();

    // Three kinds of garbage, each on its own connection, each with its code.
    let cases: [(&[u8], ErrorCode); 3] = [
        // A length prefix longer than 10 bytes.
        (&[0x80; 11], ErrorCode::MalformedFrame),
        // A prefix claiming 4 GiB.
        (&[0x80, 0x80, 0x80, 0x80, 0x10], ErrorCode::FrameTooLarge),
        // A well-framed body that is not a `Req` (variant 7 does not exist).
        (&[0x01, 0x07], ErrorCode::MalformedFrame),
    ];
    for (garbage, expected) in cases {
        let bad = bad_client
            .connect(fx.addr(), node.public(), Alpn::Console)
            .await
            .unwrap();
        let (mut send, _recv) = bad.quinn().open_bi().await.unwrap();
        send.write_all(garbage).await.unwrap();
        send.finish().unwrap();
        match bad.closed().await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(ErrorCode::from_varint(close.error_code), Some(expected));
            }
            other => panic!("expected an application close, got {other:?}"),
        }
        // The existing connection still works ...
        let sum: Resp = good.request(&Req::Add(2, 3)).await.unwrap();
        assert_eq!(sum, Resp::Sum(5));
    }
    // ... and so do new ones.
    let fresh = Client::new(&good_key)
        .unwrap()
        .connect(fx.addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let sum: Resp = fresh.request(&Req::Add(7, 8)).await.unwrap();
    assert_eq!(sum, Resp::Sum(15));
}

#[tokio::test]
async fn a_request_on_a_closed_connection_reports_the_peer_code() {
    let node = key(1);
    let console = key(2);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    fx.table
        .grant(console.public(), Alpn::Console, Role::Viewer);
    let conn = Client::new(&console)
        .unwrap()
        .connect(fx.addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let (mut send, _recv) = conn.quinn().open_bi().await.unwrap();
    send.write_all(&[0x80, 0x00]).await.unwrap(); // Non-minimal prefix.
    send.finish().unwrap();
    let _ = conn.closed().await;
    let err = conn.request::<_, Resp>(&Req::Add(1, 2)).await.unwrap_err();
    assert_eq!(
        err.peer_error_code(),
        Some(ErrorCode::MalformedFrame),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_clients_get_correct_answers() {
    const CLIENTS: u64 = 100;
    const REQUESTS: u64 = 5;
    let node = key(1);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    let keys: Vec<_> = (0..CLIENTS).map(|i| key(10 + i as u8)).collect();
    for k in &keys {
        fx.table.grant(k.public(), Alpn::Console, Role::Viewer);
    }
    let addr = fx.addr();
    let server_key = node.public();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, k) in keys.into_iter().enumerate() {
        tasks.spawn(async move {
            let client = Client::new(&k).unwrap();
            let conn = client
                .connect(addr, server_key, Alpn::Console)
                .await
                .unwrap();
            // Concurrent requests on one connection, each on its own stream.
            let mut reqs = tokio::task::JoinSet::new();
            for j in 0..REQUESTS {
                let conn = conn.clone();
                reqs.spawn(async move {
                    let a = i as u64 * 1000;
                    let r: Resp = conn.request(&Req::Add(a, j)).await.unwrap();
                    (a + j, r)
                });
            }
            let mut answered = 0;
            while let Some(r) = reqs.join_next().await {
                let (expected, got) = r.unwrap();
                assert_eq!(got, Resp::Sum(expected));
                answered += 1;
            }
            assert_eq!(answered, REQUESTS);
            let me: Resp = conn.request(&Req::WhoAmI).await.unwrap();
            let Resp::You { id, .. } = me else {
                panic!("wrong response {me:?}")
            };
            assert_eq!(id, AccountId::from(k.public()).to_string());
            i
        });
    }
    let mut done = Vec::new();
    while let Some(r) = tasks.join_next().await {
        done.push(r.unwrap());
    }
    done.sort_unstable();
    assert_eq!(done, (0..CLIENTS as usize).collect::<Vec<_>>());
    assert_eq!(fx.handled(), CLIENTS as usize);
}

#[tokio::test]
async fn server_push_arrives_on_uni_streams() {
    let node = key(1);
    let console = key(2);
    let table = Arc::new(common::Table::default());
    table.grant(console.public(), Alpn::Console, Role::Viewer);
    let server = ServerBuilder::new(&node, table)
        .route(Alpn::Console, |conn| async move {
            // One event push, then an ordered feed of three frames.
            let _ = conn.push(&"event".to_string()).await;
            if let Ok(mut feed) = conn.open_push_stream().await {
                for n in 0..3u32 {
                    let _ = feed.send(&n).await;
                }
                let _ = feed.finish();
            }
            let _ = conn.closed().await;
        })
        .bind(loopback())
        .unwrap();
    let conn = Client::new(&console)
        .unwrap()
        .connect(server.local_addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let event: String = conn.accept_push().await.unwrap().unwrap();
    assert_eq!(event, "event");
    let mut feed = conn.accept_push_stream().await.unwrap().unwrap();
    let mut got = Vec::new();
    while let Some(n) = feed.recv::<u32>().await.unwrap() {
        got.push(n);
    }
    assert_eq!(got, [0, 1, 2]);
}

#[tokio::test]
async fn large_blobs_cross_and_oversized_ones_are_refused_before_sending() {
    let node = key(1);
    let console = key(2);
    let table = Arc::new(common::Table::default());
    table.grant(console.public(), Alpn::Console, Role::Viewer);
    let server = ServerBuilder::new(&node, table)
        .route(Alpn::Console, |conn| async move {
            while let Ok(Some((blob, reply))) = conn.accept_request::<Blob>().await {
                let _ = reply.respond(&(blob.0.len() as u64)).await;
            }
        })
        .bind(loopback())
        .unwrap();
    let conn = Client::new(&console)
        .unwrap()
        .connect(server.local_addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let n: u64 = conn.request(&Blob(vec![5u8; 1_000_000])).await.unwrap();
    assert_eq!(n, 1_000_000);
    let err = conn
        .request::<_, u64>(&Blob(vec![5u8; 2 << 20]))
        .await
        .unwrap_err();
    assert!(matches!(err, StreamError::Frame(_)), "{err:?}");
    // The connection is still usable: the oversized message never left.
    let n: u64 = conn.request(&Blob(vec![1u8; 10])).await.unwrap();
    assert_eq!(n, 10);
}

#[tokio::test]
async fn reconnect_helper_stops_at_a_permanent_refusal() {
    let node = key(1);
    let stranger = key(3);
    let fx = Fixture::new(&node, &[Alpn::Console]);
    let client = Client::new(&stranger).unwrap();
    // Retrying forever would hang the test if a refusal counted as transient.
    let err = connect_with_backoff(
        &client,
        fx.addr(),
        node.public(),
        Alpn::Console,
        Backoff::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::RefusedByServer { .. }),
        "{err:?}"
    );
    assert_eq!(
        fx.table.calls.load(Ordering::SeqCst),
        1,
        "exactly one attempt"
    );
}
