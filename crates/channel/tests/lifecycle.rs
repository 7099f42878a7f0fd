//! A channel's whole life between two instances configured like two nodes,
//! every message through the codec: `open_channel` (built from our config
//! and checked by the peer), `accept_channel`, funding, `channel_ready`,
//! payments both ways, `shutdown` and the closing negotiation. The final
//! closing transaction spends the 2-of-2 under libbitcoinconsensus and pays
//! each side exactly what the payments left it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::channel_type::ChannelTypeSpec;
use beongae_channel::close::CloseStep;
use beongae_channel::config::ChannelConfig;
use beongae_channel::funding::{ChannelTerms, Funding, LocalSetup};
use beongae_channel::normal::{Event, NormalChannel};
use beongae_channel::open::{check_accept_channel, check_open_channel};
use beongae_channel::propose::{accept_channel, open_channel, our_limits};
use beongae_channel::revocation::LocalSecrets;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{Message, OnionPacketBytes, ONION_PACKET_LEN};
use beongae_wire::{ChainHash, ChannelId, Msat, Preimage, WireMessage};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Amount, OutPoint, ScriptBuf, Txid, WPubkeyHash};
use common::{check_broadcastable, check_closing, Party, FUNDING};

fn wire<M: WireMessage>(m: &M) -> Message {
    Message::decode(&m.encode().unwrap()).unwrap()
}

fn setup(p: &Party, cfg: &ChannelConfig, peer_dust: Amount) -> LocalSetup {
    LocalSetup {
        keys: p.keys,
        signing: p.signing(),
        secrets: LocalSecrets::new(p.seed),
        limits: our_limits(cfg, FUNDING, peer_dust),
        to_self_delay: cfg.to_self_delay,
        max_dust_htlc_exposure: cfg.max_dust_htlc_exposure,
    }
}

/// Delivers messages both ways, signing whenever possible, until quiet;
/// incoming HTLCs are fulfilled with the matching preimage.
fn pump(secp: &Secp256k1<All>, a: &mut NormalChannel, b: &mut NormalChannel, to_b: Vec<Message>) {
    // queues[0] goes to a, queues[1] to b.
    let mut queues: [Vec<Message>; 2] = [Vec::new(), to_b];
    for _ in 0..20 {
        for side in [0usize, 1] {
            let me: &mut NormalChannel = if side == 0 { &mut *a } else { &mut *b };
            let inbox = std::mem::take(&mut queues[side]);
            let mut outbox = Vec::new();
            for m in inbox {
                let got = me.receive(secp, &m).unwrap();
                outbox.extend(got.reply);
                for e in got.events {
                    if let Event::IncomingCommitted {
                        id, payment_hash, ..
                    } = e
                    {
                        let pre = common::preimage_of(payment_hash);
                        outbox.push(wire(&me.send_fulfill(id, pre).unwrap()));
                    }
                }
            }
            if let Some(cs) = me.sign(secp).unwrap() {
                outbox.push(wire(&cs));
            }
            queues[1 - side].extend(outbox);
        }
    }
    assert!(queues.iter().all(Vec::is_empty), "quiet");
}

#[test]
fn open_pay_both_ways_and_close() {
    let secp = Secp256k1::new();
    let (pa, pb) = (Party::new(&secp, 1), Party::new(&secp, 20));
    let cfg_a = ChannelConfig::default();
    let cfg_b = ChannelConfig {
        dust_limit: Amount::from_sat(354),
        to_self_delay: 720,
        ..ChannelConfig::default()
    };
    let push = Msat::from_msat(100_000_000);
    let feerate = FeeratePerKw(2_000);
    let channel_type = ChannelTypeSpec {
        base: ChannelType::Anchors,
        scid_alias: false,
        zeroconf: false,
    };

    // open_channel / accept_channel.
    let a_setup = setup(&pa, &cfg_a, Amount::ZERO);
    let open = open_channel(
        &secp,
        ChainHash::REGTEST,
        ChannelId([3; 32]),
        FUNDING,
        push,
        feerate,
        channel_type,
        &a_setup,
        &cfg_a,
        false,
    )
    .unwrap();
    let Message::OpenChannel(open_rx) = wire(&open) else {
        panic!()
    };
    let request = check_open_channel(&open_rx, ChainHash::REGTEST, &cfg_b, false).unwrap();
    let b_setup = setup(&pb, &cfg_b, request.params.dust_limit);
    let accept = accept_channel(&secp, &request, &b_setup, 3).unwrap();
    let Message::AcceptChannel(accept_rx) = wire(&accept) else {
        panic!()
    };
    let (b_params, depth) = check_accept_channel(&accept_rx, &open, &cfg_a).unwrap();
    assert_eq!(depth, 3);
    // A asked B to keep 1% (10_000 sat); B asked the same of A.
    assert_eq!(open.channel_reserve_satoshis, 10_000);
    assert_eq!(accept.channel_reserve_satoshis, 10_000);

    // Funding (the funding transaction itself comes from the wallet).
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([0x77; 32]),
        vout: 0,
    };
    let terms = |we_are_funder| ChannelTerms {
        channel_type: ChannelType::Anchors,
        funding: FUNDING,
        push,
        feerate,
        we_are_funder,
    };
    let mut fa = Funding::new(a_setup, b_params, terms(true), outpoint).unwrap();
    let Message::FundingCreated(created) = wire(
        &fa.funding_created(&secp, open.temporary_channel_id)
            .unwrap(),
    ) else {
        panic!()
    };
    let (fb, signed) = Funding::receive_funding_created(
        &secp,
        b_setup,
        request.params.clone(),
        terms(false),
        &created,
    )
    .unwrap();
    let Message::FundingSigned(signed) = wire(&signed) else {
        panic!()
    };
    fa.receive_funding_signed(&secp, &signed).unwrap();
    let (ra, rb) = (fa.channel_ready(&secp, None), fb.channel_ready(&secp, None));
    let mut a = fa.receive_channel_ready(&rb).unwrap();
    let mut b = fb.receive_channel_ready(&ra).unwrap();
    // Delays as each side asked: A's outputs wait B's 720 blocks, B's A's 144.
    assert_eq!(a.funded.local_to_self_delay, 720);
    assert_eq!(b.funded.local_to_self_delay, 144);
    check_broadcastable(&secp, &a, &pa, &pb);
    check_broadcastable(&secp, &b, &pb, &pa);

    // Payments: A -> B 50_000_000 msat and 3 x 1_000_000; B -> A 10_000_000.
    let onion = || OnionPacketBytes(Box::new([0; ONION_PACKET_LEN]));
    let mut to_b = vec![];
    for (i, amount) in [
        (1u8, 50_000_000u64),
        (2, 1_000_000),
        (3, 1_000_000),
        (4, 1_000_000),
    ] {
        to_b.push(wire(
            &a.send_add(
                Msat::from_msat(amount),
                Preimage([i; 32]).payment_hash(),
                800_000,
                onion(),
            )
            .unwrap(),
        ));
    }
    pump(&secp, &mut a, &mut b, to_b);
    let back = wire(
        &b.send_add(
            Msat::from_msat(10_000_000),
            Preimage([9; 32]).payment_hash(),
            800_000,
            onion(),
        )
        .unwrap(),
    );
    pump(&secp, &mut b, &mut a, vec![back]);
    let a_final = 900_000_000 - 53_000_000 + 10_000_000;
    let b_final = 100_000_000 + 53_000_000 - 10_000_000;
    assert_eq!(a.commitments.local.to_local, Msat::from_msat(a_final));
    assert_eq!(b.commitments.local.to_local, Msat::from_msat(b_final));
    check_broadcastable(&secp, &a, &pa, &pb);
    check_broadcastable(&secp, &b, &pb, &pa);
    // What a failing channel broadcasts: each side's latest commitment,
    // fully signed, spends the 2-of-2 under the interpreter.
    for (ch, me, other) in [(&a, &pa, &pb), (&b, &pb, &pa)] {
        let tx = ch.signed_local_commitment(&secp).unwrap();
        check_closing(&tx, me, other);
        // B pays no fee: its balance appears exactly in both commitments.
        assert!(tx
            .output
            .iter()
            .any(|o| o.value == Amount::from_sat(b_final / 1000)));
    }

    // Shutdown and close.
    let sa = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xaa; 20]));
    let sb = ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xbb; 20]));
    let shutdown = wire(&a.send_shutdown(sa.clone()).unwrap());
    let got = b.receive(&secp, &shutdown).unwrap();
    assert_eq!(
        got.events,
        vec![Event::ShutdownReceived { script: sa.clone() }]
    );
    let reply = wire(&b.send_shutdown(sb.clone()).unwrap());
    a.receive(&secp, &reply).unwrap();
    let range = (Amount::from_sat(300), Amount::from_sat(3_000));
    let (mut ca, mut cb) = (
        a.start_closing(range).unwrap(),
        b.start_closing(range).unwrap(),
    );
    let Message::ClosingSigned(first) = wire(&ca.propose(&secp, Amount::from_sat(700)).unwrap())
    else {
        panic!()
    };
    let CloseStep::SendAndDone(answer, tx_b) = cb.receive(&secp, &first).unwrap() else {
        panic!()
    };
    let Message::ClosingSigned(answer) = wire(&answer) else {
        panic!()
    };
    let CloseStep::Done(tx_a) = ca.receive(&secp, &answer).unwrap() else {
        panic!()
    };
    assert_eq!(tx_a, tx_b);
    check_closing(&tx_a, &pa, &pb);
    let paid = |s: &ScriptBuf| {
        tx_a.output
            .iter()
            .find(|o| o.script_pubkey == *s)
            .unwrap()
            .value
    };
    assert_eq!(paid(&sa), Amount::from_sat(a_final / 1000 - 700));
    assert_eq!(paid(&sb), Amount::from_sat(b_final / 1000));
}
