//! Multi-hop payments through the whole node (runtime, SQLite store, chain
//! polling, wallet) over real TCP on an in-process devnet: Alice pays
//! Carol through Bob, who forwards for his fee (BOLT 4); Carol's invoice
//! reaches her over Bob's private channel by its route hint (BOLT 11 `r`,
//! Bob's policy from his `channel_update` to Carol).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use beongae_node::core::ChannelState;
use beongae_node::embedded::Embedded;
use beongae_wire::{ChannelId, Msat};
use bitcoin::Amount;

#[path = "support/net.rs"]
mod net;
use net::{channel, id_of, wait_for, Net};

/// Opens `sat` from `from` to `to` (connected first) and waits until both
/// see it normal and active.
async fn open(net: &Net, from: &Embedded, to: &Embedded, sat: u64) -> ChannelId {
    open_pushing(net, from, to, sat, Msat::ZERO).await
}

/// [`open`], the opener pushing `push` to its peer.
async fn open_pushing(
    net: &Net,
    from: &Embedded,
    to: &Embedded,
    sat: u64,
    push: Msat,
) -> ChannelId {
    from.node
        .handle()
        .connect(id_of(to), to.node.listen_addr().unwrap())
        .await
        .unwrap();
    let (id, funding) = from
        .node
        .handle()
        .open_channel(id_of(to), Amount::from_sat(sat), push)
        .await
        .unwrap();
    for _ in 0..500 {
        if net.devnet.lock().unwrap().transaction(&funding).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    net.mine(3);
    for e in [from, to] {
        wait_for(e, id, |c| c.state == ChannelState::Normal && c.active).await;
    }
    id
}

/// Alice —(2,000,000 sat)→ Bob —(500,000 sat)→ Carol, both channels
/// private; Carol's invoices carry a route hint through Bob once his
/// channel_update reached her.
async fn three_nodes(net: &Net) -> ([Embedded; 3], ChannelId, ChannelId) {
    let alice = net.start(0).await;
    let bob = net.start(1).await;
    let carol = net.start(2).await;
    net.mine_to(101, &alice.onchain.new_address().script_pubkey());
    net.mine_to(101, &bob.onchain.new_address().script_pubkey());
    net.mine(100);
    let ab = open(net, &alice, &bob, 2_000_000).await;
    let bc = open(net, &bob, &carol, 500_000).await;
    ([alice, bob, carol], ab, bc)
}

/// Carol's invoice for `msat`, once it has a route hint through Bob.
async fn invoice_via_bob(carol: &Embedded, bob: &Embedded, msat: u64) -> String {
    for _ in 0..200 {
        let (inv, _) = carol
            .node
            .handle()
            .invoice(Some(Msat::from_msat(msat)), "coffee", 3600)
            .await
            .unwrap();
        let decoded = beongae_invoice::Invoice::decode(&inv).unwrap();
        let hints: Vec<_> = decoded.route_hints().collect();
        if let Some(h) = hints.first() {
            assert_eq!(hints.len(), 1);
            assert_eq!(h.0.len(), 1);
            // Bob's policy for his direction: 1 sat + 1 ppm, 80 blocks.
            let hop = &h.0[0];
            assert_eq!(hop.src_node_id, id_of(bob));
            assert_eq!(
                (
                    hop.fee_base_msat,
                    hop.fee_proportional_millionths,
                    hop.cltv_expiry_delta
                ),
                (1_000, 1, 80)
            );
            return inv;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("Carol's invoices never got a route hint through Bob");
}

/// Alice pays Carol 100,000 sat through Bob: Carol gets exactly 100,000
/// sat, Bob exactly his fee (1,000 msat + 1 ppm of 100,000,000 msat =
/// 1,100 msat), Alice pays both; every channel's balance moves by exactly
/// that, on both of its sides. Bob's `forwards` lists it settled with its
/// fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_pays_carol_through_bob_who_earns_his_fee() {
    let net = Net::new();
    let ([alice, bob, carol], ab, bc) = three_nodes(&net).await;
    let before = [
        channel(&alice, ab).await.local,
        channel(&bob, ab).await.local,
        channel(&bob, bc).await.local,
        channel(&carol, bc).await.local,
    ];
    let inv = invoice_via_bob(&carol, &bob, 100_000_000).await;
    alice.node.handle().pay(&inv, None).await.unwrap();
    for (e, id) in [(&alice, ab), (&bob, ab), (&bob, bc), (&carol, bc)] {
        wait_for(e, id, |c| c.pending_htlcs == 0).await;
    }
    let after = [
        channel(&alice, ab).await.local,
        channel(&bob, ab).await.local,
        channel(&bob, bc).await.local,
        channel(&carol, bc).await.local,
    ];
    let msat = |m: Msat| m.to_msat() as i64;
    let moved: Vec<i64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| msat(*a) - msat(*b))
        .collect();
    assert_eq!(
        moved,
        vec![-100_001_100, 100_001_100, -100_000_000, 100_000_000]
    );
    // The peers' views of each channel agree.
    assert_eq!(channel(&alice, ab).await.remote, after[1]);
    assert_eq!(channel(&carol, bc).await.remote, after[2]);
    let forwards = bob.node.handle().forwards().await.unwrap();
    assert_eq!(forwards.len(), 1);
    let f = &forwards[0];
    assert_eq!((f.in_channel, f.out_channel, f.status), (ab, bc, "settled"));
    assert_eq!(
        (f.in_amount, f.out_amount, f.fee),
        (
            Msat::from_msat(100_001_100),
            Msat::from_msat(100_000_000),
            Msat::from_msat(1_100)
        )
    );
    let payments = alice.node.handle().payments().await.unwrap();
    // What Alice sent: the amount and Bob's fee.
    assert!(
        payments.iter().any(|p| !p.incoming
            && p.status == "succeeded"
            && p.amount == Some(Msat::from_msat(100_001_100))),
        "{payments:?}"
    );
}

/// Carol's invoice for `msat` whose hint through Bob has `fee_base_msat`
/// and `cltv_expiry_delta` (Bob's latest policy reached her).
async fn invoice_with_policy(carol: &Embedded, msat: u64, base: u32, delta: u16) -> String {
    for _ in 0..200 {
        let (inv, _) = carol
            .node
            .handle()
            .invoice(Some(Msat::from_msat(msat)), "tea", 3600)
            .await
            .unwrap();
        let decoded = beongae_invoice::Invoice::decode(&inv).unwrap();
        if decoded
            .route_hints()
            .any(|h| h.0[0].fee_base_msat == base && h.0[0].cltv_expiry_delta == delta)
        {
            return inv;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("Bob's policy never reached Carol's invoices");
}

/// Alice's payment fails, decrypted as `code` from hop `hop`.
async fn fails_with(alice: &Embedded, inv: &str, amount: Option<u64>, code: &str, hop: usize) {
    let err = alice
        .node
        .handle()
        .pay(inv, amount.map(Msat::from_msat))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(code) && err.contains(&format!("(from hop {hop}, ")),
        "expected {code} from hop {hop}: {err}"
    );
}

/// BOLT 4 failures along Alice → Bob → Carol, each produced for real and
/// decrypted by Alice as coming from the right hop:
/// - more than Bob's channel to Carol can carry: `temporary_channel_failure`
///   from Bob (no other route);
/// - three times the invoice's amount: Carol's
///   `incorrect_or_unknown_payment_details`, wrapped by Bob on its way back
///   (the payee's refusal: not retried);
/// - an invoice made before Bob raised his fee: `fee_insufficient`, whose
///   `channel_update` Alice applies and pays again, successfully;
/// - made before he raised his CLTV delta: `incorrect_cltv_expiry`, and
///   again a successful retry;
/// - below or above Bob's HTLC limits (`setpolicy`): `amount_below_minimum`,
///   `temporary_channel_failure`; within them, paid;
/// - Carol offline: `channel_disabled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_failures_are_decrypted_by_the_payer() {
    let net = Net::new();
    let ([alice, bob, carol], ab, bc) = three_nodes(&net).await;
    let before = channel(&alice, ab).await.local;
    let settled = |e: &Embedded, id| {
        let e = e.node.handle();
        async move {
            for _ in 0..500 {
                let c = e.channels().await.unwrap();
                if c.iter().any(|c| c.channel_id == id && c.pending_htlcs == 0) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("htlcs left on {id}");
        }
    };
    let inv = invoice_via_bob(&carol, &bob, 600_000_000).await;
    fails_with(
        &alice,
        &inv,
        None,
        "temporary_channel_failure: the next channel could not carry it now",
        0,
    )
    .await;
    let inv = invoice_via_bob(&carol, &bob, 10_000_000).await;
    fails_with(
        &alice,
        &inv,
        Some(30_000_000),
        "incorrect_or_unknown_payment_details: the payee does not know this payment",
        1,
    )
    .await;
    settled(&bob, bc).await;
    // Bob raises his fee after Carol's invoice named his old one.
    let inv = invoice_with_policy(&carol, 10_000_000, 1_000, 80).await;
    let policy = |base, delta| beongae_node::core::channels::policy::ForwardingPolicy {
        fee_base_msat: base,
        fee_proportional_millionths: 1,
        cltv_expiry_delta: delta,
        htlc_minimum: None,
        htlc_maximum: None,
    };
    // Twice: for 10 minutes after a change the previous policy is still
    // accepted (BOLT 7), so only a policy two changes old fails.
    for base in [3_000, 5_000] {
        assert_eq!(
            bob.node
                .handle()
                .set_policy(Some(bc), policy(base, 80))
                .await
                .unwrap(),
            vec![bc]
        );
    }
    // Bob's fee_insufficient carries his new channel_update: Alice applies
    // it to the hint and pays again, the new fee (5,000 msat + 10 ppm).
    alice.node.handle().pay(&inv, None).await.unwrap();
    // Then his CLTV delta: incorrect_cltv_expiry, and again a retry.
    let inv = invoice_with_policy(&carol, 10_000_000, 5_000, 80).await;
    for delta in [100, 144] {
        bob.node
            .handle()
            .set_policy(Some(bc), policy(5_000, delta))
            .await
            .unwrap();
    }
    alice.node.handle().pay(&inv, None).await.unwrap();
    let paid: Vec<_> = alice
        .node
        .handle()
        .payments()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| !p.incoming && p.status == "succeeded")
        .map(|p| p.amount)
        .collect();
    assert_eq!(paid, vec![Some(Msat::from_msat(10_005_010)); 2]);
    // Each took two routes (the first met Bob's old policy) and paid his
    // new fee: 5,000 msat + 10.
    let retried: Vec<_> = alice
        .node
        .handle()
        .payments()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| !p.incoming && p.status == "succeeded")
        .map(|p| (p.fee, p.attempts, p.route))
        .collect();
    let route = vec![bob.node.node_id(), carol.node.node_id()];
    assert_eq!(
        retried,
        vec![(Some(Msat::from_msat(5_010)), 2, route.clone()); 2]
    );
    // A delta too small to resolve a forward on chain in time is refused.
    let err = bob
        .node
        .handle()
        .set_policy(None, policy(1_000, 20))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cltv_expiry_delta 20 is too small"), "{err}");
    // Bob's HTLC limits on his channel to Carol: at least 20,000 sat, at
    // most 50,000 sat per HTLC.
    let limited = beongae_node::core::channels::policy::ForwardingPolicy {
        htlc_minimum: Some(Msat::from_msat(20_000_000)),
        htlc_maximum: Some(Msat::from_msat(50_000_000)),
        ..policy(5_000, 144)
    };
    bob.node
        .handle()
        .set_policy(Some(bc), limited)
        .await
        .unwrap();
    let inv = invoice_with_policy(&carol, 10_000_000, 5_000, 144).await;
    fails_with(&alice, &inv, None, "amount_below_minimum", 0).await;
    let inv = invoice_with_policy(&carol, 60_000_000, 5_000, 144).await;
    fails_with(&alice, &inv, None, "temporary_channel_failure", 0).await;
    let inv = invoice_with_policy(&carol, 30_000_000, 5_000, 144).await;
    alice.node.handle().pay(&inv, None).await.unwrap();
    bob.node
        .handle()
        .set_policy(Some(bc), policy(5_000, 144))
        .await
        .unwrap();
    // Carol goes offline.
    let inv = invoice_with_policy(&carol, 10_000_000, 5_000, 144).await;
    carol.node.shutdown().await;
    wait_for(&bob, bc, |c| !c.active).await;
    fails_with(
        &alice,
        &inv,
        None,
        "channel_disabled: the next channel is disabled",
        0,
    )
    .await;
    settled(&alice, ab).await;
    settled(&bob, ab).await;
    // Only the two retried payments and the one within Bob's limits
    // moved money (30,000 sat + 5,000 msat + 30 msat).
    assert_eq!(
        before.to_msat() - channel(&alice, ab).await.local.to_msat(),
        2 * 10_005_010 + 30_005_030
    );
    // Forwarded: the HTLC Carol refused (failed back), the three paid.
    let forwards = bob.node.handle().forwards().await.unwrap();
    let mut statuses: Vec<&str> = forwards.iter().map(|f| f.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        vec!["failed", "settled", "settled", "settled"],
        "{forwards:?}"
    );
}

/// Issue 13: a random network of ten whole nodes over TCP, each with its
/// SQLite store: a ring and five random chords, one private channel of
/// 1,000,000 sat per link (the opener pushing 400,000 sat), and 40 random
/// payments between random nodes over whatever the payee's route hints
/// allow (direct, or through one of its peers). Every payment ends, no HTLC
/// is left, both sides of every channel agree on every msat, and each
/// node's balance moved by exactly what it received, less what it sent
/// (fees included), plus the fees it earned forwarding: the network's sum
/// is zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_network_of_ten_nodes_conserves_every_msat() {
    let mut seed: u64 = 0x5eed_0113;
    let mut rand = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let n = 10;
    let mut links: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    while links.len() < n + 5 {
        let (a, b) = (rand(n as u64) as usize, rand(n as u64) as usize);
        let known = links
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b));
        if a != b && !known {
            links.push((a, b));
        }
    }
    let net = Net::with_nodes(n);
    let mut nodes = Vec::new();
    for who in 0..n {
        nodes.push(net.start(who).await);
    }
    // A coin for each channel its opener funds.
    for &(a, _) in &links {
        net.mine_to(1, &nodes[a].onchain.new_address().script_pubkey());
    }
    net.mine(100);
    let mut chans: Vec<(ChannelId, usize, usize)> = Vec::new();
    for &(a, b) in &links {
        let push = Msat::from_msat(400_000_000);
        let id = open_pushing(&net, &nodes[a], &nodes[b], 1_000_000, push).await;
        chans.push((id, a, b));
    }
    let mine_of = |i: usize| -> Vec<ChannelId> {
        chans
            .iter()
            .filter(|(_, a, b)| *a == i || *b == i)
            .map(|c| c.0)
            .collect()
    };
    // Invoices carry a hint per channel (three at most) once every peer's
    // channel_update arrived.
    let invoice = |i: usize, msat: u64, label: String| {
        let (e, want) = (&nodes[i], mine_of(i).len().min(3));
        async move {
            for _ in 0..250 {
                let (inv, _) = e
                    .node
                    .handle()
                    .invoice(Some(Msat::from_msat(msat)), &label, 3600)
                    .await
                    .unwrap();
                let hints = beongae_invoice::Invoice::decode(&inv)
                    .unwrap()
                    .route_hints()
                    .count();
                if hints == want {
                    return inv;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("node {i}'s invoices never got {want} route hints");
        }
    };
    let balance = |i: usize| {
        let (e, ids) = (&nodes[i], mine_of(i));
        async move {
            let mut sum = 0i64;
            for id in ids {
                sum += channel(e, id).await.local.to_msat() as i64;
            }
            sum
        }
    };
    let mut before = Vec::new();
    for i in 0..n {
        before.push(balance(i).await);
    }
    let mut received = vec![0i64; n];
    let mut succeeded = 0;
    for p in 0..40u64 {
        let payer = rand(n as u64) as usize;
        let payee = (payer + 1 + rand(n as u64 - 1) as usize) % n;
        let msat = (rand(200) + 1) * 1_000_000;
        let inv = invoice(payee, msat, format!("{p}")).await;
        match nodes[payer].node.handle().pay(&inv, None).await {
            Ok(_) => {
                succeeded += 1;
                received[payee] += msat as i64;
            }
            Err(e) => {
                let why = e.to_string();
                assert!(why.contains("route") || why.contains("failed"), "{why}");
            }
        }
    }
    assert!(succeeded >= 15, "{succeeded} of 40 succeeded");
    // Every HTLC resolved on both sides before the count.
    for &(id, a, b) in &chans {
        for e in [&nodes[a], &nodes[b]] {
            wait_for(e, id, |c| c.pending_htlcs == 0).await;
        }
    }
    let mut total = 0;
    let mut forwarded = 0;
    for i in 0..n {
        let h = nodes[i].node.handle();
        let sent: i64 = h
            .payments()
            .await
            .unwrap()
            .iter()
            .filter(|p| !p.incoming && p.status == "succeeded")
            .map(|p| p.amount.unwrap().to_msat() as i64)
            .sum();
        let settled: Vec<_> = h
            .forwards()
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.status == "settled")
            .collect();
        forwarded += settled.len();
        let fees: i64 = settled.iter().map(|f| f.fee.to_msat() as i64).sum();
        let delta = balance(i).await - before[i];
        assert_eq!(delta, received[i] - sent + fees, "node {i}");
        total += delta;
    }
    assert_eq!(total, 0);
    assert!(forwarded >= 5, "{forwarded} forwards");
    for &(id, a, b) in &chans {
        let (x, y) = (channel(&nodes[a], id).await, channel(&nodes[b], id).await);
        assert_eq!(x.local.to_msat() + y.local.to_msat(), 1_000_000_000);
        assert_eq!((x.local, x.remote), (y.remote, y.local));
    }
    eprintln!("{succeeded} of 40 payments succeeded, {forwarded} forwards");
}
