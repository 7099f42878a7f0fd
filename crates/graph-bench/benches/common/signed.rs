//! The mainnet snapshot's topology as signed BOLT 7 messages, with
//! deterministic keys: what the gossip benches feed to the receivers.

#![allow(dead_code)]

use std::collections::HashMap;

use beongae_graph::{Graph, Policy};
use beongae_script::funding::funding_script_pubkey;
use beongae_wire::msgs::{Addresses, ChannelAnnouncement, ChannelUpdate, NodeAnnouncement};
use beongae_wire::{ChainHash, Feature, Features, NetAddress, NodeId, ShortChannelId};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{Message as Digest, PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, TxOut};

use super::XorShift;

const SEED: u64 = 0x2545_F491_4F6C_DD1D;
const NODE_KEY_TAG: &[u8] = b"beongae graph-bench gossip node key";
const BITCOIN_KEY_TAG: &[u8] = b"beongae graph-bench gossip bitcoin key";

/// A secret key from SHA-256(`tag` || `i`).
pub fn secret(tag: &[u8], i: u64) -> SecretKey {
    let mut e = sha256::Hash::engine();
    e.input(tag);
    e.input(&i.to_be_bytes());
    SecretKey::from_slice(&sha256::Hash::from_engine(e).to_byte_array()).unwrap()
}

/// `f` over `items` on every core, results in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// A channel of the snapshot, with our generated keys in BOLT 7 order.
struct ChannelPlan {
    scid: ShortChannelId,
    /// Snapshot node indices of `node_id_1` and `node_id_2`.
    nodes: [u32; 2],
    /// Snapshot index of the channel (for its bitcoin keys).
    index: u64,
    capacity_sat: u64,
}

/// A `channel_update` to sign: its origin (snapshot node index) and the message.
struct UpdatePlan {
    origin: u32,
    msg: ChannelUpdate,
}

/// The messages and what the receivers need besides them.
pub struct Gossip {
    pub announcements: Vec<ChannelAnnouncement>,
    pub updates: Vec<ChannelUpdate>,
    /// The origin of each update (`node_id_1` for direction 0).
    pub update_origins: Vec<NodeId>,
    pub nodes: Vec<NodeAnnouncement>,
    /// Funding outputs by short channel id, for both receivers.
    pub utxos: HashMap<u64, TxOut>,
}

/// The snapshot's channels and policies as signed messages for `chain`,
/// each channel named by `scid_of(its index among those kept, its
/// snapshot short channel id)`.
pub fn build_gossip(
    snapshot: &Graph,
    now: u32,
    chain: ChainHash,
    scid_of: impl Fn(u64, ShortChannelId) -> ShortChannelId,
) -> Gossip {
    let secp = Secp256k1::new();
    let node_sk: Vec<SecretKey> = (0..snapshot.node_count() as u64)
        .map(|i| secret(NODE_KEY_TAG, i))
        .collect();
    let node_pk: Vec<NodeId> = par_map(&node_sk, |sk| {
        NodeId::from_pubkey(PublicKey::from_secret_key(&secp, sk))
    });
    let dummy = secp.sign_ecdsa(&Digest::from_digest([1; 32]), &node_sk[0]);

    let mut rng = XorShift(SEED);
    let mut channels = Vec::new();
    let mut update_plans = Vec::new();
    let (mut clamped_max, mut clamped_min, mut skipped) = (0usize, 0usize, 0usize);
    for idx in 0..snapshot.channel_count() as u32 {
        let Some(ch) = snapshot.channel(idx) else {
            continue;
        };
        let [a, b] = ch.nodes;
        if a == b {
            skipped += 1;
            continue;
        }
        let scid = scid_of(channels.len() as u64, ch.scid);
        // Generated ids order the two nodes afresh: the snapshot's direction d
        // (from `nodes[d]`) is BOLT 7 direction `d ^ swapped`.
        let swapped = node_pk[a as usize].serialize() > node_pk[b as usize].serialize();
        let nodes = if swapped { [b, a] } else { [a, b] };
        let capacity_msat = ch.capacity.to_sat() * 1000;
        for (d, p) in ch.policies.iter().enumerate() {
            let Some(p): &Option<Policy> = p else {
                continue;
            };
            let direction = d as u8 ^ u8::from(swapped);
            let htlc_maximum_msat = p.htlc_maximum_msat.min(capacity_msat);
            let htlc_minimum_msat = p.htlc_minimum_msat.min(htlc_maximum_msat);
            clamped_max += usize::from(htlc_maximum_msat != p.htlc_maximum_msat);
            clamped_min += usize::from(htlc_minimum_msat != p.htlc_minimum_msat);
            update_plans.push(UpdatePlan {
                origin: ch.nodes[d],
                msg: ChannelUpdate {
                    signature: dummy,
                    chain_hash: chain,
                    short_channel_id: scid,
                    // Within the last day (LDK drops updates over two weeks old).
                    timestamp: now - 60 - rng.below(86_400) as u32,
                    message_flags: 1,
                    channel_flags: direction | (u8::from(p.disabled) << 1),
                    cltv_expiry_delta: p.cltv_expiry_delta,
                    htlc_minimum_msat,
                    fee_base_msat: p.fee_base_msat,
                    fee_proportional_millionths: p.fee_proportional_millionths,
                    htlc_maximum_msat,
                    excess_data: vec![],
                },
            });
        }
        channels.push(ChannelPlan {
            scid,
            nodes,
            index: u64::from(idx),
            capacity_sat: ch.capacity.to_sat(),
        });
    }
    println!(
        "topology: {} nodes, {} channels ({} self-channels skipped), {} directions with a policy",
        snapshot.node_count(),
        channels.len(),
        skipped,
        update_plans.len()
    );
    println!(
        "  htlc_maximum_msat clamped to the capacity in {clamped_max} updates, htlc_minimum_msat lowered to it in {clamped_min}"
    );

    let sign = |h: [u8; 32], sk: &SecretKey| secp.sign_ecdsa(&Digest::from_digest(h), sk);
    let announcements = par_map(&channels, |c| {
        let bsk = [
            secret(BITCOIN_KEY_TAG, 2 * c.index),
            secret(BITCOIN_KEY_TAG, 2 * c.index + 1),
        ];
        let mut m = ChannelAnnouncement {
            node_signature_1: dummy,
            node_signature_2: dummy,
            bitcoin_signature_1: dummy,
            bitcoin_signature_2: dummy,
            features: Features::empty(),
            chain_hash: chain,
            short_channel_id: c.scid,
            node_id_1: node_pk[c.nodes[0] as usize],
            node_id_2: node_pk[c.nodes[1] as usize],
            bitcoin_key_1: PublicKey::from_secret_key(&secp, &bsk[0]),
            bitcoin_key_2: PublicKey::from_secret_key(&secp, &bsk[1]),
            excess_data: vec![],
        };
        let h = m.signed_hash().unwrap();
        m.node_signature_1 = sign(h, &node_sk[c.nodes[0] as usize]);
        m.node_signature_2 = sign(h, &node_sk[c.nodes[1] as usize]);
        m.bitcoin_signature_1 = sign(h, &bsk[0]);
        m.bitcoin_signature_2 = sign(h, &bsk[1]);
        m
    });
    let updates = par_map(&update_plans, |u| {
        let mut m = u.msg.clone();
        m.signature = sign(m.signed_hash().unwrap(), &node_sk[u.origin as usize]);
        m
    });
    let update_origins = update_plans
        .iter()
        .map(|u| node_pk[u.origin as usize])
        .collect();

    let features = Features::empty()
        .with_optional(Feature::DataLossProtect)
        .with_optional(Feature::VarOnionOptin)
        .with_optional(Feature::StaticRemoteKey)
        .with_optional(Feature::PaymentSecret)
        .with_optional(Feature::BasicMpp);
    let node_plans: Vec<(usize, NodeAnnouncement)> = (0..snapshot.node_count())
        .map(|i| {
            let mut alias = [0u8; 32];
            let name = format!("beongae-bench-{i:05}");
            alias[..name.len()].copy_from_slice(name.as_bytes());
            let bits = rng.next();
            // Three nodes in four announce an IPv4 address.
            let addresses = if bits & 3 != 0 {
                vec![NetAddress::Ipv4 {
                    addr: std::net::Ipv4Addr::from((bits >> 32) as u32),
                    port: 9735,
                }]
            } else {
                vec![]
            };
            let msg = NodeAnnouncement {
                signature: dummy,
                features: features.clone(),
                // Within the last week.
                timestamp: now - 60 - rng.below(7 * 86_400) as u32,
                node_id: node_pk[i],
                rgb_color: [(bits >> 8) as u8, (bits >> 16) as u8, (bits >> 24) as u8],
                alias,
                addresses: Addresses(addresses),
                excess_data: vec![],
            };
            (i, msg)
        })
        .collect();
    let nodes = par_map(&node_plans, |(i, n)| {
        let mut m = n.clone();
        m.signature = sign(m.signed_hash().unwrap(), &node_sk[*i]);
        m
    });

    let utxos = announcements
        .iter()
        .zip(&channels)
        .map(|(a, c)| {
            let out = TxOut {
                value: Amount::from_sat(c.capacity_sat),
                script_pubkey: funding_script_pubkey(&a.bitcoin_key_1, &a.bitcoin_key_2),
            };
            (c.scid.to_u64(), out)
        })
        .collect();
    Gossip {
        announcements,
        updates,
        update_origins,
        nodes,
        utxos,
    }
}

/// LDK's view of the funding outputs: a map by short channel id.
pub struct Utxos<'a>(pub &'a HashMap<u64, TxOut>);

impl lightning::routing::utxo::UtxoLookup for Utxos<'_> {
    fn get_utxo(
        &self,
        _chain_hash: &ChainHash,
        short_channel_id: u64,
    ) -> lightning::routing::utxo::UtxoResult {
        lightning::routing::utxo::UtxoResult::Sync(
            self.0
                .get(&short_channel_id)
                .cloned()
                .ok_or(lightning::routing::utxo::UtxoLookupError::UnknownTx),
        )
    }
}
