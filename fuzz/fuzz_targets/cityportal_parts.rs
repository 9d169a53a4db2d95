//! A certificate row's stored form from the database: its `pdf_parts` column and its own bytes
//! are outside input. Putting the parts back gives the bytes or a typed error, never a panic,
//! and a result is exactly the own bytes with each named part inserted.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tscns_cityportal::store::{stored_pdf, StoreError};

fuzz_target!(|data: &[u8]| {
    // The first line is the column, the rest the row's own bytes.
    let (column, own) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(column) = std::str::from_utf8(column) else {
        return;
    };
    // Every part is three bytes named by its key's first hex digit.
    let mut inserted = 0usize;
    let result = stored_pdf(own, column, |sha| {
        if sha.starts_with('f') {
            return None;
        }
        inserted += 3;
        Some(Arc::from(&b"PRT"[..]))
    });
    match result {
        Ok(pdf) => assert_eq!(pdf.len(), own.len() + inserted),
        Err(StoreError::Corrupt { .. }) => {}
        Err(e) => panic!("not a corrupt-row error: {e}"),
    }
});
