//! Smoke test of the full LDK node harness (`support/ldk_node.rs`): two LDK nodes on one
//! devnet open a channel, pay an invoice and close cooperatively, with every amount checked.
//! This proves the harness before it is pointed at Beongae.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/ldk_node.rs"]
mod ldk_node;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beongae_chain::devnet::{subsidy, Devnet};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Amount, ScriptBuf, Transaction};
use ldk_node::{LdkNode, DEFAULT_FEERATE_SAT_PER_KW};
use lightning::bolt11_invoice::Bolt11Invoice;
use lightning::events::ClosureReason;

const CHANNEL_SAT: u64 = 1_000_000;
const PAYMENT_MSAT: u64 = 50_000_000;
/// Both sides' reserve: LDK's default 1% of the channel.
const RESERVE_SAT: u64 = CHANNEL_SAT / 100;
/// The two anchor outputs the funder pays.
const ANCHORS_MSAT: u64 = 2 * 330 * 1000;

fn mine(devnet: &Mutex<Devnet>, n: u32, script: &ScriptBuf) {
    let mut d = devnet.lock().unwrap();
    let time = 1_700_000_000 + d.height() * 600;
    d.mine(n, script, time);
}

fn find_tx(devnet: &Mutex<Devnet>, txid: &bitcoin::Txid) -> Transaction {
    devnet
        .lock()
        .unwrap()
        .transaction(txid)
        .expect("transaction known to the devnet")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_to_ldk_open_pay_close() {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let a = LdkNode::start([1; 32], Arc::clone(&devnet)).await;
    let b = LdkNode::start([2; 32], Arc::clone(&devnet)).await;
    a.set_label("A");
    b.set_label("B");
    assert_ne!(a.node_id(), b.node_id());
    let burn = ScriptBuf::new_op_return([]);

    // Fund A: 101 coinbases, of which the first two are mature for the next block.
    mine(&devnet, 101, &a.wallet_script());
    assert_eq!(a.sync_to_tip(), 101);
    assert_eq!(b.sync_to_tip(), 101);
    assert_eq!(a.wallet_balance(), subsidy(1) + subsidy(2));
    assert_eq!(b.wallet_balance(), Amount::ZERO);

    // Connect (A dials B) and open an unannounced anchor channel.
    a.connect(b.node_id(), b.listen_addr()).await.unwrap();
    assert!(b.peers().contains(&a.node_id()));
    let channel_id = a.open_channel(b.node_id(), CHANNEL_SAT, 0).await.unwrap();

    // The funding transaction: in the mempool, one mature coinbase in, channel + change out.
    let ca = a.channel(&channel_id).expect("A lists the channel");
    let funding_txo = ca.funding_txo.expect("funding outpoint");
    assert!(ca.is_outbound && ca.anchors && !ca.is_usable);
    assert_eq!(ca.channel_value_sat, CHANNEL_SAT);
    assert!(devnet.lock().unwrap().mempool().contains(&funding_txo.txid));
    let funding = find_tx(&devnet, &funding_txo.txid);
    assert_eq!(funding.input.len(), 1);
    assert_eq!(funding.output.len(), 2);
    assert_eq!(
        funding.output[funding_txo.vout as usize].value,
        Amount::from_sat(CHANNEL_SAT)
    );
    assert!(funding.output[funding_txo.vout as usize]
        .script_pubkey
        .is_p2wsh());
    let change = &funding.output[1 - funding_txo.vout as usize];
    assert_eq!(change.script_pubkey, a.wallet_script());
    let funding_fee = subsidy(1) - Amount::from_sat(CHANNEL_SAT) - change.value;
    let weight = funding.weight().to_wu();
    // At the estimator's 2500 sat/kW, on a weight at most 2 wu below our placeholder's.
    assert!(funding_fee.to_sat() * 1000 >= weight * u64::from(DEFAULT_FEERATE_SAT_PER_KW));
    assert!(funding_fee.to_sat() * 1000 <= (weight + 4) * u64::from(DEFAULT_FEERATE_SAT_PER_KW));
    let cb = b
        .wait_channel(&channel_id, Duration::from_secs(10), |_| true)
        .await
        .unwrap();
    assert!(!cb.is_outbound && cb.anchors);
    assert_eq!(cb.funding_txo, Some(funding_txo));

    // Three confirmations are required (minimum_depth 3); mine six.
    mine(&devnet, 6, &burn);
    a.sync_to_tip();
    b.sync_to_tip();
    assert_eq!(
        devnet.lock().unwrap().confirmations(&funding_txo.txid),
        Some(6)
    );
    let usable = |c: &ldk_node::ChannelSummary| c.is_usable;
    let ca = a
        .wait_channel(&channel_id, Duration::from_secs(10), usable)
        .await
        .unwrap();
    // B's invoice names the channel in a route hint only once A's
    // channel_update has reached B.
    let cb = b
        .wait_channel(&channel_id, Duration::from_secs(10), |c| {
            c.is_usable && c.peer_forwarding_info
        })
        .await
        .unwrap();
    a.wait_channel_ready(&channel_id).await.unwrap();
    b.wait_channel_ready(&channel_id).await.unwrap();
    assert_eq!(ca.confirmations, Some(6));
    assert_eq!(ca.confirmations_required, Some(3));
    assert!(ca.short_channel_id.is_some());
    assert_eq!(ca.short_channel_id, cb.short_channel_id);
    assert_eq!(ca.our_reserve_sat, Some(RESERVE_SAT));
    assert_eq!(ca.their_reserve_sat, RESERVE_SAT);
    assert_eq!(
        ca.outbound_capacity_msat,
        CHANNEL_SAT * 1000 - ANCHORS_MSAT - RESERVE_SAT * 1000
    );
    assert_eq!(ca.balance_msat, Some(CHANNEL_SAT * 1000));
    assert_eq!(cb.outbound_capacity_msat, 0);
    assert_eq!(cb.inbound_capacity_msat, ca.outbound_capacity_msat);
    assert_eq!(cb.balance_msat, Some(0));

    // B invoices, A pays.
    let invoice = b.create_invoice(PAYMENT_MSAT, "ldk node smoke");
    assert!(invoice.starts_with("lnbcrt500u1"), "{invoice}");
    let parsed: Bolt11Invoice = invoice.parse().unwrap();
    assert_eq!(parsed.amount_milli_satoshis(), Some(PAYMENT_MSAT));
    assert_eq!(parsed.get_payee_pub_key(), b.node_id());
    // LDK's MIN_FINAL_CLTV_EXPIRY_DELTA: HTLC_FAIL_BACK_BUFFER (2 * 18 + 3) + 3.
    assert_eq!(parsed.min_final_cltv_expiry_delta(), 42);
    // One route hint: B's unannounced channel, entered from A, under the SCID alias A gave
    // B in `channel_ready` (not the real SCID).
    let hints = parsed.private_routes();
    assert_eq!(hints.len(), 1);
    assert_eq!(hints[0].0.len(), 1);
    assert_eq!(hints[0].0[0].src_node_id, a.node_id());
    assert!(cb.inbound_scid_alias.is_some());
    assert_eq!(cb.inbound_scid_alias, ca.outbound_scid_alias);
    assert_eq!(Some(hints[0].0[0].short_channel_id), cb.inbound_scid_alias);
    assert_ne!(Some(hints[0].0[0].short_channel_id), ca.short_channel_id);
    let hash = a.pay_invoice(&invoice).unwrap();
    let sent = a.wait_sent(&hash).await.unwrap();
    let preimage = sent.result.clone().unwrap();
    assert_eq!(sha256::Hash::hash(&preimage.0).to_byte_array(), hash.0);
    assert_eq!(sent.amount_msat, Some(PAYMENT_MSAT));
    assert_eq!(sent.fee_paid_msat, Some(0));
    let received = b.wait_received(&hash).await.unwrap();
    assert_eq!(received.amount_msat, PAYMENT_MSAT);
    assert_eq!(received.preimage, Some(preimage));
    assert_eq!(b.received_payments().len(), 1);

    // Balances once the HTLC is fully removed on both sides.
    let settled = |want: u64| {
        move |c: &ldk_node::ChannelSummary| {
            c.pending_inbound_htlcs == 0
                && c.pending_outbound_htlcs == 0
                && c.balance_msat == Some(want)
        }
    };
    let ca = a
        .wait_channel(
            &channel_id,
            Duration::from_secs(10),
            settled(CHANNEL_SAT * 1000 - PAYMENT_MSAT),
        )
        .await
        .unwrap();
    let cb = b
        .wait_channel(&channel_id, Duration::from_secs(10), settled(PAYMENT_MSAT))
        .await
        .unwrap();
    assert_eq!(
        ca.outbound_capacity_msat,
        CHANNEL_SAT * 1000 - PAYMENT_MSAT - ANCHORS_MSAT - RESERVE_SAT * 1000
    );
    assert_eq!(cb.outbound_capacity_msat, PAYMENT_MSAT - RESERVE_SAT * 1000);
    assert_eq!(cb.inbound_capacity_msat, ca.outbound_capacity_msat);

    // Cooperative close initiated by A.
    a.close_channel(&channel_id, &b.node_id()).unwrap();
    let closed_a = a.wait_closed(&channel_id).await.unwrap();
    let closed_b = b.wait_closed(&channel_id).await.unwrap();
    assert_eq!(
        closed_a.reason,
        ClosureReason::LocallyInitiatedCooperativeClosure
    );
    assert_eq!(
        closed_b.reason,
        ClosureReason::CounterpartyInitiatedCooperativeClosure
    );
    assert_eq!(
        closed_a.last_local_balance_msat,
        Some(CHANNEL_SAT * 1000 - PAYMENT_MSAT)
    );
    assert_eq!(closed_b.last_local_balance_msat, Some(PAYMENT_MSAT));
    assert_eq!(closed_a.funding_txo, Some(funding_txo));
    assert_eq!(closed_a.capacity_sat, Some(CHANNEL_SAT));

    // The closing transaction: spends the funding output, B gets exactly its 50 000 sat,
    // A (the funder) the rest minus the fee.
    let closing = {
        let d = devnet.lock().unwrap();
        d.mempool()
            .iter()
            .map(|t| d.transaction(t).unwrap().clone())
            .find(|t| t.input.iter().any(|i| i.previous_output == funding_txo))
            .expect("closing transaction in the mempool")
    };
    assert_eq!(closing.input.len(), 1);
    assert_eq!(closing.output.len(), 2);
    let closing_txid = closing.compute_txid();
    assert!(a
        .broadcasts()
        .iter()
        .any(|r| r.tx.compute_txid() == closing_txid && r.result.is_ok()));
    let to_b = Amount::from_sat(PAYMENT_MSAT / 1000);
    let to_a = closing
        .output
        .iter()
        .find(|o| o.value != to_b)
        .expect("A's output")
        .value;
    assert!(closing.output.iter().any(|o| o.value == to_b));
    assert!(closing.output.iter().all(|o| o.script_pubkey.is_p2wpkh()));
    let closing_fee = Amount::from_sat(CHANNEL_SAT) - to_b - to_a;
    let closing_weight = closing.weight().to_wu();
    eprintln!(
        "closing fee {closing_fee} for {closing_weight} wu; funding fee {funding_fee} for {weight} wu"
    );
    // LDK as funder offers fee_range [ChannelCloseMinimum, NonAnchorChannelFee +
    // force_close_avoidance_max_fee_satoshis (1000 sat)] on its own weight estimate
    // (channel.rs `get_closing_transaction_weight`: 71-byte signatures, two P2WPKH outputs:
    // 674 wu); LDK as acceptor picks the highest fee in that range.
    let ldk_weight_estimate = 4 * 51 + 2 + 1 + 4 + 71 + 2 * (1 + 71) + 2 * 4 * (9 + 22);
    assert_eq!(ldk_weight_estimate, 674);
    assert!(closing_weight <= ldk_weight_estimate);
    assert_eq!(
        closing_fee.to_sat(),
        u64::from(DEFAULT_FEERATE_SAT_PER_KW) * ldk_weight_estimate / 1000 + 1000
    );

    mine(&devnet, 1, &burn);
    a.sync_to_tip();
    b.sync_to_tip();
    assert_eq!(devnet.lock().unwrap().confirmations(&closing_txid), Some(1));
    assert!(a.channels().is_empty(), "{:?}", a.channels());
    assert!(b.channels().is_empty(), "{:?}", b.channels());

    a.stop();
    b.stop();
}
