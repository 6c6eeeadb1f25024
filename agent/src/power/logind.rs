//! Rebooting and powering off the node: through systemd-logind when it runs,
//! otherwise by `sync()` and `reboot(2)`.
//!
//! Going through logind lets it run the shutdown inhibitors and stop services in
//! order; the raw syscall is for nodes where `nodus` is PID 1 and there is no
//! logind. This module only carries the request out: who may ask, the
//! confirmation token and the audit log are the console protocol's business.
//!
//! - [`PowerControl`]: the two actions, object-safe so the daemon holds a
//!   `Box<dyn PowerControl>`.
//! - [`Logind`]: `org.freedesktop.login1.Manager` over zbus. The proxy is written
//!   here because the `logind-zbus` crate pins an older zbus.
//! - [`choose`] decides between them, once, at start; [`Backend::into_control`]
//!   builds the chosen one.

use futures_util::future::BoxFuture;
use zbus::{Connection, fdo::DBusProxy, names::BusName, proxy};

/// logind's bus name.
pub const LOGIND_NAME: &str = "org.freedesktop.login1";
/// logind's manager object.
pub const LOGIND_PATH: &str = "/org/freedesktop/login1";

/// Why a power action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PowerError {
    /// logind refused or failed the call (e.g. an inhibitor, or no permission).
    #[error("logind refused {action}")]
    Logind {
        /// `Reboot` or `PowerOff`.
        action: &'static str,
        /// The D-Bus error.
        #[source]
        source: zbus::Error,
    },
    /// `reboot(2)` returned (it only returns on failure, e.g. without
    /// `CAP_SYS_BOOT`).
    #[error("reboot(2) failed")]
    Syscall(#[source] nix::Error),
}

/// Reboots or powers off the machine.
pub trait PowerControl: Send + Sync {
    /// Reboots. With logind, returns once logind accepted the request; with the
    /// syscall, returns only on failure.
    fn reboot(&self) -> BoxFuture<'_, Result<(), PowerError>>;
    /// Powers off; returns as [`PowerControl::reboot`] does.
    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>>;
}

#[proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    /// `Reboot(b interactive)`.
    fn reboot(&self, interactive: bool) -> zbus::Result<()>;
    /// `PowerOff(b interactive)`.
    fn power_off(&self, interactive: bool) -> zbus::Result<()>;
}

/// Power actions through logind's `org.freedesktop.login1.Manager`.
pub struct Logind {
    conn: Connection,
}

impl Logind {
    /// Uses logind on `conn` (normally the system bus; tests pass a private bus with
    /// a fake logind on it). Does not check that logind is there: [`choose`] does.
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    async fn call(&self, action: &'static str) -> Result<(), PowerError> {
        let err = |source| PowerError::Logind { action, source };
        let proxy = ManagerProxy::new(&self.conn).await.map_err(err)?;
        // `interactive = false`: never wait for a polkit password prompt; the agent
        // has already authorized the request.
        match action {
            "PowerOff" => proxy.power_off(false).await,
            _ => proxy.reboot(false).await,
        }
        .map_err(err)
    }
}

impl PowerControl for Logind {
    fn reboot(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(self.call("Reboot"))
    }

    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(self.call("PowerOff"))
    }
}

/// Power actions by `sync()` then `reboot(2)`. Tests never build one: its actions
/// really reboot the machine.
pub struct Syscall {
    _private: (),
}

impl PowerControl for Syscall {
    fn reboot(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async { raw_reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) })
    }

    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async { raw_reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF) })
    }
}

fn raw_reboot(how: nix::sys::reboot::RebootMode) -> Result<(), PowerError> {
    // reboot(2) does not flush dirty pages; without sync() the last writes (audit
    // log, pool metadata) would be lost.
    nix::unistd::sync();
    match nix::sys::reboot::reboot(how) {
        Ok(never) => match never {},
        Err(e) => Err(PowerError::Syscall(e)),
    }
}

/// Which power backend [`choose`] picked.
#[derive(Debug)]
pub enum Backend {
    /// logind owns its name on the bus.
    Logind(Connection),
    /// No bus, or no logind on it: `sync()` and `reboot(2)`.
    Syscall,
}

impl Backend {
    /// Builds the chosen backend.
    pub fn into_control(self) -> Box<dyn PowerControl> {
        match self {
            Self::Logind(conn) => Box::new(Logind::new(conn)),
            Self::Syscall => Box::new(Syscall { _private: () }),
        }
    }
}

/// Asks the bus whether a name has an owner. A trait so the choice is testable
/// without a bus.
pub trait NameOwners {
    /// Whether `name` has an owner now.
    fn has_owner<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, zbus::Error>>;
}

impl NameOwners for Connection {
    fn has_owner<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, zbus::Error>> {
        Box::pin(async move {
            let bus = DBusProxy::new(self).await?;
            let name = BusName::try_from(name)?;
            Ok(bus.name_has_owner(name).await?)
        })
    }
}

/// Whether to use logind: yes when the bus answers that [`LOGIND_NAME`] has an
/// owner; no when there is no bus, no owner, or the bus cannot answer (on a bus
/// that cannot answer, logind calls would fail too).
pub async fn use_logind(bus: Option<&(dyn NameOwners + Sync)>) -> bool {
    match bus {
        Some(bus) => bus.has_owner(LOGIND_NAME).await.unwrap_or(false),
        None => false,
    }
}

/// Picks the backend: logind on `system_bus` when it runs there, else the
/// syscall. `system_bus` is `None` when the node has no system bus.
pub async fn choose(system_bus: Option<Connection>) -> Backend {
    match system_bus {
        Some(conn) if use_logind(Some(&conn)).await => Backend::Logind(conn),
        _ => Backend::Syscall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Result<bool, ()>);

    impl NameOwners for Fake {
        fn has_owner<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, zbus::Error>> {
            assert_eq!(name, LOGIND_NAME);
            let r = self
                .0
                .map_err(|()| zbus::Error::Failure("no answer".into()));
            Box::pin(async move { r })
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        #[allow(clippy::expect_used)] // test setup
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn logind_only_when_its_name_is_owned() {
        assert!(run(use_logind(Some(&Fake(Ok(true))))));
        assert!(!run(use_logind(Some(&Fake(Ok(false))))));
        assert!(!run(use_logind(Some(&Fake(Err(()))))));
        assert!(!run(use_logind(None)));
    }
}
