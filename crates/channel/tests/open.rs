//! BOLT 2 §"The `open_channel` Message" and §"The `accept_channel` Message":
//! every receiver MUST we enforce, each with the message that breaks it.

#![allow(clippy::unwrap_used)]

use beongae_channel::channel_type::ChannelTypeSpec;
use beongae_channel::open::{
    check_accept_channel, check_keys_are_theirs, check_open_channel, initial_funder_cost, OpenError,
};
use beongae_channel::ChannelConfig;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{AcceptChannel, OpenChannel};
use beongae_wire::{ChainHash, ChannelId, Feature, Features, Msat, TlvStream};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::Amount;

fn key(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

fn open() -> OpenChannel {
    OpenChannel {
        chain_hash: ChainHash::REGTEST,
        temporary_channel_id: ChannelId([1; 32]),
        funding_satoshis: 1_000_000,
        push_msat: 0,
        dust_limit_satoshis: 546,
        max_htlc_value_in_flight_msat: 1_000_000_000,
        channel_reserve_satoshis: 10_000,
        htlc_minimum_msat: 1,
        feerate_per_kw: 2500,
        to_self_delay: 144,
        max_accepted_htlcs: 483,
        funding_pubkey: key(1),
        revocation_basepoint: key(2),
        payment_basepoint: key(3),
        delayed_payment_basepoint: key(4),
        htlc_basepoint: key(5),
        first_per_commitment_point: key(6),
        channel_flags: 0xfe, // undefined bits are ignored
        upfront_shutdown_script: Some(vec![]),
        channel_type: Some(ChannelTypeSpec::ANCHORS.to_features()),
        extension: TlvStream::new(),
    }
}

fn accept() -> AcceptChannel {
    AcceptChannel {
        temporary_channel_id: ChannelId([1; 32]),
        dust_limit_satoshis: 546,
        max_htlc_value_in_flight_msat: 1_000_000_000,
        channel_reserve_satoshis: 10_000,
        htlc_minimum_msat: 1,
        minimum_depth: 3,
        to_self_delay: 144,
        max_accepted_htlcs: 483,
        funding_pubkey: key(11),
        revocation_basepoint: key(12),
        payment_basepoint: key(13),
        delayed_payment_basepoint: key(14),
        htlc_basepoint: key(15),
        first_per_commitment_point: key(16),
        upfront_shutdown_script: None,
        channel_type: Some(ChannelTypeSpec::ANCHORS.to_features()),
        extension: TlvStream::new(),
    }
}

fn check(m: OpenChannel) -> Result<beongae_channel::open::OpenRequest, OpenError> {
    check_open_channel(&m, ChainHash::REGTEST, &ChannelConfig::default(), false)
}

#[test]
fn a_sound_open_channel_is_accepted() {
    let req = check(open()).unwrap();
    assert_eq!(req.funding, Amount::from_sat(1_000_000));
    assert_eq!(req.channel_type, ChannelTypeSpec::ANCHORS);
    assert!(!req.announce);
    assert_eq!(req.params.to_self_delay, 144);
    assert_eq!(req.params.keys.htlc_basepoint, key(5));
    let static_rk = OpenChannel {
        channel_type: Some(ChannelTypeSpec::STATIC_REMOTE_KEY.to_features()),
        ..open()
    };
    assert_eq!(
        check(static_rk).unwrap().channel_type.base,
        ChannelType::StaticRemoteKey
    );
}

#[test]
fn open_channel_must_fail_rules() {
    let cases: Vec<(OpenChannel, OpenError)> = vec![
        (
            OpenChannel {
                chain_hash: ChainHash::BITCOIN,
                ..open()
            },
            OpenError::UnknownChain(ChainHash::BITCOIN),
        ),
        (
            OpenChannel {
                push_msat: 1_000_000_001,
                ..open()
            },
            OpenError::PushTooLarge {
                push: Msat::from_msat(1_000_000_001),
                funding: Amount::from_sat(1_000_000),
            },
        ),
        (
            OpenChannel {
                to_self_delay: 2017,
                ..open()
            },
            OpenError::ToSelfDelayTooLarge {
                got: 2017,
                max: 2016,
            },
        ),
        (
            OpenChannel {
                max_accepted_htlcs: 484,
                ..open()
            },
            OpenError::TooManyAcceptedHtlcs(484),
        ),
        (
            OpenChannel {
                feerate_per_kw: 100,
                ..open()
            },
            OpenError::Feerate {
                got: 100,
                min: 253,
                max: 250_000,
            },
        ),
        (
            OpenChannel {
                feerate_per_kw: 1_000_000,
                ..open()
            },
            OpenError::Feerate {
                got: 1_000_000,
                min: 253,
                max: 250_000,
            },
        ),
        (
            OpenChannel {
                dust_limit_satoshis: 10_001,
                channel_reserve_satoshis: 10_000,
                ..open()
            },
            OpenError::DustTooLarge {
                got: Amount::from_sat(10_001),
                max: Amount::from_sat(10_000),
            },
        ),
        (
            OpenChannel {
                dust_limit_satoshis: 5_000,
                channel_reserve_satoshis: 4_000,
                ..open()
            },
            OpenError::DustAboveReserve {
                dust: Amount::from_sat(5_000),
                reserve: Amount::from_sat(4_000),
            },
        ),
        (
            OpenChannel {
                dust_limit_satoshis: 353,
                ..open()
            },
            OpenError::DustTooSmall(Amount::from_sat(353)),
        ),
        (
            OpenChannel {
                funding_satoshis: 1 << 24,
                ..open()
            },
            OpenError::LargeChannel(Amount::from_sat(1 << 24)),
        ),
        (
            OpenChannel {
                channel_type: None,
                ..open()
            },
            OpenError::NoChannelType,
        ),
        (
            OpenChannel {
                channel_type: Some(
                    ChannelTypeSpec {
                        zeroconf: true,
                        ..ChannelTypeSpec::ANCHORS
                    }
                    .to_features(),
                ),
                ..open()
            },
            OpenError::ZeroconfNotTrusted,
        ),
    ];
    for (msg, expected) in cases {
        assert_eq!(check(msg).unwrap_err(), expected);
    }
    let odd_type = OpenChannel {
        channel_type: Some(Features::empty().with_optional(Feature::Anchors)),
        ..open()
    };
    assert!(matches!(check(odd_type), Err(OpenError::ChannelType(_))));
}

#[test]
fn funder_must_afford_the_initial_fee_and_someone_must_exceed_the_reserve() {
    // With anchors at 2500 sat/kw: 1124 * 2500 / 1000 = 2810 sat fee + 660 anchors.
    assert_eq!(
        initial_funder_cost(ChannelType::Anchors, FeeratePerKw(2500)),
        Amount::from_sat(3470)
    );
    // The funder pushes all but 3469 sat: one short.
    let push = (1_000_000 - 3_469) * 1000;
    let err = check(OpenChannel {
        push_msat: push,
        ..open()
    })
    .unwrap_err();
    assert_eq!(
        err,
        OpenError::FunderCannotPayFee {
            balance: Msat::from_msat(3_469_000),
            needed: Amount::from_sat(3470)
        }
    );
    // A small channel where neither side ends above the 10% reserve.
    let small = OpenChannel {
        funding_satoshis: 20_000,
        push_msat: 8_000_000,
        channel_reserve_satoshis: 2_000,
        dust_limit_satoshis: 546,
        ..open()
    };
    assert!(check(small.clone()).is_ok());
    let tiny = OpenChannel {
        channel_reserve_satoshis: 9_000,
        ..small
    };
    // Reserve 9000 is above our 10% limit of 2000 for this channel size.
    assert_eq!(
        check(tiny).unwrap_err(),
        OpenError::ReserveTooLarge {
            got: Amount::from_sat(9_000),
            max: Amount::from_sat(2_000)
        }
    );
    let cfg = ChannelConfig {
        max_peer_reserve_ppm: 1_000_000,
        ..ChannelConfig::default()
    };
    let both_low = OpenChannel {
        funding_satoshis: 20_000,
        push_msat: 8_000_000,
        channel_reserve_satoshis: 9_000,
        ..open()
    };
    assert_eq!(
        check_open_channel(&both_low, ChainHash::REGTEST, &cfg, false).unwrap_err(),
        OpenError::BothBelowReserve(Amount::from_sat(9_000))
    );
}

#[test]
fn accept_channel_must_fail_rules() {
    let cfg = ChannelConfig::default();
    let (params, depth) = check_accept_channel(&accept(), &open(), &cfg).unwrap();
    assert_eq!((params.to_self_delay, depth), (144, 3));
    let cases: Vec<(AcceptChannel, OpenError)> = vec![
        (
            AcceptChannel {
                temporary_channel_id: ChannelId([2; 32]),
                ..accept()
            },
            OpenError::WrongTemporaryChannelId(ChannelId([2; 32])),
        ),
        (
            AcceptChannel {
                channel_reserve_satoshis: 500,
                ..accept()
            },
            OpenError::DustAboveReserve {
                dust: Amount::from_sat(546),
                reserve: Amount::from_sat(500),
            },
        ),
        (
            AcceptChannel {
                channel_type: None,
                ..accept()
            },
            OpenError::NoChannelType,
        ),
        (
            AcceptChannel {
                channel_type: Some(ChannelTypeSpec::STATIC_REMOTE_KEY.to_features()),
                ..accept()
            },
            OpenError::ChannelTypeMismatch,
        ),
        (
            AcceptChannel {
                minimum_depth: 1000,
                ..accept()
            },
            OpenError::MinimumDepthTooLarge {
                got: 1000,
                max: 144,
            },
        ),
        (
            AcceptChannel {
                max_accepted_htlcs: 500,
                ..accept()
            },
            OpenError::TooManyAcceptedHtlcs(500),
        ),
        (
            AcceptChannel {
                to_self_delay: 5000,
                ..accept()
            },
            OpenError::ToSelfDelayTooLarge {
                got: 5000,
                max: 2016,
            },
        ),
    ];
    for (msg, expected) in cases {
        assert_eq!(
            check_accept_channel(&msg, &open(), &cfg).unwrap_err(),
            expected
        );
    }
    // Our reserve below their dust limit.
    let ours = OpenChannel {
        channel_reserve_satoshis: 600,
        ..open()
    };
    let theirs = AcceptChannel {
        dust_limit_satoshis: 700,
        ..accept()
    };
    assert_eq!(
        check_accept_channel(&theirs, &ours, &cfg).unwrap_err(),
        OpenError::DustAboveReserve {
            dust: Amount::from_sat(700),
            reserve: Amount::from_sat(600)
        }
    );
}

/// A peer's key that repeats one of ours is refused, whichever it is and
/// wherever ours is: the opener checks `accept_channel` against its
/// `open_channel`, and the accepter checks `open_channel` before its
/// `accept_channel` goes out (with its keys as `setup` holds them).
#[test]
fn a_peer_repeating_one_of_our_keys_is_refused() {
    let cfg = ChannelConfig::default();
    let ours = open();
    let cases = [
        (
            AcceptChannel {
                payment_basepoint: ours.payment_basepoint,
                ..accept()
            },
            "payment_basepoint",
        ),
        (
            AcceptChannel {
                delayed_payment_basepoint: ours.delayed_payment_basepoint,
                ..accept()
            },
            "delayed_payment_basepoint",
        ),
        (
            AcceptChannel {
                revocation_basepoint: ours.htlc_basepoint,
                ..accept()
            },
            "revocation_basepoint",
        ),
        (
            AcceptChannel {
                funding_pubkey: ours.funding_pubkey,
                ..accept()
            },
            "funding_pubkey",
        ),
    ];
    for (msg, name) in cases {
        let e = check_accept_channel(&msg, &ours, &cfg).unwrap_err();
        assert_eq!(e, OpenError::KeyIsOurs(name));
        assert_eq!(
            e.to_string(),
            format!("your {name} is one of our keys: every key must be your own")
        );
    }
    // The accepter's side: the opener's htlc_basepoint is our payment one.
    let request = check(open()).unwrap();
    let mut mine = request.params.keys;
    assert_eq!(
        check_keys_are_theirs(&mine, &request.params.keys),
        Err(OpenError::KeyIsOurs("funding_pubkey"))
    );
    mine = beongae_script::keys::ChannelPublicKeys {
        funding_pubkey: key(21),
        revocation_basepoint: key(22),
        payment_basepoint: key(5),
        delayed_payment_basepoint: key(24),
        htlc_basepoint: key(25),
    };
    assert_eq!(
        check_keys_are_theirs(&mine, &request.params.keys),
        Err(OpenError::KeyIsOurs("htlc_basepoint"))
    );
    mine.payment_basepoint = key(23);
    assert_eq!(check_keys_are_theirs(&mine, &request.params.keys), Ok(()));
}
