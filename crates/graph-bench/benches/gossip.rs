//! Gossip ingestion: the mainnet snapshot's topology as signed BOLT 7
//! messages (deterministic keys), applied to our `Graph` and fed to LDK
//! 0.2.7's `P2PGossipSync`, same messages in the same process.
//!
//! `cargo bench -p beongae-graph-bench --bench gossip`; `BEONGAE_GRAPH`
//! overrides the snapshot path. Issue 6 target: ours at most 10 s in all, and
//! faster than LDK.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fmt::Display;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beongae_graph::{Gossip as Msg, Graph};
use beongae_wire::msgs::{ChannelAnnouncement, ChannelUpdate, NodeAnnouncement};
use beongae_wire::{ChainHash, NodeId, Reader, WireMessage};
use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitcoin::Network;
use common::signed::{build_gossip, par_map, Gossip, Utxos};
use common::{live_bytes, mib, ms, peak_rss, NoLogger};
use lightning::ln::msgs::{self as ldk_msgs, RoutingMessageHandler};
use lightning::routing::gossip::{NetworkGraph, P2PGossipSync};
use lightning::util::ser::LengthReadable;

/// Accepted messages, and the first rejection.
#[derive(Default)]
struct Tally {
    accepted: usize,
    first_error: Option<String>,
}

impl Tally {
    fn record<T, E: Display>(&mut self, r: Result<T, E>) {
        match r {
            Ok(_) => self.accepted += 1,
            Err(e) => {
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
    }

    fn assert_all(&self, who: &str, what: &str, total: usize) {
        assert_eq!(
            self.accepted, total,
            "{who} rejected some {what}; first: {:?}",
            self.first_error
        );
    }
}

/// Each message as our encoding (type, then payload).
fn encode_all<M: WireMessage>(msgs: &[M]) -> Vec<Vec<u8>> {
    msgs.iter().map(|m| m.encode().unwrap()).collect()
}

/// Our decoding of messages of type `M`.
fn decode_ours<M: WireMessage>(wire: &[Vec<u8>]) -> Vec<M> {
    wire.iter()
        .map(|b| M::read_payload(&mut Reader::new(&b[2..])).unwrap())
        .collect()
}

/// LDK's decoding of our encoding.
fn decode_ldk<T: LengthReadable>(wire: &[Vec<u8>]) -> Vec<T> {
    wire.iter()
        .map(|b| T::read_from_fixed_length_buffer(&mut &b[2..]).unwrap())
        .collect()
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let Some(path) = common::snapshot_or_skip("gossip") else {
        return;
    };
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let snapshot = beongae_graph::snapshot::load(&path).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;

    let t = Instant::now();
    let gossip = build_gossip(&snapshot, now, ChainHash::BITCOIN, |_, scid| scid);
    println!(
        "signed {} channel_announcement, {} channel_update, {} node_announcement in {:.1} s on {} threads (not counted)",
        gossip.announcements.len(),
        gossip.updates.len(),
        gossip.nodes.len(),
        t.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let wire = [
        encode_all(&gossip.announcements),
        encode_all(&gossip.updates),
        encode_all(&gossip.nodes),
    ];
    let wire_bytes: usize = wire.iter().flatten().map(Vec::len).sum();
    println!("gossip on the wire: {}", mib(wire_bytes));
    let total_msgs = gossip.announcements.len() + gossip.updates.len() + gossip.nodes.len();

    // Decoding is outside the ingestion figures (the messages are decoded
    // before timing), but timed here: LDK keeps node ids as bytes and parses
    // them while handling, we parse every point while decoding.
    let t = Instant::now();
    let anns: Vec<ChannelAnnouncement> = decode_ours(&wire[0]);
    let upds: Vec<ChannelUpdate> = decode_ours(&wire[1]);
    let nodes: Vec<NodeAnnouncement> = decode_ours(&wire[2]);
    let ours_decode = t.elapsed();
    assert!(anns == gossip.announcements && upds == gossip.updates && nodes == gossip.nodes);
    drop((anns, upds, nodes));
    let t = Instant::now();
    let ldk_anns: Vec<ldk_msgs::ChannelAnnouncement> = decode_ldk(&wire[0]);
    let ldk_upds: Vec<ldk_msgs::ChannelUpdate> = decode_ldk(&wire[1]);
    let ldk_nodes: Vec<ldk_msgs::NodeAnnouncement> = decode_ldk(&wire[2]);
    let ldk_decode = t.elapsed();
    drop(wire);

    // Ours.
    let secp = Secp256k1::verification_only();
    let utxos = &gossip.utxos;
    let live = live_bytes();
    let mut graph = Graph::new(ChainHash::BITCOIN);
    let (mut ann_t, mut upd_t, mut node_t) = (Tally::default(), Tally::default(), Tally::default());
    let t = Instant::now();
    for m in &gossip.announcements {
        ann_t.record(graph.apply_channel_announcement(
            &secp,
            m,
            |scid| utxos.get(&scid.to_u64()).cloned(),
            now,
        ));
    }
    let ours_ann = t.elapsed();
    let t = Instant::now();
    for m in &gossip.updates {
        upd_t.record(graph.apply_channel_update(&secp, m));
    }
    let ours_upd = t.elapsed();
    let t = Instant::now();
    for m in &gossip.nodes {
        node_t.record(graph.apply_node_announcement(&secp, m));
    }
    let ours_node = t.elapsed();
    let ours_heap = live_bytes() - live;
    ann_t.assert_all("ours", "channel_announcement", gossip.announcements.len());
    upd_t.assert_all("ours", "channel_update", gossip.updates.len());
    node_t.assert_all("ours", "node_announcement", gossip.nodes.len());

    // LDK.
    let logger = NoLogger;
    let lookup = Utxos(utxos);
    let live = live_bytes();
    let ng = NetworkGraph::new(Network::Bitcoin, &logger);
    let sync = P2PGossipSync::new(&ng, Some(&lookup), &logger);
    let (mut ann_l, mut upd_l, mut node_l) = (Tally::default(), Tally::default(), Tally::default());
    let t = Instant::now();
    for m in &ldk_anns {
        ann_l.record(sync.handle_channel_announcement(None, m).map_err(|e| e.err));
    }
    let ldk_ann = t.elapsed();
    let t = Instant::now();
    for m in &ldk_upds {
        upd_l.record(sync.handle_channel_update(None, m).map_err(|e| e.err));
    }
    let ldk_upd = t.elapsed();
    let t = Instant::now();
    for m in &ldk_nodes {
        node_l.record(sync.handle_node_announcement(None, m).map_err(|e| e.err));
    }
    let ldk_node = t.elapsed();
    drop(sync);
    let ldk_heap = live_bytes() - live;
    ann_l.assert_all("ldk", "channel_announcement", ldk_anns.len());
    upd_l.assert_all("ldk", "channel_update", ldk_upds.len());
    node_l.assert_all("ldk", "node_announcement", ldk_nodes.len());

    println!();
    println!("== ingestion (each message verified and applied; all accepted by both)");
    let row = |what: &str, n: usize, ours: Duration, ldk: Duration| {
        println!(
            "  {what:<20} {n:>7}  ours {:>9.1} ms ({:>7.0}/s)  ldk {:>9.1} ms ({:>7.0}/s)  ldk/ours {:.2}x",
            ms(ours),
            per_sec(n, ours),
            ms(ldk),
            per_sec(n, ldk),
            ldk.as_secs_f64() / ours.as_secs_f64()
        );
    };
    row(
        "channel_announcement",
        gossip.announcements.len(),
        ours_ann,
        ldk_ann,
    );
    row("channel_update", gossip.updates.len(), ours_upd, ldk_upd);
    row("node_announcement", gossip.nodes.len(), ours_node, ldk_node);
    let ours_total = ours_ann + ours_upd + ours_node;
    let ldk_total = ldk_ann + ldk_upd + ldk_node;
    row("total", total_msgs, ours_total, ldk_total);
    println!("  not counted above:");
    row("decoding (all)", total_msgs, ours_decode, ldk_decode);
    row(
        "decoding + total",
        total_msgs,
        ours_decode + ours_total,
        ldk_decode + ldk_total,
    );
    println!(
        "  target: ours <= 10 s and faster than ldk: {}",
        if ours_total <= Duration::from_secs(10) && ours_total < ldk_total {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("  graph heap (live bytes after ingestion minus before):");
    println!("    ours {}", mib(ours_heap));
    println!("    ldk  {}", mib(ldk_heap));
    println!(
        "         (NetworkGraph: {} of it reserved when empty; {}, the signed messages kept inline for relay)",
        mib(common::ldk_empty_graph_heap()),
        common::ldk_record_sizes()
    );

    // Ours again, as an initial sync would: one batch, signatures checked
    // on every core first, then applied in order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch: Vec<Msg<'_>> = gossip
        .announcements
        .iter()
        .map(Msg::ChannelAnnouncement)
        .chain(gossip.updates.iter().map(Msg::ChannelUpdate))
        .chain(gossip.nodes.iter().map(Msg::NodeAnnouncement))
        .collect();
    let mut batched = Graph::new(ChainHash::BITCOIN);
    let t = Instant::now();
    let results = batched.apply_batch(
        &secp,
        &batch,
        |scid| utxos.get(&scid.to_u64()).cloned(),
        now,
        threads,
    );
    let ours_batch = t.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "a batched message refused"
    );
    assert_eq!(batched.channel_count(), graph.channel_count());
    println!();
    println!("== ingestion as one batch (Graph::apply_batch, signatures on {threads} threads, then applied in order)");
    row("total (batch)", total_msgs, ours_batch, ldk_total);
    drop(batched);

    compare(&graph, &ng, &gossip);
    verify_only(&secp, &gossip, ours_total);

    if let Some(rss) = peak_rss() {
        println!();
        println!("process peak RSS (VmHWM): {}", mib(rss));
    }
}

/// Both graphs hold the same channels, nodes and policies.
fn compare(graph: &Graph, ng: &NetworkGraph<&NoLogger>, gossip: &Gossip) {
    let ro = ng.read_only();
    let ours_announced = (0..graph.node_count() as u32)
        .filter(|&i| graph.node_info(i).is_some())
        .count();
    let ldk_announced = ro
        .nodes()
        .unordered_iter()
        .filter(|(_, n)| n.announcement_info.is_some())
        .count();
    println!();
    println!("== resulting graphs");
    println!(
        "  ours: {} channels, {} nodes ({} with a node_announcement)",
        graph.channel_count(),
        graph.node_count(),
        ours_announced
    );
    println!(
        "  ldk:  {} channels, {} nodes ({} with a node_announcement)",
        ro.channels().len(),
        ro.nodes().len(),
        ldk_announced
    );
    assert_eq!(graph.channel_count(), ro.channels().len());
    assert_eq!(graph.node_count(), ro.nodes().len());
    assert_eq!(ours_announced, ldk_announced);
    assert_eq!(graph.channel_count(), gossip.announcements.len());
    assert_eq!(ours_announced, gossip.nodes.len());

    let mut directions = 0;
    for a in &gossip.announcements {
        let ours = graph.channel_by_scid(a.short_channel_id).unwrap();
        let ldk = ro.channel(a.short_channel_id.to_u64()).unwrap();
        assert_eq!(
            &graph.node_id(ours.nodes[0]).serialize()[..],
            ldk.node_one.as_slice()
        );
        assert_eq!(Some(ours.capacity.to_sat()), ldk.capacity_sats);
        for (dir, theirs) in [&ldk.one_to_two, &ldk.two_to_one].into_iter().enumerate() {
            match (&ours.policies[dir], theirs) {
                (None, None) => {}
                (Some(p), Some(u)) => {
                    assert_eq!(
                        (
                            p.fee_base_msat,
                            p.fee_proportional_millionths,
                            p.cltv_expiry_delta,
                            p.htlc_minimum_msat,
                            p.htlc_maximum_msat,
                            p.timestamp,
                            !p.disabled,
                        ),
                        (
                            u.fees.base_msat,
                            u.fees.proportional_millionths,
                            u.cltv_expiry_delta,
                            u.htlc_minimum_msat,
                            u.htlc_maximum_msat,
                            u.last_update,
                            u.enabled,
                        ),
                        "direction {dir} of {}",
                        a.short_channel_id
                    );
                    directions += 1;
                }
                _ => panic!("direction {dir} of {} differs", a.short_channel_id),
            }
        }
    }
    assert_eq!(directions, gossip.updates.len());
    println!(
        "  same node order, capacity and policy (fees, cltv, htlc min/max, timestamp, enabled) in both for all {} channels and {directions} directions",
        gossip.announcements.len()
    );
}

/// Where ours' time goes: the signed hashes alone, then the signature
/// checks alone (hash + ECDSA, as `verify` does), on one thread and on all.
fn verify_only(secp: &Secp256k1<VerifyOnly>, gossip: &Gossip, ours_total: Duration) {
    let sigs = 4 * gossip.announcements.len() + gossip.updates.len() + gossip.nodes.len();
    let updates: Vec<(&ChannelUpdate, &NodeId)> =
        gossip.updates.iter().zip(&gossip.update_origins).collect();

    let t = Instant::now();
    let mut acc = 0u8;
    for m in &gossip.announcements {
        acc ^= m.signed_hash().unwrap()[0];
    }
    for m in &gossip.updates {
        acc ^= m.signed_hash().unwrap()[0];
    }
    for m in &gossip.nodes {
        acc ^= m.signed_hash().unwrap()[0];
    }
    std::hint::black_box(acc);
    let hash = t.elapsed();

    let t = Instant::now();
    let ok = gossip
        .announcements
        .iter()
        .filter(|m| m.verify(secp))
        .count()
        + updates.iter().filter(|(m, o)| m.verify(secp, o)).count()
        + gossip.nodes.iter().filter(|m| m.verify(secp)).count();
    let verify = t.elapsed();
    assert_eq!(
        ok,
        gossip.announcements.len() + gossip.updates.len() + gossip.nodes.len()
    );

    let t = Instant::now();
    let ok = par_map(&gossip.announcements, |m| m.verify(secp))
        .into_iter()
        .chain(par_map(&updates, |(m, o)| m.verify(secp, o)))
        .chain(par_map(&gossip.nodes, |m| m.verify(secp)))
        .filter(|v| *v)
        .count();
    let par = t.elapsed();
    assert_eq!(
        ok,
        gossip.announcements.len() + gossip.updates.len() + gossip.nodes.len()
    );

    let pct = |d: Duration| 100.0 * d.as_secs_f64() / ours_total.as_secs_f64();
    let ecdsa = verify.saturating_sub(hash);
    let rest = ours_total.saturating_sub(verify);
    println!();
    println!("== where our ingestion time goes ({sigs} signatures; the same work timed alone)");
    println!(
        "  signed hashes (encode + SHA-256d): {:>9.1} ms ({:.0}% of ours)",
        ms(hash),
        pct(hash)
    );
    println!(
        "  ECDSA verification:                {:>9.1} ms ({:.0}%, {:.1} us per signature)",
        ms(ecdsa),
        pct(ecdsa),
        ecdsa.as_secs_f64() * 1e6 / sigs as f64
    );
    println!(
        "  the rest (rules, funding script and lookup, maps, vectors): {:.1} ms ({:.0}%)",
        ms(rest),
        pct(rest)
    );
    println!(
        "  all signature checks on {} threads: {:.1} ms ({:.2}x one thread)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(par),
        verify.as_secs_f64() / par.as_secs_f64()
    );
}
