//! On-chain enforcement through the whole node (runtime, SQLite store,
//! chain polling, wallet) on an in-process devnet: a force close returns
//! both balances to the wallets, and a cheater who broadcasts a revoked
//! commitment loses the whole channel to the justice transaction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use beongae_node::core::ChannelState;
use beongae_node::embedded::Embedded;
use beongae_wire::{ChannelId, Msat};
use bitcoin::{Amount, Transaction, Txid};

#[path = "support/net.rs"]
mod net;
use net::{channel, id_of, wait_for, Net};

impl Net {
    /// Waits until the mempool holds a transaction spending an output of
    /// `parent`, and returns it.
    async fn spender_of(&self, parent: Txid) -> Transaction {
        net::spender_of(&self.devnet, parent).await
    }

    async fn in_mempool(&self, txid: Txid) -> Transaction {
        for _ in 0..500 {
            let found = self.devnet.lock().unwrap().transaction(&txid).cloned();
            if let Some(tx) = found {
                return tx;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{txid} never reached the mempool");
    }
}

async fn confirmed_balance(e: &Embedded, expected: Amount) {
    for _ in 0..300 {
        if e.onchain.balance().unwrap().confirmed == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "wallet holds {} not {expected}",
        e.onchain.balance().unwrap().confirmed
    );
}

async fn pay(payer: &Embedded, payee: &Embedded, msat: u64) {
    let (inv, _) = payee
        .node
        .handle()
        .invoice(Some(Msat::from_msat(msat)), "t", 3600)
        .await
        .unwrap();
    payer.node.handle().pay(&inv, None).await.unwrap();
}

/// Alice (funded from the devnet, all her coinbases mature) opens 1_000_000
/// sat to Bob and pays him
/// 300_000 sat; both wait until it settled.
async fn open_and_pay(net: &Net) -> (Embedded, Embedded, ChannelId) {
    let alice = net.start(0).await;
    let bob = net.start(1).await;
    {
        let mut d = net.devnet.lock().unwrap();
        d.mine(
            101,
            &alice.onchain.new_address().script_pubkey(),
            1_700_000_000,
        );
    }
    // Every coinbase of Alice's matures: her balance moves only with the
    // channel from here.
    net.mine(100);
    alice
        .node
        .handle()
        .connect(id_of(&bob), bob.node.listen_addr().unwrap())
        .await
        .unwrap();
    let (id, funding) = alice
        .node
        .handle()
        .open_channel(id_of(&bob), Amount::from_sat(1_000_000), Msat::ZERO)
        .await
        .unwrap();
    net.in_mempool(funding).await;
    net.mine(3);
    for e in [&alice, &bob] {
        wait_for(e, id, |c| c.state == ChannelState::Normal && c.active).await;
    }
    pay(&alice, &bob, 300_000_000).await;
    for e in [&alice, &bob] {
        wait_for(e, id, |c| c.pending_htlcs == 0).await;
    }
    (alice, bob, id)
}

/// `closechannel --force` on Alice's side: once her commitment confirms,
/// Bob's 300_000 sat reach his wallet (one block of CSV with anchors), and
/// Alice's balance reaches hers 144 blocks later; each less the fee of its
/// sweep at the devnet's feerate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_close_returns_both_balances_to_the_wallets() {
    let net = Net::new();
    let (alice, bob, id) = open_and_pay(&net).await;
    let alice_before = alice.onchain.balance().unwrap().confirmed;
    let txid = alice.node.handle().force_close_channel(id).await.unwrap();
    let commitment = net.in_mempool(txid).await;
    net.mine(1);
    // Bob: his to_remote, swept at once.
    let b = net.spender_of(txid).await;
    let out = |tx: &Transaction| tx.output[0].value;
    assert_eq!(b.input.len(), 1);
    assert_eq!(
        commitment.output[b.input[0].previous_output.vout as usize].value,
        Amount::from_sat(300_000)
    );
    // Its fee is the devnet's feerate on its weight (estimated: within 50
    // weight units).
    let feerate = net.devnet.lock().unwrap().fee_estimate_per_kw();
    let fee = Amount::from_sat(300_000) - out(&b);
    let w = b.weight().to_wu();
    assert!(
        fee >= feerate.fee_for_weight(w) && fee <= feerate.fee_for_weight(w + 50),
        "fee {fee} at {} sat/kw for {w} wu",
        feerate.0
    );
    net.mine(1);
    confirmed_balance(&bob, out(&b)).await;
    // Alice: nothing until her to_self_delay (144) has passed.
    net.mine(141);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(net.devnet.lock().unwrap().mempool().is_empty());
    net.mine(1);
    let a = net.spender_of(txid).await;
    let to_local = commitment.output[a.input[0].previous_output.vout as usize].value;
    // 700_000 sat less the commitment fee and the anchors Alice pays.
    assert_eq!(
        to_local,
        Amount::from_sat(700_000) - feerate.fee_for_weight(1_124) - Amount::from_sat(660)
    );
    net.mine(1);
    confirmed_balance(&alice, alice_before + out(&a)).await;
    wait_for(&alice, id, |c| c.state == ChannelState::Closed).await;
}

/// Bob's store is copied while he holds 300_000 sat; he then pays 200_000
/// back, and broadcasts the old commitment (from the copy). Alice's node
/// sees it confirm, reads what that commitment held from its store, and its
/// justice transaction takes the whole channel to her wallet: Bob gets
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheater_loses_the_whole_channel() {
    let net = Net::new();
    let (alice, bob, id) = open_and_pay(&net).await;
    // A copy of Bob's store as it is now.
    bob.node.shutdown().await;
    let (_copy, copy) = net::backup(net.dirs[1].path());
    let bob = net.start(1).await;
    alice
        .node
        .handle()
        .connect(id_of(&bob), bob.node.listen_addr().unwrap())
        .await
        .unwrap();
    wait_for(&bob, id, |c| c.state == ChannelState::Normal && c.active).await;
    pay(&bob, &alice, 200_000_000).await;
    for e in [&alice, &bob] {
        wait_for(e, id, |c| c.pending_htlcs == 0 && c.local.to_msat() > 0).await;
    }
    // Bob cheats with the copy.
    bob.node.shutdown().await;
    let old = beongae_node::embedded::commitment_in_backup(
        &Net::seed(1),
        bitcoin::Network::Regtest,
        copy.as_ref(),
        id,
    )
    .unwrap();
    net.devnet.lock().unwrap().accept(old.clone()).unwrap();
    let alice_before = alice.onchain.balance().unwrap().confirmed;
    net.mine(1);
    let justice = net.spender_of(old.compute_txid()).await;
    let taken: Amount = justice
        .input
        .iter()
        .map(|i| old.output[i.previous_output.vout as usize].value)
        .sum();
    let all: Amount = old.output.iter().map(|o| o.value).sum();
    assert_eq!(
        taken,
        all - Amount::from_sat(660),
        "everything but the anchors"
    );
    assert_eq!(
        justice.input.len(),
        2,
        "Bob's to_local and Alice's to_remote"
    );
    net.mine(1);
    confirmed_balance(&alice, alice_before + justice.output[0].value).await;
    let c = channel(&alice, id).await;
    assert_eq!(c.state, ChannelState::Closed);
    assert_eq!(c.closing_txid, Some(old.compute_txid()));
}

/// SAFETY.md "restarted during a reorg": Alice force-closes, sees her
/// commitment confirm and stops. While she is down the chain reorganises:
/// the block with her commitment is replaced by one with Bob's latest
/// commitment. Restarted, Alice undoes the block she saw (her node resumes
/// from the hashes of the blocks it processed), sees Bob's commitment
/// instead and sweeps her balance from it to her wallet, to the sat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_while_down_is_undone_at_restart() {
    let net = Net::new();
    let (alice, bob, id) = open_and_pay(&net).await;
    let feerate = net.devnet.lock().unwrap().fee_estimate_per_kw();
    // Bob's latest commitment, from his store (he stays down).
    bob.node.shutdown().await;
    let theirs = beongae_node::embedded::commitment_in_backup(
        &Net::seed(1),
        bitcoin::Network::Regtest,
        net::open_store(net.dirs[1].path()).as_ref(),
        id,
    )
    .unwrap();
    let txid = alice.node.handle().force_close_channel(id).await.unwrap();
    net.in_mempool(txid).await;
    net.mine(1);
    let height = net.devnet.lock().unwrap().height();
    wait_for(&alice, id, |c| {
        c.closing_txid == Some(txid) && c.spendable_at == Some(height + 144)
    })
    .await;
    let alice_before = alice.onchain.balance().unwrap().confirmed;
    alice.node.shutdown().await;
    {
        let mut d = net.devnet.lock().unwrap();
        d.disconnect(1);
        assert_eq!(d.evict(txid).len(), 1);
        d.accept(theirs.clone()).unwrap();
    }
    net.mine(2);
    let alice = net.start(0).await;
    wait_for(&alice, id, |c| {
        c.closing_txid == Some(theirs.compute_txid())
    })
    .await;
    // Her balance in Bob's commitment (anchors: one block of CSV, past).
    let sweep = net.spender_of(theirs.compute_txid()).await;
    assert_eq!(sweep.input.len(), 1);
    assert_eq!(
        theirs.output[sweep.input[0].previous_output.vout as usize].value,
        Amount::from_sat(700_000) - feerate.fee_for_weight(1_124) - Amount::from_sat(660)
    );
    net.mine(1);
    confirmed_balance(&alice, alice_before + sweep.output[0].value).await;
    let c = channel(&alice, id).await;
    assert_eq!(c.spendable_at, None);
}

/// The fee reserve: Bob's wallet holds 1_005_000 sat; opening 1_000_000
/// sat to Alice (an anchor channel) would leave under 10_000 sat for the
/// fees of its force close, and is refused saying so, with no coin spent
/// or kept back; 980_000 sat opens, and the wallet keeps what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_may_not_spend_the_fee_reserve() {
    let net = Net::new();
    let alice = net.start(0).await;
    let bob = net.start(1).await;
    net.mine_to(101, &alice.onchain.new_address().script_pubkey());
    let to_bob = bob.onchain.new_address().to_string();
    alice
        .onchain
        .send(
            &to_bob,
            Some(Amount::from_sat(1_005_000)),
            None,
            Amount::ZERO,
        )
        .unwrap();
    net.mine(1);
    confirmed_balance(&bob, Amount::from_sat(1_005_000)).await;
    bob.node
        .handle()
        .connect(id_of(&alice), alice.node.listen_addr().unwrap())
        .await
        .unwrap();
    let refused = bob
        .node
        .handle()
        .open_channel(id_of(&alice), Amount::from_sat(1_000_000), Msat::ZERO)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the wallet would keep 3475 sat, below the 10000 sat kept to pay the fees of anchor channels' force closes"),
        "{refused}"
    );
    assert!(net.devnet.lock().unwrap().mempool().is_empty());
    let (_, funding) = bob
        .node
        .handle()
        .open_channel(id_of(&alice), Amount::from_sat(980_000), Msat::ZERO)
        .await
        .unwrap();
    let tx = net.in_mempool(funding).await;
    let change: Amount = tx
        .output
        .iter()
        .filter(|o| o.value != Amount::from_sat(980_000))
        .map(|o| o.value)
        .sum();
    let fee = Amount::from_sat(1_005_000 - 980_000) - change;
    assert!(change >= Amount::from_sat(10_000), "{change}");
    assert!(fee < Amount::from_sat(5_000), "{fee}");
}
