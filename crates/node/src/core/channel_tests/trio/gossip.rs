//! Gossip between cores (BOLT 7): public channels announced after six
//! blocks, the graph relayed hop by hop, a node that joins learns it by
//! queries, a changed fee reaches every node, and a payment routed over
//! five hops of the learned graph.

use super::*;
use beongae_wire::msgs::{ChannelAnnouncement, ChannelUpdate};

/// Six nodes in a line, 0 — 1 — 2 — 3 — 4 — 5, every channel public,
/// funded in one block and six deep; the gossip flushed until it settles.
fn line() -> (Mesh, Vec<ChannelId>) {
    line_with(false)
}

/// [`line`], with every output kept from the opens on (`trace`).
fn line_with(trace: bool) -> (Mesh, Vec<ChannelId>) {
    let links: Vec<(usize, usize)> = (0..5).map(|i| (i, i + 1)).collect();
    let mut m = Mesh::new(6, &links);
    m.trace = trace.then(Vec::new);
    let mut ids = Vec::new();
    let mut txs = Vec::new();
    for i in 0..5 {
        let (id, tx) = m.open_with(i, i + 1, true);
        ids.push(id);
        txs.push(tx);
    }
    m.block(txs);
    for _ in 0..5 {
        m.block(vec![]);
    }
    for _ in 0..6 {
        m.tick(Duration::from_secs(61));
    }
    (m, ids)
}

/// Issue 16 (ADR 0013): a core's outputs are a function of its inputs.
/// The same network, gossip and all, built twice in one process (every
/// `HashMap` iterates in an order of its own) gives the same outputs, in
/// the same order, byte for byte.
#[test]
fn the_same_inputs_give_the_same_outputs() {
    let (a, _) = line_with(true);
    let (b, _) = line_with(true);
    let (ta, tb) = (a.trace.unwrap(), b.trace.unwrap());
    assert!(ta.len() > 300, "{} steps", ta.len());
    for (i, (x, y)) in ta.iter().zip(&tb).enumerate() {
        assert_eq!(x, y, "step {i}");
    }
    assert_eq!(ta.len(), tb.len());
}

fn scid_of(m: &Mesh, node: usize, id: ChannelId) -> ShortChannelId {
    m.channel(node, id).short_channel_id.expect("confirmed")
}

/// A reorganisation that takes away the block of announced channels takes
/// them out of the graph: their `short_channel_id`s name positions that
/// hold other transactions now (found by the simulator, seed 9831: a new
/// channel at one of those positions had its updates refused as signed by
/// the wrong nodes, and every connection relaying them was closed).
#[test]
fn announced_channels_whose_block_leaves_the_chain_leave_the_graph() {
    let (mut m, _) = line();
    let funded = m.height - 5;
    assert_eq!(m.cores[5].graph().unwrap().channel_count(), 5);
    let inputs = (funded + 1..=m.height)
        .rev()
        .map(|height| (5, Input::BlockDisconnected { height }))
        .collect();
    m.run(inputs);
    assert_eq!(
        m.cores[5].graph().unwrap().channel_count(),
        5,
        "one block above"
    );
    m.run(vec![(5, Input::BlockDisconnected { height: funded })]);
    assert_eq!(m.cores[5].graph().unwrap().channel_count(), 0);
    assert_eq!(
        m.cores[4].graph().unwrap().channel_count(),
        5,
        "node 4 kept its chain"
    );
}

#[test]
fn announced_channels_reach_every_node_and_carry_a_five_hop_payment() {
    let (mut m, ids) = line();
    for n in 0..6 {
        let g = m.cores[n].graph().unwrap();
        assert_eq!(g.channel_count(), 5, "node {n} knows every channel");
        for (i, id) in ids.iter().enumerate() {
            let c = g.channel_by_scid(scid_of(&m, i, *id)).unwrap();
            assert!(
                c.policies.iter().all(|p| p.is_some()),
                "node {n}: both directions"
            );
            assert_eq!(c.capacity, Amount::from_sat(1_000_000));
        }
        let announced = (0..6)
            .filter(|k| g.node(&m.ids[*k]).and_then(|i| g.node_info(i)).is_some())
            .count();
        assert_eq!(announced, 6, "node {n} has every node_announcement");
    }
    // Each funding was looked up once per node that learned it from a
    // peer: four nodes for each channel (its two ends know it first hand).
    assert_eq!(m.lookups, 5 * 4);
    // A pays F's invoice over five hops; each of the four middle nodes
    // keeps 1,000 msat + 1 ppm.
    let before: Vec<Msat> = (0..5).map(|i| m.channel(i, ids[i]).local).collect();
    let hints = |inv: &str| {
        beongae_invoice::Invoice::decode(inv)
            .unwrap()
            .route_hints()
            .count()
    };
    // Fresh announcements may not have reached the payer: F's invoice
    // names the channel in a hint for an hour, then no more.
    assert_eq!(hints(&m.invoice(5, 1_000, "soon")), 1);
    m.tick(Duration::from_secs(3_600));
    let invoice = m.invoice(5, 50_000_000, "five hops");
    assert_eq!(hints(&invoice), 0, "an announced channel needs no hint");
    let reply = m.command(
        0,
        Command::Pay {
            invoice,
            amount: None,
            now_secs: 1_700_000_000,
            session_key: SecretKey::from_slice(&[0x51; 32]).unwrap(),
        },
    );
    assert!(matches!(reply, Reply::Paid { .. }), "{reply:?}");
    let after: Vec<Msat> = (0..5).map(|i| m.channel(i, ids[i]).local).collect();
    let sent: Vec<u64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| b.to_msat() - a.to_msat())
        .collect();
    // Fees from the payee back: 1,050 msat per hop (1,000 + 1 ppm of
    // about 50,000,000), compounding.
    assert_eq!(sent[4], 50_000_000);
    for i in 0..4 {
        let fee = sent[i] - sent[i + 1];
        let expected = 1_000 + sent[i + 1] / 1_000_000;
        assert_eq!(fee, expected, "hop {}", i + 1);
    }
}

#[test]
fn a_node_that_joins_learns_the_graph_and_a_new_fee_reaches_everyone() {
    let (mut m, ids) = line();
    m.tick(Duration::from_secs(7_200));
    // A seventh node, new, connects to node 3: its empty graph asks for
    // two weeks of gossip.
    let id6 = node_id_of(&keys(7));
    m.cores
        .push(restore_core(keys(7), id6, &MemStore::new(), m.height));
    m.ids.push(id6);
    m.stores.push(MemStore::new());
    m.next_peer.push(1);
    m.settings.push(settings());
    m.link(6, 3);
    // Its sync by queries answers at once (pages per tick for the rest).
    for _ in 0..3 {
        m.tick(Duration::from_secs(1));
    }
    let g = m.cores[6].graph().unwrap();
    assert_eq!(g.channel_count(), 5, "the joiner knows every channel");
    let announced = (0..6)
        .filter(|k| g.node(&m.ids[*k]).and_then(|i| g.node_info(i)).is_some())
        .count();
    assert_eq!(announced, 6, "and every node's announcement");
    // Node 2 raises its fee on the channel to node 3.
    let Reply::PolicySet(set) = m.command(
        2,
        Command::SetPolicy {
            channel_id: Some(ids[2]),
            policy: channels::policy::ForwardingPolicy {
                fee_base_msat: 7_777,
                ..Default::default()
            },
        },
    ) else {
        panic!()
    };
    assert_eq!(set, vec![ids[2]]);
    for _ in 0..6 {
        m.tick(Duration::from_secs(61));
    }
    let scid = scid_of(&m, 2, ids[2]);
    let dir = usize::from(m.ids[2].serialize() > m.ids[3].serialize());
    for n in 0..7 {
        let g = m.cores[n].graph().unwrap();
        let p = g.channel_by_scid(scid).unwrap().policies[dir].unwrap();
        assert_eq!(p.fee_base_msat, 7_777, "node {n}");
    }
}

/// A node whose stored graph misses a channel stamped long before its
/// newest gossip finds it by queries: its timestamp filter asks only for
/// the hour before its newest message, and the channel range with
/// timestamps shows the short channel id it lacks.
/// The line, three hours on, then node 2's new fee everywhere; and a node 6
/// (not linked yet) that starts from node 0's stored gossip without the
/// channel 4 — 5 (and without node 5's announcement if `without_node5`).
/// Returns the mesh and the missing channel.
fn joiner_missing_the_last_channel(without_node5: bool) -> (Mesh, ShortChannelId) {
    let (mut m, ids) = line();
    m.tick(Duration::from_secs(3 * 3600));
    m.command(
        2,
        Command::SetPolicy {
            channel_id: Some(ids[2]),
            policy: channels::policy::ForwardingPolicy {
                fee_base_msat: 3_333,
                ..Default::default()
            },
        },
    );
    for _ in 0..6 {
        m.tick(Duration::from_secs(61));
    }
    let missing = scid_of(&m, 4, ids[4]);
    let node5 = m.ids[5].serialize();
    let mut store = MemStore::new();
    for ((ns, k), v) in &m.stores[0] {
        let drop = ns == channels::gossip::NS_GOSSIP
            && (k.get(1..9) == Some(&missing.to_u64().to_be_bytes()[..]) && k[0] != b'n'
                || without_node5 && k.get(1..) == Some(&node5[..]));
        if ns == channels::gossip::NS_GOSSIP && !drop {
            store.insert((ns.clone(), k.clone()), v.clone());
        }
    }
    let id6 = node_id_of(&keys(7));
    m.cores.push(restore_core(keys(7), id6, &store, m.height));
    m.ids.push(id6);
    m.stores.push(store);
    m.next_peer.push(1);
    m.settings.push(settings());
    (m, missing)
}

#[test]
fn a_node_missing_old_gossip_finds_it_by_queries() {
    let (mut m, missing) = joiner_missing_the_last_channel(true);
    assert_eq!(m.cores[6].graph().unwrap().channel_count(), 4);
    let lookups = m.lookups;
    m.link(6, 3);
    for _ in 0..3 {
        m.tick(Duration::from_secs(1));
    }
    let g = m.cores[6].graph().unwrap();
    assert_eq!(g.channel_count(), 5, "the missing channel was queried");
    assert!(g
        .channel_by_scid(missing)
        .unwrap()
        .policies
        .iter()
        .all(|p| p.is_some()));
    assert!(g.node(&m.ids[5]).and_then(|i| g.node_info(i)).is_some());
    // Only the missing channel's funding was looked up.
    assert_eq!(m.lookups - lookups, 1);
}

/// A peer that leaves our `query_short_channel_ids` unanswered (as LDK
/// does) is asked for two weeks of gossip on its next connection, and what
/// the queries could not bring comes with that dump.
#[test]
fn a_peer_that_leaves_queries_unanswered_is_asked_for_two_weeks_next_time() {
    // The missing channel's gossip is older than an hour before the
    // newest the joiner has.
    let (mut m, _) = joiner_missing_the_last_channel(false);
    // Its id queries never reach node 3.
    m.loses = Some((6, "QueryShortChannelIds"));
    let link = m.link(6, 3);
    m.tick(Duration::from_secs(1));
    let count = |m: &Mesh| m.cores[6].graph().unwrap().channel_count();
    assert_eq!(count(&m), 4, "the filter's hour does not reach the channel");
    // The query times out; the next connection asks for two weeks.
    m.tick(Duration::from_secs(61));
    assert_eq!(count(&m), 4);
    m.drop_link(link);
    m.reconnect(link);
    for _ in 0..3 {
        m.tick(Duration::from_secs(1));
    }
    assert_eq!(count(&m), 5, "the dump brought it");
    // Only once: the connection after that asks for the last hour again
    // (its queries unanswered again would renew the two weeks).
    assert!(m.cores[6].gossip_unanswered().is_empty());
}

/// A peer that asks for our channel ranges again and again gets a full
/// answer four times in ten minutes; then, until the window ends, one empty
/// final reply (BOLT 7: every query gets replies, the last with
/// `sync_complete` set), which costs us nothing.
#[test]
fn channel_range_queries_are_answered_in_full_four_times_in_ten_minutes() {
    let (mut m, _) = line();
    let replies = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = replies.clone();
    m.tamper = Some(Box::new(move |n, msg| {
        if let (1, Message::ReplyChannelRange(r)) = (n, &*msg) {
            seen.borrow_mut()
                .push((r.encoded_short_ids.0.len(), r.sync_complete));
        }
    }));
    let query = Message::QueryChannelRange(beongae_wire::msgs::QueryChannelRange {
        chain_hash: ChainHash::REGTEST,
        first_blocknum: 0,
        number_of_blocks: u32::MAX,
        query_option: None,
        extension: Default::default(),
    });
    // Past the window of node 0's own sync query; link 0 joins nodes 0 and
    // 1: node 1 answers node 0.
    m.tick(Duration::from_secs(601));
    deliver(&mut m, 0, 1, vec![query.clone(); 6]);
    let full = (5, 1);
    let empty = (0, 1);
    assert_eq!(
        *replies.borrow(),
        vec![full, full, full, full, empty, empty]
    );
    m.tick(Duration::from_secs(601));
    replies.borrow_mut().clear();
    deliver(&mut m, 0, 1, vec![query]);
    assert_eq!(*replies.borrow(), vec![full]);
}

/// Node `n`'s node secret.
fn node_secret(n: usize) -> SecretKey {
    keys(n as u8 + 1).node_secret()
}

/// Delivers `msgs` to node `to` as if its peer on `link` sent them.
fn deliver(m: &mut Mesh, link: usize, to: usize, msgs: Vec<Message>) {
    let l = m.links[link];
    let peer = if l.a == to { l.pa } else { l.pb };
    let inputs = msgs
        .into_iter()
        .map(|msg| {
            (
                to,
                Input::PeerMessage {
                    peer,
                    bytes: msg.encode().unwrap(),
                },
            )
        })
        .collect();
    m.run(inputs);
}

/// Node 2's `channel_update` for its direction of channel `scid` with
/// node 1, signed by node 2, stamped `timestamp`.
fn update_of_node2(m: &Mesh, scid: ShortChannelId, timestamp: u32, fee: u32) -> ChannelUpdate {
    let mut u = ChannelUpdate {
        signature: bitcoin::secp256k1::ecdsa::Signature::from_compact(&[1; 64]).unwrap(),
        chain_hash: ChainHash::REGTEST,
        short_channel_id: scid,
        timestamp,
        message_flags: 1,
        channel_flags: u8::from(m.ids[2].serialize() > m.ids[1].serialize()),
        cltv_expiry_delta: 80,
        htlc_minimum_msat: 1,
        fee_base_msat: fee,
        fee_proportional_millionths: 1,
        htlc_maximum_msat: 100_000_000,
        excess_data: Vec::new(),
    };
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let d = bitcoin::secp256k1::Message::from_digest(u.signed_hash().unwrap());
    u.signature = secp.sign_ecdsa(&d, &node_secret(2));
    u
}

/// A `channel_announcement` of two made-up nodes for `scid`, signed by
/// all four keys: valid, but (unless `scid` names one) for no funding
/// output.
fn made_up_announcement(scid: ShortChannelId, chain: ChainHash) -> ChannelAnnouncement {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let sk = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let pk = |b: u8| bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &sk(b));
    let (mut n1, mut n2) = (0x71, 0x72);
    if pk(n1).serialize() > pk(n2).serialize() {
        std::mem::swap(&mut n1, &mut n2);
    }
    let sig = bitcoin::secp256k1::ecdsa::Signature::from_compact(&[1; 64]).unwrap();
    let mut a = ChannelAnnouncement {
        node_signature_1: sig,
        node_signature_2: sig,
        bitcoin_signature_1: sig,
        bitcoin_signature_2: sig,
        features: beongae_wire::Features::empty(),
        chain_hash: chain,
        short_channel_id: scid,
        node_id_1: NodeId::from_pubkey(pk(n1)),
        node_id_2: NodeId::from_pubkey(pk(n2)),
        bitcoin_key_1: pk(0x73),
        bitcoin_key_2: pk(0x74),
        excess_data: Vec::new(),
    };
    let d = bitcoin::secp256k1::Message::from_digest(a.signed_hash().unwrap());
    a.node_signature_1 = secp.sign_ecdsa(&d, &sk(n1));
    a.node_signature_2 = secp.sign_ecdsa(&d, &sk(n2));
    a.bitcoin_signature_1 = secp.sign_ecdsa(&d, &sk(0x73));
    a.bitcoin_signature_2 = secp.sign_ecdsa(&d, &sk(0x74));
    a
}

/// Bad gossip from a peer (BOLT 7 receiving rules): another chain's
/// announcement is ignored; a flood of stale updates is ignored without
/// cost or harm; an update with a bad signature gets a `warning` and the
/// connection closed; announcements of outputs that do not exist are
/// looked up, counted as junk, and past 2,000 a minute that peer's
/// announcements are no longer looked up; a query with a wrong flag count
/// gets a `warning`. The node keeps routing payments through the while.
#[test]
fn bad_gossip_is_refused_and_the_node_keeps_serving() {
    let mut m = Mesh::new(3, &[(0, 1), (1, 2)]);
    let (ab, fa) = m.open_with(0, 1, true);
    let (bc, fb) = m.open_with(1, 2, true);
    m.block(vec![fa, fb]);
    for _ in 0..5 {
        m.block(vec![]);
    }
    for _ in 0..3 {
        m.tick(Duration::from_secs(61));
    }
    let bc_scid = m.channel(1, bc).short_channel_id.unwrap();
    let dir = usize::from(m.ids[2].serialize() > m.ids[1].serialize());
    let policy = |m: &Mesh| {
        m.cores[1]
            .graph()
            .unwrap()
            .channel_by_scid(bc_scid)
            .unwrap()
            .policies[dir]
    };
    let before = policy(&m).unwrap();
    assert_eq!(before.fee_base_msat, 1_000);
    let lookups = m.lookups;

    // Another chain's announcement: ignored, nothing looked up.
    let testnet =
        made_up_announcement(ShortChannelId::new(101, 0, 0).unwrap(), ChainHash::TESTNET3);
    deliver(&mut m, 0, 1, vec![Message::ChannelAnnouncement(testnet)]);
    assert_eq!(m.lookups, lookups);

    // 3,000 stale updates (validly signed, older than what node 1 has).
    assert!(before.timestamp > 20);
    let stale: Vec<Message> = (0..3_000)
        .map(|i| {
            let t = 1 + i % (before.timestamp - 1);
            Message::ChannelUpdate(update_of_node2(&m, bc_scid, t, 50_000 + i))
        })
        .collect();
    deliver(&mut m, 0, 1, stale);
    assert_eq!(policy(&m).unwrap(), before);
    assert!(m.disconnects.is_empty(), "{:?}", m.disconnects);

    // A bad signature: warning, and node 1 closes the connection to 0.
    let mut forged = update_of_node2(&m, bc_scid, before.timestamp + 10, 1);
    forged.fee_base_msat = 0;
    deliver(&mut m, 0, 1, vec![Message::ChannelUpdate(forged)]);
    assert_eq!(policy(&m).unwrap(), before);
    assert_eq!(m.disconnects.len(), 1);
    assert!(
        m.disconnects[0]
            .1
            .contains("channel_update with an invalid signature"),
        "{:?}",
        m.disconnects
    );
    let again = m.connect_inputs(0).to_vec();
    m.run(again);

    // Announcements of outputs that do not exist: each looked up once and
    // counted; the 2,001st and later of this minute are not looked up.
    let mut n = 0u16;
    for _ in 0..25 {
        let batch: Vec<Message> = (0..100)
            .map(|_| {
                n += 1;
                let scid = ShortChannelId::new(101, 0, n).unwrap();
                Message::ChannelAnnouncement(made_up_announcement(scid, ChainHash::REGTEST))
            })
            .collect();
        deliver(&mut m, 0, 1, batch);
    }
    assert_eq!(m.lookups - lookups, 2_100);
    assert_eq!(m.cores[1].graph().unwrap().channel_count(), 2);

    // A query whose flags do not match its ids: a warning, the connection stays.
    let q = beongae_wire::msgs::QueryShortChannelIds {
        chain_hash: ChainHash::REGTEST,
        encoded_short_ids: beongae_wire::msgs::EncodedShortIds(vec![bc_scid]),
        query_flags: Some(beongae_wire::msgs::QueryFlags(vec![1, 1])),
        extension: Default::default(),
    };
    deliver(&mut m, 0, 1, vec![Message::QueryShortChannelIds(q)]);
    assert_eq!(m.disconnects.len(), 1);

    // Node 1 still forwards: node 0 pays node 2 through it.
    let invoice = m.invoice(2, 10_000_000, "still serving");
    let reply = m.command(
        0,
        Command::Pay {
            invoice,
            amount: None,
            now_secs: 1_700_000_000,
            session_key: SecretKey::from_slice(&[0x52; 32]).unwrap(),
        },
    );
    assert!(matches!(reply, Reply::Paid { .. }), "{reply:?}");
    assert_eq!(m.channel(1, ab).pending_htlcs, 0);
}

/// Four nodes, every channel public: A — B — D and A — C — D (C at a
/// higher fee), six deep, gossip settled; then B pays D 450,000 sat over
/// their channel, so that B holds about 150,000 sat towards D (C holds
/// 600,000). Returns the mesh with node 0's settings from `settings0`.
fn diamond(settings0: ChannelSettings) -> Mesh {
    let mut m = Mesh::new(4, &[(0, 1), (0, 2), (1, 3), (2, 3)]);
    m.settings[0] = settings0;
    let mut txs = Vec::new();
    for (from, to) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        txs.push(m.open_with(from, to, true).1);
    }
    m.block(txs);
    for _ in 0..5 {
        m.block(vec![]);
    }
    let Reply::PolicySet(_) = m.command(
        2,
        Command::SetPolicy {
            channel_id: None,
            policy: channels::policy::ForwardingPolicy {
                fee_base_msat: 10_000,
                ..Default::default()
            },
        },
    ) else {
        panic!()
    };
    for _ in 0..4 {
        m.tick(Duration::from_secs(61));
    }
    m.restart(0);
    for _ in 0..2 {
        m.tick(Duration::from_secs(61));
    }
    assert_eq!(m.cores[0].graph().unwrap().channel_count(), 4);
    let invoice = m.invoice(3, 450_000_000, "drain B");
    let reply = m.command(
        1,
        Command::Pay {
            invoice,
            amount: None,
            now_secs: 1_700_000_000,
            session_key: SecretKey::from_slice(&[0x60; 32]).unwrap(),
        },
    );
    assert!(matches!(reply, Reply::Paid { .. }), "{reply:?}");
    m
}

fn pay_d(m: &mut Mesh, sat: u64, key: u8) -> (Reply, PaymentSummary) {
    let invoice = m.invoice(3, sat * 1_000, "diamond");
    let hash = beongae_invoice::Invoice::decode(&invoice)
        .unwrap()
        .payment_hash();
    let reply = m.command(
        0,
        Command::Pay {
            invoice,
            amount: None,
            now_secs: 1_700_000_000,
            session_key: SecretKey::from_slice(&[key; 32]).unwrap(),
        },
    );
    let summary = m.cores[0]
        .payments()
        .into_iter()
        .find(|p| !p.incoming && p.payment_hash == hash)
        .unwrap();
    (reply, summary)
}

/// The scorer is kept across payments: the first 200,000 sat payment tries
/// the cheaper route through B, whose channel to D cannot carry it
/// (`temporary_channel_failure`), then pays through C; the next one goes
/// through C at once.
#[test]
fn what_a_failure_taught_serves_the_next_payment() {
    let mut m = diamond(settings());
    let (reply, first) = pay_d(&mut m, 200_000, 0x61);
    assert!(matches!(reply, Reply::Paid { .. }), "{reply:?}");
    assert_eq!(first.attempts, 2, "{first:?}");
    assert_eq!(first.route, vec![m.ids[2], m.ids[3]]);
    let (reply, second) = pay_d(&mut m, 200_000, 0x62);
    assert!(matches!(reply, Reply::Paid { .. }), "{reply:?}");
    assert_eq!(second.attempts, 1, "{second:?}");
    assert_eq!(second.route, vec![m.ids[2], m.ids[3]]);
}

/// With a payment timeout of zero, a failed attempt is not retried: the
/// payment fails, saying why.
#[test]
fn a_payment_is_not_retried_after_its_timeout() {
    let mut s = settings();
    s.payment_timeout = Duration::ZERO;
    let mut m = diamond(s);
    let (reply, summary) = pay_d(&mut m, 200_000, 0x63);
    let Reply::Failed(Failure { kind, message: why }) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(kind, FailureKind::PaymentFailed);
    assert!(why.contains("temporary_channel_failure"), "{why}");
    assert!(why.contains("the payment timed out after 0 s"), "{why}");
    assert_eq!(summary.attempts, 1);
    assert!(
        summary
            .status
            .starts_with("failed: temporary_channel_failure"),
        "{}",
        summary.status
    );
}
