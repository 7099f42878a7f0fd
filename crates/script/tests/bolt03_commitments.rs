//! BOLT 3 Appendix C (static_remotekey) and Appendix F (anchors): every
//! commitment and HTLC transaction rebuilt byte for byte, with our signatures
//! equal to the spec's, the spec's remote signatures verifying, and every
//! transaction accepted by Bitcoin Core's script interpreter.

#![allow(clippy::unwrap_used)]

mod common;

use beongae_script::commitment::{
    build_commitment, obscuring_factor, CommitmentNumber, CommitmentSpec, Htlc,
};
use beongae_script::funding::funding_witness;
use beongae_script::htlc_tx::{build_htlc_tx, htlc_tx_witness, remote_htlc_sighash};
use beongae_script::keys::{
    derive_privkey, derive_pubkey, derive_revocation_pubkey, CommitmentKeys,
};
use beongae_script::scripts::funding_script;
use beongae_script::sign::{sign_p2wsh, verify_p2wsh};
use beongae_script::{ChannelType, FeeratePerKw, Msat, Preimage};
use bitcoin::consensus::encode::{serialize, serialize_hex};
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{ecdsa, PublicKey, Secp256k1};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Txid};
use common::{h32, load, point, secret, unhex};
use serde_json::Value;

/// The parameters Appendix C lists (and Appendix F reuses).
struct Common {
    funding_outpoint: OutPoint,
    funding_amount: Amount,
    commitment_number: CommitmentNumber,
    to_self_delay: u16,
    keys: CommitmentKeys,
    local_payment_basepoint: PublicKey,
    remote_payment_basepoint: PublicKey,
    local_funding_secret: bitcoin::secp256k1::SecretKey,
    local_htlc_secret: bitcoin::secp256k1::SecretKey,
    htlcs: Vec<(Htlc, Preimage)>,
}

fn internal<'a>(lines: &'a [Value], label: &str) -> &'a str {
    lines
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.trim().strip_prefix(label)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {label}"))
}

fn common(v: &Value, hidden: &[Value]) -> Common {
    let secp = Secp256k1::new();
    let c = &v["common"];
    let get = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("missing {k}"));
    let pcp = point(internal(hidden, "INTERNAL: local_per_commitment_point"));
    let local_payment_basepoint = point(get("local_payment_basepoint"));
    let remote_payment_basepoint = point(get("remote_payment_basepoint"));
    let keys = CommitmentKeys {
        per_commitment_point: pcp,
        revocation_key: point(get("local_revocation_pubkey")),
        local_delayed_key: point(get("local_delayedpubkey")),
        local_htlc_key: point(get("local_htlcpubkey")),
        remote_htlc_key: point(get("remote_htlcpubkey")),
        remote_payment_key: remote_payment_basepoint,
        local_funding_key: point(get("local_funding_pubkey")),
        remote_funding_key: point(get("remote_funding_pubkey")),
    };
    // The listed keys are what BOLT 3 key derivation gives from the basepoints.
    let remote_revocation_basepoint =
        point(internal(hidden, "INTERNAL: remote_revocation_basepoint"));
    let local_delayed_basepoint = point(internal(
        hidden,
        "INTERNAL: local_delayed_payment_basepoint",
    ));
    assert_eq!(
        derive_revocation_pubkey(&secp, &remote_revocation_basepoint, &pcp).unwrap(),
        keys.revocation_key
    );
    assert_eq!(
        derive_pubkey(&secp, &local_delayed_basepoint, &pcp).unwrap(),
        keys.local_delayed_key
    );
    assert_eq!(
        derive_pubkey(&secp, &point(get("local_htlc_basepoint")), &pcp).unwrap(),
        keys.local_htlc_key
    );
    assert_eq!(
        derive_pubkey(&secp, &point(get("remote_htlc_basepoint")), &pcp).unwrap(),
        keys.remote_htlc_key
    );
    let local_htlc_secret = derive_privkey(
        &secp,
        &secret(internal(hidden, "INTERNAL: local_payment_basepoint_secret")),
        &pcp,
    )
    .unwrap();
    assert_eq!(local_htlc_secret, secret(get("local_privkey")));

    let htlcs = v["htlcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let preimage = Preimage(h32(h["payment_preimage"].as_str().unwrap()));
            let htlc = Htlc {
                offered: h["direction"] == "local->remote",
                amount: Msat::from_msat(h["amount_msat"].as_u64().unwrap()),
                cltv_expiry: h["expiry"].as_u64().unwrap() as u32,
                payment_hash: preimage.payment_hash(),
            };
            (htlc, preimage)
        })
        .collect();
    Common {
        funding_outpoint: OutPoint {
            txid: get("funding_tx_id").parse::<Txid>().unwrap(),
            vout: get("funding_output_index").parse().unwrap(),
        },
        funding_amount: Amount::from_sat(get("funding_amount_satoshi").parse().unwrap()),
        commitment_number: CommitmentNumber::new(get("commitment_number").parse().unwrap())
            .unwrap(),
        to_self_delay: get("local_delay").parse().unwrap(),
        keys,
        local_payment_basepoint,
        remote_payment_basepoint,
        local_funding_secret: secret(get("local_funding_privkey")),
        local_htlc_secret,
        htlcs,
    }
}

/// One vector, in a shape common to both appendices.
struct Case<'a> {
    name: &'a str,
    to_local: Msat,
    to_remote: Msat,
    feerate: FeeratePerKw,
    dust_limit: Amount,
    remote_sig: &'a str,
    local_sig: Option<&'a str>,
    commit_tx: &'a str,
    /// Per untrimmed HTLC in output order: remote sig, local sig (if given), tx hex.
    htlc_txs: Vec<(&'a str, Option<&'a str>, &'a str)>,
}

fn der(hex_sig: &str, sighash_type: EcdsaSighashType) -> Signature {
    Signature {
        signature: ecdsa::Signature::from_der(&unhex(hex_sig)).unwrap(),
        sighash_type,
    }
}

/// Which of the Appendix C HTLCs a case uses: none when the balances hold
/// the whole channel, 1, 5 and 6 in the "same amount" case, else 0 to 4.
fn htlc_set(c: &Common, case: &Case<'_>) -> Vec<usize> {
    let funding = Msat::from_sat(c.funding_amount.to_sat()).unwrap();
    if case.to_local.checked_add(case.to_remote) == Some(funding) {
        vec![]
    } else if case.name.contains("same amount") {
        vec![1, 5, 6]
    } else {
        vec![0, 1, 2, 3, 4]
    }
}

fn check_case(c: &Common, case: &Case<'_>, channel_type: ChannelType) {
    let secp = Secp256k1::new();
    let name = case.name;
    let chosen = htlc_set(c, case);
    let htlcs: Vec<Htlc> = chosen.iter().map(|&i| c.htlcs[i].0).collect();
    let factor = obscuring_factor(&c.local_payment_basepoint, &c.remote_payment_basepoint);
    assert_eq!(factor.get(), 0x2bb0_3852_1914);
    let spec = CommitmentSpec {
        channel_type,
        funding_outpoint: c.funding_outpoint,
        funding_amount: c.funding_amount,
        commitment_number: c.commitment_number,
        obscuring_factor: factor,
        to_self_delay: c.to_self_delay,
        dust_limit: case.dust_limit,
        feerate: case.feerate,
        to_local: case.to_local,
        to_remote: case.to_remote,
        owner_is_funder: true,
        keys: &c.keys,
        htlcs: &htlcs,
    };
    let built = build_commitment(&spec).unwrap();
    let mut tx = built.tx.clone();

    // Commitment signatures: ours equals the spec's, theirs verifies.
    let fscript = funding_script(&c.keys.local_funding_key, &c.keys.remote_funding_key);
    let local_sig = sign_p2wsh(
        &secp,
        &tx,
        0,
        &fscript,
        c.funding_amount,
        EcdsaSighashType::All,
        &c.local_funding_secret,
    )
    .unwrap();
    if let Some(expected) = case.local_sig {
        assert_eq!(
            hex::encode(local_sig.signature.serialize_der()),
            expected,
            "{name}: local signature"
        );
    }
    let remote_sig = der(case.remote_sig, EcdsaSighashType::All);
    verify_p2wsh(
        &secp,
        &tx,
        0,
        &fscript,
        c.funding_amount,
        &remote_sig,
        &c.keys.remote_funding_key,
    )
    .unwrap_or_else(|e| panic!("{name}: remote signature: {e}"));
    tx.input[0].witness = funding_witness(
        &c.keys.local_funding_key,
        &local_sig,
        &c.keys.remote_funding_key,
        &remote_sig,
    );
    assert_eq!(serialize_hex(&tx), case.commit_tx, "{name}: commitment tx");
    fscript
        .to_p2wsh()
        .verify(0, c.funding_amount, &serialize(&tx))
        .unwrap_or_else(|e| panic!("{name}: consensus: {e:?}"));

    // HTLC transactions, in output order.
    let in_order: Vec<(u32, usize)> = built.htlcs_in_output_order().collect();
    assert_eq!(
        in_order.len(),
        case.htlc_txs.len(),
        "{name}: untrimmed htlcs"
    );
    for ((vout, h), (remote_hex, local_hex, tx_hex)) in in_order.into_iter().zip(&case.htlc_txs) {
        let (htlc, preimage) = c.htlcs[chosen[h]];
        let script = built.outputs[vout as usize].1.clone().unwrap();
        let value = tx.output[vout as usize].value;
        let mut htx = build_htlc_tx(
            tx.compute_txid(),
            vout,
            &htlc,
            &c.keys,
            c.to_self_delay,
            case.feerate,
            channel_type,
        )
        .unwrap();
        let remote = der(remote_hex, remote_htlc_sighash(channel_type));
        verify_p2wsh(
            &secp,
            &htx,
            0,
            &script,
            value,
            &remote,
            &c.keys.remote_htlc_key,
        )
        .unwrap_or_else(|e| panic!("{name}: htlc {h} remote sig: {e}"));
        let local = sign_p2wsh(
            &secp,
            &htx,
            0,
            &script,
            value,
            EcdsaSighashType::All,
            &c.local_htlc_secret,
        )
        .unwrap();
        if let Some(expected) = local_hex {
            assert_eq!(
                hex::encode(local.signature.serialize_der()),
                *expected,
                "{name}: htlc {h} local sig"
            );
        }
        let preimage = (!htlc.offered).then_some(&preimage);
        htx.input[0].witness = htlc_tx_witness(&remote, &local, preimage, &script);
        assert_eq!(serialize_hex(&htx), *tx_hex, "{name}: htlc tx for htlc {h}");
        tx.output[vout as usize]
            .script_pubkey
            .verify(0, value, &serialize(&htx))
            .unwrap_or_else(|e| panic!("{name}: htlc {h} consensus: {e:?}"));
    }
}

#[test]
fn appendix_c_static_remotekey() {
    let v = load("bolt03_appendix_c.json");
    let hidden = v["hidden_html_comment"]["lines"]
        .as_array()
        .unwrap()
        .clone();
    let c = common(&v, &hidden);
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 16);
    for t in tests {
        let vals = &t["values"];
        let get = |k: &str| vals[k].as_str().unwrap_or_else(|| panic!("missing {k}"));
        let htlc_txs = t["htlc_txs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let obj = h.as_object().unwrap();
                let tx = obj
                    .iter()
                    .find(|(k, _)| {
                        k.starts_with("htlc_success_tx") || k.starts_with("htlc_timeout_tx")
                    })
                    .unwrap()
                    .1
                    .as_str()
                    .unwrap();
                (
                    h["remote_htlc_signature"].as_str().unwrap(),
                    h["# local_htlc_signature"].as_str(),
                    tx,
                )
            })
            .collect();
        let case = Case {
            name: t["name"].as_str().unwrap(),
            to_local: Msat::from_msat(get("to_local_msat").parse().unwrap()),
            to_remote: Msat::from_msat(get("to_remote_msat").parse().unwrap()),
            feerate: FeeratePerKw(get("local_feerate_per_kw").parse().unwrap()),
            dust_limit: Amount::from_sat(546),
            remote_sig: get("remote_signature"),
            local_sig: vals["# local_signature"].as_str(),
            commit_tx: get("output commit_tx"),
            htlc_txs,
        };
        check_case(&c, &case, ChannelType::StaticRemoteKey);
    }
}

#[test]
fn appendix_f_anchors() {
    let v = load("bolt03_appendix_f.json");
    // Appendix F reuses Appendix C's keys, including the derivation inputs
    // that C keeps in an HTML comment.
    let hidden = v["common_internal_html_comment"]
        .as_array()
        .unwrap()
        .clone();
    let c = common(&v, &hidden);
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 9);
    for t in tests {
        let vals = &t["values"];
        let get = |k: &str| vals[k].as_str().unwrap_or_else(|| panic!("missing {k}"));
        let htlc_txs = t["htlc_txs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["RemoteSigHex"].as_str().unwrap(),
                    None,
                    h["ResolutionTxHex"].as_str().unwrap(),
                )
            })
            .collect();
        let case = Case {
            name: t["name"].as_str().unwrap(),
            to_local: Msat::from_msat(get("LocalBalance").parse().unwrap()),
            to_remote: Msat::from_msat(get("RemoteBalance").parse().unwrap()),
            feerate: FeeratePerKw(get("FeePerKw").parse().unwrap()),
            dust_limit: Amount::from_sat(get("DustLimitSatoshis").parse().unwrap()),
            remote_sig: get("RemoteSigHex"),
            local_sig: None,
            commit_tx: get("ExpectedCommitmentTxHex"),
            htlc_txs,
        };
        check_case(&c, &case, ChannelType::Anchors);
    }
}
