//! Netboot benchmarks (filled in below).

fn main() {}
