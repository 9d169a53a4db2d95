//! APDU encode and decode: short and extended commands, and response parsing.
//!
//! `cargo bench --bench apdu` (add `-- --quick` for a fast look).
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tscns::apdu::{Command, Response};

fn commands(c: &mut Criterion) {
    // SELECT by path (short, case 4) and an extended PSO of a 2048-bit block (case 4E).
    let short = Command::new(0x00, 0xA4, 0x08, 0x00)
        .with_data([0x11, 0x00, 0x11, 0x02])
        .with_le(256);
    let extended = Command::new(0x00, 0x2A, 0x80, 0x86)
        .with_data(vec![0x5A; 256])
        .with_le(65536);
    let short_bytes = short.encode().unwrap_or_default();
    let extended_bytes = extended.encode().unwrap_or_default();

    let mut g = c.benchmark_group("command");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_short", |b| b.iter(|| black_box(&short).encode()));
    g.bench_function("encode_extended", |b| {
        b.iter(|| black_box(&extended).encode())
    });
    let mut buf = Vec::with_capacity(1024);
    g.bench_function("encode_into_reused_buffer_extended", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&extended).encode_into(&mut buf)
        })
    });
    g.bench_function("decode_short", |b| {
        b.iter(|| Command::decode(black_box(&short_bytes)))
    });
    g.bench_function("decode_extended", |b| {
        b.iter(|| Command::decode(black_box(&extended_bytes)))
    });
    g.finish();
}

fn responses(c: &mut Criterion) {
    let mut raw = vec![0xA5; 256];
    raw.extend_from_slice(&[0x90, 0x00]);
    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("from_bytes_256", |b| {
        b.iter(|| Response::from_bytes(black_box(&raw)))
    });
    g.finish();
    let mut g = c.benchmark_group("status");
    g.throughput(Throughput::Elements(1));
    g.bench_function("display_in_words", |b| {
        let r = Response::from_bytes(&raw).unwrap_or_else(|_| Response::new([], 0x6F00.into()));
        b.iter(|| black_box(&r).status().to_string())
    });
    g.finish();
}

criterion_group!(benches, commands, responses);
criterion_main!(benches);
