//! Gossip between cores (BOLT 7): public channels announced after six
//! blocks, the graph relayed hop by hop, a node that joins learns it by
//! queries, a changed fee reaches every node, and a payment routed over
//! five hops of the learned graph.

use super::*;

/// Six nodes in a line, 0 — 1 — 2 — 3 — 4 — 5, every channel public,
/// funded in one block and six deep; the gossip flushed until it settles.
fn line() -> (Mesh, Vec<ChannelId>) {
    let links: Vec<(usize, usize)> = (0..5).map(|i| (i, i + 1)).collect();
    let mut m = Mesh::new(6, &links);
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

fn scid_of(m: &Mesh, node: usize, id: ChannelId) -> ShortChannelId {
    m.channel(node, id).short_channel_id.expect("confirmed")
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
#[test]
fn a_node_missing_old_gossip_finds_it_by_queries() {
    let (mut m, ids) = line();
    m.tick(Duration::from_secs(3 * 3600));
    // Node 2's new fee, three hours after the rest, reaches everyone.
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
    // The joiner starts from node 0's gossip without the channel 4 — 5
    // (nor node 5's announcement).
    let missing = scid_of(&m, 4, ids[4]);
    let node5 = m.ids[5].serialize();
    let mut store = MemStore::new();
    for ((ns, k), v) in &m.stores[0] {
        let drop = ns == channels::gossip::NS_GOSSIP
            && (k.get(1..9) == Some(&missing.to_u64().to_be_bytes()[..]) && k[0] != b'n'
                || k.get(1..) == Some(&node5[..]));
        if ns == channels::gossip::NS_GOSSIP && !drop {
            store.insert((ns.clone(), k.clone()), v.clone());
        }
    }
    let id6 = node_id_of(&keys(7));
    m.cores.push(restore_core(keys(7), id6, &store, m.height));
    m.ids.push(id6);
    m.stores.push(store);
    m.next_peer.push(1);
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
