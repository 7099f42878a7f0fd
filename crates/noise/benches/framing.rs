//! BOLT 8 framing throughput next to raw ChaCha20-Poly1305 on the same buffers.
//!
//! Each benchmark group measures, for one message size:
//! - `raw_aead`: one ChaCha20-Poly1305 seal and one open of the message
//!   (the floor: the cipher work with no framing at all);
//! - `bolt8`: `encrypt_message_into` then `decrypt_length` + `decrypt_body_in_place`,
//!   i.e. everything a peer connection does per message (length header,
//!   nonces, key rotation).
//!
//! After the criterion groups, a plain timing loop over the same work prints
//! the ratio `raw_time / bolt8_time` (1.0 = framing costs nothing extra).

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use beongae_noise::{Initiator, Responder, Transport, LENGTH_HEADER_LEN};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use criterion::{criterion_group, Criterion, Throughput};

fn transports() -> (Transport, Transport) {
    let secp = Secp256k1::new();
    let key = |b: u8| SecretKey::from_slice(&[b; 32]).expect("valid key");
    let (init, act1) = Initiator::new(
        &secp,
        key(1),
        PublicKey::from_secret_key(&secp, &key(2)),
        key(3),
    );
    let (resp, act2) = Responder::new(&secp, key(2), key(4))
        .process_act_one(&secp, &act1)
        .expect("act one");
    let (act3, a) = init.process_act_two(&secp, &act2).expect("act two");
    let (_, b) = resp.process_act_three(&secp, &act3).expect("act three");
    (a, b)
}

/// One seal + one open with raw ChaCha20-Poly1305 over `buf`.
fn raw_round(cipher: &ChaCha20Poly1305, n: &mut u64, buf: &mut [u8]) {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    let nonce = Nonce::from(nonce);
    *n += 1;
    let tag = cipher
        .encrypt_in_place_detached(&nonce, &[], buf)
        .expect("seal");
    cipher
        .decrypt_in_place_detached(&nonce, &[], buf, &tag)
        .expect("open");
}

struct Bolt8 {
    enc: beongae_noise::Encryptor,
    dec: beongae_noise::Decryptor,
    frame: Vec<u8>,
}

impl Bolt8 {
    fn new() -> Self {
        let (a, b) = transports();
        Bolt8 {
            enc: a.split().0,
            dec: b.split().1,
            frame: Vec::with_capacity(70_000),
        }
    }

    /// Frame `msg` and read it back, as a sending and a receiving peer do.
    fn round(&mut self, msg: &[u8]) {
        self.frame.clear();
        self.enc
            .encrypt_message_into(msg, &mut self.frame)
            .expect("fits");
        let header: &[u8; LENGTH_HEADER_LEN] =
            self.frame[..LENGTH_HEADER_LEN].try_into().expect("header");
        let len = self.dec.decrypt_length(header).expect("length") as usize;
        let body = self
            .dec
            .decrypt_body_in_place(&mut self.frame[LENGTH_HEADER_LEN..])
            .expect("body");
        assert_eq!(body.len(), len);
        black_box(body);
    }
}

const SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (60 * 1024, "60KiB")];

fn framing(c: &mut Criterion) {
    for (size, name) in SIZES {
        let mut group = c.benchmark_group(format!("bolt8_framing_{name}"));
        group.throughput(Throughput::Bytes(size as u64));
        let msg = vec![0x5au8; size];
        let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
        let mut buf = msg.clone();
        let mut n = 0;
        group.bench_function("raw_aead", |b| {
            b.iter(|| raw_round(&cipher, &mut n, &mut buf))
        });
        let mut bolt8 = Bolt8::new();
        group.bench_function("bolt8", |b| b.iter(|| bolt8.round(&msg)));
        group.finish();
    }
}

/// Interleaved timing of both, printed as a ratio (same process, same buffers).
fn print_ratios() {
    println!("\nBOLT 8 framing vs raw ChaCha20-Poly1305 (encrypt+decrypt, same process):");
    for (size, name) in SIZES {
        let iters = (256 * 1024 * 1024 / size).max(1000);
        let msg = vec![0x5au8; size];
        let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
        let mut buf = msg.clone();
        let mut n = 0;
        let mut bolt8 = Bolt8::new();
        let (mut raw_total, mut bolt8_total) = (0.0, 0.0);
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..iters {
                raw_round(&cipher, &mut n, &mut buf);
            }
            raw_total += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for _ in 0..iters {
                bolt8.round(&msg);
            }
            bolt8_total += t.elapsed().as_secs_f64();
        }
        let mb = (5 * iters * size) as f64 / 1e6;
        println!(
            "  {name:>6}: raw {:8.1} MB/s, bolt8 {:8.1} MB/s, ratio bolt8/raw = {:.3}",
            mb / raw_total,
            mb / bolt8_total,
            raw_total / bolt8_total
        );
    }
}

criterion_group!(benches, framing);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
}
