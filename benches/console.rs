//! Console frame time (filled in by the console benchmark).
fn main() {}
