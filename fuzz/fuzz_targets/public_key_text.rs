//! Parses arbitrary text as `NodeId` and `AccountId`.
//!
//! Invariants checked: no panic; whatever parses prints back as the same id
//! (canonical lower case) and parses again to the same key; a node id never parses
//! as an account id and vice versa.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nodus_identity::{AccountId, NodeId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<NodeId>() {
        let shown = id.to_string();
        assert!(shown.eq_ignore_ascii_case(text.trim()));
        assert_eq!(shown.parse::<NodeId>().ok(), Some(id));
        assert!(text.parse::<AccountId>().is_err());
    }
    if let Ok(id) = text.parse::<AccountId>() {
        let shown = id.to_string();
        assert!(shown.eq_ignore_ascii_case(text.trim()));
        assert_eq!(shown.parse::<AccountId>().ok(), Some(id));
        assert!(text.parse::<NodeId>().is_err());
    }
});
