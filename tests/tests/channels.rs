//! Two Beongae nodes with channels over real TCP and BOLT 8, on an
//! in-process devnet, each with its own SQLite store: open, pay invoices
//! both ways with many payments in flight, restart both nodes in the
//! middle, close cooperatively. Balances are checked to the msat and the
//! closing outputs to the satoshi.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use beongae_node::core::{ChannelState, ChannelSummary};
use beongae_node::embedded::Embedded;
use beongae_wire::{ChannelId, Msat, NodeId};
use bitcoin::Amount;

const FUNDING: Amount = Amount::from_sat(2_000_000);

#[path = "support/net.rs"]
mod net;
use net::Net;

async fn connect(a: &Embedded, b: &Embedded) {
    a.node
        .handle()
        .connect(b.node.node_id(), b.node.listen_addr().unwrap())
        .await
        .unwrap();
}

async fn channel(e: &Embedded, id: ChannelId) -> ChannelSummary {
    e.node
        .handle()
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.channel_id == id)
        .unwrap()
}

/// Waits until `e` shows the channel in `state` (and active, if normal).
async fn wait_state(e: &Embedded, id: ChannelId, state: ChannelState) -> ChannelSummary {
    for _ in 0..500 {
        let c = channel(e, id).await;
        if c.state == state && (state != ChannelState::Normal || c.active) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "channel {id} never reached {state:?}: {:?}",
        channel(e, id).await
    );
}

/// `n` payments of `amount(i)` from `payer` to `payee`, all in flight at once.
async fn pay_many(payer: &Embedded, payee: &Embedded, n: u64, amount: impl Fn(u64) -> u64) -> Msat {
    let mut invoices = Vec::new();
    let mut total = 0;
    for i in 0..n {
        let a = amount(i);
        total += a;
        let (inv, hash) = payee
            .node
            .handle()
            .invoice(Some(Msat::from_msat(a)), &format!("payment {i}"), 3600)
            .await
            .unwrap();
        invoices.push((inv, hash));
    }
    let mut tasks = Vec::new();
    for (inv, hash) in invoices {
        let h = payer.node.handle();
        tasks.push(tokio::spawn(async move {
            let preimage = h.pay(&inv, None).await.unwrap();
            assert_eq!(preimage.payment_hash(), hash);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Msat::from_msat(total)
}

/// Waits until both sides' commitments hold no HTLC (every payment's
/// removal signed by both), then returns both views.
async fn settled(a: &Embedded, b: &Embedded, id: ChannelId) -> (ChannelSummary, ChannelSummary) {
    for _ in 0..500 {
        let (x, y) = (channel(a, id).await, channel(b, id).await);
        if x.pending_htlcs == 0 && y.pending_htlcs == 0 && x.local == y.remote {
            return (x, y);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("channel {id} never settled");
}

/// Waits until the devnet's mempool holds `txid`.
async fn in_mempool(net: &Net, txid: bitcoin::Txid) {
    for _ in 0..500 {
        if net.devnet.lock().unwrap().mempool().contains(&txid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{txid} never reached the mempool");
}

fn ids(a: &Embedded) -> NodeId {
    a.node.node_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_pay_restart_and_close_on_devnet() {
    let net = Net::new();
    let alice = net.start(0).await;
    let bob = net.start(1).await;
    // 101 blocks to Alice: the first coinbase (50 BTC) is spendable.
    net.mine_to(101, &alice.onchain.new_address().script_pubkey());
    connect(&alice, &bob).await;

    let (id, funding_txid) = alice
        .node
        .handle()
        .open_channel(ids(&bob), FUNDING, Msat::ZERO)
        .await
        .unwrap();
    in_mempool(&net, funding_txid).await;
    assert_eq!(
        channel(&alice, id).await.state,
        ChannelState::AwaitingConfirmation
    );
    // minimum_depth is 3: two blocks are not enough.
    net.mine(2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        channel(&bob, id).await.state,
        ChannelState::AwaitingConfirmation
    );
    net.mine(1);
    let a = wait_state(&alice, id, ChannelState::Normal).await;
    let b = wait_state(&bob, id, ChannelState::Normal).await;
    assert_eq!(a.local, Msat::from_msat(2_000_000_000));
    assert_eq!(b.local, Msat::ZERO);
    let scid = a.short_channel_id.unwrap();
    assert_eq!(scid.block(), 102, "mined in the first block after the 101");
    assert_eq!(b.short_channel_id, Some(scid));

    // One payment, then many in flight both ways.
    let first = pay_many(&alice, &bob, 1, |_| 500_000_000).await;
    let ab = pay_many(&alice, &bob, 40, |i| 1_000_000 + i * 1_001).await;
    let ba = pay_many(&bob, &alice, 20, |i| 2_000_000 + i * 7).await;
    let (alice_msat, bob_msat) = (
        2_000_000_000 - first.to_msat() - ab.to_msat() + ba.to_msat(),
        first.to_msat() + ab.to_msat() - ba.to_msat(),
    );
    let (a, b) = settled(&alice, &bob, id).await;
    assert_eq!(
        (a.local, a.remote),
        (Msat::from_msat(alice_msat), Msat::from_msat(bob_msat))
    );
    assert_eq!(
        (b.local, b.remote),
        (Msat::from_msat(bob_msat), Msat::from_msat(alice_msat))
    );
    assert_eq!(a.pending_htlcs, 0);

    // Both nodes restart from their stores.
    alice.node.shutdown().await;
    bob.node.shutdown().await;
    let alice = net.start(0).await;
    let bob = net.start(1).await;
    connect(&bob, &alice).await;
    wait_state(&alice, id, ChannelState::Normal).await;
    wait_state(&bob, id, ChannelState::Normal).await;
    assert_eq!(channel(&alice, id).await.local, Msat::from_msat(alice_msat));
    let more = pay_many(&bob, &alice, 10, |i| 3_000_000 + i).await;
    let (alice_msat, bob_msat) = (alice_msat + more.to_msat(), bob_msat - more.to_msat());
    let (_, b) = settled(&alice, &bob, id).await;
    assert_eq!(b.local, Msat::from_msat(bob_msat));

    // Invoices and payments are listed with their outcome.
    let payments = alice.node.handle().payments().await.unwrap();
    assert_eq!(
        payments
            .iter()
            .filter(|p| p.incoming && p.status == "paid")
            .count(),
        30
    );
    assert_eq!(
        payments
            .iter()
            .filter(|p| !p.incoming && p.status == "succeeded")
            .count(),
        41
    );

    // Cooperative close; the closing transaction pays each side its balance
    // (Alice, the funder, pays the fee).
    let txid = alice.node.handle().close_channel(id).await.unwrap();
    // Both keep the channel until the closing transaction confirms.
    wait_state(&bob, id, ChannelState::Closing).await;
    in_mempool(&net, txid).await;
    let tx = net
        .devnet
        .lock()
        .unwrap()
        .transaction(&txid)
        .cloned()
        .expect("in the mempool");
    net.mine(1);
    let values: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
    // Alice proposed the fee for 700 weight units at the devnet's estimate
    // and Bob accepted it; fractions of a satoshi are not paid out.
    let feerate = net.devnet.lock().unwrap().fee_estimate_per_kw();
    let fee = feerate.fee_for_weight(700).to_sat();
    let mut expected = vec![bob_msat / 1000, alice_msat / 1000 - fee];
    expected.sort_unstable();
    let mut got = values.clone();
    got.sort_unstable();
    assert_eq!(got, expected, "closing outputs");
    // Bob's wallet sees his closing output.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bal = bob.onchain.balance().unwrap();
    assert_eq!(bal.confirmed, Amount::from_sat(bob_msat / 1000));
}

/// Sums of a node's succeeded outgoing payments and paid invoices; panics
/// if a payment is still pending.
async fn ledger(e: &Embedded) -> (u64, u64) {
    let (mut out, mut inc) = (0, 0);
    for p in e.node.handle().payments().await.unwrap() {
        let a = p.amount.map_or(0, Msat::to_msat);
        match (p.incoming, p.status.as_str()) {
            (false, "succeeded") => out += a,
            (true, "paid") => inc += a,
            (false, s) => assert!(s.starts_with("failed"), "payment {} is {s}", p.payment_hash),
            (true, _) => {}
        }
    }
    (out, inc)
}

/// 1,000 payments, 500 each way, 50 + 50 in flight at once; both nodes stop
/// abruptly while a round is in flight and restart from their stores.
/// Whatever each side's ledger says was paid is exactly what moved in the
/// channel, and both sides agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_payments_with_a_restart_mid_flight() {
    let net = Net::new();
    let mut alice = net.start(0).await;
    let mut bob = net.start(1).await;
    net.mine_to(101, &alice.onchain.new_address().script_pubkey());
    connect(&alice, &bob).await;
    let (id, txid) = alice
        .node
        .handle()
        .open_channel(ids(&bob), FUNDING, Msat::from_msat(500_000_000))
        .await
        .unwrap();
    in_mempool(&net, txid).await;
    net.mine(3);
    wait_state(&alice, id, ChannelState::Normal).await;
    wait_state(&bob, id, ChannelState::Normal).await;

    let mut expected_rounds = 0u64;
    for round in 0..10u64 {
        let amount = move |i: u64| 100_000 + round * 1_000 + i;
        // Invoices first (they are stored), then every payment at once.
        let mut jobs = Vec::new();
        for (payer, payee) in [(&alice, &bob), (&bob, &alice)] {
            for i in 0..50 {
                let (inv, _) = payee
                    .node
                    .handle()
                    .invoice(Some(Msat::from_msat(amount(i))), "round", 3600)
                    .await
                    .unwrap();
                jobs.push((payer.node.handle(), inv));
            }
        }
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(h, inv)| tokio::spawn(async move { h.pay(&inv, None).await }))
            .collect();
        if round == 5 {
            // Stop both nodes while the payments are in flight.
            tokio::time::sleep(Duration::from_millis(15)).await;
            alice.node.shutdown().await;
            bob.node.shutdown().await;
            for t in tasks {
                // Some were answered, the others see a stopped node.
                let _ = t.await.unwrap();
            }
            alice = net.start(0).await;
            bob = net.start(1).await;
            connect(&alice, &bob).await;
            wait_state(&alice, id, ChannelState::Normal).await;
            wait_state(&bob, id, ChannelState::Normal).await;
        } else {
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            expected_rounds += 1;
        }
        let (a, b) = settled(&alice, &bob, id).await;
        let ((a_out, a_in), (b_out, b_in)) = (ledger(&alice).await, ledger(&bob).await);
        assert_eq!(a_out, b_in, "round {round}: Alice sent what Bob received");
        assert_eq!(b_out, a_in, "round {round}: Bob sent what Alice received");
        assert_eq!(
            a.local.to_msat(),
            1_500_000_000 - a_out + a_in,
            "round {round}"
        );
        assert_eq!(
            b.local.to_msat(),
            500_000_000 - b_out + b_in,
            "round {round}"
        );
        assert_eq!(a.remote, b.local);
    }
    // Nine full rounds succeeded; the interrupted one as far as it got.
    assert_eq!(expected_rounds, 9);
    let payments = alice.node.handle().payments().await.unwrap();
    let sent = payments
        .iter()
        .filter(|p| !p.incoming && p.status == "succeeded")
        .count();
    assert!(
        (450..=500).contains(&sent),
        "{sent} of Alice's 500 payments succeeded"
    );
    let (a, b) = settled(&alice, &bob, id).await;
    let txid = alice.node.handle().close_channel(id).await.unwrap();
    in_mempool(&net, txid).await;
    // The closing transaction pays Bob his balance and Alice hers less the
    // fee she offered as closer (700 weight units at the devnet's feerate),
    // each rounded down to the satoshi; it confirms and both wallets see it.
    let tx = net
        .devnet
        .lock()
        .unwrap()
        .transaction(&txid)
        .cloned()
        .unwrap();
    let fee = net
        .devnet
        .lock()
        .unwrap()
        .fee_estimate_per_kw()
        .fee_for_weight(700)
        .to_sat();
    let mut got: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
    got.sort_unstable();
    let mut expected = vec![b.local.to_msat() / 1000, a.local.to_msat() / 1000 - fee];
    expected.sort_unstable();
    assert_eq!(got, expected);
    net.mine(1);
    wait_state(&bob, id, ChannelState::Closed).await;
    for _ in 0..200 {
        if bob.onchain.balance().unwrap().confirmed == Amount::from_sat(b.local.to_msat() / 1000) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("Bob's wallet never showed his closing output");
}
