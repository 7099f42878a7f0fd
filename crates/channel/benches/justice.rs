//! Justice: the time to build and sign everything that punishes a revoked
//! commitment carrying 483 HTLCs (BOLT 2's most per direction), the way
//! the node does it — its `to_local` and our `to_remote` in one
//! transaction, each HTLC output (which the cheater may race for) alone:
//! 484 signed transactions from the revealed secret and the HTLCs kept for
//! that commitment (key derivation, scripts, outputs matched, weights, fees,
//! signatures).
//!
//! Then the same with one million settled HTLCs among the candidates: the
//! node keeps each HTLC once, from the first commitment it was in, and
//! tries every HTLC first signed at or before the revoked commitment
//! against its outputs (value first, then script).
//!
//! The baseline, in the same run, is the bare signing work of those same
//! 484 transactions: one BIP 143 sighash and one ECDSA signature each, with
//! a key given. The printed ratio is `baseline_time / justice_time` (1.0 =
//! nothing costs more than the signatures).
//!
//! Run: `cargo bench -p beongae-channel --bench justice`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use beongae_channel::onchain::Claim;
use beongae_channel::penalty::{justice_transaction, revoked_claims, PenaltySecrets};
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::{Msat, Preimage};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Message as Digest;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{ScriptBuf, Transaction, WPubkeyHash};
use common::pair::{onion, setup_with};
use common::sk;

const HTLCS: usize = 483;

fn main() {
    // B (400,000 sat) offers A 483 HTLCs of 700 sat; A funds the channel
    // and pays the commitment's fee.
    let mut p = setup_with(ChannelType::Anchors, 600_000, 400_000);
    for i in 0..HTLCS {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let add =
            p.b.send_add(
                Msat::from_msat(700_000),
                Preimage(bytes).payment_hash(),
                800_000,
                onion(7),
            )
            .unwrap();
        p.send(false, add);
    }
    p.settle();
    let revoked = p.b.signed_local_commitment(&p.secp).unwrap();
    let number = p.b.local_number;
    let htlcs = p.b.commitments.local.htlcs.clone();
    assert_eq!(
        revoked.output.len(),
        HTLCS + 4,
        "483 HTLCs, both balances, two anchors"
    );
    // A fails one of them: B's commitment above is revoked.
    let fail = p.a.send_fail(0, vec![0; 292]).unwrap();
    p.send(true, fail);
    p.settle();
    let secret = p.a.remote.revoked_secret(number).expect("revoked");
    let secrets = PenaltySecrets {
        revocation_base: sk(2),
        payment_base: sk(3),
    };
    let wallet = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xaa; 20]));
    // Low enough for a 700 sat HTLC alone to be worth its fee.
    let feerate = FeeratePerKw(500);
    let justice = || -> Vec<Transaction> {
        let claims = revoked_claims(
            &p.secp,
            &p.a.funded,
            &revoked,
            number,
            secret,
            &htlcs,
            &secrets,
        )
        .unwrap();
        let (contested, rest): (Vec<Claim>, Vec<Claim>) =
            claims.into_iter().partition(Claim::contested);
        let mut txs = vec![justice_transaction(&p.secp, &rest, wallet.clone(), feerate).unwrap()];
        for c in contested {
            txs.push(justice_transaction(&p.secp, &[c], wallet.clone(), feerate).unwrap());
        }
        txs
    };
    let txs = justice();
    assert_eq!(txs.len(), HTLCS + 1);
    let key = sk(9);
    let script = ScriptBuf::from_bytes(vec![0x51]);
    let sign_all = |txs: &[Transaction]| {
        for tx in txs {
            let value = revoked.output[tx.input[0].previous_output.vout as usize].value;
            let sighash = SighashCache::new(tx)
                .p2wsh_signature_hash(0, &script, value, EcdsaSighashType::All)
                .unwrap();
            black_box(p.secp.sign_ecdsa(&Digest::from(sighash), &key));
        }
    };
    let rounds = 10;
    let t = Instant::now();
    for _ in 0..rounds {
        black_box(justice());
    }
    let ours = t.elapsed().as_secs_f64() / f64::from(rounds);
    let t = Instant::now();
    for _ in 0..rounds {
        sign_all(&txs);
    }
    let baseline = t.elapsed().as_secs_f64() / f64::from(rounds);
    println!(
        "baseline: sighash + signature of the {} justice transactions: {:.1} ms",
        txs.len(),
        baseline * 1000.0
    );
    println!(
        "justice for a revoked commitment with {HTLCS} HTLCs: {} transactions built and signed in {:.1} ms ({:.0} us per HTLC; ratio to the baseline {:.3})",
        txs.len(),
        ours * 1000.0,
        ours * 1e6 / HTLCS as f64,
        baseline / ours
    );
    // One million HTLCs settled before, kept as candidates too.
    let mut candidates = htlcs.clone();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for id in 0..1_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        candidates.push(beongae_channel::commitments::SpecHtlc {
            offered: x & 1 == 0,
            id: 10_000 + id,
            amount: Msat::from_msat(x % 1_000_000_000),
            payment_hash: beongae_wire::PaymentHash(
                bitcoin::hashes::sha256::Hash::hash(&x.to_be_bytes()).to_byte_array(),
            ),
            cltv_expiry: 800_000 + (x % 5_000) as u32,
        });
    }
    let t = Instant::now();
    let claims = revoked_claims(
        &p.secp,
        &p.a.funded,
        &revoked,
        number,
        secret,
        &candidates,
        &secrets,
    )
    .unwrap();
    let many = t.elapsed().as_secs_f64();
    assert_eq!(claims.len(), HTLCS + 2);
    println!(
        "its claims among 1,000,000 settled HTLCs kept as candidates: {:.1} ms ({} claims, the same)",
        many * 1000.0,
        claims.len()
    );
}
