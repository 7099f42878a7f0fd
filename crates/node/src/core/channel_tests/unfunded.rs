//! Channels whose funding never confirms (BOLT 2): the fundee forgets the
//! channel after 2016 blocks; the funder that forces such a channel
//! closed double-spends its funding's coins back to its wallet, unless the
//! funding confirms first (then commitment 0 resolves it on chain).

use super::*;

/// A forces closed a channel whose funding is in the mempool, not mined:
/// the wallet spends the funding's coin back to itself, paying more than
/// the funding did; the devnet's mempool takes it in the funding's place;
/// once mined, the funding can never confirm, and nothing is swept twice.
#[test]
fn the_funder_double_spends_an_unconfirmed_funding_when_forced() {
    let mut p = Pair::new();
    let (id, funding) = p.start_open(Msat::ZERO);
    assert!(p.accepted(&funding));
    let since = p.broadcasts.len();
    p.force_close(Side::A, id);
    let spends: Vec<Transaction> = p
        .a_broadcasts(since)
        .into_iter()
        .filter(|t| t.input[0].previous_output == funding.input[0].previous_output)
        .collect();
    assert_eq!(spends.len(), 1, "{spends:?}");
    let spend = spends[0].clone();
    assert!(
        p.accepted(&spend),
        "{:?} funding {} fee {}",
        p.mempool,
        funding.compute_txid(),
        funding.weight()
    );
    assert_eq!(spend.output.len(), 1);
    assert_eq!(spend.output[0].script_pubkey, coin_script());
    let in_value = |t: &Transaction| {
        p.devnet
            .utxos_for(&coin_script())
            .into_iter()
            .find(|(o, _)| *o == t.input[0].previous_output)
            .unwrap()
            .1
            .txout
            .value
    };
    let fee = |t: &Transaction| in_value(t) - t.output.iter().map(|o| o.value).sum();
    assert!(fee(&spend) > fee(&funding), "pays more than the funding");
    // Kept and sent again until mined; then it is done.
    assert!(p.core(Side::A).pending_broadcasts().contains(&spend));
    p.block_both(vec![spend.clone()]);
    assert!(!p.core(Side::A).pending_broadcasts().contains(&spend));
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
    p.restart(Side::A);
    p.block_both(vec![]);
    assert!(!p
        .a_broadcasts(since)
        .iter()
        .any(|t| *t != spend && t.input[0].previous_output == funding.input[0].previous_output));
}

/// The funding wins the race: mined before the double spend, it makes
/// that one impossible (dropped, never sent again), and A's commitment 0
/// resolves the channel on chain like any force close.
#[test]
fn a_funding_that_confirms_first_is_resolved_by_commitment_zero() {
    let mut p = Pair::new();
    let (id, funding) = p.start_open(Msat::from_msat(100_000_000));
    let commitment = p.force_close(Side::A, id);
    let spend = p
        .a_broadcasts(0)
        .into_iter()
        .find(|t| t.input[0].previous_output == funding.input[0].previous_output && *t != funding)
        .expect("the double spend");
    p.block(vec![funding.clone()]);
    assert!(!p.core(Side::A).pending_broadcasts().contains(&spend));
    assert!(p.core(Side::A).pending_broadcasts().contains(&commitment));
    let since = p.broadcasts.len();
    p.block(vec![commitment.clone()]);
    // B's 100_000 sat pushed come back to it at once.
    let b = p.claims_on(Side::B, since, &commitment);
    assert_eq!(b.len(), 1);
}

/// BOLT 2: the fundee "SHOULD forget the channel if it does not see the
/// correct funding transaction after a timeout of 2016 blocks" — not one
/// block earlier. The funder hears why (an error) and fails the channel
/// too, double-spending its funding.
#[test]
fn the_fundee_forgets_a_channel_whose_funding_never_confirms() {
    let mut p = Pair::new();
    let start = p.height;
    let (_, funding) = p.start_open(Msat::ZERO);
    p.height = start + 2015 - 1;
    p.block(vec![]);
    assert_eq!(p.height, start + 2015);
    assert_eq!(p.channel(Side::B).state, ChannelState::AwaitingConfirmation);
    let since = p.broadcasts.len();
    p.block(vec![]);
    let b = p.channel(Side::B);
    assert_eq!(b.state, ChannelState::Closed);
    assert_eq!(
        b.reason.as_deref(),
        Some("forgotten: the funding transaction did not confirm within 2016 blocks")
    );
    assert!(p.broadcasts[since..].iter().all(|(s, _)| *s == Side::A));
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
    assert!(p
        .a_broadcasts(since)
        .iter()
        .any(|t| *t != funding && t.input[0].previous_output == funding.input[0].previous_output));
}

/// An open that ends before its funding transaction went out frees the
/// coins the wallet reserved for it (`Output::Forget` of that
/// transaction): the peer never answers `funding_created` and disconnects,
/// or answers with an `error`; nothing is broadcast and no channel kept.
#[test]
fn an_open_that_fails_before_its_funding_went_out_frees_the_coins() {
    for ending in ["disconnect", "error"] {
        let mut p = Pair::new();
        p.mute_after = Some((Side::B, "FundingSigned"));
        p.run(vec![(
            Side::A,
            Input::Command {
                id: CommandId(1),
                command: Command::OpenChannel {
                    node_id: p.ids.1,
                    funding: Amount::from_sat(1_000_000),
                    push: Msat::ZERO,
                    announce: false,
                },
            },
        )]);
        // The funding A built, named in its funding_created.
        let created = p
            .sent
            .iter()
            .find_map(|(s, m)| match m {
                Message::FundingCreated(f) if *s == Side::A => Some(f.funding_txid),
                _ => None,
            })
            .expect("funding_created");
        assert!(p.forgotten.is_empty());
        match ending {
            "disconnect" => p.disconnect(),
            _ => {
                let temp = p
                    .sent
                    .iter()
                    .find_map(|(s, m)| match m {
                        Message::OpenChannel(o) if *s == Side::A => Some(o.temporary_channel_id),
                        _ => None,
                    })
                    .unwrap();
                let bytes = Message::Error(ErrorMessage::new(temp, "channel too small"))
                    .encode()
                    .unwrap();
                p.run(vec![(Side::A, Input::PeerMessage { peer: PA, bytes })]);
            }
        }
        let txid = Txid::from_byte_array(created);
        assert_eq!(p.forgotten, vec![(Side::A, txid)], "{ending}");
        assert!(!p.broadcasts.iter().any(|(_, t)| t.compute_txid() == txid));
        assert!(p.core(Side::A).channels().is_empty());
        let reply = p
            .replies
            .iter()
            .find(|(s, _)| *s == Side::A)
            .map(|(_, r)| r.clone());
        match (ending, reply) {
            // Issue 14: the peer's reason reaches whoever asked.
            ("error", Some(Reply::Failed(why))) => assert_eq!(
                why,
                Failure {
                    kind: FailureKind::PeerRefused,
                    message: "the peer refused the channel: \"channel too small\"".into()
                }
            ),
            (_, reply) => assert!(matches!(reply, Some(Reply::Failed(_))), "{reply:?}"),
        }
    }
}
