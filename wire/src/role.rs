//! What a peer may do, as carried by the console protocol.
//!
//! The role type is [`nodus_identity::Role`], re-exported: grants are signed over
//! it, so the wire and the grant must never disagree on what a role is. Its variant
//! order is part of the wire format (postcard encodes the variant index): new roles
//! are appended, never inserted.

pub use nodus_identity::Role;

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
