//! The Unix-socket transport: roles from real kernel peer credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use nix::unistd::Uid;
use nodus_wire::{
    Role,
    unix::{GroupPolicy, LocalConnection, PeerCred, UnixError, UnixServer},
};

/// Set in the environment of the child process that [`child_connects`] runs.
const CHILD_SOCKET_ENV: &str = "NODUS_WIRE_TEST_CHILD_SOCKET";
/// An unprivileged uid/gid for the child (`nobody`/`nogroup` on Debian).
const CHILD_UID: u32 = 65534;
const CHILD_GID: u32 = 65534;
/// A group id that no user has as primary group, to test group-based operators.
const OPERATOR_GID: u32 = 4242;

/// A socket in a directory any uid may enter, so the dropped-privilege child can
/// reach it.
fn socket_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("console.sock");
    (dir, path)
}

fn open_to_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// Runs this test binary again as `uid`/`gid`, executing only
/// [`child_connects`], which connects to `path`, reports the role it was
/// welcomed with, and exits.
///
/// The binary is copied next to the socket first: the build directory may sit
/// under a home directory the unprivileged uid cannot enter (`/root` is 0700).
fn spawn_child(path: &Path, uid: u32, gid: u32) -> std::process::Child {
    let exe = path.with_file_name("child-helper");
    if !exe.exists() {
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Command::new(exe)
        .args([
            "--exact",
            "child_connects",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_SOCKET_ENV, path)
        .uid(uid)
        .gid(gid)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The child half of the credential tests; a no-op in a normal test run.
#[tokio::test]
async fn child_connects() {
    let Some(path) = std::env::var_os(CHILD_SOCKET_ENV) else {
        return;
    };
    let mut conn = LocalConnection::connect(&path).await.unwrap();
    let role = conn.role();
    conn.send(&role).await.unwrap();
    // Wait for the server to close, so it reads our credentials while we live.
    assert_eq!(conn.recv::<()>().await.unwrap(), None);
}

#[tokio::test]
async fn root_peer_is_operator_from_real_credentials() {
    let (_dir, path) = socket_path();
    let server = UnixServer::bind(&path, Arc::new(GroupPolicy::root_only())).unwrap();
    let client = tokio::spawn({
        let path = path.clone();
        async move {
            let mut conn = LocalConnection::connect(&path).await.unwrap();
            let role = conn.role();
            conn.send(&"ping".to_string()).await.unwrap();
            let pong: String = conn.recv().await.unwrap().unwrap();
            (role, pong)
        }
    });
    let mut conn = server.accept().await.unwrap();
    let cred = conn.peer_cred().unwrap();
    let me = Uid::effective().as_raw();
    assert_eq!(cred.uid, me);
    assert_eq!(cred.pid, std::process::id() as i32);
    let expected = if me == 0 {
        Role::Operator
    } else {
        Role::Viewer
    };
    assert_eq!(conn.role(), expected);
    let ping: String = conn.recv().await.unwrap().unwrap();
    assert_eq!(ping, "ping");
    conn.send(&"pong".to_string()).await.unwrap();
    let (client_role, pong) = client.await.unwrap();
    assert_eq!(
        client_role, expected,
        "the client learns its role from the welcome"
    );
    assert_eq!(pong, "pong");
}

#[tokio::test]
async fn unprivileged_peers_map_by_uid_and_group() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: dropping to another uid needs root");
        return;
    }
    let (_dir, path) = socket_path();
    let server = UnixServer::bind(
        &path,
        Arc::new(GroupPolicy::with_gid(OPERATOR_GID).unwrap()),
    )
    .unwrap();
    open_to_all(&path);

    // nobody/nogroup: a viewer.
    let mut child = spawn_child(&path, CHILD_UID, CHILD_GID);
    let mut conn = server.accept().await.unwrap();
    assert_eq!(
        conn.peer_cred().map(|c| (c.uid, c.gid)),
        Some((CHILD_UID, CHILD_GID))
    );
    assert_eq!(conn.role(), Role::Viewer);
    let told: Role = conn.recv().await.unwrap().unwrap();
    assert_eq!(told, Role::Viewer, "the child was welcomed as viewer");
    drop(conn);
    assert!(child.wait().unwrap().success());

    // Same uid, but running with the operator group: an operator.
    let mut child = spawn_child(&path, CHILD_UID, OPERATOR_GID);
    let mut conn = server.accept().await.unwrap();
    assert_eq!(conn.peer_cred().map(|c| c.gid), Some(OPERATOR_GID));
    assert_eq!(conn.role(), Role::Operator);
    let told: Role = conn.recv().await.unwrap().unwrap();
    assert_eq!(told, Role::Operator);
    drop(conn);
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn a_refusing_policy_closes_the_connection() {
    let (_dir, path) = socket_path();
    let refuse_all = |_: &PeerCred| None;
    let server = UnixServer::bind(&path, Arc::new(refuse_all)).unwrap();
    let client = tokio::spawn({
        let path = path.clone();
        async move { LocalConnection::connect(&path).await }
    });
    let err = server.accept().await.unwrap_err();
    assert!(matches!(err, UnixError::Refused { .. }), "{err:?}");
    let client_err = client.await.unwrap().unwrap_err();
    assert!(matches!(client_err, UnixError::Ended), "{client_err:?}");
}

#[tokio::test]
async fn garbage_ends_one_local_connection_only() {
    use tokio::io::AsyncWriteExt;

    let (_dir, path) = socket_path();
    let server = UnixServer::bind(&path, Arc::new(GroupPolicy::root_only())).unwrap();

    let good = tokio::spawn({
        let path = path.clone();
        async move { LocalConnection::connect(&path).await.unwrap() }
    });
    let mut good_server = server.accept().await.unwrap();
    let mut good = good.await.unwrap();

    // A raw client that sends a 4 GiB length prefix after the welcome.
    let raw = tokio::spawn({
        let path = path.clone();
        async move {
            let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
            s.write_all(&[0x80, 0x80, 0x80, 0x80, 0x10]).await.unwrap();
            s
        }
    });
    let mut bad_server = server.accept().await.unwrap();
    let _raw = raw.await.unwrap();
    let err = bad_server.recv::<String>().await.unwrap_err();
    assert!(
        matches!(
            err,
            UnixError::Framed(nodus_wire::framed::FramedError::Frame(
                nodus_wire::FrameError::TooLarge { .. }
            ))
        ),
        "{err:?}"
    );
    drop(bad_server);

    good.send(&"still here".to_string()).await.unwrap();
    let got: String = good_server.recv().await.unwrap().unwrap();
    assert_eq!(got, "still here");
}

#[test]
fn bind_refuses_to_replace_a_regular_file() {
    let (_dir, path) = socket_path();
    std::fs::write(&path, b"not a socket").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(async { UnixServer::bind(&path, Arc::new(GroupPolicy::root_only())) })
        .unwrap_err();
    assert!(matches!(err, UnixError::NotASocket(_)), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}
