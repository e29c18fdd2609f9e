//! Benchmarks (placeholder until the core engineer adds them).

fn main() {}
