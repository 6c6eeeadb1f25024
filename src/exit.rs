//! The process exit codes of `nodus`, in one place so scripts can rely on them.

use std::process::ExitCode;

/// Every exit status `nodus` uses. Values are stable; new ones are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A failure not covered below. The message says what.
    Failure = 1,
    /// The command line was wrong (clap's convention).
    Usage = 2,
    /// The peer refused: the key is unknown or lacks the role for this action.
    NotAuthorized = 3,
    /// A passphrase or second factor was wrong.
    BadCredentials = 4,
    /// Input data (keystore, config, grant, backup words) is damaged or invalid.
    BadInput = 5,
    /// A file or directory named on the command line does not exist or cannot be read.
    NotFound = 6,
    /// The remote node or service could not be reached.
    Unreachable = 7,
}

impl Exit {
    /// Classifies an error by the most specific known cause in its chain.
    pub fn of(err: &anyhow::Error) -> Self {
        use nodus_identity::{KeystoreError, cli::Error as IdError};
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<nodus_console::node_cli::Error>()
                && let Some(exit) = Self::of_node_action(e)
            {
                return exit;
            }
            if let Some(e) = cause.downcast_ref::<nodus_console::cli::Error>()
                && let Some(exit) = Self::of_console(e)
            {
                return exit;
            }
            // `#[error(transparent)]` wrappers forward `source()` past themselves, so
            // a wrapped keystore error is matched through its wrapper below.
            if let Some(e) = cause.downcast_ref::<KeystoreError>() {
                return Self::of_keystore(e);
            }
            if let Some(e) = cause.downcast_ref::<IdError>() {
                match e {
                    IdError::Keystore(k) => return Self::of_keystore(k),
                    IdError::Mnemonic(_) | IdError::PassphraseMismatch => return Exit::BadInput,
                    IdError::NoPassphrase => return Exit::Usage,
                    IdError::BadExpiry(_)
                    | IdError::Grant(_)
                    | IdError::EmptySerial
                    | IdError::DiskApproval(_) => return Exit::BadInput,
                    IdError::Read { .. } => return Exit::NotFound,
                    _ => {}
                }
            }
            if cause
                .downcast_ref::<nodus_agent::hal::RootError>()
                .is_some()
            {
                return Exit::NotFound;
            }
            if let Some(nodus_netboot::cli::Error::Config(c)) =
                cause.downcast_ref::<nodus_netboot::cli::Error>()
            {
                return Self::of_netboot_config(c);
            }
            if let Some(c) = cause.downcast_ref::<nodus_netboot::config::ConfigError>() {
                return Self::of_netboot_config(c);
            }
            if let Some(c) = cause.downcast_ref::<nodus_agent::daemon::config::ConfigError>() {
                return match c {
                    nodus_agent::daemon::config::ConfigError::Read { .. } => Exit::NotFound,
                    _ => Exit::BadInput,
                };
            }
            if let Some(e) = cause.downcast_ref::<nodus_validator::cli::Error>()
                && let Some(code) = Self::of_chain(e)
            {
                return code;
            }
        }
        Exit::Failure
    }
}

impl Exit {
    /// `nodus validator …` and `nodus chain …`.
    fn of_chain(e: &nodus_validator::cli::Error) -> Option<Self> {
        use nodus_validator::GenesisError;
        use nodus_validator::cli::Error as E;
        use nodus_validator::node::config::ConfigError;
        match e {
            E::Keystore(k) => Some(Self::of_keystore(k)),
            E::NoPassphrase | E::Usage(_) => Some(Exit::Usage),
            E::Config(ConfigError::Read { .. }) | E::Genesis(GenesisError::Io { .. }) => {
                Some(Exit::NotFound)
            }
            E::Config(_) | E::Genesis(_) | E::Exists(_) => Some(Exit::BadInput),
            E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(Exit::NotFound)
            }
            E::Unreachable(_) => Some(Exit::Unreachable),
            _ => None,
        }
    }
}

impl Exit {
    /// `nodus node …`: refused key or role, bad token, unreachable node.
    fn of_node_action(e: &nodus_console::node_cli::Error) -> Option<Self> {
        use nodus_console::node_cli::Error as E;
        match e {
            E::NotAuthorized(_) => Some(Exit::NotAuthorized),
            E::BadConfirmation(_) => Some(Exit::BadInput),
            E::Unreachable(_) => Some(Exit::Unreachable),
            E::NoKey => Some(Exit::Usage),
            E::Setup(c) => Self::of_console(c),
            _ => None,
        }
    }

    /// `nodus console` and the setup shared with `nodus node`.
    fn of_console(e: &nodus_console::cli::Error) -> Option<Self> {
        use nodus_console::cli::Error as E;
        use nodus_console::source::SourceError;
        use nodus_identity::cli::Error as IdError;
        match e {
            E::NoKey => Some(Exit::Usage),
            E::Keystore(IdError::Keystore(k)) => Some(Self::of_keystore(k)),
            E::Keystore(IdError::NoPassphrase) => Some(Exit::Usage),
            E::ReadGrant { .. } | E::ReadDemo { .. } | E::ReadApproval { .. } => {
                Some(Exit::NotFound)
            }
            E::BadGrant { .. } | E::BadApproval { .. } | E::NodeId(_) | E::ParseDemo { .. } => {
                Some(Exit::BadInput)
            }
            E::Source(SourceError::NotAuthorized(_)) => Some(Exit::NotAuthorized),
            E::Source(_) => Some(Exit::Unreachable),
            _ => None,
        }
    }

    fn of_netboot_config(c: &nodus_netboot::config::ConfigError) -> Self {
        match c {
            nodus_netboot::config::ConfigError::Read { .. } => Exit::NotFound,
            _ => Exit::BadInput,
        }
    }

    fn of_keystore(e: &nodus_identity::KeystoreError) -> Self {
        use nodus_identity::KeystoreError;
        match e {
            KeystoreError::WrongPassphrase(_) => Exit::BadCredentials,
            KeystoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Exit::NotFound
            }
            KeystoreError::Io { .. } => Exit::Failure,
            _ => Exit::BadInput,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}
