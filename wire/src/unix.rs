//! The console protocol over a Unix socket, for the console on the node's own
//! screen.
//!
//! Same frames as QUIC, but the peer is identified by the kernel instead of a key:
//! the server reads the connecting process's credentials with `SO_PEERCRED`
//! (unix(7)), which the kernel fills in at `connect()` and the peer cannot forge,
//! and a [`RolePolicy`] turns them into a [`Role`]. The server's first frame is a
//! [`Welcome`] carrying that role, as on QUIC.
//!
//! A Unix socket is one ordered byte stream, so unlike QUIC there are no parallel
//! streams: requests, responses and pushes share it, and the protocol on top (the
//! console's envelope) tags them. A malformed frame ends the connection (there are
//! no error codes on a Unix socket: the server just closes it).

use std::{
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use nix::{
    sys::socket::{getsockopt, sockopt::PeerCredentials},
    unistd::{Gid, Group, Uid, User},
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::net::{
    UnixListener, UnixStream,
    unix::{OwnedReadHalf, OwnedWriteHalf},
};

use crate::{
    DEFAULT_MAX_FRAME_LEN, Role,
    framed::{FrameReader, FrameWriter, FramedError},
    message::Welcome,
};

/// Errors of the Unix-socket transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnixError {
    /// Binding, accepting or connecting failed.
    #[error("Unix socket {path} failed")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a socket sits at the path; refusing to remove it.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// Reading the peer's credentials failed.
    #[error("Cannot read peer credentials")]
    PeerCred(#[source] nix::Error),
    /// The policy gave the peer no role.
    #[error("Peer uid {uid} has no role on this node")]
    Refused {
        /// The refused user id.
        uid: u32,
    },
    /// The named group does not exist.
    #[error("Group {0:?} does not exist")]
    NoSuchGroup(String),
    /// Looking up the user or group database failed.
    #[error("User database lookup failed")]
    Lookup(#[source] nix::Error),
    /// Reading or writing frames failed.
    #[error("Framed stream failed")]
    Framed(#[from] FramedError),
    /// The peer closed before the exchange was complete.
    #[error("Peer closed the connection early")]
    Ended,
}

/// The credentials the kernel recorded for the peer process at `connect()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Process id (at connect time; the process may have exited since).
    pub pid: i32,
}

impl PeerCred {
    /// Reads `SO_PEERCRED` from a connected Unix stream.
    pub fn of(stream: &UnixStream) -> Result<Self, UnixError> {
        let cred = getsockopt(stream, PeerCredentials).map_err(UnixError::PeerCred)?;
        Ok(Self {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        })
    }
}

/// Maps peer credentials to a role; `None` refuses the peer.
pub trait RolePolicy: Send + Sync + 'static {
    /// The role for `cred`, or `None` to refuse.
    fn role(&self, cred: &PeerCred) -> Option<Role>;
}

impl<F> RolePolicy for F
where
    F: Fn(&PeerCred) -> Option<Role> + Send + Sync + 'static,
{
    fn role(&self, cred: &PeerCred) -> Option<Role> {
        self(cred)
    }
}

/// The default policy: root and members of one configured group are operators,
/// everyone else who can open the socket is a viewer.
///
/// Membership is the peer's primary group or the group's member list in the group
/// database. Owner is never granted locally: owner actions (stake) need the
/// farmer's key, which a local login does not prove.
#[derive(Debug, Clone, Default)]
pub struct GroupPolicy {
    operator_gid: Option<u32>,
    operator_members: Vec<String>,
}

impl GroupPolicy {
    /// Only root is operator.
    pub fn root_only() -> Self {
        Self::default()
    }

    /// Root and members of the group named `name` are operators. The member list
    /// is read now; restart to pick up changes.
    pub fn with_group(name: &str) -> Result<Self, UnixError> {
        let group = Group::from_name(name)
            .map_err(UnixError::Lookup)?
            .ok_or_else(|| UnixError::NoSuchGroup(name.to_string()))?;
        Ok(Self {
            operator_gid: Some(group.gid.as_raw()),
            operator_members: group.mem,
        })
    }

    /// Root and members of group `gid` are operators.
    pub fn with_gid(gid: u32) -> Result<Self, UnixError> {
        let members = Group::from_gid(Gid::from_raw(gid))
            .map_err(UnixError::Lookup)?
            .map(|g| g.mem)
            .unwrap_or_default();
        Ok(Self {
            operator_gid: Some(gid),
            operator_members: members,
        })
    }

    fn in_operator_group(&self, cred: &PeerCred) -> bool {
        let Some(gid) = self.operator_gid else {
            return false;
        };
        if cred.gid == gid {
            return true;
        }
        match User::from_uid(Uid::from_raw(cred.uid)) {
            Ok(Some(user)) => {
                user.gid.as_raw() == gid || self.operator_members.contains(&user.name)
            }
            _ => false,
        }
    }
}

impl RolePolicy for GroupPolicy {
    fn role(&self, cred: &PeerCred) -> Option<Role> {
        if cred.uid == 0 || self.in_operator_group(cred) {
            Some(Role::Operator)
        } else {
            Some(Role::Viewer)
        }
    }
}

/// A listening Unix socket that admits peers through a [`RolePolicy`].
pub struct UnixServer {
    listener: UnixListener,
    path: PathBuf,
    policy: Arc<dyn RolePolicy>,
    max_frame_len: usize,
}

impl std::fmt::Debug for UnixServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl UnixServer {
    /// Binds `path`, replacing a stale socket left by a previous run (but never
    /// another kind of file). Who may connect is decided by the socket's
    /// permissions (the process umask); set them after binding if needed.
    pub fn bind(path: impl AsRef<Path>, policy: Arc<dyn RolePolicy>) -> Result<Self, UnixError> {
        let path = path.as_ref().to_path_buf();
        let sock_err = |source| UnixError::Socket {
            path: path.clone(),
            source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(&path).map_err(sock_err)?;
            }
            Ok(_) => return Err(UnixError::NotASocket(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(sock_err(e)),
        }
        let listener = UnixListener::bind(&path).map_err(sock_err)?;
        Ok(Self {
            listener,
            path,
            policy,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the next peer, maps its credentials to a role and sends the
    /// welcome. A refused peer is closed and reported as [`UnixError::Refused`];
    /// keep accepting after any error.
    pub async fn accept(&self) -> Result<LocalConnection, UnixError> {
        let (stream, _) = self
            .listener
            .accept()
            .await
            .map_err(|source| UnixError::Socket {
                path: self.path.clone(),
                source,
            })?;
        let cred = PeerCred::of(&stream)?;
        let Some(role) = self.policy.role(&cred) else {
            tracing::info!(uid = cred.uid, pid = cred.pid, "refused local console peer");
            return Err(UnixError::Refused { uid: cred.uid });
        };
        let mut conn = LocalConnection::new(stream, Some(cred), role, self.max_frame_len);
        conn.send(&Welcome { role }).await?;
        tracing::debug!(uid = cred.uid, pid = cred.pid, %role, "local console connected");
        Ok(conn)
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        // Best effort: a leftover socket is replaced by the next bind anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One framed Unix-socket connection, on either side.
#[derive(Debug)]
pub struct LocalConnection {
    reader: FrameReader<OwnedReadHalf>,
    writer: FrameWriter<OwnedWriteHalf>,
    peer: Option<PeerCred>,
    role: Role,
}

impl LocalConnection {
    fn new(stream: UnixStream, peer: Option<PeerCred>, role: Role, max_frame_len: usize) -> Self {
        let (r, w) = stream.into_split();
        Self {
            reader: FrameReader::new(r, max_frame_len),
            writer: FrameWriter::new(w, max_frame_len),
            peer,
            role,
        }
    }

    /// Connects to a [`UnixServer`] and reads its welcome.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, UnixError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| UnixError::Socket {
                path: path.to_path_buf(),
                source,
            })?;
        let mut conn = Self::new(stream, None, Role::Viewer, DEFAULT_MAX_FRAME_LEN);
        let welcome: Welcome = conn.recv().await?.ok_or(UnixError::Ended)?;
        conn.role = welcome.role;
        Ok(conn)
    }

    /// Server side: the peer's credentials. Client side: `None`.
    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.peer
    }

    /// The role the server's policy gave the client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Sends one message.
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), UnixError> {
        Ok(self.writer.send(msg).await?)
    }

    /// Receives one message; `None` when the peer closed cleanly.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, UnixError> {
        Ok(self.reader.recv().await?)
    }

    /// Splits into independent read and write halves, to receive pushes while
    /// sending requests.
    pub fn into_split(self) -> (FrameReader<OwnedReadHalf>, FrameWriter<OwnedWriteHalf>) {
        (self.reader, self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(uid: u32, gid: u32) -> PeerCred {
        PeerCred { uid, gid, pid: 1 }
    }

    #[test]
    fn root_is_operator_and_others_view() {
        let p = GroupPolicy::root_only();
        assert_eq!(p.role(&cred(0, 0)), Some(Role::Operator));
        assert_eq!(p.role(&cred(1000, 1000)), Some(Role::Viewer));
        // Group 0 without uid 0 is not root.
        assert_eq!(p.role(&cred(1000, 0)), Some(Role::Viewer));
    }

    #[test]
    fn the_operator_group_makes_operators() {
        let p = GroupPolicy {
            operator_gid: Some(5000),
            operator_members: vec![],
        };
        assert_eq!(p.role(&cred(1000, 5000)), Some(Role::Operator));
        assert_eq!(p.role(&cred(1000, 5001)), Some(Role::Viewer));
        assert_eq!(p.role(&cred(0, 1)), Some(Role::Operator));
    }

    #[test]
    fn a_missing_group_is_a_config_error() {
        assert!(matches!(
            GroupPolicy::with_group("no-such-group-nodus"),
            Err(UnixError::NoSuchGroup(_))
        ));
    }
}
