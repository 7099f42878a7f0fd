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
//! - every node's store restores to the channels and payments it holds.

use beongae_node::core::{ChannelSummary, NodeCore, PaymentSummary, Reply};
use beongae_wire::Msat;

use crate::world::{Violation, World};

/// Each node's balance over the plan's channels, in msat.
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
                .map(|s| s.local.to_msat() as i64)
                .sum()
        })
        .collect()
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
pub(crate) fn at_rest(w: &mut World, before: &[i64]) -> Result<(), Violation> {
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
                if let Some(Reply::Failed(f)) = &p.reply {
                    return Err(w.violation(format!(
                        "payment {i} succeeded, but node {} was told it failed: {}",
                        p.payer, f.message
                    )));
                }
            }
            s if s.starts_with("failed") || s == "never made" => {
                if payee_paid {
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
    // Every msat accounted for.
    let after = balances(w);
    let mut total = 0;
    for i in 0..n {
        let fees: i64 = cores[i]
            .forwards()
            .iter()
            .filter(|f| f.status == "settled")
            .map(|f| f.fee.to_msat() as i64)
            .sum();
        let delta = after[i] - before[i];
        if delta != received[i] - sent[i] + fees {
            return Err(w.violation(format!(
                "node {i}'s balance moved by {delta} msat; it received {}, sent {} and earned {fees} in fees",
                received[i], sent[i]
            )));
        }
        total += delta;
    }
    if total != 0 {
        return Err(w.violation(format!("the network's balance moved by {total} msat")));
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
        if restored.payments() != core.payments() {
            return Err(w.violation(format!(
                "node {i}'s store restores other payments than it holds"
            )));
        }
    }
    w.counts.paid = paid;
    w.counts.failed = failed;
    w.counts.unmade = unmade;
    w.counts.multi_hop = multi;
    Ok(())
}
