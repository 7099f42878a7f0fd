//! The invariants checked once the network is at rest (those checked at
//! every step are in the world: the persistence order of each step's
//! outputs, one commitment per number, no `error`, no refused commitment,
//! no channel closed unasked, a store that restores after every crash).
//!
//! At rest:
//! - both ends of every channel agree on every msat, and no HTLC is left;
//! - every payment ended, and the payer knows how: a payment the payer
//!   counts as sent was received by the payee, and one it counts as
//!   failed (or never made) was not;
//! - every node's channel balances moved by exactly what it received, less
//!   what it sent (fees included), plus the fees it earned forwarding: the
//!   sum over the network is conserved, to the msat;
//! - every node's store restores to the channels and payments it holds;
//! - a revoked commitment that confirmed was punished: every output of it
//!   but the anchors was spent, and nothing of it reached the cheater.
//!
//! A cheater may lose anything, its victim may gain, and a payment routed
//! through a cheater may fail at its payer and still reach its payee.

use beongae_node::core::{
    ChannelState, ChannelSummary, FailureKind, NodeCore, PaymentSummary, Reply,
};
use beongae_wire::Msat;

use crate::world::{Violation, World};

/// Each node's balance in its open channels, in msat (closed channels'
/// funds are on chain).
pub(crate) fn balances(w: &World) -> Vec<i64> {
    (0..w.node_count())
        .map(|n| {
            let Some(core) = w.core(n) else { return 0 };
            let summaries = core.channels();
            w.chans
                .iter()
                .filter(|c| c.a == n || c.b == n)
                .filter_map(|c| c.id)
                .filter_map(|id| summaries.iter().find(|s| s.channel_id == id))
                .filter(|s| s.state != ChannelState::Closed)
                .map(|s| s.local.to_msat() as i64)
                .sum()
        })
        .collect()
}

/// Each node's value in msat: its confirmed coins plus its balance in
/// its open channels.
fn values(w: &World) -> Vec<i64> {
    let channels = balances(w);
    let devnet = w.devnet();
    (0..w.node_count())
        .map(|n| {
            let coins: u64 = devnet
                .utxos_for(w.wallet_script(n))
                .iter()
                .map(|(_, c)| c.txout.value.to_sat())
                .sum();
            coins as i64 * 1_000 + channels[n]
        })
        .collect()
}

/// What each node held when the workload began, and the transactions
/// confirmed then (a reorganisation may move them, but they are counted
/// in what the nodes held).
pub(crate) struct Baseline {
    txs: std::collections::BTreeSet<bitcoin::Txid>,
    values: Vec<i64>,
}

impl Baseline {
    pub(crate) fn now(w: &World) -> Baseline {
        let devnet = w.devnet();
        let txs = (1..=devnet.height())
            .filter_map(|h| devnet.block_at(h))
            .flat_map(|b| b.txdata.iter().map(|t| t.compute_txid()))
            .collect();
        drop(devnet);
        Baseline {
            txs,
            values: values(w),
        }
    }
}

/// What left the nodes on chain since the baseline: the fees of every
/// transaction confirmed since, and the outputs paying none of them that
/// are still unspent (anchors); per node, the part of both in transactions
/// that touch it (spend or pay its coins, spend its channels' funding
/// outputs, or spend such a transaction's outputs).
struct Flows {
    /// Fees and unowned outputs, in sat.
    total: u64,
    /// The same, per node, over the transactions that touch it.
    per_node: Vec<u64>,
    /// Transactions confirmed since the baseline.
    txs: usize,
}

fn flows(w: &World, before: &std::collections::BTreeSet<bitcoin::Txid>) -> Result<Flows, String> {
    use std::collections::{BTreeMap, BTreeSet};
    let devnet = w.devnet();
    let n = w.node_count();
    let owner = |script: &bitcoin::ScriptBuf| (0..n).find(|&i| w.wallet_script(i) == script);
    // Every channel's funding outpoint, and its two nodes.
    let mut fundings: BTreeMap<bitcoin::OutPoint, [usize; 2]> = BTreeMap::new();
    for c in &w.chans {
        let Some(id) = c.id else { continue };
        let Some(s) = w.core(c.a).and_then(|core| summary(core, id)) else {
            continue;
        };
        let tx = devnet
            .transaction(&s.funding_txid)
            .ok_or_else(|| format!("channel {id}'s funding is not on chain"))?;
        let vout = tx
            .output
            .iter()
            .position(|o| o.value == s.capacity && o.script_pubkey.is_p2wsh())
            .ok_or_else(|| format!("channel {id}'s funding pays no output of its capacity"))?;
        fundings.insert(
            bitcoin::OutPoint::new(s.funding_txid, vout as u32),
            [c.a, c.b],
        );
    }
    let mut touches: BTreeMap<bitcoin::Txid, BTreeSet<usize>> = BTreeMap::new();
    let mut flows = Flows {
        total: 0,
        per_node: vec![0; n],
        txs: 0,
    };
    let mut since = Vec::new();
    for h in 1..=devnet.height() {
        let block = devnet.block_at(h).ok_or("a block vanished")?;
        for tx in block.txdata.iter().filter(|t| !t.is_coinbase()) {
            let txid = tx.compute_txid();
            if before.contains(&txid) {
                continue;
            }
            let mut nodes = BTreeSet::new();
            let mut value_in = 0u64;
            for i in &tx.input {
                let prev = devnet
                    .transaction(&i.previous_output.txid)
                    .and_then(|p| p.output.get(i.previous_output.vout as usize))
                    .ok_or_else(|| format!("{txid} spends an output that is nowhere"))?;
                value_in += prev.value.to_sat();
                nodes.extend(owner(&prev.script_pubkey));
                nodes.extend(fundings.get(&i.previous_output).into_iter().flatten());
                nodes.extend(touches.get(&i.previous_output.txid).into_iter().flatten());
            }
            let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
            nodes.extend(tx.output.iter().filter_map(|o| owner(&o.script_pubkey)));
            let fee = value_in
                .checked_sub(value_out)
                .ok_or_else(|| format!("{txid} pays out more than it spends"))?;
            flows.total += fee;
            for &i in &nodes {
                flows.per_node[i] += fee;
            }
            flows.txs += 1;
            touches.insert(txid, nodes);
            since.push(tx.clone());
        }
    }
    for tx in &since {
        let txid = tx.compute_txid();
        for (vout, o) in tx.output.iter().enumerate() {
            let outpoint = bitcoin::OutPoint::new(txid, vout as u32);
            if owner(&o.script_pubkey).is_none()
                && !fundings.contains_key(&outpoint)
                && devnet.utxo(&outpoint).is_some()
            {
                flows.total += o.value.to_sat();
                for &i in &touches[&txid] {
                    flows.per_node[i] += o.value.to_sat();
                }
            }
        }
    }
    Ok(flows)
}

/// Whether `cheat`'s revoked commitment confirmed; if it did, an error
/// unless it was punished: every output of it but the anchors spent (by
/// the victim's justice, or by the cheater's HTLC transactions and then by
/// the victim), and the cheater's wallet paid no more by the transactions
/// descending from it than it put into them (the fee inputs of its HTLC
/// transactions come back as change).
pub(crate) fn punished(w: &World, cheat: &crate::world::Cheat) -> Result<bool, String> {
    let devnet = w.devnet();
    let txid = cheat.tx.compute_txid();
    if devnet.confirmations(&txid).is_none() {
        return Ok(false); // another close won the funding output
    }
    let cheater = w.wallet_script(cheat.by);
    let anchor = bitcoin::Amount::from_sat(330);
    let mut todo: Vec<bitcoin::OutPoint> = cheat
        .tx
        .output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.value != anchor)
        .map(|(v, _)| bitcoin::OutPoint::new(txid, v as u32))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut gain: i64 = 0;
    while let Some(outpoint) = todo.pop() {
        let spender = match devnet.spender(&outpoint) {
            Some((spender, Some(_))) => spender,
            _ => {
                return Err(format!(
                    "node {}'s revoked commitment {txid} confirmed, and its output {outpoint} was never claimed",
                    cheat.by
                ))
            }
        };
        if !seen.insert(spender) {
            continue;
        }
        let tx = devnet.transaction(&spender).ok_or("a spender vanished")?;
        for i in &tx.input {
            let prev = devnet
                .transaction(&i.previous_output.txid)
                .and_then(|p| p.output.get(i.previous_output.vout as usize))
                .ok_or("an input vanished")?;
            if &prev.script_pubkey == cheater {
                gain -= prev.value.to_sat() as i64;
            }
        }
        for (v, o) in tx.output.iter().enumerate() {
            if &o.script_pubkey == cheater {
                gain += o.value.to_sat() as i64;
            } else if (0..w.node_count()).all(|n| w.wallet_script(n) != &o.script_pubkey) {
                // Not a wallet's yet (the output of an HTLC transaction).
                todo.push(bitcoin::OutPoint::new(spender, v as u32));
            }
        }
    }
    if gain > 0 {
        return Err(format!(
            "node {} cheated with its revoked commitment {txid}, and its wallet got {gain} sat out of it",
            cheat.by
        ));
    }
    Ok(true)
}

fn summary(core: &NodeCore, id: beongae_wire::ChannelId) -> Option<ChannelSummary> {
    core.channels().into_iter().find(|s| s.channel_id == id)
}

/// What a store must reproduce of a channel: all but what depends on the
/// connection.
fn stored_view(mut c: ChannelSummary) -> ChannelSummary {
    c.active = false;
    c.spendable = Msat::ZERO;
    c.receivable = Msat::ZERO;
    c
}

/// The checks at rest; counts what the payments came to.
pub(crate) fn at_rest(w: &mut World, before: &Baseline) -> Result<(), Violation> {
    let n = w.node_count();
    let cores: Vec<&NodeCore> = (0..n)
        .map(|i| {
            w.core(i)
                .ok_or_else(|| w.violation(format!("node {i} down at rest")))
        })
        .collect::<Result<_, _>>()?;
    // Both ends of every channel agree.
    for c in &w.chans {
        let id = c.id.ok_or_else(|| w.violation("a channel never opened"))?;
        let (Some(x), Some(y)) = (summary(cores[c.a], id), summary(cores[c.b], id)) else {
            return Err(w.violation(format!(
                "channel {id} is missing at node {} or {}",
                c.a, c.b
            )));
        };
        if x.state == ChannelState::Closed || y.state == ChannelState::Closed {
            // Its funds are on chain, and counted there.
            if (x.state, y.state) != (ChannelState::Closed, ChannelState::Closed) {
                return Err(w.violation(format!(
                    "channel {}-{} is {:?} at {} and {:?} at {}",
                    c.a, c.b, x.state, c.a, y.state, c.b
                )));
            }
            continue;
        }
        if (x.local, x.remote) != (y.remote, y.local) || x.pending_htlcs + y.pending_htlcs > 0 {
            return Err(w.violation(format!(
                "the ends of channel {}-{} disagree: {} has {} / {} with {} HTLCs, {} has {} / {} with {} HTLCs",
                c.a, c.b, c.a, x.local, x.remote, x.pending_htlcs, c.b, y.local, y.remote, y.pending_htlcs
            )));
        }
        if x.local.to_msat() + x.remote.to_msat() != x.capacity.to_sat() * 1_000 {
            return Err(w.violation(format!(
                "channel {}-{}'s balances {} + {} are not its capacity {}",
                c.a, c.b, x.local, x.remote, x.capacity
            )));
        }
    }
    // Every revoked commitment that confirmed was punished.
    let mut cheaters = std::collections::BTreeSet::new();
    let mut victims = std::collections::BTreeSet::new();
    let mut punished_count = 0;
    for c in &w.chans {
        let Some(cheat) = c.cheat.as_ref().filter(|x| x.sent) else {
            continue;
        };
        cheaters.insert(cheat.by);
        victims.insert(if cheat.by == c.a { c.b } else { c.a });
        if punished(w, cheat).map_err(|e| w.violation(e))? {
            punished_count += 1;
        }
    }
    // HTLCs offered to a node that had their preimage and that its peer
    // took back on chain: worth less than claiming them (SAFETY.md: no
    // claim spends more in fees than it recovers).
    let abandoned: Vec<i64> = cores
        .iter()
        .map(|core| {
            core.channels()
                .iter()
                .map(|s| s.lost.to_sat() as i64 * 1_000)
                .sum()
        })
        .collect();
    // Every payment ended, and its payer knows how.
    let mut received = vec![0i64; n];
    let mut sent = vec![0i64; n];
    let (mut paid, mut failed, mut unmade, mut multi) = (0, 0, 0, 0);
    for (i, p) in w.payments.iter().enumerate() {
        let Some(hash) = p.hash else {
            unmade += 1;
            continue;
        };
        let find = |core: &NodeCore, incoming: bool| -> Option<PaymentSummary> {
            core.payments()
                .into_iter()
                .find(|s| s.payment_hash == hash && s.incoming == incoming)
        };
        let out = find(cores[p.payer], false);
        let inc = find(cores[p.payee], true);
        let payee_paid = inc.as_ref().is_some_and(|s| s.status == "paid");
        // A payment refused at once (no route) leaves no record.
        let refused = matches!(p.reply, Some(Reply::Failed(_)));
        let status = out.as_ref().map_or(
            if refused {
                "failed at once"
            } else {
                "never made"
            },
            |s| s.status.as_str(),
        );
        match status {
            "succeeded" => {
                let s = out.as_ref().expect("status came from it");
                if !payee_paid {
                    return Err(w.violation(format!(
                        "payment {i}: node {} counts it sent, node {} did not receive it ({:?})",
                        p.payer,
                        p.payee,
                        inc.map(|s| s.status)
                    )));
                }
                let delivered = s.delivered.map_or(0, Msat::to_msat);
                if delivered < p.msat {
                    return Err(w.violation(format!(
                        "payment {i} delivered {delivered} msat of the {} asked",
                        p.msat
                    )));
                }
                received[p.payee] += delivered as i64;
                sent[p.payer] += s.amount.map_or(0, Msat::to_msat) as i64;
                paid += 1;
                if s.route.len() > 1 {
                    multi += 1;
                }
                // "Pending on chain" is not "failed".
                let told_failed = matches!(&p.reply, Some(Reply::Failed(f)) if f.kind != FailureKind::PaymentPending);
                if let (true, Some(Reply::Failed(f))) = (told_failed, &p.reply) {
                    return Err(w.violation(format!(
                        "payment {i} succeeded, but node {} was told it failed: {}",
                        p.payer, f.message
                    )));
                }
            }
            s if s.starts_with("failed") || s == "never made" => {
                // A cheater on the route may have paid the payee and lost
                // the payer's HTLC to its own revoked commitment.
                let through_cheater = cheaters.contains(&p.payer)
                    || out.as_ref().is_some_and(|o| {
                        o.route
                            .iter()
                            .any(|id| cheaters.iter().any(|&c| w.node_id(c) == *id))
                    });
                // A node on the route that left an HTLC it could not
                // claim for less than it was worth paid the payee.
                let through_loss = out.as_ref().is_some_and(|o| {
                    o.route
                        .iter()
                        .any(|id| (0..n).any(|c| w.node_id(c) == *id && abandoned[c] > 0))
                });
                if payee_paid && !through_cheater && !through_loss {
                    return Err(w.violation(format!(
                        "payment {i}: node {} received it, node {} counts it {s}",
                        p.payee, p.payer
                    )));
                }
                if let Some(Reply::Paid { .. }) = &p.reply {
                    return Err(w.violation(format!(
                        "payment {i} failed, but node {} was told it was paid",
                        p.payer
                    )));
                }
                if s == "never made" {
                    unmade += 1;
                } else {
                    failed += 1;
                }
            }
            other => {
                return Err(w.violation(format!("payment {i} has not ended: {other}")));
            }
        }
    }
    // Every msat accounted for: what each node holds (coins and open
    // channels) moved by what it received, less what it sent, plus what it
    // earned forwarding, less at most the on-chain fees (and anchors) of
    // the transactions that touch it; over the network, by exactly the
    // fees and anchors of everything confirmed since the baseline.
    let after = values(w);
    let flows = flows(w, &before.txs).map_err(|e| w.violation(e))?;
    let mut lost_total = 0;
    for i in 0..n {
        let earned: i64 = cores[i]
            .forwards()
            .iter()
            .filter(|f| f.status == "settled")
            .map(|f| f.fee.to_msat() as i64)
            .sum();
        let closed = w
            .chans
            .iter()
            .filter(|c| (c.a == i || c.b == i) && c.close.is_some())
            .count() as i64;
        let lost = before.values[i] + received[i] - sent[i] + earned - after[i];
        // Rounding: a closed channel's msat below one sat go to the fee.
        // A cheater may lose anything, its victim gain.
        if (lost < 0 && !victims.contains(&i))
            || (lost > flows.per_node[i] as i64 * 1_000 + closed * 1_000 + abandoned[i]
                && !cheaters.contains(&i))
        {
            if w.verbose() {
                let devnet = w.devnet();
                for s in cores[i].channels() {
                    eprintln!(
                        "node {i}: channel {} {:?} local {} funding {} confirmations {:?} in mempool {}",
                        s.channel_id,
                        s.state,
                        s.local,
                        s.funding_txid,
                        devnet.confirmations(&s.funding_txid),
                        devnet.mempool().contains(&s.funding_txid)
                    );
                }
                for (o, c) in devnet.utxos_for(w.wallet_script(i)) {
                    eprintln!("node {i}: coin {o} {} at {}", c.txout.value, c.height);
                }
            }
            return Err(w.violation(format!(
                "node {i} holds {} msat, from {} msat; it received {}, sent {} and earned {earned} forwarding, \
                 so it lost {lost} msat, and the transactions touching it paid {} sat in fees and anchors",
                after[i], before.values[i], received[i], sent[i], flows.per_node[i]
            )));
        }
        lost_total += lost;
    }
    if lost_total != flows.total as i64 * 1_000 {
        return Err(w.violation(format!(
            "the nodes lost {lost_total} msat together, but the {} transactions since the workload began paid {} sat in fees and anchors",
            flows.txs, flows.total
        )));
    }
    // Every store restores to what its node holds.
    for (i, core) in cores.iter().enumerate() {
        let restored = w
            .restore(i)
            .map_err(|e| w.violation(format!("node {i}'s store does not restore: {e}")))?;

        let view = |c: &NodeCore| {
            c.channels()
                .into_iter()
                .map(stored_view)
                .collect::<Vec<_>>()
        };
        if view(&restored) != view(core) {
            return Err(w.violation(format!(
                "node {i}'s store restores other channels than it holds:\n  held:     {:?}\n  restored: {:?}",
                view(core),
                view(&restored)
            )));
        }
        // Whether an open invoice shows as expired depends on the time
        // the core last saw, not on what is stored.
        let unexpired = |c: &NodeCore| -> Vec<PaymentSummary> {
            let mut v = c.payments();
            for p in &mut v {
                if p.status == "expired" {
                    p.status = "open".to_owned();
                }
            }
            v
        };
        let (held, back) = (unexpired(core), unexpired(&restored));
        if held != back {
            let differ: Vec<String> = held
                .iter()
                .filter(|p| !back.contains(p))
                .map(|p| format!("held {p:?}"))
                .chain(
                    back.iter()
                        .filter(|p| !held.contains(p))
                        .map(|p| format!("restored {p:?}")),
                )
                .collect();
            return Err(w.violation(format!(
                "node {i}'s store restores other payments than it holds:\n  {}",
                differ.join("\n  ")
            )));
        }
    }
    let (mut mutual, mut forced) = (0, 0);
    for c in &w.chans {
        let closed =
            c.id.and_then(|id| summary(cores[c.a], id))
                .is_some_and(|s| s.state == ChannelState::Closed);
        let stalled = w.long_stalled.contains(&c.a) || w.long_stalled.contains(&c.b);
        match (closed, c.close) {
            (true, Some((_, true))) => forced += 1,
            (true, None) if stalled => forced += 1,
            (true, _) => mutual += 1,
            _ => {}
        }
    }
    w.counts.punished = punished_count;
    w.counts.mutual_closes = mutual;
    w.counts.force_closes = forced;
    w.counts.paid = paid;
    w.counts.failed = failed;
    w.counts.unmade = unmade;
    w.counts.multi_hop = multi;
    Ok(())
}
