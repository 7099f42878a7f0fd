//! Property tests of commitment construction against a naive model: for
//! random channel states (balances, 0-483 HTLCs, feerates, dust limits, both
//! channel types) the outputs are exactly what BOLT 3's rules give, they sum
//! to the funding amount minus the fee (and the anchors), trimmed HTLCs go to
//! fees, and the two parties' views of one state mirror each other.

#![allow(clippy::unwrap_used)]

use beongae_script::commitment::{
    build_commitment, CommitmentError, CommitmentNumber, CommitmentSpec, CommitmentTx, Htlc,
    ObscuringFactor, OutputKind,
};
use beongae_script::keys::CommitmentKeys;
use beongae_script::{ChannelType, FeeratePerKw, Msat, PaymentHash};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, OutPoint, Txid};
use proptest::prelude::*;

fn key(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

fn keys(owner: u8, other: u8) -> CommitmentKeys {
    CommitmentKeys {
        per_commitment_point: key(owner),
        revocation_key: key(other + 1),
        local_delayed_key: key(owner + 2),
        local_htlc_key: key(owner + 3),
        remote_htlc_key: key(other + 3),
        remote_payment_key: key(other + 4),
        local_funding_key: key(owner + 5),
        remote_funding_key: key(other + 5),
    }
}

#[derive(Debug, Clone)]
struct State {
    ct: ChannelType,
    feerate: u32,
    dust: u64,
    funding_sat: u64,
    /// (offered by A, amount_msat, cltv)
    htlcs: Vec<(bool, u64, u32)>,
    a_balance_msat: u64,
    b_balance_msat: u64,
    a_is_funder: bool,
}

fn state() -> impl Strategy<Value = State> {
    (
        prop_oneof![
            Just(ChannelType::StaticRemoteKey),
            Just(ChannelType::Anchors)
        ],
        prop_oneof![Just(0u32), 253u32..5000, 5000u32..100_000],
        354u64..20_000,
        100_000u64..20_000_000,
        proptest::collection::vec((any::<bool>(), 0u64..8_000_000, 1u32..1000), 0..=483),
        0u64..=1000,
        any::<bool>(),
    )
        .prop_map(
            |(ct, feerate, dust, funding_sat, mut htlcs, split, a_is_funder)| {
                let funding = funding_sat * 1000;
                // Keep HTLCs within the channel: drop from the end until they fit.
                while htlcs.iter().map(|h| h.1).sum::<u64>() > funding {
                    htlcs.pop();
                }
                let rest = funding - htlcs.iter().map(|h| h.1).sum::<u64>();
                let a_balance_msat = rest / 1000 * split;
                State {
                    ct,
                    feerate,
                    dust,
                    funding_sat,
                    htlcs,
                    a_balance_msat,
                    b_balance_msat: rest - a_balance_msat,
                    a_is_funder,
                }
            },
        )
}

fn htlc_list(s: &State, owner_is_a: bool) -> Vec<Htlc> {
    s.htlcs
        .iter()
        .enumerate()
        .map(|(i, &(a_offered, amount, cltv))| Htlc {
            offered: a_offered == owner_is_a,
            amount: Msat::from_msat(amount),
            cltv_expiry: cltv,
            payment_hash: PaymentHash([(i % 251) as u8; 32]),
        })
        .collect()
}

fn build(s: &State, owner_is_a: bool) -> (Result<CommitmentTx, CommitmentError>, Vec<Htlc>) {
    let k = if owner_is_a {
        keys(10, 50)
    } else {
        keys(50, 10)
    };
    let htlcs = htlc_list(s, owner_is_a);
    let (to_local, to_remote) = if owner_is_a {
        (s.a_balance_msat, s.b_balance_msat)
    } else {
        (s.b_balance_msat, s.a_balance_msat)
    };
    let spec = CommitmentSpec {
        channel_type: s.ct,
        funding_outpoint: OutPoint {
            txid: Txid::from_byte_array([8; 32]),
            vout: 0,
        },
        funding_amount: Amount::from_sat(s.funding_sat),
        commitment_number: CommitmentNumber::new(99).unwrap(),
        obscuring_factor: ObscuringFactor::from_u64(0xabc),
        to_self_delay: 144,
        dust_limit: Amount::from_sat(s.dust),
        feerate: FeeratePerKw(s.feerate),
        to_local: Msat::from_msat(to_local),
        to_remote: Msat::from_msat(to_remote),
        owner_is_funder: s.a_is_funder == owner_is_a,
        keys: &k,
        htlcs: &htlcs,
    };
    (build_commitment(&spec), htlcs)
}

/// Whether the funder can pay the anchors (else building must fail).
fn affordable(s: &State) -> bool {
    let funder = if s.a_is_funder {
        s.a_balance_msat
    } else {
        s.b_balance_msat
    };
    s.ct == ChannelType::StaticRemoteKey || funder >= 660_000
}

/// The naive model: BOLT 3 "Commitment Transaction Construction" step by step.
fn model(s: &State, owner_is_a: bool) -> (Vec<u64>, u64) {
    let anchors = s.ct == ChannelType::Anchors;
    let f = u64::from(s.feerate);
    let (timeout_fee, success_fee) = if anchors {
        (0, 0)
    } else {
        (f * 663 / 1000, f * 703 / 1000)
    };
    let mut values = Vec::new();
    let mut untrimmed = 0u64;
    for (offered, amount, _) in htlc_list(s, owner_is_a)
        .iter()
        .map(|h| (h.offered, h.amount.to_msat(), h.cltv_expiry))
    {
        let sat = amount / 1000;
        let fee = if offered { timeout_fee } else { success_fee };
        if sat >= fee + s.dust {
            values.push(sat);
            untrimmed += 1;
        }
    }
    let base_fee = f * ((if anchors { 1124 } else { 724 }) + 172 * untrimmed) / 1000;
    let cost = (base_fee + if anchors { 660 } else { 0 }) * 1000;
    let (mut local, mut remote) = if owner_is_a {
        (s.a_balance_msat, s.b_balance_msat)
    } else {
        (s.b_balance_msat, s.a_balance_msat)
    };
    if s.a_is_funder == owner_is_a {
        local = local.saturating_sub(cost);
    } else {
        remote = remote.saturating_sub(cost);
    }
    let has_local = local / 1000 >= s.dust;
    let has_remote = remote / 1000 >= s.dust;
    if has_local {
        values.push(local / 1000);
    }
    if has_remote {
        values.push(remote / 1000);
    }
    if anchors {
        if has_local || untrimmed > 0 {
            values.push(330);
        }
        if has_remote || untrimmed > 0 {
            values.push(330);
        }
    }
    values.sort_unstable();
    (values, base_fee)
}

fn value_of(c: &CommitmentTx, kind: OutputKind) -> Option<u64> {
    c.output_of(kind)
        .map(|i| c.tx.output[i as usize].value.to_sat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn outputs_follow_the_rules_and_the_money_adds_up(s in state()) {
        for owner_is_a in [true, false] {
            let (c, htlcs) = build(&s, owner_is_a);
            if !affordable(&s) {
                let refused = matches!(c, Err(CommitmentError::FunderCannotAffordAnchors { .. }));
                prop_assert!(refused);
                continue;
            }
            let c = c.unwrap();
            let (expected, base_fee) = model(&s, owner_is_a);
            let mut got: Vec<u64> = c.tx.output.iter().map(|o| o.value.to_sat()).collect();
            got.sort_unstable();
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(c.base_fee.to_sat(), base_fee);

            // The money adds up: outputs + fee = funding, and the fee is the
            // base fee plus what trimming and rounding took (never less).
            let out: u64 = got.iter().sum();
            prop_assert!(out <= s.funding_sat, "outputs {} exceed funding {}", out, s.funding_sat);
            let fee = s.funding_sat - out;
            prop_assert_eq!(c.actual_fee(Amount::from_sat(s.funding_sat)).to_sat(), fee);
            let trimmed: u64 = htlcs.iter().enumerate().filter(|(i, _)| c.htlc_output(*i).is_none()).map(|(_, h)| h.amount.to_sat_floor()).sum();
            prop_assert!(fee >= trimmed, "fee {} below the trimmed amount {}", fee, trimmed);
            // Every trimmed HTLC's value left the outputs: it is in the fee.
            let in_htlc_outputs: u64 = c.htlcs_in_output_order().map(|(v, _)| c.tx.output[v as usize].value.to_sat()).sum();
            let all_htlcs: u64 = htlcs.iter().map(|h| h.amount.to_sat_floor()).sum();
            prop_assert_eq!(all_htlcs - in_htlc_outputs, trimmed);
            // Outputs are in BOLT 3 order.
            for w in c.tx.output.windows(2) {
                prop_assert!((w[0].value, w[0].script_pubkey.as_bytes()) <= (w[1].value, w[1].script_pubkey.as_bytes()));
            }
        }
    }

    #[test]
    fn both_views_mirror_each_other(s in state()) {
        prop_assume!(affordable(&s));
        let (a, b) = (build(&s, true).0.unwrap(), build(&s, false).0.unwrap());
        // The side that does not pay the fee gets the same output in both views.
        let (a_fundee, b_fundee) = if s.a_is_funder {
            (value_of(&a, OutputKind::ToRemote), value_of(&b, OutputKind::ToLocal))
        } else {
            (value_of(&a, OutputKind::ToLocal), value_of(&b, OutputKind::ToRemote))
        };
        prop_assert_eq!(a_fundee, b_fundee);
        // The funder's output differs by exactly the difference in base fee.
        let (a_funder, b_funder) = if s.a_is_funder {
            (value_of(&a, OutputKind::ToLocal), value_of(&b, OutputKind::ToRemote))
        } else {
            (value_of(&a, OutputKind::ToRemote), value_of(&b, OutputKind::ToLocal))
        };
        if let (Some(x), Some(y)) = (a_funder, b_funder) {
            prop_assert_eq!(x + a.base_fee.to_sat(), y + b.base_fee.to_sat());
        }
        // An HTLC untrimmed in both views has the same output value in both.
        for i in 0..s.htlcs.len() {
            if let (Some(x), Some(y)) = (a.htlc_output(i), b.htlc_output(i)) {
                prop_assert_eq!(a.tx.output[x as usize].value, b.tx.output[y as usize].value);
            }
        }
        // With anchors, HTLC second-stage fees are zero, so trimming is the
        // same in both views.
        if s.ct == ChannelType::Anchors {
            for i in 0..s.htlcs.len() {
                prop_assert_eq!(a.htlc_output(i).is_some(), b.htlc_output(i).is_some());
            }
        }
    }
}
