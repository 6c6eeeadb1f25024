//! Boot-to-ready benchmark (placeholder until the node image lands).
fn main() {}
