//! Placeholder until the pipeline benchmark is written.
fn main() {}
