//! The BOLT 7 receiver rules on signed messages: each refusal, then what an
//! accepted message changes; pruning; the snapshot loader.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use beongae_graph::{snapshot, Gossip, GossipError, Graph, STALE_AFTER_SECS};
use beongae_script::funding::funding_script_pubkey;
use beongae_wire::msgs::{Addresses, ChannelAnnouncement, ChannelUpdate, NodeAnnouncement};
use beongae_wire::{ChainHash, Feature, Features, NodeId, ShortChannelId};
use bitcoin::secp256k1::{ecdsa::Signature, All, Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, TxOut};

const NOW: u32 = 1_700_000_000;

struct Keys {
    secp: Secp256k1<All>,
}

impl Keys {
    fn sk(b: u8) -> SecretKey {
        SecretKey::from_slice(&[b; 32]).unwrap()
    }
    fn pk(&self, b: u8) -> PublicKey {
        PublicKey::from_secret_key(&self.secp, &Self::sk(b))
    }
    fn sign(&self, h: [u8; 32], b: u8) -> Signature {
        self.secp.sign_ecdsa(&Message::from_digest(h), &Self::sk(b))
    }
    /// Node secrets (lesser id first).
    fn nodes(&self) -> (u8, u8) {
        if self.pk(1).serialize() < self.pk(2).serialize() {
            (1, 2)
        } else {
            (2, 1)
        }
    }
}

fn scid() -> ShortChannelId {
    ShortChannelId::new(800_000, 5, 1).unwrap()
}

fn announcement(k: &Keys) -> ChannelAnnouncement {
    let (n1, n2) = k.nodes();
    let zero = k.sign([0; 32], 9);
    let mut a = ChannelAnnouncement {
        node_signature_1: zero,
        node_signature_2: zero,
        bitcoin_signature_1: zero,
        bitcoin_signature_2: zero,
        features: Features::empty(),
        chain_hash: ChainHash::BITCOIN,
        short_channel_id: scid(),
        node_id_1: NodeId::from_pubkey(k.pk(n1)),
        node_id_2: NodeId::from_pubkey(k.pk(n2)),
        bitcoin_key_1: k.pk(11),
        bitcoin_key_2: k.pk(12),
        excess_data: vec![],
    };
    sign_announcement(k, &mut a);
    a
}

fn sign_announcement(k: &Keys, a: &mut ChannelAnnouncement) {
    let (n1, n2) = k.nodes();
    let h = a.signed_hash().unwrap();
    a.node_signature_1 = k.sign(h, n1);
    a.node_signature_2 = k.sign(h, n2);
    a.bitcoin_signature_1 = k.sign(h, 11);
    a.bitcoin_signature_2 = k.sign(h, 12);
}

fn funding(k: &Keys) -> impl Fn(ShortChannelId) -> Option<TxOut> {
    let script = funding_script_pubkey(&k.pk(11), &k.pk(12));
    move |s| {
        (s == scid()).then(|| TxOut {
            value: Amount::from_sat(2_000_000),
            script_pubkey: script.clone(),
        })
    }
}

fn update(k: &Keys, direction: u8, timestamp: u32, signer: u8) -> ChannelUpdate {
    let mut u = ChannelUpdate {
        signature: k.sign([0; 32], 9),
        chain_hash: ChainHash::BITCOIN,
        short_channel_id: scid(),
        timestamp,
        message_flags: 1,
        channel_flags: direction,
        cltv_expiry_delta: 80,
        htlc_minimum_msat: 1_000,
        fee_base_msat: 500,
        fee_proportional_millionths: 200,
        htlc_maximum_msat: 1_500_000_000,
        excess_data: vec![],
    };
    u.signature = k.sign(u.signed_hash().unwrap(), signer);
    u
}

/// A `node_announcement` of node secret `n` at `NOW`, signed by it.
fn node_announcement(k: &Keys, n: u8, name: &[u8], features: Features) -> NodeAnnouncement {
    let mut alias = [0u8; 32];
    alias[..name.len()].copy_from_slice(name);
    let mut a = NodeAnnouncement {
        signature: k.sign([0; 32], 9),
        features,
        timestamp: NOW,
        node_id: NodeId::from_pubkey(k.pk(n)),
        rgb_color: [1, 2, 3],
        alias,
        addresses: Addresses(vec![]),
        excess_data: vec![],
    };
    sign_node(k, n, &mut a);
    a
}

/// Signs a `node_announcement` again with node secret `n`.
fn sign_node(k: &Keys, n: u8, a: &mut NodeAnnouncement) {
    a.signature = k.sign(a.signed_hash().unwrap(), n);
}

#[test]
fn channel_announcement_rules() {
    let k = Keys {
        secp: Secp256k1::new(),
    };
    let mut g = Graph::new(ChainHash::BITCOIN);
    let good = announcement(&k);

    let mut m = good.clone();
    m.chain_hash = ChainHash::TESTNET3;
    sign_announcement(&k, &mut m);
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &m, funding(&k), NOW),
        Err(GossipError::WrongChain(ChainHash::TESTNET3))
    );
    let mut m = good.clone();
    m.features = Features::empty().with_required(Feature::Anchors);
    sign_announcement(&k, &mut m);
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &m, funding(&k), NOW),
        Err(GossipError::UnknownRequiredFeature)
    );
    let mut m = good.clone();
    std::mem::swap(&mut m.node_id_1, &mut m.node_id_2);
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &m, funding(&k), NOW),
        Err(GossipError::NodeOrder)
    );
    let mut m = good.clone();
    m.bitcoin_signature_2 = m.bitcoin_signature_1;
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &m, funding(&k), NOW),
        Err(GossipError::BadSignature)
    );
    // Funding: missing (spent), or a 2-of-2 of other keys.
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &good, |_| None, NOW),
        Err(GossipError::BadFunding(scid()))
    );
    let other = funding_script_pubkey(&k.pk(11), &k.pk(13));
    let wrong = |_| {
        Some(TxOut {
            value: Amount::from_sat(1),
            script_pubkey: other.clone(),
        })
    };
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &good, wrong, NOW),
        Err(GossipError::BadFunding(scid()))
    );
    assert_eq!(g.channel_count(), 0);

    let idx = g
        .apply_channel_announcement(&k.secp, &good, funding(&k), NOW)
        .unwrap();
    let c = g.channel(idx).unwrap();
    assert_eq!(c.capacity, Amount::from_sat(2_000_000));
    assert_eq!(g.node_id(c.nodes[0]), good.node_id_1);
    assert_eq!(c.policies, [None, None]);
    assert_eq!(g.node_count(), 2);
    assert_eq!(
        g.apply_channel_announcement(&k.secp, &good, funding(&k), NOW),
        Err(GossipError::Duplicate(scid()))
    );
}

#[test]
fn channel_update_rules_and_pruning() {
    let k = Keys {
        secp: Secp256k1::new(),
    };
    let (n1, n2) = k.nodes();
    let mut g = Graph::new(ChainHash::BITCOIN);
    assert_eq!(
        g.apply_channel_update(&k.secp, &update(&k, 0, NOW, n1)),
        Err(GossipError::UnknownChannel(scid()))
    );
    g.apply_channel_announcement(&k.secp, &announcement(&k), funding(&k), NOW)
        .unwrap();

    // Signed by the wrong end of the channel.
    assert_eq!(
        g.apply_channel_update(&k.secp, &update(&k, 0, NOW, n2)),
        Err(GossipError::BadSignature)
    );
    // BOLT 7: `must_be_one` is "ignored by receivers" (`htlc_maximum_msat`
    // is always there now): an update without it is taken.
    let mut u = update(&k, 0, NOW - 10, n1);
    u.message_flags = 0;
    u.signature = k.sign(u.signed_hash().unwrap(), n1);
    assert_eq!(g.apply_channel_update(&k.secp, &u), Ok(0));
    let mut u = update(&k, 0, NOW, n1);
    u.htlc_maximum_msat = 2_000_000_001;
    u.signature = k.sign(u.signed_hash().unwrap(), n1);
    assert_eq!(
        g.apply_channel_update(&k.secp, &u),
        Err(GossipError::BadHtlcMaximum {
            max: 2_000_000_001,
            min: 1_000,
            capacity: 2_000_000_000
        })
    );

    assert_eq!(
        g.apply_channel_update(&k.secp, &update(&k, 0, NOW, n1)),
        Ok(0)
    );
    assert_eq!(
        g.apply_channel_update(&k.secp, &update(&k, 0, NOW, n1)),
        Err(GossipError::Stale {
            got: NOW,
            have: NOW
        })
    );
    // Direction 1, disabled.
    assert_eq!(
        g.apply_channel_update(&k.secp, &update(&k, 1 | 2, NOW + 5, n2)),
        Ok(1)
    );
    let c = g.channel_by_scid(scid()).unwrap();
    let (p0, p1) = (c.policies[0].unwrap(), c.policies[1].unwrap());
    assert_eq!(
        (
            p0.fee_base_msat,
            p0.fee_proportional_millionths,
            p0.cltv_expiry_delta
        ),
        (500, 200, 80)
    );
    assert!(!p0.disabled && p1.disabled);
    assert_eq!(p1.timestamp, NOW + 5);

    // BOLT 7: two weeks after the older direction's latest update (NOW,
    // though the other direction's is NOW + 5) the channel goes.
    assert_eq!(g.prune_stale(NOW + STALE_AFTER_SECS), 0);
    assert_eq!(g.prune_stale(NOW + 1 + STALE_AFTER_SECS), 1);
    assert_eq!(g.channel_count(), 0);
    assert!(g
        .node_channels(g.node(&NodeId::from_pubkey(k.pk(n1))).unwrap())
        .is_empty());
}

#[test]
fn node_announcement_rules() {
    let k = Keys {
        secp: Secp256k1::new(),
    };
    let (n1, _) = k.nodes();
    let mut g = Graph::new(ChainHash::BITCOIN);
    let a = node_announcement(
        &k,
        n1,
        b"beongae",
        Features::empty().with_optional(Feature::VarOnionOptin),
    );
    assert_eq!(
        g.apply_node_announcement(&k.secp, &a),
        Err(GossipError::UnknownNode(a.node_id))
    );
    g.apply_channel_announcement(&k.secp, &announcement(&k), funding(&k), NOW)
        .unwrap();
    let mut bad = a.clone();
    bad.rgb_color = [9, 9, 9];
    assert_eq!(
        g.apply_node_announcement(&k.secp, &bad),
        Err(GossipError::BadSignature)
    );
    let idx = g.apply_node_announcement(&k.secp, &a).unwrap();
    let info = g.node_info(idx).unwrap();
    assert_eq!(info.alias, b"beongae");
    assert_eq!(info.rgb_color, [1, 2, 3]);
    assert!(g.node_routable(idx));
    assert_eq!(
        g.apply_node_announcement(&k.secp, &a),
        Err(GossipError::Stale {
            got: NOW,
            have: NOW
        })
    );
    // Required features we know (LDK requires payment_secret, for one)
    // keep the node routable; an unknown even bit is stored but makes it
    // unroutable (BOLT 7: "MUST NOT route a payment through the node").
    let mut known = node_announcement(
        &k,
        n1,
        b"beongae",
        Features::empty().with_required(Feature::PaymentSecret),
    );
    known.timestamp = NOW + 1;
    sign_node(&k, n1, &mut known);
    g.apply_node_announcement(&k.secp, &known).unwrap();
    assert!(g.node_routable(idx));
    let mut unknown = known.clone();
    unknown.features.set(100);
    unknown.timestamp = NOW + 2;
    sign_node(&k, n1, &mut unknown);
    assert_eq!(g.apply_node_announcement(&k.secp, &unknown), Ok(idx));
    assert!(!g.node_routable(idx));
}

#[test]
fn snapshot_loader() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sample-graph.json.gz");
    let g = snapshot::load(&path).unwrap();
    assert_eq!((g.node_count(), g.channel_count()), (3, 2));
    let c = g
        .channel_by_scid(ShortChannelId::new(800_001, 7, 1).unwrap())
        .unwrap();
    assert_eq!(c.capacity, Amount::from_sat(5_000_000));
    assert_eq!(c.policies[0], None);
    let p = c.policies[1].unwrap();
    assert_eq!(
        (
            p.fee_proportional_millionths,
            p.cltv_expiry_delta,
            p.htlc_maximum_msat
        ),
        (1, 40, 4_950_000_000)
    );
    assert!(snapshot::from_json(b"{\"channels\":[{\"scid\":\"1x2\"}]}").is_err());
    assert!(snapshot::load(std::path::Path::new("/nonexistent.json.gz")).is_err());
}

#[test]
fn a_batch_gives_what_one_by_one_gives() {
    let k = Keys {
        secp: Secp256k1::new(),
    };
    let (n1, n2) = k.nodes();
    let ann = announcement(&k);
    let mut bad_ann = ann.clone();
    bad_ann.short_channel_id = ShortChannelId::new(800_001, 1, 0).unwrap();
    let node = node_announcement(&k, n1, b"n1", Features::empty());
    let mut forged_node = node.clone();
    forged_node.timestamp = NOW + 1;
    let (u0, u0_again, u1_forged, u1) = (
        update(&k, 0, NOW, n1),
        update(&k, 0, NOW, n1),
        update(&k, 1, NOW, n1),
        update(&k, 1, NOW + 5, n2),
    );
    // Seventy messages so that the checks run on two threads.
    let mut msgs = vec![
        Gossip::ChannelUpdate(&u0),
        Gossip::ChannelAnnouncement(&ann),
        Gossip::ChannelAnnouncement(&bad_ann),
        Gossip::ChannelUpdate(&u0),
        Gossip::ChannelUpdate(&u0_again),
        Gossip::ChannelUpdate(&u1_forged),
        Gossip::NodeAnnouncement(&forged_node),
        Gossip::NodeAnnouncement(&node),
        Gossip::ChannelAnnouncement(&ann),
    ];
    while msgs.len() < 69 {
        msgs.push(msgs[msgs.len() % 9]);
    }
    msgs.push(Gossip::ChannelUpdate(&u1));

    let mut one = Graph::new(ChainHash::BITCOIN);
    let expected: Vec<Result<(), GossipError>> = msgs
        .iter()
        .map(|m| match m {
            Gossip::ChannelAnnouncement(a) => one
                .apply_channel_announcement(&k.secp, a, funding(&k), NOW)
                .map(drop),
            Gossip::ChannelUpdate(u) => one.apply_channel_update(&k.secp, u).map(drop),
            Gossip::NodeAnnouncement(n) => one.apply_node_announcement(&k.secp, n).map(drop),
        })
        .collect();
    assert_eq!(
        expected[..9],
        [
            Err(GossipError::UnknownChannel(scid())),
            Ok(()),
            Err(GossipError::BadSignature),
            Ok(()),
            Err(GossipError::Stale {
                got: NOW,
                have: NOW
            }),
            Err(GossipError::BadSignature),
            Err(GossipError::BadSignature),
            Ok(()),
            Err(GossipError::Duplicate(scid())),
        ]
    );
    assert_eq!(expected[69], Ok(()));
    for threads in [1, 2] {
        let mut batch = Graph::new(ChainHash::BITCOIN);
        let got = batch.apply_batch(&k.secp, &msgs, funding(&k), NOW, threads);
        assert_eq!(got, expected, "{threads} threads");
        let c = batch.channel_by_scid(scid()).unwrap();
        assert_eq!(c, one.channel_by_scid(scid()).unwrap());
        assert_eq!(c.policies[1].unwrap().timestamp, NOW + 5);
        let i = batch.node(&node.node_id).unwrap();
        assert_eq!(
            batch.node_info(i),
            one.node_info(one.node(&node.node_id).unwrap())
        );
    }
}

#[test]
fn a_direction_without_updates_counts_from_the_announcement() {
    let k = Keys {
        secp: Secp256k1::new(),
    };
    let (n1, _) = k.nodes();
    let mut g = Graph::new(ChainHash::BITCOIN);
    g.apply_channel_announcement(&k.secp, &announcement(&k), funding(&k), NOW)
        .unwrap();
    g.apply_channel_update(&k.secp, &update(&k, 0, NOW + 1_000, n1))
        .unwrap();
    // Direction 1 never spoke: two weeks after the announcement it goes,
    // however fresh direction 0 is.
    assert_eq!(g.prune_stale(NOW + STALE_AFTER_SECS), 0);
    assert_eq!(g.prune_stale(NOW + 1 + STALE_AFTER_SECS), 1);
}

#[test]
fn a_batch_checks_updates_against_the_announcement_that_won() {
    let k = Keys {
        secp: Secp256k1::new(),
    };
    let (n1, _) = k.nodes();
    let good = announcement(&k);
    // Same channel, other (lesser-first) nodes, signatures not theirs.
    let (a, b) = if k.pk(3).serialize() < k.pk(4).serialize() {
        (3, 4)
    } else {
        (4, 3)
    };
    let mut bogus = good.clone();
    bogus.node_id_1 = NodeId::from_pubkey(k.pk(a));
    bogus.node_id_2 = NodeId::from_pubkey(k.pk(b));
    let upd = update(&k, 0, NOW, n1);
    for order in [[&good, &bogus], [&bogus, &good]] {
        let msgs: Vec<Gossip<'_>> = order
            .iter()
            .map(|a| Gossip::ChannelAnnouncement(a))
            .chain(std::iter::once(Gossip::ChannelUpdate(&upd)))
            .collect();
        let mut g = Graph::new(ChainHash::BITCOIN);
        let got = g.apply_batch(&k.secp, &msgs, funding(&k), NOW, 1);
        assert_eq!(got[2], Ok(()), "the update of the applied announcement");
        assert_eq!(
            g.channel_by_scid(scid()).unwrap().policies[0]
                .unwrap()
                .timestamp,
            NOW
        );
    }
}
