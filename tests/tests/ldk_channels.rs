//! Beongae and LDK 0.2.7 as live channel peers over TCP on one devnet:
//! LDK opens an anchors channel to Beongae and Beongae opens one to LDK;
//! BOLT 11 invoices are paid both ways; a disconnection with an HTLC in
//! flight is recovered by `channel_reestablish`; both channels close
//! cooperatively and the closing transactions confirm with the exact
//! balances. And on chain: LDK force-closes and we sweep our balance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/ldk_node.rs"]
mod ldk_node;
#[path = "support/net.rs"]
mod net;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::core::{ChannelState, ChannelSummary};
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_wallet::Seed;
use beongae_wire::{ChannelId, Msat, NodeId};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Amount, ScriptBuf};
use ldk_node::LdkNode;
use net::spender_of;

const CHANNEL_SAT: u64 = 1_000_000;

fn mine(devnet: &Mutex<Devnet>, n: u32, script: &ScriptBuf) {
    let mut d = devnet.lock().unwrap();
    let time = 1_700_000_000 + d.height() * 600;
    d.mine(n, script, time);
}

async fn beongae(devnet: &Arc<Mutex<Devnet>>, dir: &std::path::Path) -> Embedded {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    // The suite's backend (`.ci/run` runs it on SQLite and on PostgreSQL).
    cfg.store = beongae_store::testing::node_store(dir);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.chain_poll = Duration::from_millis(20);
    let chain: Arc<dyn ChainSource> = devnet.clone();
    embedded::start(&Seed::from_entropy([7; 32]), chain, cfg)
        .await
        .unwrap()
}

async fn ours(b: &Embedded, ok: impl Fn(&ChannelSummary) -> bool) -> ChannelSummary {
    for _ in 0..1000 {
        let list = b.node.handle().channels().await.unwrap();
        if let Some(c) = list.iter().find(|c| ok(c)) {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no channel as expected: {:?}",
        b.node.handle().channels().await.unwrap()
    );
}

async fn in_mempool(devnet: &Mutex<Devnet>, txid: bitcoin::Txid) -> bitcoin::Transaction {
    for _ in 0..1000 {
        if let Some(tx) = devnet.lock().unwrap().transaction(&txid) {
            return tx.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{txid} never reached the devnet");
}

/// `f`, or a panic naming `what` after 20 seconds.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn ldk_channel_id(id: ChannelId) -> lightning::ln::types::ChannelId {
    lightning::ln::types::ChannelId(id.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_with_ldk_both_ways() {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let dir = tempfile::tempdir().unwrap();
    let b = beongae(&devnet, dir.path()).await;
    let ldk = LdkNode::start([3; 32], devnet.clone()).await;
    ldk.set_label("LDK");
    ldk.set_auto_sync(true);
    let burn = ScriptBuf::new_op_return([]);
    let ldk_id = NodeId::from_pubkey(ldk.node_id());
    let our_id = b.node.node_id();

    // Fund both wallets.
    mine(&devnet, 101, &ldk.wallet_script());
    mine(&devnet, 101, &b.onchain.new_address().script_pubkey());

    // ---- LDK opens an anchors channel to Beongae.
    ldk.connect(our_id.pubkey(), b.node.listen_addr().unwrap())
        .await
        .unwrap();
    let cid = ldk
        .open_channel(our_id.pubkey(), CHANNEL_SAT, 0)
        .await
        .unwrap();
    let c = ours(&b, |c| c.channel_id.0 == cid.0).await;
    assert_eq!(c.state, ChannelState::AwaitingConfirmation);
    assert!(!c.we_are_funder);
    // Beongae asks for 3 confirmations.
    mine(&devnet, 3, &burn);
    let c = ours(&b, |c| {
        c.channel_id.0 == cid.0 && c.state == ChannelState::Normal && c.active
    })
    .await;
    ldk.wait_channel(&cid, Duration::from_secs(10), |c| c.is_usable)
        .await
        .unwrap();
    let l = ldk.channel(&cid).unwrap();
    assert!(l.anchors, "negotiated option_anchors_zero_fee_htlc_tx");
    assert_eq!(c.short_channel_id.map(|s| s.to_u64()), l.short_channel_id);
    // Both sides' scid aliases went across in channel_ready.
    assert_eq!(l.inbound_scid_alias, c.alias.map(|s| s.to_u64()));
    assert_eq!(c.remote_alias.map(|s| s.to_u64()), l.outbound_scid_alias);
    assert_eq!(c.local, Msat::ZERO);
    assert_eq!(c.remote, Msat::from_msat(CHANNEL_SAT * 1000));

    // LDK pays a Beongae invoice.
    let (invoice, hash) = b
        .node
        .handle()
        .invoice(Some(Msat::from_msat(120_000_000)), "from LDK", 3600)
        .await
        .unwrap();
    let h = ldk.pay_invoice(&invoice).unwrap();
    assert_eq!(h.0, hash.0);
    let preimage = within("LDK pays", ldk.wait_payment(&h)).await.unwrap();
    eprintln!("LDK paid Beongae");
    assert_eq!(sha256::Hash::hash(&preimage.0).to_byte_array(), hash.0);
    let settled = |m: u64| {
        move |c: &ChannelSummary| {
            c.channel_id.0 == cid.0 && c.pending_htlcs == 0 && c.local == Msat::from_msat(m)
        }
    };
    ours(&b, settled(120_000_000)).await;

    // Beongae pays an LDK invoice.
    let inv = ldk.create_invoice(20_000_000, "from Beongae");
    let pre = within("Beongae pays LDK", b.node.handle().pay(&inv, None))
        .await
        .unwrap();
    ldk.wait_received(&lightning::types::payment::PaymentHash(
        pre.payment_hash().0,
    ))
    .await
    .unwrap();
    ours(&b, settled(100_000_000)).await;

    // A disconnection with an HTLC in flight: the pay command and the
    // disconnect reach the core back to back, so update_add_htlc and
    // commitment_signed leave just before the connection closes.
    let inv = ldk.create_invoice(5_000_000, "in flight");
    let handle = b.node.handle();
    let pay = handle.pay(&inv, None);
    tokio::pin!(pay);
    // One poll queues the pay command; the disconnect command follows it.
    tokio::select! {
        biased;
        _ = &mut pay => panic!("the payment cannot complete before the disconnect"),
        () = std::future::ready(()) => {}
    }
    assert!(handle.disconnect(ldk_id).await.unwrap());
    // Reconnect: channel_reestablish retransmits what LDK missed, or both
    // forget an HTLC that was never signed. LDK may still be dropping the
    // old connection: try a few times.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match within("reconnect", handle.connect(ldk_id, ldk.listen_addr())).await {
            Ok(_) => break,
            Err(e) if attempt < 10 => {
                eprintln!("reconnect attempt {attempt}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot reconnect to LDK: {e}"),
        }
    }
    let paid = within("in-flight payment", pay).await;
    eprintln!("in-flight payment: {paid:?}");
    let expected = match paid {
        Ok(_) => 95_000_000,
        // The HTLC was dropped before it was signed: the payment failed
        // cleanly and may be made again.
        Err(e) => {
            assert!(e.to_string().contains("disconnected"), "{e}");
            ours(&b, |c| c.channel_id.0 == cid.0 && c.active).await;
            within("retry", b.node.handle().pay(&inv, None))
                .await
                .unwrap();
            95_000_000
        }
    };
    ours(&b, settled(expected)).await;
    ldk.wait_channel(&cid, Duration::from_secs(10), |c| {
        c.is_usable && c.pending_inbound_htlcs == 0 && c.pending_outbound_htlcs == 0
    })
    .await
    .unwrap();

    // ---- Beongae opens an anchors channel to LDK.
    let (cid2, funding) = b
        .node
        .handle()
        .open_channel(
            ldk_id,
            Amount::from_sat(CHANNEL_SAT),
            Msat::from_msat(10_000_000),
        )
        .await
        .unwrap();
    in_mempool(&devnet, funding).await;
    mine(&devnet, 6, &burn);
    let c2 = ours(&b, |c| {
        c.channel_id == cid2 && c.state == ChannelState::Normal && c.active
    })
    .await;
    assert!(c2.we_are_funder);
    assert_eq!(c2.local, Msat::from_msat(990_000_000));
    let lcid2 = ldk_channel_id(cid2);
    ldk.wait_channel(&lcid2, Duration::from_secs(10), |c| c.is_usable)
        .await
        .unwrap();
    assert!(ldk.channel(&lcid2).unwrap().anchors);

    // Payments both ways on it (LDK's invoice route hint names the channel
    // by alias; we pay the peer directly).
    let inv = ldk.create_invoice(33_000_000, "second channel");
    within("second channel payment", b.node.handle().pay(&inv, None))
        .await
        .unwrap();
    let (invoice, _) = b
        .node
        .handle()
        .invoice(Some(Msat::from_msat(3_000_000)), "back", 3600)
        .await
        .unwrap();
    let h = ldk.pay_invoice(&invoice).unwrap();
    ldk.wait_payment(&h).await.unwrap();

    // LDK picks either channel to pay us over; together our balances are
    // exact.
    let quiet =
        |id: [u8; 32]| move |c: &ChannelSummary| c.channel_id.0 == id && c.pending_htlcs == 0;
    let (mut first, mut second);
    loop {
        first = ours(&b, quiet(cid.0)).await;
        second = ours(&b, quiet(cid2.0)).await;
        if first.local.to_msat() + second.local.to_msat()
            == expected + 990_000_000 - 33_000_000 + 3_000_000
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // ---- Cooperative closes: Beongae closes the first, LDK the second.
    let txid = within("close", b.node.handle().close_channel(first.channel_id))
        .await
        .unwrap();
    let tx = in_mempool(&devnet, txid).await;
    let ours_sat = first.local.to_msat() / 1000;
    assert!(
        tx.output
            .iter()
            .any(|o| o.value == Amount::from_sat(ours_sat)),
        "Beongae (not the funder) gets exactly {ours_sat} sat: {tx:?}"
    );
    ldk.close_channel(&lcid2, &our_id.pubkey()).unwrap();
    let closed2 = ours(&b, |c| {
        c.channel_id == cid2 && c.state == ChannelState::Closing
    })
    .await;
    let tx2 = in_mempool(&devnet, closed2.closing_txid.unwrap()).await;
    // LDK (not the funder) gets exactly its balance.
    let theirs = second.remote.to_msat() / 1000;
    assert!(
        tx2.output
            .iter()
            .any(|o| o.value == Amount::from_sat(theirs)),
        "LDK gets exactly {theirs} sat: {tx2:?}"
    );
    mine(&devnet, 1, &burn);
    ldk.wait_closed(&cid).await.unwrap();
    ldk.wait_closed(&lcid2).await.unwrap();
    for txid in [txid, tx2.compute_txid()] {
        assert_eq!(
            devnet.lock().unwrap().confirmations(&txid),
            Some(1),
            "closing {txid} confirmed"
        );
    }
}

/// LDK's anchors channel of 1,000,000 sat to Beongae, on which LDK paid
/// Beongae 120,000 sat (settled on both sides).
struct Paid {
    devnet: Arc<Mutex<Devnet>>,
    _dir: tempfile::TempDir,
    b: Embedded,
    ldk: LdkNode,
    cid: lightning::ln::types::ChannelId,
    our_id: NodeId,
    burn: ScriptBuf,
}

async fn ldk_channel_paying_us() -> Paid {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let dir = tempfile::tempdir().unwrap();
    let b = beongae(&devnet, dir.path()).await;
    let ldk = LdkNode::start([3; 32], devnet.clone()).await;
    ldk.set_label("LDK");
    ldk.set_auto_sync(true);
    let burn = ScriptBuf::new_op_return([]);
    let our_id = b.node.node_id();
    mine(&devnet, 101, &ldk.wallet_script());
    mine(&devnet, 100, &burn);
    ldk.connect(our_id.pubkey(), b.node.listen_addr().unwrap())
        .await
        .unwrap();
    let cid = ldk
        .open_channel(our_id.pubkey(), CHANNEL_SAT, 0)
        .await
        .unwrap();
    mine(&devnet, 3, &burn);
    ours(&b, |c| {
        c.channel_id.0 == cid.0 && c.state == ChannelState::Normal && c.active
    })
    .await;
    ldk.wait_channel(&cid, Duration::from_secs(10), |c| c.is_usable)
        .await
        .unwrap();
    let (invoice, _) = b
        .node
        .handle()
        .invoice(Some(Msat::from_msat(120_000_000)), "from LDK", 3600)
        .await
        .unwrap();
    let h = ldk.pay_invoice(&invoice).unwrap();
    within("LDK pays", ldk.wait_payment(&h)).await.unwrap();
    ours(&b, |c| {
        c.channel_id.0 == cid.0 && c.pending_htlcs == 0 && c.local == Msat::from_msat(120_000_000)
    })
    .await;
    Paid {
        devnet,
        _dir: dir,
        b,
        ldk,
        cid,
        our_id,
        burn,
    }
}

/// LDK force-closes channel `cid` with us: its commitment, as its harness
/// broadcast it.
async fn ldk_force_closes(
    ldk: &LdkNode,
    cid: lightning::ln::types::ChannelId,
    our_id: NodeId,
) -> bitcoin::Transaction {
    let funding = ldk.channel(&cid).unwrap().funding_txo.unwrap().txid;
    ldk.force_close(&cid, &our_id.pubkey(), "test").unwrap();
    within("LDK's commitment", async {
        loop {
            let found = ldk
                .broadcasts()
                .into_iter()
                .map(|r| r.tx)
                .find(|t| t.input.iter().any(|i| i.previous_output.txid == funding));
            if let Some(tx) = found {
                return tx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// BOLT 5 with LDK 0.2.7 as the other party: LDK opens an anchors channel
/// to Beongae and pays it 120,000 sat, then force-closes. Once LDK's
/// commitment confirms, Beongae sweeps its `to_remote` (exactly 120,000 sat
/// in LDK's commitment) to its wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_force_closes_and_we_claim_our_balance() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id,
        burn,
    } = ldk_channel_paying_us().await;

    let before = b.onchain.balance().unwrap().confirmed;
    let commitment = ldk_force_closes(&ldk, cid, our_id).await;
    let ours_out = commitment
        .output
        .iter()
        .position(|o| o.value == Amount::from_sat(120_000))
        .expect("our 120,000 sat in LDK's commitment");
    mine(&devnet, 1, &burn);
    let sweep = spender_of(&devnet, commitment.compute_txid()).await;
    let ours_spent: Vec<u32> = sweep
        .input
        .iter()
        .filter(|i| i.previous_output.txid == commitment.compute_txid())
        .map(|i| i.previous_output.vout)
        .collect();
    if ours_spent != vec![ours_out as u32] {
        // LDK's own claims (its anchor) may be in the mempool too: find ours.
        panic!("unexpected spender {sweep:?}");
    }
    mine(&devnet, 1, &burn);
    let feerate = devnet.lock().unwrap().fee_estimate_per_kw();
    let got = sweep.output[0].value;
    let w = sweep.weight().to_wu();
    assert!(
        got <= Amount::from_sat(120_000) - feerate.fee_for_weight(w)
            && got >= Amount::from_sat(120_000) - feerate.fee_for_weight(w + 50),
        "{got}"
    );
    for _ in 0..300 {
        if b.onchain.balance().unwrap().confirmed == before + got {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("wallet holds {}", b.onchain.balance().unwrap().confirmed);
}

/// The reverse: Beongae force-closes a channel LDK opened (and paid it
/// 120,000 sat on). LDK recognises our commitment and reports its
/// 876,530 sat (its 880,000 less the commitment fee and anchors it pays as
/// funder) spendable; we sweep our 120,000 sat after LDK's 144-block delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_force_close_and_ldk_claims_its_side() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id: _,
        burn,
    } = ldk_channel_paying_us().await;

    let txid = b
        .node
        .handle()
        .force_close_channel(ChannelId(cid.0))
        .await
        .unwrap();
    let commitment = in_mempool(&devnet, txid).await;
    let mut values: Vec<u64> = commitment.output.iter().map(|o| o.value.to_sat()).collect();
    values.sort_unstable();
    assert_eq!(values, vec![330, 330, 120_000, 880_000 - 2_810 - 660]);
    // LDK reports an output spendable once it is 6 blocks deep
    // (ANTI_REORG_DELAY).
    mine(&devnet, 6, &burn);
    within("LDK sees our commitment", async {
        while !ldk.spendable().contains(&(880_000 - 2_810 - 660)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ldk.closed_channels().iter().any(|c| c.channel_id == cid));
    // Ours after LDK's to_self_delay (144 blocks after the commitment's).
    let before = b.onchain.balance().unwrap().confirmed;
    mine(&devnet, 137, &burn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        devnet.lock().unwrap().mempool().is_empty(),
        "not before the delay"
    );
    mine(&devnet, 1, &burn);
    let sweep = spender_of(&devnet, txid).await;
    assert_eq!(
        commitment.output[sweep.input[0].previous_output.vout as usize].value,
        Amount::from_sat(120_000)
    );
    mine(&devnet, 1, &burn);
    let got = sweep.output[0].value;
    for _ in 0..300 {
        if b.onchain.balance().unwrap().confirmed == before + got {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("wallet holds {}", b.onchain.balance().unwrap().confirmed);
}

/// We pay LDK 50,000 sat and LDK holds the HTLC unclaimed: the payment
/// (never answered while the HTLC is pending) and our channel once the
/// HTLC is committed.
async fn pay_held(
    b: &Embedded,
    ldk: &LdkNode,
    cid: lightning::ln::types::ChannelId,
) -> (
    tokio::task::JoinHandle<Result<beongae_wire::Preimage, beongae_node::runtime::NodeError>>,
    ChannelSummary,
) {
    ldk.set_hold_claims(true);
    let invoice = ldk.create_invoice(50_000_000, "held");
    let payer = b.node.handle();
    let paying = tokio::spawn(async move { payer.pay(&invoice, None).await });
    within("LDK holds the HTLC", async {
        while !ldk.log_contains("holding") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let ours_now = ours(b, |c| c.channel_id.0 == cid.0 && c.pending_htlcs == 1).await;
    (paying, ours_now)
}

/// A mature coin in our wallet (for the fees of HTLC transactions and
/// anchor children), and the node caught up with those blocks before it
/// pays (an HTLC's expiry counts from its tip).
async fn fund_our_wallet(devnet: &Mutex<Devnet>, b: &Embedded, burn: &ScriptBuf) {
    mine(devnet, 1, &b.onchain.new_address().script_pubkey());
    mine(devnet, 100, burn);
    within("the coins mature", async {
        while b.onchain.balance().unwrap().confirmed == Amount::ZERO {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// BOLT 5 with LDK 0.2.7 as the other party, an HTLC on chain: we pay LDK
/// 50,000 sat and LDK never claims it (it holds the payment), then LDK
/// force-closes. Its commitment carries our HTLC; we sweep our `to_remote`
/// at once, claim the HTLC back straight to our wallet once it expired
/// (not before), and our payment fails once that is 6 blocks deep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_force_closes_with_our_htlc_and_we_time_it_out() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id,
        burn,
    } = ldk_channel_paying_us().await;
    let (paying, ours_now) = pay_held(&b, &ldk, cid).await;
    assert_eq!(ours_now.local, Msat::from_msat(70_000_000));
    let commitment = ldk_force_closes(&ldk, cid, our_id).await;
    let htlc_vout = commitment
        .output
        .iter()
        .position(|o| o.value == Amount::from_sat(50_000))
        .expect("our 50,000 sat HTLC in LDK's commitment") as u32;
    assert!(commitment
        .output
        .iter()
        .any(|o| o.value == Amount::from_sat(70_000)));
    mine(&devnet, 1, &burn);
    let confirmed = devnet.lock().unwrap().height();
    // Our to_remote at once.
    let first = spender_of(&devnet, commitment.compute_txid()).await;
    assert!(first
        .input
        .iter()
        .all(|i| i.previous_output.vout != htlc_vout));
    // The HTLC's expiry, from what we report.
    let expiry = ours(&b, |c| {
        c.channel_id.0 == cid.0 && !c.unresolved_htlcs.is_empty()
    })
    .await
    .unresolved_htlcs[0]
        .cltv_expiry;
    assert!(expiry > confirmed + 1, "expiry {expiry} at {confirmed}");
    mine(&devnet, 1, &burn);
    // Up to the block before the expiry: nothing of ours on the HTLC.
    let tip = devnet.lock().unwrap().height();
    mine(&devnet, expiry - 1 - tip, &burn);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        devnet
            .lock()
            .unwrap()
            .mempool_spender_of(commitment.compute_txid())
            .is_none(),
        "not before the expiry"
    );
    mine(&devnet, 1, &burn);
    let back = spender_of(&devnet, commitment.compute_txid()).await;
    assert_eq!(back.input.len(), 1);
    assert_eq!(back.input[0].previous_output.vout, htlc_vout);
    assert_eq!(back.lock_time.to_consensus_u32(), expiry);
    let feerate = devnet.lock().unwrap().fee_estimate_per_kw();
    let got = back.output[0].value;
    let w = back.weight().to_wu();
    assert!(
        got <= Amount::from_sat(50_000) - feerate.fee_for_weight(w)
            && got >= Amount::from_sat(50_000) - feerate.fee_for_weight(w + 50),
        "{got}"
    );
    // Buried 6 blocks: the payment fails.
    mine(&devnet, 6, &burn);
    let failed = within("the payment fails", paying).await.unwrap();
    let why = failed.unwrap_err().to_string();
    assert!(
        why.contains("pending on chain") || why.contains("timed out on chain"),
        "{why}"
    );
    within("the payment is marked failed", async {
        loop {
            let all = b.node.handle().payments().await.unwrap();
            if all
                .iter()
                .any(|p| !p.incoming && p.status == "failed: the htlc timed out on chain")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The reverse, with our HTLC-timeout: LDK holds our 50,000 sat HTLC and
/// we force-close. Once the HTLC expires our HTLC-timeout transaction goes
/// out — zero-fee (anchors), so our wallet adds an input to pay for it and
/// we sign it SIGHASH_ALL — and its output comes back to our wallet after
/// the 144 blocks LDK asked of us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_force_close_with_our_htlc_and_time_it_out_with_a_wallet_input() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id: _,
        burn,
    } = ldk_channel_paying_us().await;
    // Coins for the HTLC-timeout's fee.
    fund_our_wallet(&devnet, &b, &burn).await;
    let (_paying, _) = pay_held(&b, &ldk, cid).await;
    let txid = b
        .node
        .handle()
        .force_close_channel(ChannelId(cid.0))
        .await
        .unwrap();
    let commitment = in_mempool(&devnet, txid).await;
    let htlc_vout = commitment
        .output
        .iter()
        .position(|o| o.value == Amount::from_sat(50_000))
        .expect("our HTLC in our commitment") as u32;
    mine(&devnet, 1, &burn);
    let expiry = ours(&b, |c| {
        c.channel_id.0 == cid.0 && !c.unresolved_htlcs.is_empty()
    })
    .await
    .unresolved_htlcs[0]
        .cltv_expiry;
    let tip = devnet.lock().unwrap().height();
    mine(&devnet, expiry - tip, &burn);
    let timeout = within("our HTLC-timeout", async {
        loop {
            let found = {
                let d = devnet.lock().unwrap();
                d.mempool()
                    .into_iter()
                    .filter_map(|t| d.transaction(&t).cloned())
                    .find(|t| {
                        t.input[0].previous_output.txid == txid
                            && t.input[0].previous_output.vout == htlc_vout
                    })
            };
            if let Some(tx) = found {
                return tx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(timeout.lock_time.to_consensus_u32(), expiry);
    assert_eq!(timeout.input.len(), 2, "the HTLC and a wallet input");
    assert_eq!(timeout.output[0].value, Amount::from_sat(50_000));
    assert_eq!(
        timeout.input[0]
            .witness
            .nth(2)
            .and_then(|s| s.last().copied()),
        Some(0x01),
        "our signature is SIGHASH_ALL"
    );
    mine(&devnet, 1, &burn);
    let confirmed = devnet.lock().unwrap().height();
    // Its output after LDK's 144 blocks.
    let tip = devnet.lock().unwrap().height();
    mine(&devnet, confirmed + 143 - tip - 1, &burn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        devnet
            .lock()
            .unwrap()
            .mempool_spender_of(timeout.compute_txid())
            .is_none(),
        "not before the delay"
    );
    mine(&devnet, 1, &burn);
    let sweep = spender_of(&devnet, timeout.compute_txid()).await;
    assert_eq!(sweep.input[0].previous_output.txid, timeout.compute_txid());
    assert_eq!(sweep.input[0].previous_output.vout, 0);
}

/// A fee spike on the devnet (its estimate and what its blocks take both
/// at 40 sat/vB) while we force-close with our 50,000 sat HTLC held by
/// LDK: our commitment (at the channel's feerate) waits in the mempool
/// until our node spends our anchor with a wallet input paying for both
/// (child pays for parent); then both are mined together, and the
/// HTLC-timeout later pays the spiked rate from the wallet too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_spike_gets_our_commitment_mined_by_its_anchor_child() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id: _,
        burn,
    } = ldk_channel_paying_us().await;
    fund_our_wallet(&devnet, &b, &burn).await;
    let (_paying, _) = pay_held(&b, &ldk, cid).await;
    let spike = beongae_script::FeeratePerKw(10_000);
    devnet.lock().unwrap().spike(spike);
    // LDK answers our `error` by broadcasting its own commitment, which
    // could reach the mempool before ours (the test is about ours): the
    // close happens while LDK is away.
    let ldk_id = NodeId::from_pubkey(ldk.node_id());
    assert!(b.node.handle().disconnect(ldk_id).await.unwrap());
    let txid = b
        .node
        .handle()
        .force_close_channel(ChannelId(cid.0))
        .await
        .unwrap();
    let commitment = in_mempool(&devnet, txid).await;
    let out: Amount = commitment.output.iter().map(|o| o.value).sum();
    let commitment_fee = Amount::from_sat(1_000_000) - out;
    assert!(
        commitment_fee.to_sat() * 1000 / commitment.weight().to_wu() < 10_000,
        "the commitment alone pays less than the spike"
    );
    // Below the floor alone: not mined.
    mine(&devnet, 1, &burn);
    // The child, once our node saw the estimate.
    let child = within("our anchor child", async {
        loop {
            let found = devnet.lock().unwrap().mempool_spender_of(txid);
            if let Some(tx) = found {
                return tx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(devnet.lock().unwrap().confirmations(&txid), Some(0));
    assert_eq!(
        commitment.output[child.input[0].previous_output.vout as usize].value,
        Amount::from_sat(330),
        "it spends our anchor"
    );
    let child_in: Amount = child
        .input
        .iter()
        .skip(1)
        .map(|i| {
            let d = devnet.lock().unwrap();
            d.transaction(&i.previous_output.txid).unwrap().output[i.previous_output.vout as usize]
                .value
        })
        .sum::<Amount>()
        + Amount::from_sat(330);
    let child_fee = child_in - child.output.iter().map(|o| o.value).sum();
    let package = (commitment_fee + child_fee).to_sat() * 1000
        / (commitment.weight().to_wu() + child.weight().to_wu());
    assert!(package >= 10_000, "package at {package} sat/kW");
    mine(&devnet, 1, &burn);
    assert_eq!(devnet.lock().unwrap().confirmations(&txid), Some(1));
    assert_eq!(
        devnet.lock().unwrap().confirmations(&child.compute_txid()),
        Some(1)
    );
}

/// LDK cheats: a copy of its `ChannelMonitor` is kept while the channel
/// gives it 880,000 sat; we then pay it 100,000 sat back (that state is
/// revoked) and LDK broadcasts the commitment of the stale copy. Once it
/// confirms, our justice transaction takes everything in it but the two
/// anchors: LDK's `to_local` with the revocation key and our own
/// `to_remote`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_broadcasts_a_revoked_commitment_and_we_punish_it() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id: _,
        burn,
    } = ldk_channel_paying_us().await;
    let stale = ldk.monitor_snapshot();
    assert_eq!(stale.len(), 1);
    let invoice = ldk.create_invoice(100_000_000, "back");
    b.node.handle().pay(&invoice, None).await.unwrap();
    ours(&b, |c| {
        c.channel_id.0 == cid.0 && c.pending_htlcs == 0 && c.local == Msat::from_msat(20_000_000)
    })
    .await;
    let old = ldk.stale_commitment(&stale[0]).remove(0);
    let mut values: Vec<u64> = old.output.iter().map(|o| o.value.to_sat()).collect();
    values.sort_unstable();
    assert_eq!(values, vec![330, 330, 120_000, 880_000 - 2_810 - 660]);
    let before = b.onchain.balance().unwrap().confirmed;
    devnet.lock().unwrap().accept(old.clone()).unwrap();
    mine(&devnet, 1, &burn);
    let justice = spender_of(&devnet, old.compute_txid()).await;
    let taken: Amount = justice
        .input
        .iter()
        .map(|i| old.output[i.previous_output.vout as usize].value)
        .sum();
    assert_eq!(taken, Amount::from_sat(120_000 + 880_000 - 2_810 - 660));
    mine(&devnet, 1, &burn);
    for _ in 0..300 {
        if b.onchain.balance().unwrap().confirmed == before + justice.output[0].value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("wallet holds {}", b.onchain.balance().unwrap().confirmed);
}

/// The reverse, which proves our revocable scripts: we keep a copy of our
/// store while the channel gives us 120,000 sat, pay LDK 100,000 sat back
/// (that state is revoked), then broadcast the commitment of the copy. LDK
/// recognises a revoked commitment and its justice transaction takes our
/// `to_local` with the revocation key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_broadcast_a_revoked_commitment_and_ldk_punishes_it() {
    let Paid {
        devnet,
        _dir,
        b,
        ldk,
        cid,
        our_id,
        burn,
    } = ldk_channel_paying_us().await;
    b.node.shutdown().await;
    let (_copy, backup) = net::backup(_dir.path());
    let b = beongae(&devnet, _dir.path()).await;
    ldk.connect(our_id.pubkey(), b.node.listen_addr().unwrap())
        .await
        .unwrap();
    ours(&b, |c| c.channel_id.0 == cid.0 && c.active).await;
    let invoice = ldk.create_invoice(100_000_000, "back");
    b.node.handle().pay(&invoice, None).await.unwrap();
    ours(&b, |c| {
        c.channel_id.0 == cid.0 && c.pending_htlcs == 0 && c.local == Msat::from_msat(20_000_000)
    })
    .await;
    b.node.shutdown().await;
    let old = embedded::commitment_in_backup(
        &Seed::from_entropy([7; 32]),
        bitcoin::Network::Regtest,
        backup.as_ref(),
        ChannelId(cid.0),
    )
    .unwrap();
    // Ours: 120,000 sat in a delayed output LDK can take with the
    // revocation key.
    let ours_vout = old
        .output
        .iter()
        .position(|o| o.value == Amount::from_sat(120_000))
        .unwrap() as u32;
    devnet.lock().unwrap().accept(old.clone()).unwrap();
    mine(&devnet, 1, &burn);
    let justice = within("LDK's justice transaction", async {
        loop {
            let found = ldk.broadcasts().into_iter().map(|r| r.tx).find(|t| {
                t.input.iter().any(|i| {
                    i.previous_output.txid == old.compute_txid()
                        && i.previous_output.vout == ours_vout
                })
            });
            if let Some(tx) = found {
                return tx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let spent = &old.output[ours_vout as usize];
    let i = justice
        .input
        .iter()
        .position(|i| i.previous_output.vout == ours_vout)
        .unwrap();
    spent
        .script_pubkey
        .verify(i, spent.value, &bitcoin::consensus::serialize(&justice))
        .unwrap();
}
