//! What a peer may do, as carried by the console protocol.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A peer's role on a node, from most to least powerful (DESIGN.md, "Roles").
///
/// The order of the variants is part of the wire format (postcard encodes the
/// variant index): new roles are appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Role {
    /// The farmer key: everything, including stake.
    Owner,
    /// Granted by the owner: power actions, approving disk wipes.
    Operator,
    /// Read-only.
    Viewer,
    /// Manages its own workloads only.
    Tenant,
}

impl Role {
    /// The lower-case name used in configs and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Tenant => "tenant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_encoding_is_the_variant_index() {
        let enc: Vec<u8> = [Role::Owner, Role::Operator, Role::Viewer, Role::Tenant]
            .iter()
            .flat_map(|r| postcard::to_stdvec(r).unwrap_or_default())
            .collect();
        assert_eq!(enc, [0, 1, 2, 3]);
    }
}
