//! cachette binary entry point.
fn main() {}
