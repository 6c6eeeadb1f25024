//! The `nodus` multi-call binary: dispatch only.
fn main() {}
