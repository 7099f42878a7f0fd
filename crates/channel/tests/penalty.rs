//! BOLT 5 §"Revoked Transaction Close Handling": a channel is driven through
//! many states with random HTLC sets in both directions (above and below
//! the dust limits), and for *every* state the peer has revoked, the justice
//! transaction built from what a node keeps (the revealed secret, the HTLCs
//! of that commitment) takes every output of the revoked commitment but the
//! anchors — the whole channel minus fees — and passes Bitcoin Core's
//! script interpreter. Then the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::commitments::SpecHtlc;
use beongae_channel::normal::Event;
use beongae_channel::penalty::{
    commitment_number, justice_claims_of, justice_transaction, revoked_claims, second_stage_claims,
    PenaltyError, PenaltySecrets,
};
use beongae_script::commitment::CommitmentNumber;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::{Msat, Preimage};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Transaction, WPubkeyHash};
use common::pair::{onion, setup_with, Pair};
use common::sk;

/// A's basepoint secrets (`Party::new(.., 1)`: revocation 2, payment 3).
fn a_secrets() -> PenaltySecrets {
    PenaltySecrets {
        revocation_base: sk(2),
        payment_base: sk(3),
    }
}

fn wallet() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xaa; 20]))
}

/// xorshift64: a fixed sequence of choices per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One of B's commitments as B held it: the signed transaction, its
/// number, its HTLCs (as B sees them), its content.
struct State {
    tx: Transaction,
    spec: beongae_channel::commitments::CommitSpec,
    number: CommitmentNumber,
    htlcs: Vec<SpecHtlc>,
}

fn b_state(p: &Pair) -> State {
    State {
        tx: p.b.signed_local_commitment(&p.secp).unwrap(),
        spec: p.b.commitments.local.clone(),
        number: p.b.local_number,
        htlcs: p.b.commitments.local.htlcs.clone(),
    }
}

/// Drives `rounds` rounds of random adds (1 to 60,000 sat, both ways),
/// fulfils and fails, recording every commitment B reaches.
fn random_states(ct: ChannelType, seed: u64, rounds: usize) -> (Pair, Vec<State>) {
    let mut p = setup_with(ct, 600_000, 400_000);
    let mut rng = Rng(seed);
    let mut states = vec![b_state(&p)];
    let mut tag = 0u8;
    // HTLCs each side may settle: (side A holds it, id, payment hash).
    let mut incoming: Vec<(bool, u64, beongae_wire::PaymentHash)> = Vec::new();
    for _ in 0..rounds {
        for _ in 0..rng.below(3) + 1 {
            tag = tag.wrapping_add(1);
            let from_a = rng.below(2) == 0;
            let msat = (rng.below(60_000) + 1) * 1000;
            let ch = if from_a { &mut p.a } else { &mut p.b };
            if let Ok(add) = ch.send_add(
                Msat::from_msat(msat),
                Preimage([tag; 32]).payment_hash(),
                700_000 + u32::from(tag),
                onion(tag),
            ) {
                p.send(from_a, add);
            }
        }
        p.settle();
        for side_a in [true, false] {
            let events = std::mem::take(if side_a {
                &mut p.events_a
            } else {
                &mut p.events_b
            });
            for e in events {
                if let Event::IncomingCommitted {
                    id, payment_hash, ..
                } = e
                {
                    incoming.push((side_a, id, payment_hash));
                }
            }
        }
        // Settle some of the committed HTLCs, keep the others pending.
        incoming.retain(|&(side_a, id, hash)| {
            let choice = rng.below(3);
            if choice == 0 {
                return true;
            }
            let ch = if side_a { &mut p.a } else { &mut p.b };
            if choice == 1 {
                let m = ch.send_fulfill(id, common::preimage_of(hash)).unwrap();
                p.send(side_a, m);
            } else {
                let m = ch.send_fail(id, vec![0; 292]).unwrap();
                p.send(side_a, m);
            }
            false
        });
        p.settle();
        if p.b.local_number != states.last().unwrap().number {
            states.push(b_state(&p));
        }
    }
    (p, states)
}

/// Every revoked state of B's is punished: the justice transaction spends
/// every non-anchor output of the revoked commitment under Bitcoin Core's
/// interpreter and pays A all of it less its own fee.
fn punish_every_revoked_state(ct: ChannelType, seed: u64) -> usize {
    let (p, states) = random_states(ct, seed, 70);
    let feerate = FeeratePerKw(2_500);
    let mut punished = 0;
    let mut with_htlcs = 0;
    for state in &states {
        if state.number == p.b.local_number {
            continue; // B's current commitment is not revoked.
        }
        let secret = p.a.remote.revoked_secret(state.number).expect("revealed");
        assert_eq!(
            commitment_number(&p.a.funded, &state.tx),
            Some(state.number.get())
        );
        // As the node keeps them: every HTLC once, from the first
        // commitment it is in, so that those of earlier states (settled
        // since) come along and must match nothing.
        let mut kept: Vec<SpecHtlc> = Vec::new();
        for h in states
            .iter()
            .filter(|s| s.number.get() <= state.number.get())
            .flat_map(|s| &s.htlcs)
        {
            if !kept.iter().any(|k| k.offered == h.offered && k.id == h.id) {
                kept.push(h.clone());
            }
        }
        let claims = revoked_claims(
            &p.secp,
            &p.a.funded,
            &state.tx,
            state.number,
            secret,
            &kept,
            &a_secrets(),
        )
        .unwrap();
        // The same claims as from that commitment's own HTLCs.
        let exact = revoked_claims(
            &p.secp,
            &p.a.funded,
            &state.tx,
            state.number,
            secret,
            &state.htlcs,
            &a_secrets(),
        )
        .unwrap();
        assert_eq!(
            claims.iter().map(|c| c.input.outpoint).collect::<Vec<_>>(),
            exact.iter().map(|c| c.input.outpoint).collect::<Vec<_>>()
        );
        let justice = justice_transaction(&p.secp, &claims, wallet(), feerate).unwrap();
        for (n, input) in justice.input.iter().enumerate() {
            let spent = &state.tx.output[input.previous_output.vout as usize];
            spent
                .script_pubkey
                .verify(n, spent.value, &serialize(&justice))
                .unwrap_or_else(|e| panic!("state {}: input {n}: {e:?}", state.number.get()));
        }
        let anchors = match ct {
            ChannelType::Anchors => 2 * 330,
            ChannelType::StaticRemoteKey => 0,
        };
        let all: u64 = state.tx.output.iter().map(|o| o.value.to_sat()).sum();
        let taken: u64 = claims.iter().map(|c| c.input.value.to_sat()).sum();
        assert_eq!(taken, all - anchors, "state {}", state.number.get());
        // The fee is the feerate's on the estimated weight: at least the
        // real weight's, and within 50 weight units of it.
        let fee = all - anchors - justice.output[0].value.to_sat();
        let weight = justice.weight().to_wu();
        assert!(fee >= feerate.fee_for_weight(weight).to_sat(), "fee {fee}");
        assert!(
            fee <= feerate.fee_for_weight(weight + 50).to_sat(),
            "fee {fee}"
        );
        punished += 1;
        with_htlcs += usize::from(claims.iter().any(|c| c.contested()));
    }
    assert!(
        with_htlcs * 2 >= punished,
        "{with_htlcs} of {punished} with htlcs"
    );
    punished
}

#[test]
fn every_revoked_anchors_state_is_punished() {
    for seed in [1, 2] {
        assert!(punish_every_revoked_state(ChannelType::Anchors, seed) >= 50);
    }
}

#[test]
fn every_revoked_static_remotekey_state_is_punished() {
    assert!(punish_every_revoked_state(ChannelType::StaticRemoteKey, 3) >= 50);
}

/// What is refused: B's current (unrevoked) commitment given as revoked
/// with a wrong secret takes nothing valid; another number; another
/// channel's transaction.
#[test]
fn refusals() {
    let (p, states) = random_states(ChannelType::Anchors, 9, 5);
    let old = &states[1];
    let secret = p.a.remote.revoked_secret(old.number).unwrap();
    // The number must be the one the transaction carries.
    let other = CommitmentNumber::new(old.number.get() + 1).unwrap();
    assert_eq!(
        revoked_claims(
            &p.secp,
            &p.a.funded,
            &old.tx,
            other,
            secret,
            &old.htlcs,
            &a_secrets()
        )
        .unwrap_err(),
        PenaltyError::WrongNumber {
            got: old.number.get(),
            expected: other.get()
        }
    );
    // A wrong secret derives other keys: nothing revocable matches (only
    // our own to_remote, which needs no secret).
    let mut wrong = secret;
    wrong[0] ^= 1;
    let claims = revoked_claims(
        &p.secp,
        &p.a.funded,
        &old.tx,
        old.number,
        wrong,
        &old.htlcs,
        &a_secrets(),
    )
    .unwrap();
    assert!(claims.iter().all(
        |c| !c.contested() && c.input.path != beongae_script::sweep::SpendPath::RevokedDelayed
    ));
    // Not this channel's funding.
    let mut foreign = old.tx.clone();
    foreign.input[0].previous_output.vout += 1;
    assert_eq!(
        revoked_claims(
            &p.secp,
            &p.a.funded,
            &foreign,
            old.number,
            secret,
            &old.htlcs,
            &a_secrets()
        )
        .unwrap_err(),
        PenaltyError::NotOurFunding
    );
    // Too expensive to sweep: a feerate above what the outputs hold.
    let claims = revoked_claims(
        &p.secp,
        &p.a.funded,
        &old.tx,
        old.number,
        secret,
        &old.htlcs,
        &a_secrets(),
    )
    .unwrap();
    assert!(matches!(
        justice_transaction(&p.secp, &claims, wallet(), FeeratePerKw(100_000_000)),
        Err(beongae_script::sweep::SweepError::Uneconomical { .. })
    ));
}

/// A justice transaction read back from its witnesses signs again at a
/// higher feerate (a fee bump) spending the same outputs, under the
/// interpreter, paying more fee; for both channel types.
#[test]
fn justice_is_rebuilt_from_its_witnesses_to_bump_its_fee() {
    for ct in [ChannelType::Anchors, ChannelType::StaticRemoteKey] {
        let (p, states) = random_states(ct, 7, 20);
        let state = states
            .iter()
            .filter(|s| s.number != p.b.local_number)
            .max_by_key(|s| s.htlcs.len())
            .unwrap();
        let secret = p.a.remote.revoked_secret(state.number).unwrap();
        let claims = revoked_claims(
            &p.secp,
            &p.a.funded,
            &state.tx,
            state.number,
            secret,
            &state.htlcs,
            &a_secrets(),
        )
        .unwrap();
        let first = justice_transaction(&p.secp, &claims, wallet(), FeeratePerKw(1_000)).unwrap();
        let again = justice_claims_of(
            &p.secp,
            &p.a.funded,
            &[&state.tx],
            &first,
            secret,
            &a_secrets(),
        )
        .unwrap();
        assert_eq!(again.len(), claims.len());
        let bumped = justice_transaction(&p.secp, &again, wallet(), FeeratePerKw(5_000)).unwrap();
        assert_eq!(
            bumped
                .input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>(),
            first
                .input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>()
        );
        assert!(bumped.output[0].value < first.output[0].value);
        for (n, input) in bumped.input.iter().enumerate() {
            let spent = &state.tx.output[input.previous_output.vout as usize];
            spent
                .script_pubkey
                .verify(n, spent.value, &serialize(&bumped))
                .unwrap_or_else(|e| panic!("{ct:?} input {n}: {e:?}"));
        }
        // Anything else does not read as ours.
        assert!(justice_claims_of(
            &p.secp,
            &p.a.funded,
            &[&state.tx],
            &state.tx,
            secret,
            &a_secrets()
        )
        .is_none());
    }
}

/// BOLT 5: the cheater spends two HTLC outputs of its revoked commitment
/// with one transaction (anchors: `SIGHASH_SINGLE|ANYONECANPAY` lets it
/// join its HTLC transactions, input i paying output i): both outputs are
/// claimed with the revocation key, under the interpreter, and the claim
/// is rebuilt from its witnesses at a higher fee. Outputs of another
/// commitment's secret, or of a transaction without them, are not ours.
#[test]
fn every_second_stage_output_of_a_joined_htlc_transaction_is_taken() {
    use beongae_channel::sign::Owner;
    let (p, states) = random_states(ChannelType::Anchors, 11, 40);
    let (state, built) = states
        .iter()
        .filter(|s| s.number != p.b.local_number)
        .find_map(|s| {
            let secret = p.a.remote.revoked_secret(s.number).unwrap();
            let point = bitcoin::secp256k1::PublicKey::from_secret_key(
                &p.secp,
                &bitcoin::secp256k1::SecretKey::from_slice(&secret).unwrap(),
            );
            let built =
                p.b.funded
                    .build(&p.secp, Owner::Local, &s.spec, s.number, &point)
                    .unwrap();
            (built.commitment.tx.compute_txid() == s.tx.compute_txid() && built.htlc_txs.len() >= 2)
                .then_some((s, built))
        })
        .expect("a revoked state with two htlc outputs");
    let (h0, h1) = (&built.htlc_txs[0], &built.htlc_txs[1]);
    let joined = Transaction {
        version: h0.version,
        lock_time: h0.lock_time,
        input: vec![h0.input[0].clone(), h1.input[0].clone()],
        output: vec![h0.output[0].clone(), h1.output[0].clone()],
    };
    let secret = p.a.remote.revoked_secret(state.number).unwrap();
    let claims = second_stage_claims(&p.secp, &p.a.funded, &joined, secret, &a_secrets()).unwrap();
    assert_eq!(claims.len(), 2);
    let worth = h0.output[0].value + h1.output[0].value;
    assert_eq!(
        claims
            .iter()
            .map(|c| c.input.value)
            .sum::<bitcoin::Amount>(),
        worth
    );
    let verify = |tx: &Transaction| {
        for (n, input) in tx.input.iter().enumerate() {
            let spent = &joined.output[input.previous_output.vout as usize];
            spent
                .script_pubkey
                .verify(n, spent.value, &serialize(tx))
                .unwrap_or_else(|e| panic!("input {n}: {e:?}"));
        }
    };
    let first = justice_transaction(&p.secp, &claims, wallet(), FeeratePerKw(1_000)).unwrap();
    verify(&first);
    let again = justice_claims_of(
        &p.secp,
        &p.a.funded,
        &[&state.tx, &joined],
        &first,
        secret,
        &a_secrets(),
    )
    .unwrap();
    let bumped = justice_transaction(&p.secp, &again, wallet(), FeeratePerKw(4_000)).unwrap();
    verify(&bumped);
    assert!(bumped.output[0].value < first.output[0].value);
    // Without the joined transaction its inputs do not read as ours.
    assert!(justice_claims_of(
        &p.secp,
        &p.a.funded,
        &[&state.tx],
        &first,
        secret,
        &a_secrets()
    )
    .is_none());
    // Another commitment's secret, or a transaction without such outputs.
    let other = states
        .iter()
        .find(|s| s.number != state.number && s.number != p.b.local_number)
        .unwrap();
    let wrong = p.a.remote.revoked_secret(other.number).unwrap();
    assert!(
        second_stage_claims(&p.secp, &p.a.funded, &joined, wrong, &a_secrets())
            .unwrap()
            .is_empty()
    );
    assert!(
        second_stage_claims(&p.secp, &p.a.funded, &first, secret, &a_secrets())
            .unwrap()
            .is_empty()
    );
}
