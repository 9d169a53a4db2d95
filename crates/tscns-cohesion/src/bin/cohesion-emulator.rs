//! The Cohesion emulator (work in progress).
fn main() {}
