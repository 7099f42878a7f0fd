//! Every spending path of BOLT 3's outputs, built and signed with
//! `beongae_script::sweep` and run through Bitcoin Core's script interpreter
//! (libbitcoinconsensus) against the real spent outputs; each with a negative
//! twin (wrong key, wrong preimage, too-early sequence or locktime) that the
//! interpreter must reject.

#![allow(clippy::unwrap_used)]

use beongae_script::commitment::{
    build_commitment, CommitmentNumber, CommitmentSpec, CommitmentTx, Htlc, ObscuringFactor,
    OutputKind,
};
use beongae_script::htlc_tx::{build_htlc_tx, htlc_tx_witness, remote_htlc_sighash};
use beongae_script::keys::{
    derive_privkey, derive_revocation_privkey, ChannelPublicKeys, CommitmentKeys,
};
use beongae_script::sign::sign_p2wsh;
use beongae_script::sweep::{build_sweep, sign_sweep, SpendPath, SweepInput};
use beongae_script::{ChannelType, FeeratePerKw, Msat, Preimage};
use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxOut, Txid, Witness};

const TO_SELF_DELAY: u16 = 144;
const OFFERED_CLTV: u32 = 700;
const RECEIVED_CLTV: u32 = 710;

fn sk(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

/// A channel party's basepoint secrets.
struct Party {
    funding: SecretKey,
    revocation: SecretKey,
    payment: SecretKey,
    delayed: SecretKey,
    htlc: SecretKey,
}

impl Party {
    fn new(seed: u8) -> Party {
        Party {
            funding: sk(seed),
            revocation: sk(seed + 1),
            payment: sk(seed + 2),
            delayed: sk(seed + 3),
            htlc: sk(seed + 4),
        }
    }

    fn public(&self, secp: &Secp256k1<All>) -> ChannelPublicKeys {
        let p = |k: &SecretKey| PublicKey::from_secret_key(secp, k);
        ChannelPublicKeys {
            funding_pubkey: p(&self.funding),
            revocation_basepoint: p(&self.revocation),
            payment_basepoint: p(&self.payment),
            delayed_payment_basepoint: p(&self.delayed),
            htlc_basepoint: p(&self.htlc),
        }
    }
}

/// A's commitment (A = local, the owner) with one offered and one received HTLC.
struct Fixture {
    secp: Secp256k1<All>,
    ct: ChannelType,
    a: Party,
    b: Party,
    per_commitment_secret: SecretKey,
    keys: CommitmentKeys,
    htlcs: Vec<Htlc>,
    preimage: Preimage,
    commitment: CommitmentTx,
}

impl Fixture {
    fn new(ct: ChannelType) -> Fixture {
        let secp = Secp256k1::new();
        let (a, b) = (Party::new(10), Party::new(40));
        let per_commitment_secret = sk(77);
        let pcp = PublicKey::from_secret_key(&secp, &per_commitment_secret);
        let keys = CommitmentKeys::derive(&secp, &a.public(&secp), &b.public(&secp), &pcp).unwrap();
        let preimage = Preimage([0x42; 32]);
        let htlcs = vec![
            Htlc {
                offered: true,
                amount: Msat::from_msat(20_000_000),
                cltv_expiry: OFFERED_CLTV,
                payment_hash: Preimage([0x24; 32]).payment_hash(),
            },
            Htlc {
                offered: false,
                amount: Msat::from_msat(30_000_000),
                cltv_expiry: RECEIVED_CLTV,
                payment_hash: preimage.payment_hash(),
            },
        ];
        let spec = CommitmentSpec {
            channel_type: ct,
            funding_outpoint: OutPoint {
                txid: Txid::from_byte_array([1; 32]),
                vout: 0,
            },
            funding_amount: Amount::from_sat(1_000_000),
            commitment_number: CommitmentNumber::new(7).unwrap(),
            obscuring_factor: ObscuringFactor::from_u64(0x1234_5678_9abc),
            to_self_delay: TO_SELF_DELAY,
            dust_limit: Amount::from_sat(546),
            feerate: FeeratePerKw(2500),
            to_local: Msat::from_msat(600_000_000),
            to_remote: Msat::from_msat(350_000_000),
            owner_is_funder: true,
            keys: &keys,
            htlcs: &htlcs,
        };
        let commitment = build_commitment(&spec).unwrap();
        Fixture {
            secp,
            ct,
            a,
            b,
            per_commitment_secret,
            keys,
            htlcs,
            preimage,
            commitment,
        }
    }

    fn pcp(&self) -> PublicKey {
        self.keys.per_commitment_point
    }

    fn output(&self, kind: OutputKind) -> (OutPoint, TxOut, Option<ScriptBuf>) {
        let i = self.commitment.output_of(kind).unwrap();
        let txid = self.commitment.tx.compute_txid();
        (
            OutPoint { txid, vout: i },
            self.commitment.tx.output[i as usize].clone(),
            self.commitment.outputs[i as usize].1.clone(),
        )
    }

    fn input(&self, kind: OutputKind, path: SpendPath) -> (SweepInput, TxOut) {
        let (outpoint, txout, witness_script) = self.output(kind);
        (
            SweepInput {
                outpoint,
                value: txout.value,
                witness_script,
                path,
            },
            txout,
        )
    }

    fn revocation_key(&self) -> SecretKey {
        derive_revocation_privkey(&self.secp, &self.b.revocation, &self.per_commitment_secret)
            .unwrap()
    }
    fn a_delayed_key(&self) -> SecretKey {
        derive_privkey(&self.secp, &self.a.delayed, &self.pcp()).unwrap()
    }
    fn a_htlc_key(&self) -> SecretKey {
        derive_privkey(&self.secp, &self.a.htlc, &self.pcp()).unwrap()
    }
    fn b_htlc_key(&self) -> SecretKey {
        derive_privkey(&self.secp, &self.b.htlc, &self.pcp()).unwrap()
    }

    /// Builds and signs a sweep of `inputs`, then lets `tweak` alter it and
    /// re-signs (to make the negative twins).
    fn sweep(
        &self,
        inputs: &[SweepInput],
        keys: &[Option<SecretKey>],
        tweak: impl FnOnce(&mut Transaction),
    ) -> Transaction {
        let dest = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([9; 20]));
        let mut tx = build_sweep(inputs, dest, FeeratePerKw(1000), Amount::from_sat(294)).unwrap();
        tweak(&mut tx);
        sign_sweep(&self.secp, &mut tx, inputs, keys).unwrap();
        tx
    }
}

/// Runs input `n` of `tx` through libbitcoinconsensus against `spent`.
fn consensus(tx: &Transaction, n: usize, spent: &TxOut) -> Result<(), String> {
    spent
        .script_pubkey
        .verify(n, spent.value, &serialize(tx))
        .map_err(|e| format!("{e:?}"))
}

fn both_types(test: impl Fn(Fixture)) {
    test(Fixture::new(ChannelType::StaticRemoteKey));
    test(Fixture::new(ChannelType::Anchors));
}

#[test]
fn to_local_after_delay_and_not_before() {
    both_types(|f| {
        let (input, spent) = f.input(
            OutputKind::ToLocal,
            SpendPath::Delayed {
                to_self_delay: TO_SELF_DELAY,
            },
        );
        let ok = f.sweep(
            std::slice::from_ref(&input),
            &[Some(f.a_delayed_key())],
            |_| {},
        );
        assert_eq!(ok.input[0].sequence, Sequence::from_height(TO_SELF_DELAY));
        consensus(&ok, 0, &spent).unwrap();
        // One block too early: OP_CHECKSEQUENCEVERIFY fails.
        let early = f.sweep(
            std::slice::from_ref(&input),
            &[Some(f.a_delayed_key())],
            |tx| tx.input[0].sequence = Sequence::from_height(TO_SELF_DELAY - 1),
        );
        assert!(consensus(&early, 0, &spent).is_err());
        // Someone else's key.
        let wrong = f.sweep(&[input], &[Some(f.b_htlc_key())], |_| {});
        assert!(consensus(&wrong, 0, &spent).is_err());
    });
}

#[test]
fn revoked_to_local_penalty() {
    both_types(|f| {
        let (input, spent) = f.input(OutputKind::ToLocal, SpendPath::RevokedDelayed);
        let ok = f.sweep(
            std::slice::from_ref(&input),
            &[Some(f.revocation_key())],
            |_| {},
        );
        consensus(&ok, 0, &spent).unwrap();
        // The owner's delayed key cannot take the revocation branch.
        let wrong = f.sweep(&[input], &[Some(f.a_delayed_key())], |_| {});
        assert!(consensus(&wrong, 0, &spent).is_err());
    });
}

#[test]
fn offered_htlc_by_preimage_and_by_revocation() {
    both_types(|f| {
        let anchors = f.ct == ChannelType::Anchors;
        let preimage = Preimage([0x24; 32]);
        let path = SpendPath::OfferedHtlcPreimage { preimage, anchors };
        let (input, spent) = f.input(OutputKind::Htlc(0), path);
        let ok = f.sweep(
            std::slice::from_ref(&input),
            &[Some(f.b_htlc_key())],
            |_| {},
        );
        consensus(&ok, 0, &spent).unwrap();
        let wrong_preimage = SweepInput {
            path: SpendPath::OfferedHtlcPreimage {
                preimage: Preimage([0x25; 32]),
                anchors,
            },
            ..input.clone()
        };
        let bad = f.sweep(&[wrong_preimage], &[Some(f.b_htlc_key())], |_| {});
        assert!(consensus(&bad, 0, &spent).is_err());
        if anchors {
            // Anchor HTLC scripts require the 1-block CSV.
            let early = f.sweep(&[input], &[Some(f.b_htlc_key())], |tx| {
                tx.input[0].sequence = Sequence::ZERO
            });
            assert!(consensus(&early, 0, &spent).is_err());
        }

        let revoked = SpendPath::RevokedHtlc {
            revocation_key: f.keys.revocation_key,
        };
        let (input, spent) = f.input(OutputKind::Htlc(0), revoked);
        consensus(
            &f.sweep(
                std::slice::from_ref(&input),
                &[Some(f.revocation_key())],
                |_| {},
            ),
            0,
            &spent,
        )
        .unwrap();
        assert!(consensus(
            &f.sweep(&[input], &[Some(f.b_htlc_key())], |_| {}),
            0,
            &spent
        )
        .is_err());
    });
}

#[test]
fn received_htlc_by_timeout_and_by_revocation() {
    both_types(|f| {
        let anchors = f.ct == ChannelType::Anchors;
        let path = SpendPath::ReceivedHtlcTimeout {
            cltv_expiry: RECEIVED_CLTV,
            anchors,
        };
        let (input, spent) = f.input(OutputKind::Htlc(1), path);
        let ok = f.sweep(
            std::slice::from_ref(&input),
            &[Some(f.b_htlc_key())],
            |_| {},
        );
        assert_eq!(ok.lock_time.to_consensus_u32(), RECEIVED_CLTV);
        consensus(&ok, 0, &spent).unwrap();
        // Before the expiry: OP_CHECKLOCKTIMEVERIFY fails.
        let early = f.sweep(
            std::slice::from_ref(&input),
            &[Some(f.b_htlc_key())],
            |tx| tx.lock_time = bitcoin::absolute::LockTime::from_consensus(RECEIVED_CLTV - 1),
        );
        assert!(consensus(&early, 0, &spent).is_err());
        // The owner cannot take the timeout branch with its own key.
        let wrong = f.sweep(&[input], &[Some(f.a_htlc_key())], |_| {});
        assert!(consensus(&wrong, 0, &spent).is_err());

        let (input, spent) = f.input(
            OutputKind::Htlc(1),
            SpendPath::RevokedHtlc {
                revocation_key: f.keys.revocation_key,
            },
        );
        consensus(
            &f.sweep(&[input], &[Some(f.revocation_key())], |_| {}),
            0,
            &spent,
        )
        .unwrap();
    });
}

/// HTLC-success and HTLC-timeout (second stage, 2-of-2), then their delayed
/// outputs: by the owner after `to_self_delay`, or by revocation.
#[test]
fn second_stage_transactions_and_their_outputs() {
    both_types(|f| {
        for (h, preimage) in [(0usize, None), (1, Some(f.preimage))] {
            let htlc = f.htlcs[h];
            let (outpoint, spent, script) = f.output(OutputKind::Htlc(h));
            let script = script.unwrap();
            let mut tx = build_htlc_tx(
                outpoint.txid,
                outpoint.vout,
                &htlc,
                &f.keys,
                TO_SELF_DELAY,
                FeeratePerKw(2500),
                f.ct,
            )
            .unwrap();
            let remote = sign_p2wsh(
                &f.secp,
                &tx,
                0,
                &script,
                spent.value,
                remote_htlc_sighash(f.ct),
                &f.b_htlc_key(),
            )
            .unwrap();
            let local = sign_p2wsh(
                &f.secp,
                &tx,
                0,
                &script,
                spent.value,
                EcdsaSighashType::All,
                &f.a_htlc_key(),
            )
            .unwrap();
            tx.input[0].witness = htlc_tx_witness(&remote, &local, preimage.as_ref(), &script);
            consensus(&tx, 0, &spent).unwrap();
            if let Some(p) = preimage {
                // HTLC-success with a wrong preimage is rejected.
                let mut bad = tx.clone();
                bad.input[0].witness =
                    htlc_tx_witness(&remote, &local, Some(&Preimage([p.0[0] ^ 1; 32])), &script);
                assert!(consensus(&bad, 0, &spent).is_err());
            }

            // Its output: the owner after the delay, or the revocation key.
            let out = TxOut {
                value: tx.output[0].value,
                script_pubkey: tx.output[0].script_pubkey.clone(),
            };
            let delayed_script = beongae_script::scripts::to_local_script(
                &f.keys.revocation_key,
                TO_SELF_DELAY,
                &f.keys.local_delayed_key,
            );
            let op = OutPoint {
                txid: tx.compute_txid(),
                vout: 0,
            };
            let input = SweepInput {
                outpoint: op,
                value: out.value,
                witness_script: Some(delayed_script.clone()),
                path: SpendPath::Delayed {
                    to_self_delay: TO_SELF_DELAY,
                },
            };
            consensus(
                &f.sweep(
                    std::slice::from_ref(&input),
                    &[Some(f.a_delayed_key())],
                    |_| {},
                ),
                0,
                &out,
            )
            .unwrap();
            let early = f.sweep(&[input], &[Some(f.a_delayed_key())], |tx| {
                tx.input[0].sequence = Sequence::from_height(1)
            });
            assert!(consensus(&early, 0, &out).is_err());
            let input = SweepInput {
                outpoint: op,
                value: out.value,
                witness_script: Some(delayed_script),
                path: SpendPath::RevokedDelayed,
            };
            consensus(
                &f.sweep(&[input], &[Some(f.revocation_key())], |_| {}),
                0,
                &out,
            )
            .unwrap();
        }
    });
}

#[test]
fn to_remote_static_and_anchors() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let pubkey = PublicKey::from_secret_key(&f.secp, &f.b.payment);
    let (input, spent) = f.input(OutputKind::ToRemote, SpendPath::ToRemoteP2wpkh { pubkey });
    consensus(
        &f.sweep(std::slice::from_ref(&input), &[Some(f.b.payment)], |_| {}),
        0,
        &spent,
    )
    .unwrap();
    assert!(consensus(&f.sweep(&[input], &[Some(f.a.payment)], |_| {}), 0, &spent).is_err());

    let f = Fixture::new(ChannelType::Anchors);
    let (input, spent) = f.input(OutputKind::ToRemote, SpendPath::ToRemoteAnchors);
    let ok = f.sweep(std::slice::from_ref(&input), &[Some(f.b.payment)], |_| {});
    assert_eq!(ok.input[0].sequence, Sequence(1));
    consensus(&ok, 0, &spent).unwrap();
    // The anchors to_remote is CSV-locked for 1 block.
    let early = f.sweep(&[input], &[Some(f.b.payment)], |tx| {
        tx.input[0].sequence = Sequence::ZERO
    });
    assert!(consensus(&early, 0, &spent).is_err());
}

#[test]
fn anchors_by_owner_and_by_anyone_after_16_blocks() {
    let f = Fixture::new(ChannelType::Anchors);
    for (kind, owner) in [
        (OutputKind::LocalAnchor, f.a.funding),
        (OutputKind::RemoteAnchor, f.b.funding),
    ] {
        // An anchor alone is too small to pay for its own sweep; add to_local
        // (the owner's delayed output) as a fee input, as a CPFP child would.
        let (anchor, anchor_out) = f.input(kind, SpendPath::Anchor);
        let (fee_input, fee_out) = f.input(
            OutputKind::ToLocal,
            SpendPath::Delayed {
                to_self_delay: TO_SELF_DELAY,
            },
        );
        let tx = f.sweep(
            &[anchor.clone(), fee_input.clone()],
            &[Some(owner), Some(f.a_delayed_key())],
            |_| {},
        );
        consensus(&tx, 0, &anchor_out).unwrap();
        consensus(&tx, 1, &fee_out).unwrap();
        let wrong = f.sweep(
            &[anchor.clone(), fee_input.clone()],
            &[Some(f.b.htlc), Some(f.a_delayed_key())],
            |_| {},
        );
        assert!(consensus(&wrong, 0, &anchor_out).is_err());

        let anyone = SweepInput {
            path: SpendPath::AnchorAfter16,
            ..anchor
        };
        let tx = f.sweep(
            &[anyone.clone(), fee_input.clone()],
            &[None, Some(f.a_delayed_key())],
            |_| {},
        );
        assert_eq!(tx.input[0].sequence, Sequence(16));
        consensus(&tx, 0, &anchor_out).unwrap();
        let early = f.sweep(
            &[anyone, fee_input],
            &[None, Some(f.a_delayed_key())],
            |tx| tx.input[0].sequence = Sequence(15),
        );
        assert!(consensus(&early, 0, &anchor_out).is_err());
    }
}

/// One penalty transaction takes every output of a revoked commitment that
/// belonged to the cheater or was in flight: `to_local` and both HTLCs.
#[test]
fn one_penalty_sweeps_all_revoked_outputs() {
    both_types(|f| {
        let revoked_htlc = SpendPath::RevokedHtlc {
            revocation_key: f.keys.revocation_key,
        };
        let parts = [
            f.input(OutputKind::ToLocal, SpendPath::RevokedDelayed),
            f.input(OutputKind::Htlc(0), revoked_htlc.clone()),
            f.input(OutputKind::Htlc(1), revoked_htlc),
        ];
        let inputs: Vec<SweepInput> = parts.iter().map(|(i, _)| i.clone()).collect();
        let key = f.revocation_key();
        let tx = f.sweep(&inputs, &[Some(key), Some(key), Some(key)], |_| {});
        assert_eq!(tx.input.len(), 3);
        for (n, (_, spent)) in parts.iter().enumerate() {
            consensus(&tx, n, spent).unwrap_or_else(|e| panic!("input {n}: {e}"));
        }
        // Fee within 5% of the estimate at the signed size.
        let total: Amount = parts.iter().map(|(i, _)| i.value).sum();
        let fee = total - tx.output[0].value;
        let actual = FeeratePerKw(1000).fee_for_weight(tx.weight().to_wu());
        assert!(
            fee >= actual && fee.to_sat() <= actual.to_sat() * 105 / 100,
            "fee {fee} for weight {}",
            tx.weight()
        );
    });
}

/// Commitment and closing transactions spend the 2-of-2 funding output only
/// with both signatures in key order.
#[test]
fn closing_transactions_spend_the_funding_output() {
    use beongae_script::closing::{build_legacy_closing, build_simple_closing, ClosingOutput};
    use beongae_script::funding::{funding_script_pubkey, funding_witness};
    use beongae_script::scripts::funding_script;

    let f = Fixture::new(ChannelType::Anchors);
    let (a_key, b_key) = (f.a.funding, f.b.funding);
    let (a_pub, b_pub) = (
        PublicKey::from_secret_key(&f.secp, &a_key),
        PublicKey::from_secret_key(&f.secp, &b_key),
    );
    let script = funding_script(&a_pub, &b_pub);
    let funding = TxOut {
        value: Amount::from_sat(1_000_000),
        script_pubkey: funding_script_pubkey(&a_pub, &b_pub),
    };
    let op = OutPoint {
        txid: Txid::from_byte_array([1; 32]),
        vout: 0,
    };
    let wpkh = |b: u8| ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([b; 20]));
    let a_out = ClosingOutput {
        balance: Msat::from_msat(600_000_000),
        script_pubkey: wpkh(1),
    };
    let b_out = ClosingOutput {
        balance: Msat::from_msat(400_000_000),
        script_pubkey: wpkh(2),
    };
    let legacy = build_legacy_closing(
        op,
        &a_out,
        &b_out,
        Amount::from_sat(700),
        Amount::from_sat(546),
    )
    .unwrap();
    let simple = build_simple_closing(
        op,
        bitcoin::absolute::LockTime::from_consensus(0),
        Some(&a_out),
        Some(&b_out),
        Amount::from_sat(700),
    )
    .unwrap();
    let commitment = f.commitment.tx.clone();
    for mut tx in [legacy, simple, commitment] {
        let sa = sign_p2wsh(
            &f.secp,
            &tx,
            0,
            &script,
            funding.value,
            EcdsaSighashType::All,
            &a_key,
        )
        .unwrap();
        let sb = sign_p2wsh(
            &f.secp,
            &tx,
            0,
            &script,
            funding.value,
            EcdsaSighashType::All,
            &b_key,
        )
        .unwrap();
        // Signatures in the wrong order fail CHECKMULTISIG.
        let mut swapped = Witness::new();
        let lesser_first = a_pub.serialize() < b_pub.serialize();
        let (first, second) = if lesser_first { (&sb, &sa) } else { (&sa, &sb) };
        swapped.push([0u8; 0]);
        swapped.push(first.serialize());
        swapped.push(second.serialize());
        swapped.push(script.as_bytes());
        tx.input[0].witness = swapped;
        assert!(consensus(&tx, 0, &funding).is_err());
        tx.input[0].witness = funding_witness(&a_pub, &sa, &b_pub, &sb);
        consensus(&tx, 0, &funding).unwrap();
        // One party's signature twice is not enough.
        tx.input[0].witness = funding_witness(&a_pub, &sa, &b_pub, &sa);
        assert!(consensus(&tx, 0, &funding).is_err());
    }
}
