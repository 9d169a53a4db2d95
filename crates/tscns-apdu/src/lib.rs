//! ISO 7816-4 APDUs for tscns (work in progress).
#![forbid(unsafe_code)]
