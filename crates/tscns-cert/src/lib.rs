//! The CNS certificate model (work in progress).
#![forbid(unsafe_code)]
