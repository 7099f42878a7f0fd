//! `funding_created` → `funding_signed` → `channel_ready` between a funder
//! and a fundee over encoded messages: both end in normal operation with the
//! same `channel_id` and mirrored commitments, each holding a commitment 0
//! the interpreter accepts, and a first payment goes through. Then the
//! refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::funding::{ChannelTerms, Funding, FundingError, LocalSetup};
use beongae_channel::limits::CommitLimits;
use beongae_channel::normal::{ChannelError, Event};
use beongae_channel::open::PeerParams;
use beongae_channel::revocation::LocalSecrets;
use beongae_channel::sign::CommitSignError;
use beongae_script::commitment::CommitmentNumber;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{Message, OnionPacketBytes, ONION_PACKET_LEN};
use beongae_wire::{ChannelId, Msat, Preimage, ShortChannelId, WireMessage};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Amount, OutPoint, Txid};
use common::{check_broadcastable, Party};

fn limits(dust: u64) -> CommitLimits {
    CommitLimits {
        dust_limit: Amount::from_sat(dust),
        channel_reserve: Amount::from_sat(10_000),
        htlc_minimum: Msat::from_msat(1_000),
        max_htlc_value_in_flight: Msat::from_msat(500_000_000),
        max_accepted_htlcs: 30,
    }
}

fn setup(p: &Party, dust: u64, delay: u16) -> LocalSetup {
    LocalSetup {
        keys: p.keys,
        signing: p.signing(),
        secrets: LocalSecrets::new(p.seed),
        limits: limits(dust),
        to_self_delay: delay,
        max_dust_htlc_exposure: Msat::from_msat(50_000_000),
    }
}

/// What `open_channel`/`accept_channel` told the other side about `p`.
fn announced(secp: &Secp256k1<All>, p: &Party, dust: u64, delay: u16) -> PeerParams {
    let l = limits(dust);
    PeerParams {
        dust_limit: l.dust_limit,
        max_htlc_value_in_flight: l.max_htlc_value_in_flight,
        channel_reserve: l.channel_reserve,
        htlc_minimum: l.htlc_minimum,
        to_self_delay: delay,
        max_accepted_htlcs: l.max_accepted_htlcs,
        keys: p.keys,
        first_per_commitment_point: p.point(secp, CommitmentNumber::ZERO),
        upfront_shutdown_script: None,
    }
}

fn terms(we_are_funder: bool) -> ChannelTerms {
    ChannelTerms {
        channel_type: ChannelType::Anchors,
        funding: Amount::from_sat(500_000),
        push: Msat::from_msat(20_000_000),
        feerate: FeeratePerKw(2500),
        we_are_funder,
    }
}

fn outpoint() -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array([0x42; 32]),
        vout: 3,
    }
}

fn wire<M: WireMessage>(m: &M) -> Message {
    Message::decode(&m.encode().unwrap()).unwrap()
}

#[test]
fn open_to_first_payment() {
    let secp = Secp256k1::new();
    let (pa, pb) = (Party::new(&secp, 1), Party::new(&secp, 20));
    // A (funder): dust 546, asks B to wait 144 blocks; B: dust 354, 720.
    let mut fa = Funding::new(
        setup(&pa, 546, 144),
        announced(&secp, &pb, 354, 720),
        terms(true),
        outpoint(),
    )
    .unwrap();
    let created = fa.funding_created(&secp, ChannelId([7; 32])).unwrap();
    let Message::FundingCreated(created) = wire(&created) else {
        panic!()
    };
    assert_eq!(created.funding_output_index, 3);
    let (fb, signed) = Funding::receive_funding_created(
        &secp,
        setup(&pb, 354, 720),
        announced(&secp, &pa, 546, 144),
        terms(false),
        &created,
    )
    .unwrap();
    // channel_id: the funding txid with the output index in its last bytes.
    let mut id = [0x42; 32];
    id[31] ^= 3;
    assert_eq!(fb.channel_id, ChannelId(id));
    let Message::FundingSigned(signed) = wire(&signed) else {
        panic!()
    };
    assert_eq!(
        fa.clone()
            .receive_channel_ready(&fb.channel_ready(&secp, None))
            .unwrap_err(),
        FundingError::NotSigned
    );
    fa.receive_funding_signed(&secp, &signed).unwrap();
    // Balances: A 500_000 sat minus the 20_000 sat push.
    assert_eq!(fa.commitments.local.to_local, Msat::from_msat(480_000_000));
    assert_eq!(fb.commitments.local.to_local, Msat::from_msat(20_000_000));
    assert_eq!(fa.commitments.remote, fb.commitments.local);

    // Both sides stored the channel (the fundee before funding_signed, the
    // funder before broadcasting) and restart from the record: the restored
    // channel writes the same record and goes on as the original.
    let restore = |f: &Funding, p: &Party| {
        let bytes = f.encode_state().unwrap();
        let back = Funding::decode_state(&bytes, p.signing(), LocalSecrets::new(p.seed)).unwrap();
        assert_eq!(back.encode_state().unwrap(), bytes);
        assert_eq!(back.commitments, f.commitments);
        assert_eq!(back.funded, f.funded);
        assert_eq!(back.local_signatures, f.local_signatures);
        // A truncated record is an error, not a panic.
        assert!(Funding::decode_state(
            &bytes[..bytes.len() - 1],
            p.signing(),
            LocalSecrets::new(p.seed)
        )
        .is_err());
        back
    };
    let (fa, fb) = (restore(&fa, &pa), restore(&fb, &pb));
    // A channel that fails now broadcasts commitment 0, which the 2-of-2
    // accepts; the fundee's 20_000 sat (it pays no fee) are in both.
    for f in [&fa, &fb] {
        let tx = f.signed_local_commitment(&secp).unwrap();
        beongae_script::funding::funding_script_pubkey(
            &pa.keys.funding_pubkey,
            &pb.keys.funding_pubkey,
        )
        .verify(
            0,
            Amount::from_sat(500_000),
            &bitcoin::consensus::serialize(&tx),
        )
        .unwrap();
        assert!(tx
            .output
            .iter()
            .any(|o| o.value == Amount::from_sat(20_000)));
    }

    let alias = ShortChannelId::from_u64(0x0000_0100_0002_0003);
    let ready_a = fa.channel_ready(&secp, Some(alias));
    let ready_b = fb.channel_ready(&secp, None);
    let Message::ChannelReady(ready_a) = wire(&ready_a) else {
        panic!()
    };
    let Message::ChannelReady(ready_b) = wire(&ready_b) else {
        panic!()
    };
    assert_eq!(ready_a.short_channel_id_alias, Some(alias));
    assert_eq!(
        ready_a.second_per_commitment_point,
        pa.point(&secp, CommitmentNumber::new(1).unwrap())
    );
    let mut a = fa.receive_channel_ready(&ready_b).unwrap();
    let mut b = fb.receive_channel_ready(&ready_a).unwrap();
    check_broadcastable(&secp, &a, &pa, &pb);
    check_broadcastable(&secp, &b, &pb, &pa);

    // A first payment A -> B of 1_234_567 msat.
    let preimage = Preimage([3; 32]);
    let onion = OnionPacketBytes(Box::new([0; ONION_PACKET_LEN]));
    let add = a
        .send_add(
            Msat::from_msat(1_234_567),
            preimage.payment_hash(),
            800_000,
            onion,
        )
        .unwrap();
    let mut to_b = vec![wire(&add)];
    let mut to_a = Vec::new();
    let mut events = Vec::new();
    for _ in 0..10 {
        if let Some(cs) = a.sign(&secp).unwrap() {
            to_b.push(wire(&cs));
        }
        if let Some(cs) = b.sign(&secp).unwrap() {
            to_a.push(wire(&cs));
        }
        for m in std::mem::take(&mut to_b) {
            let got = b.receive(&secp, &m).unwrap();
            to_a.extend(got.reply);
            for e in got.events {
                if let Event::IncomingCommitted { id, .. } = e {
                    to_a.push(wire(&b.send_fulfill(id, preimage).unwrap()));
                }
            }
        }
        for m in std::mem::take(&mut to_a) {
            let got = a.receive(&secp, &m).unwrap();
            to_b.extend(got.reply);
            events.extend(got.events);
        }
    }
    assert_eq!(events, vec![Event::OutgoingFulfilled { id: 0, preimage }]);
    assert_eq!(
        a.commitments.local.to_local,
        Msat::from_msat(480_000_000 - 1_234_567)
    );
    assert_eq!(
        b.commitments.local.to_local,
        Msat::from_msat(20_000_000 + 1_234_567)
    );
    assert!(a.commitments.local.htlcs.is_empty() && b.commitments.remote.htlcs.is_empty());
    check_broadcastable(&secp, &a, &pa, &pb);
    check_broadcastable(&secp, &b, &pb, &pa);
}

#[test]
fn funding_refusals() {
    let secp = Secp256k1::new();
    let (pa, pb, pc) = (
        Party::new(&secp, 1),
        Party::new(&secp, 20),
        Party::new(&secp, 40),
    );
    let fa = Funding::new(
        setup(&pa, 546, 144),
        announced(&secp, &pb, 354, 720),
        terms(true),
        outpoint(),
    )
    .unwrap();
    let mut created = fa.funding_created(&secp, ChannelId([7; 32])).unwrap();
    // Signed by someone else's funding key.
    let mallory = Funding::new(
        setup(&pc, 546, 144),
        announced(&secp, &pb, 354, 720),
        terms(true),
        outpoint(),
    )
    .unwrap();
    created.signature = mallory
        .funding_created(&secp, ChannelId([7; 32]))
        .unwrap()
        .signature;
    assert_eq!(
        Funding::receive_funding_created(
            &secp,
            setup(&pb, 354, 720),
            announced(&secp, &pa, 546, 144),
            terms(false),
            &created,
        )
        .unwrap_err(),
        FundingError::Channel(ChannelError::Sign(CommitSignError::BadCommitmentSignature))
    );
    // A funding_signed for another channel.
    let created = fa.funding_created(&secp, ChannelId([7; 32])).unwrap();
    let (_, mut signed) = Funding::receive_funding_created(
        &secp,
        setup(&pb, 354, 720),
        announced(&secp, &pa, 546, 144),
        terms(false),
        &created,
    )
    .unwrap();
    signed.channel_id = ChannelId([1; 32]);
    let mut fa2 = fa.clone();
    assert!(matches!(
        fa2.receive_funding_signed(&secp, &signed),
        Err(FundingError::WrongChannel { .. })
    ));
    assert!(fa2.local_signatures.is_none());
    // A push larger than the channel.
    let mut t = terms(true);
    t.push = Msat::from_msat(500_000_001);
    assert!(matches!(
        Funding::new(
            setup(&pa, 546, 144),
            announced(&secp, &pb, 354, 720),
            t,
            outpoint()
        ),
        Err(FundingError::PushTooLarge { .. })
    ));
}
