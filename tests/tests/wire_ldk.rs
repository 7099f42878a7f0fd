//! BOLT 2 messages as we encode them are read by LDK 0.2, which writes them
//! back to the very same bytes: the two codecs agree byte for byte.

#![allow(clippy::unwrap_used)]

use beongae_wire::msgs::{
    AcceptChannel, ChannelReady, ChannelReestablish, ClosingComplete, ClosingSig, ClosingSigned,
    CommitmentSigned, FeeRange, FundingCreated, FundingSigned, OnionPacketBytes, OpenChannel,
    RevokeAndAck, Shutdown, U16Bytes, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc,
    UpdateFee, UpdateFulfillHtlc,
};
use beongae_wire::{
    ChainHash, ChannelId, Feature, Features, ShortChannelId, TlvStream, WireMessage,
};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{Message as Digest, PublicKey, Secp256k1, SecretKey};
use lightning::util::ser::{LengthReadable, Writeable};

fn key(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

fn sig(b: u8) -> Signature {
    Secp256k1::new().sign_ecdsa(
        &Digest::from_digest([b; 32]),
        &SecretKey::from_slice(&[b; 32]).unwrap(),
    )
}

/// Our encoding (without the type) read by LDK's `T` and written again.
fn ldk_round_trip<T: LengthReadable + Writeable>(ours: &impl WireMessage) -> (T, Vec<u8>) {
    let bytes = ours.encode().unwrap();
    let payload = &bytes[2..];
    let theirs = T::read_from_fixed_length_buffer(&mut &payload[..]).unwrap();
    let again = theirs.encode();
    assert_eq!(
        hex::encode(&again),
        hex::encode(payload),
        "{}",
        std::any::type_name::<T>()
    );
    (theirs, again)
}

fn anchors() -> Features {
    Features::empty()
        .with_required(Feature::StaticRemoteKey)
        .with_required(Feature::Anchors)
}

#[test]
fn channel_establishment_messages() {
    let open = OpenChannel {
        chain_hash: ChainHash::REGTEST,
        temporary_channel_id: ChannelId([7; 32]),
        funding_satoshis: 1_000_000,
        push_msat: 5_000,
        dust_limit_satoshis: 546,
        max_htlc_value_in_flight_msat: 990_000_000,
        channel_reserve_satoshis: 10_000,
        htlc_minimum_msat: 1,
        feerate_per_kw: 253,
        to_self_delay: 144,
        max_accepted_htlcs: 483,
        funding_pubkey: key(1),
        revocation_basepoint: key(2),
        payment_basepoint: key(3),
        delayed_payment_basepoint: key(4),
        htlc_basepoint: key(5),
        first_per_commitment_point: key(6),
        channel_flags: 1,
        upfront_shutdown_script: Some(vec![]),
        channel_type: Some(anchors()),
        extension: TlvStream::new(),
    };
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::OpenChannel>(&open);
    assert_eq!(ldk.common_fields.funding_satoshis, 1_000_000);
    assert_eq!(ldk.common_fields.to_self_delay, 144);
    assert!(ldk
        .common_fields
        .channel_type
        .unwrap()
        .supports_anchors_zero_fee_htlc_tx());

    let accept = AcceptChannel {
        temporary_channel_id: ChannelId([7; 32]),
        dust_limit_satoshis: 546,
        max_htlc_value_in_flight_msat: 990_000_000,
        channel_reserve_satoshis: 10_000,
        htlc_minimum_msat: 1,
        minimum_depth: 3,
        to_self_delay: 144,
        max_accepted_htlcs: 30,
        funding_pubkey: key(11),
        revocation_basepoint: key(12),
        payment_basepoint: key(13),
        delayed_payment_basepoint: key(14),
        htlc_basepoint: key(15),
        first_per_commitment_point: key(16),
        upfront_shutdown_script: Some(vec![]),
        channel_type: Some(anchors()),
        extension: TlvStream::new(),
    };
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::AcceptChannel>(&accept);
    assert_eq!(ldk.common_fields.minimum_depth, 3);

    let created = FundingCreated {
        temporary_channel_id: ChannelId([7; 32]),
        funding_txid: [9; 32],
        funding_output_index: 1,
        signature: sig(1),
        extension: TlvStream::new(),
    };
    ldk_round_trip::<lightning::ln::msgs::FundingCreated>(&created);
    ldk_round_trip::<lightning::ln::msgs::FundingSigned>(&FundingSigned {
        channel_id: ChannelId([8; 32]),
        signature: sig(2),
        extension: TlvStream::new(),
    });
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::ChannelReady>(&ChannelReady {
        channel_id: ChannelId([8; 32]),
        second_per_commitment_point: key(20),
        short_channel_id_alias: Some(ShortChannelId::new(1, 2, 3).unwrap()),
        extension: TlvStream::new(),
    });
    assert_eq!(
        ldk.short_channel_id_alias,
        Some(ShortChannelId::new(1, 2, 3).unwrap().to_u64())
    );
}

#[test]
fn normal_operation_messages() {
    let c = ChannelId([8; 32]);
    let add = UpdateAddHtlc {
        channel_id: c,
        id: 42,
        amount_msat: 123_456,
        payment_hash: [3; 32],
        cltv_expiry: 800_000,
        onion_routing_packet: OnionPacketBytes(Box::new({
            let mut o = [0x11u8; 1366];
            o[0] = 0; // version
            o[1..34].copy_from_slice(&key(30).serialize());
            o
        })),
        path_key: None,
        extension: TlvStream::new(),
    };
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::UpdateAddHTLC>(&add);
    assert_eq!(
        (ldk.htlc_id, ldk.amount_msat, ldk.cltv_expiry),
        (42, 123_456, 800_000)
    );

    ldk_round_trip::<lightning::ln::msgs::UpdateFulfillHTLC>(&UpdateFulfillHtlc {
        channel_id: c,
        id: 42,
        payment_preimage: [4; 32],
        extension: TlvStream::new(),
    });
    ldk_round_trip::<lightning::ln::msgs::UpdateFailHTLC>(&UpdateFailHtlc {
        channel_id: c,
        id: 43,
        reason: U16Bytes(vec![5; 292]),
        extension: TlvStream::new(),
    });
    ldk_round_trip::<lightning::ln::msgs::UpdateFailMalformedHTLC>(&UpdateFailMalformedHtlc {
        channel_id: c,
        id: 44,
        sha256_of_onion: [6; 32],
        failure_code: 0x8000 | 0x4000 | 5,
        extension: TlvStream::new(),
    });
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::CommitmentSigned>(&CommitmentSigned {
        channel_id: c,
        signature: sig(7),
        htlc_signatures: vec![sig(8), sig(9), sig(10)],
        extension: TlvStream::new(),
    });
    assert_eq!(ldk.htlc_signatures.len(), 3);
    ldk_round_trip::<lightning::ln::msgs::RevokeAndACK>(&RevokeAndAck {
        channel_id: c,
        per_commitment_secret: [12; 32],
        next_per_commitment_point: key(13),
        extension: TlvStream::new(),
    });
    ldk_round_trip::<lightning::ln::msgs::UpdateFee>(&UpdateFee {
        channel_id: c,
        feerate_per_kw: 2500,
        extension: TlvStream::new(),
    });
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::ChannelReestablish>(&ChannelReestablish {
        channel_id: c,
        next_commitment_number: 5,
        next_revocation_number: 4,
        your_last_per_commitment_secret: [14; 32],
        my_current_per_commitment_point: key(15),
        extension: TlvStream::new(),
    });
    assert_eq!(
        (
            ldk.next_local_commitment_number,
            ldk.next_remote_commitment_number
        ),
        (5, 4)
    );
}

#[test]
fn closing_messages() {
    let c = ChannelId([8; 32]);
    let p2wpkh = hex::decode("0014751e76e8199196d454941c45d1b3a323f1433bd6").unwrap();
    ldk_round_trip::<lightning::ln::msgs::Shutdown>(&Shutdown {
        channel_id: c,
        scriptpubkey: U16Bytes(p2wpkh.clone()),
        extension: TlvStream::new(),
    });
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::ClosingSigned>(&ClosingSigned {
        channel_id: c,
        fee_satoshis: 700,
        signature: sig(16),
        fee_range: Some(FeeRange {
            min_fee_satoshis: 500,
            max_fee_satoshis: 900,
        }),
        extension: TlvStream::new(),
    });
    assert_eq!(ldk.fee_range.unwrap().max_fee_satoshis, 900);
    let complete = ClosingComplete {
        channel_id: c,
        closer_scriptpubkey: U16Bytes(p2wpkh.clone()),
        closee_scriptpubkey: U16Bytes(p2wpkh.clone()),
        fee_satoshis: 800,
        locktime: 900_000,
        closer_output_only: None,
        closee_output_only: None,
        closer_and_closee_outputs: Some(sig(17)),
        extension: TlvStream::new(),
    };
    ldk_round_trip::<lightning::ln::msgs::ClosingComplete>(&complete);
    let closing_sig = ClosingSig {
        channel_id: c,
        closer_scriptpubkey: U16Bytes(p2wpkh.clone()),
        closee_scriptpubkey: U16Bytes(p2wpkh),
        fee_satoshis: 800,
        locktime: 900_000,
        closer_output_only: Some(sig(18)),
        closee_output_only: None,
        closer_and_closee_outputs: Some(sig(19)),
        extension: TlvStream::new(),
    };
    ldk_round_trip::<lightning::ln::msgs::ClosingSig>(&closing_sig);
}

/// BOLT 2 v1 `channel_id` from the funding outpoint agrees with LDK's.
#[test]
fn channel_id_from_funding_outpoint() {
    for (txid, index) in [([0xab; 32], 0u16), ([0x01; 32], 1), ([0x5c; 32], 0x1234)] {
        let ours = ChannelId::from_funding(txid, index);
        let ldk = lightning::ln::types::ChannelId::v1_from_funding_txid(&txid, index);
        assert_eq!(ours.0, ldk.0, "index {index}");
    }
    let mut expected = [0x5c; 32];
    expected[30] ^= 0x12;
    expected[31] ^= 0x34;
    assert_eq!(ChannelId::from_funding([0x5c; 32], 0x1234).0, expected);
}

/// BOLT 7 announcements: byte-identical with LDK both ways, the hash each
/// signature covers equals LDK's (double SHA-256 of the unsigned part), and
/// signatures made over it verify (a changed field breaks them).
#[test]
fn gossip_announcements_match_ldk() {
    use beongae_wire::msgs::{
        Addresses, AnnouncementSignatures, ChannelAnnouncement, ChannelUpdate, NodeAnnouncement,
    };
    use beongae_wire::{NetAddress, NodeId};
    use bitcoin::hashes::{sha256d, Hash};
    let secp = Secp256k1::new();
    let sk = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let sign = |h: [u8; 32], b: u8| secp.sign_ecdsa(&Digest::from_digest(h), &sk(b));
    let scid = ShortChannelId::new(800_000, 1_234, 1).unwrap();
    let (n1, n2) = if key(31) < key(32) {
        (31, 32)
    } else {
        (32, 31)
    };

    let mut ann = ChannelAnnouncement {
        node_signature_1: sig(1),
        node_signature_2: sig(1),
        bitcoin_signature_1: sig(1),
        bitcoin_signature_2: sig(1),
        features: Features::empty(),
        chain_hash: ChainHash::BITCOIN,
        short_channel_id: scid,
        node_id_1: NodeId::from_pubkey(key(n1)),
        node_id_2: NodeId::from_pubkey(key(n2)),
        bitcoin_key_1: key(41),
        bitcoin_key_2: key(42),
        excess_data: vec![],
    };
    let h = ann.signed_hash().unwrap();
    ann.node_signature_1 = sign(h, n1);
    ann.node_signature_2 = sign(h, n2);
    ann.bitcoin_signature_1 = sign(h, 41);
    ann.bitcoin_signature_2 = sign(h, 42);
    assert!(ann.verify(&secp));
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::ChannelAnnouncement>(&ann);
    assert_eq!(
        sha256d::Hash::hash(&ldk.contents.encode()).to_byte_array(),
        h
    );
    assert_eq!(ldk.contents.short_channel_id, scid.to_u64());
    let mut bad = ann.clone();
    bad.bitcoin_key_2 = key(43);
    assert!(!bad.verify(&secp));

    let mut node = NodeAnnouncement {
        signature: sig(1),
        features: Features::empty().with_optional(Feature::VarOnionOptin),
        timestamp: 1_700_000_000,
        node_id: NodeId::from_pubkey(key(n1)),
        rgb_color: [0xff, 0xcc, 0x00],
        alias: *b"beongae\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        addresses: Addresses(vec![
            NetAddress::Ipv4 {
                addr: [203, 0, 113, 7].into(),
                port: 9735,
            },
            NetAddress::Hostname {
                host: "node.example.com".into(),
                port: 9735,
            },
        ]),
        excess_data: vec![],
    };
    node.signature = sign(node.signed_hash().unwrap(), n1);
    assert!(node.verify(&secp));
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::NodeAnnouncement>(&node);
    assert_eq!(
        sha256d::Hash::hash(&ldk.contents.encode()).to_byte_array(),
        node.signed_hash().unwrap()
    );
    assert_eq!(ldk.contents.addresses.len(), 2);
    node.timestamp += 1;
    assert!(!node.verify(&secp));

    let mut update = ChannelUpdate {
        signature: sig(1),
        chain_hash: ChainHash::BITCOIN,
        short_channel_id: scid,
        timestamp: 1_700_000_001,
        message_flags: 1,
        channel_flags: 1,
        cltv_expiry_delta: 144,
        htlc_minimum_msat: 1_000,
        fee_base_msat: 1_000,
        fee_proportional_millionths: 100,
        htlc_maximum_msat: 990_000_000,
        excess_data: vec![],
    };
    update.signature = sign(update.signed_hash().unwrap(), n2);
    assert_eq!(update.direction(), 1);
    assert!(!update.is_disabled());
    assert!(update.verify(&secp, &NodeId::from_pubkey(key(n2))));
    assert!(!update.verify(&secp, &NodeId::from_pubkey(key(n1))));
    let (ldk, _) = ldk_round_trip::<lightning::ln::msgs::ChannelUpdate>(&update);
    assert_eq!(
        sha256d::Hash::hash(&ldk.contents.encode()).to_byte_array(),
        update.signed_hash().unwrap()
    );
    assert_eq!(ldk.contents.htlc_maximum_msat, 990_000_000);

    let sigs = AnnouncementSignatures {
        channel_id: ChannelId([9; 32]),
        short_channel_id: scid,
        node_signature: sig(2),
        bitcoin_signature: sig(3),
        excess_data: vec![],
    };
    ldk_round_trip::<lightning::ln::msgs::AnnouncementSignatures>(&sigs);
}
