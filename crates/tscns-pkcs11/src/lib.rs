//! PKCS#11 signer (work in progress).
#![forbid(unsafe_code)]
