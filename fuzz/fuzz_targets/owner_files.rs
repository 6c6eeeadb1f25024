//! Feeds arbitrary text, as a file someone hands an operator, to the readers of
//! the owner's signed files (`nodus_identity::grant::from_file_text` for grants,
//! `disk_approval_from_file_text` for disk approvals).
//!
//! Invariants checked: no panic; whatever reads as a grant or an approval writes
//! back to a file that reads as the same signed bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nodus_identity::grant::{
    disk_approval_from_file_text, disk_approval_to_file_text, from_file_text, to_file_text,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(g) = &from_file_text(text) {
        let bytes = g.to_bytes().expect("a grant that was read encodes");
        let again = to_file_text(g).expect("a grant that was read writes");
        let reread = from_file_text(&again).expect("a written grant reads");
        assert_eq!(reread.to_bytes().expect("encodes"), bytes);
    }
    if let Ok(a) = &disk_approval_from_file_text(text) {
        let bytes = a.to_bytes().expect("an approval that was read encodes");
        let again = disk_approval_to_file_text(a, Some("sdb")).expect("writes");
        let reread = disk_approval_from_file_text(&again).expect("a written approval reads");
        assert_eq!(reread.to_bytes().expect("encodes"), bytes);
    }
});
