//! BOLT 3 Appendix A: the transactions our builders produce, with 73-byte
//! signatures in their witnesses as Appendix A assumes, weigh exactly the
//! expected weights the fee rules use.

#![allow(clippy::unwrap_used)]

use beongae_script::commitment::{
    build_commitment, CommitmentNumber, CommitmentSpec, Htlc, ObscuringFactor,
};
use beongae_script::fees::{commitment_weight, htlc_success_weight, htlc_timeout_weight};
use beongae_script::funding::funding_witness;
use beongae_script::htlc_tx::{build_htlc_tx, htlc_tx_witness};
use beongae_script::keys::CommitmentKeys;
use beongae_script::{ChannelType, FeeratePerKw, Msat, PaymentHash, Preimage};
use bitcoin::ecdsa::Signature;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{ecdsa, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Txid};

fn key(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

/// A long signature: r = 0x80.. needs a 0x00 pad (33 bytes) and a low-S s
/// has at most 32, so it serializes to 72 bytes with the sighash byte.
/// Appendix A assumes the 73-byte maximum; the tests add the difference.
fn max_sig() -> Signature {
    let mut compact = [0x11u8; 64];
    compact[0] = 0x80;
    compact[32] = 0x7f;
    let signature = ecdsa::Signature::from_compact(&compact).unwrap();
    Signature {
        signature,
        sighash_type: EcdsaSighashType::All,
    }
}

fn keys() -> CommitmentKeys {
    CommitmentKeys {
        per_commitment_point: key(1),
        revocation_key: key(2),
        local_delayed_key: key(3),
        local_htlc_key: key(4),
        remote_htlc_key: key(5),
        remote_payment_key: key(6),
        local_funding_key: key(7),
        remote_funding_key: key(8),
    }
}

#[test]
fn commitment_weight_matches_appendix_a() {
    let sig = max_sig();
    let sig_len = sig.serialize().len();
    let k = keys();
    for ct in [ChannelType::StaticRemoteKey, ChannelType::Anchors] {
        for n in 0..5usize {
            let htlcs: Vec<Htlc> = (0..n)
                .map(|i| Htlc {
                    offered: i % 2 == 0,
                    amount: Msat::from_msat(5_000_000),
                    cltv_expiry: 500 + i as u32,
                    payment_hash: PaymentHash([i as u8; 32]),
                })
                .collect();
            let spec = CommitmentSpec {
                channel_type: ct,
                funding_outpoint: OutPoint {
                    txid: Txid::from_byte_array([3; 32]),
                    vout: 1,
                },
                funding_amount: Amount::from_sat(1_000_000),
                commitment_number: CommitmentNumber::new(1).unwrap(),
                obscuring_factor: ObscuringFactor::from_u64(5),
                to_self_delay: 144,
                dust_limit: Amount::from_sat(546),
                feerate: FeeratePerKw(253),
                to_local: Msat::from_msat(1_000_000_000 - 350_000_000 - 5_000_000 * n as u64),
                to_remote: Msat::from_msat(350_000_000),
                owner_is_funder: true,
                keys: &k,
                htlcs: &htlcs,
            };
            let mut tx = build_commitment(&spec).unwrap().tx;
            tx.input[0].witness =
                funding_witness(&k.local_funding_key, &sig, &k.remote_funding_key, &sig);
            // Appendix A counts 73-byte signatures; ours are `sig_len`.
            let adjust = 2 * (73 - sig_len as u64);
            // For anchors, Appendix A counts the output count as 3 bytes
            // ("count_tx_out: 3 byte"), 8 weight units more than the 1-byte
            // count of a transaction with fewer than 253 outputs.
            let count_slack = match ct {
                ChannelType::StaticRemoteKey => 0,
                ChannelType::Anchors => 8,
            };
            assert_eq!(
                tx.weight().to_wu() + adjust + count_slack,
                commitment_weight(ct, n),
                "{ct:?} with {n} htlcs"
            );
        }
    }
}

#[test]
fn htlc_transaction_weights_match_appendix_a() {
    let sig = max_sig();
    let adjust = 2 * (73 - sig.serialize().len() as u64);
    let k = keys();
    for ct in [ChannelType::StaticRemoteKey, ChannelType::Anchors] {
        // A 4-byte cltv_expiry, as Appendix A's received script assumes.
        let cltv = 1 << 23;
        let offered = Htlc {
            offered: true,
            amount: Msat::from_msat(5_000_000),
            cltv_expiry: cltv,
            payment_hash: PaymentHash([1; 32]),
        };
        let received = Htlc {
            offered: false,
            ..offered
        };
        for (htlc, expected, preimage) in [
            (offered, htlc_timeout_weight(ct), None),
            // Appendix A: the HTLC-success figure is rounded up by one ("really 702 and 705").
            (
                received,
                htlc_success_weight(ct) - 1,
                Some(Preimage([7; 32])),
            ),
        ] {
            let script = beongae_script::commitment::htlc_script(&htlc, &k, ct);
            let mut tx = build_htlc_tx(
                Txid::from_byte_array([4; 32]),
                2,
                &htlc,
                &k,
                144,
                FeeratePerKw(253),
                ct,
            )
            .unwrap();
            tx.input[0].witness = htlc_tx_witness(&sig, &sig, preimage.as_ref(), &script);
            assert_eq!(
                tx.weight().to_wu() + adjust,
                expected,
                "{ct:?} offered={}",
                htlc.offered
            );
        }
    }
}
