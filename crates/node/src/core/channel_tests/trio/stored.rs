//! What a node's store keeps of its invoices and of the HTLCs it is
//! adding (issue 15, ADR 0012), checked across restarts.

use super::*;

/// Issue 15: an invoice is kept in its compact form (the payment hash and
/// secret derive from its index) and is shown as it was given, before and
/// after a restart. The unpaid record is 185 bytes; kept as text it was
/// 382 (the string is 352 characters).
#[test]
fn an_invoice_is_kept_compact_and_shown_as_given() {
    let (mut t, _, _) = trio();
    let given = [
        t.invoice(2, 1_000_000, "growth"),
        t.invoice(2, 7, ""),
        t.invoice(2, 2_000_000_000, "café ☕"),
    ];
    let shown = |t: &Trio| -> Vec<String> {
        let mut v: Vec<String> = t.cores[2]
            .payments()
            .into_iter()
            .filter_map(|p| p.invoice)
            .collect();
        v.sort();
        v
    };
    let mut sorted = given.to_vec();
    sorted.sort();
    assert_eq!(shown(&t), sorted);
    t.restart(2);
    assert_eq!(shown(&t), sorted);
    let inv = beongae_invoice::Invoice::decode(&given[0]).unwrap();
    let mut k = vec![b'i'];
    k.extend_from_slice(&inv.payment_hash().0);
    let record = &t.stores[2][&(channels::record::NS_PAYMENTS.to_string(), k)];
    assert_eq!((given[0].len(), record.len()), (352, 185));
}

/// Issue 15 (ADR 0012): the onion of an HTLC being added is kept apart from
/// the channel's record, on both sides, while B's replies are lost; A and
/// B restart from those stores (A sends its `update_add_htlc` again, the
/// onion read back), the payment settles, and no onion is left.
#[test]
fn an_htlc_being_added_keeps_its_onion_apart_until_committed() {
    for how in ["apart", "a store written before", "a force close"] {
        htlc_being_added(how);
    }
}

fn htlc_being_added(how: &str) {
    let (mut t, ab, _) = trio();
    let invoice = t.invoice(1, 5_000_000, "apart");
    let onions = |t: &Trio, n: usize| -> Vec<Vec<u8>> {
        t.stores[n]
            .keys()
            .filter(|(ns, _)| ns == channels::onions::NS_ONIONS)
            .map(|(_, k)| k.clone())
            .collect()
    };
    let key =
        |offered, id| channels::onions::key(ab, beongae_channel::normal::OnionKey { offered, id });
    t.loses = Some((1, "*"));
    t.start_pay(0, invoice, 970, 0x47);
    // A may send its update_add_htlc again; B has it, not committed.
    assert_eq!(onions(&t, 0), [key(true, 0)]);
    assert_eq!(onions(&t, 1), [key(false, 0)]);
    t.loses = None;
    if how == "a force close" {
        // (Its first reply is the payment's: pending on chain.)
        t.command(0, Command::ForceCloseChannel { channel_id: ab });
        assert!(t
            .replies
            .iter()
            .any(|(n, r)| *n == 0 && matches!(r, Reply::ChannelClosed { .. })));
        assert_eq!(t.channel(0, ab).state, ChannelState::Closed);
        assert_eq!(onions(&t, 0), Vec::<Vec<u8>>::new());
        return;
    }
    if how == "a store written before" {
        // Both channel records as the last version wrote them: format 2,
        // onions inline, none apart.
        for n in 0..2 {
            let side = if n == 0 { Side::A } else { Side::B };
            let chan = stored_channel(&t.stores[n], side, ab);
            let ck = (channels::record::NS_CHANNELS.to_string(), ab.0.to_vec());
            let mut rec = channels::record::ChannelRecord::decode(&t.stores[n][&ck]).unwrap();
            let channels::record::StoredPhase::Normal { state, .. } = &mut rec.phase else {
                panic!()
            };
            *state = chan.encode_state().unwrap();
            t.stores[n].insert(ck, rec.encode());
            t.stores[n].retain(|(ns, _), _| ns != channels::onions::NS_ONIONS);
        }
    }
    let before = t.channel(0, ab).local;
    t.restart(0);
    t.restart(1);
    // (The command's reply went with A's process; its record says.)
    let status = t.outgoing_statuses(0);
    assert_eq!(status, ["succeeded"], "{how}");
    assert_eq!(t.channel(1, ab).pending_htlcs, 0);
    assert_eq!(
        before.to_msat() - t.channel(0, ab).local.to_msat(),
        5_000_000,
        "{how}"
    );
    for n in 0..3 {
        assert_eq!(onions(&t, n), Vec::<Vec<u8>>::new(), "{how}: node {n}");
    }
}
