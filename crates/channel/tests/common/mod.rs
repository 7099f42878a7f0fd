//! The two parties of the channel tests: keys, a funded channel as each
//! sees it, and the limits both announce.

#![allow(dead_code, clippy::unwrap_used)]

pub mod pair;

use beongae_channel::limits::{ChannelParams, CommitLimits};
use beongae_channel::normal::NormalChannel;
use beongae_channel::revocation::LocalSecrets;
use beongae_channel::sign::Owner;
use beongae_channel::sign::{FundedChannel, SigningKeys};
use beongae_script::commitment::{obscuring_factor, CommitmentNumber};
use beongae_script::funding::{funding_script_pubkey, funding_witness};
use beongae_script::keys::ChannelPublicKeys;
use beongae_script::scripts::funding_script;
use beongae_script::shachain::generate_from_seed;
use beongae_script::sign::sign_p2wsh;
use beongae_script::ChannelType;
use beongae_wire::Msat;
use bitcoin::consensus::serialize;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Txid};

pub struct Party {
    pub funding: SecretKey,
    pub htlc_base: SecretKey,
    pub keys: ChannelPublicKeys,
    pub seed: [u8; 32],
}

pub fn sk(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

impl Party {
    pub fn new(secp: &Secp256k1<All>, b: u8) -> Party {
        let pk = |k: u8| PublicKey::from_secret_key(secp, &sk(k));
        Party {
            funding: sk(b),
            htlc_base: sk(b + 4),
            keys: ChannelPublicKeys {
                funding_pubkey: pk(b),
                revocation_basepoint: pk(b + 1),
                payment_basepoint: pk(b + 2),
                delayed_payment_basepoint: pk(b + 3),
                htlc_basepoint: pk(b + 4),
            },
            seed: [b + 5; 32],
        }
    }

    pub fn point(&self, secp: &Secp256k1<All>, n: CommitmentNumber) -> PublicKey {
        let secret = generate_from_seed(&self.seed, n.secret_index()).unwrap();
        PublicKey::from_secret_key(secp, &SecretKey::from_slice(&secret).unwrap())
    }

    pub fn signing(&self) -> SigningKeys {
        SigningKeys {
            funding_key: self.funding,
            htlc_base_key: self.htlc_base,
        }
    }
}

pub const FUNDING: Amount = Amount::from_sat(1_000_000);

pub fn channel(ct: ChannelType, a: &Party, b: &Party, a_view: bool) -> FundedChannel {
    let (local, remote) = if a_view { (a, b) } else { (b, a) };
    FundedChannel {
        channel_type: ct,
        funding_outpoint: OutPoint {
            txid: Txid::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 32])),
            vout: 1,
        },
        funding_amount: FUNDING,
        obscuring_factor: obscuring_factor(&a.keys.payment_basepoint, &b.keys.payment_basepoint),
        we_are_funder: a_view,
        local_keys: local.keys,
        remote_keys: remote.keys,
        // A asked for 144 blocks on B's outputs, B for 720 on A's.
        local_to_self_delay: if a_view { 720 } else { 144 },
        remote_to_self_delay: if a_view { 144 } else { 720 },
        local_dust_limit: Amount::from_sat(if a_view { 546 } else { 354 }),
        remote_dust_limit: Amount::from_sat(if a_view { 354 } else { 546 }),
    }
}

pub fn params(ct: ChannelType, a_view: bool) -> ChannelParams {
    let limits = |dust| CommitLimits {
        dust_limit: Amount::from_sat(dust),
        channel_reserve: Amount::from_sat(10_000),
        htlc_minimum: Msat::from_msat(1),
        max_htlc_value_in_flight: Msat::from_msat(1_000_000_000),
        max_accepted_htlcs: 483,
    };
    let (a, b) = (limits(546), limits(354));
    ChannelParams {
        channel_type: ct,
        we_are_funder: a_view,
        local: if a_view { a } else { b },
        remote: if a_view { b } else { a },
        max_dust_htlc_exposure: Msat::from_msat(50_000_000),
    }
}

/// The latest commitment `ch` (held by `me`) holds, with `me`'s own
/// signature added to the peer's, spends the funding output under
/// libbitcoinconsensus: the channel can always be closed unilaterally.
pub fn check_broadcastable(secp: &Secp256k1<All>, ch: &NormalChannel, me: &Party, other: &Party) {
    let n = ch.local_number;
    let point = LocalSecrets::new(me.seed).point(secp, n);
    let built = ch
        .funded
        .build(secp, Owner::Local, &ch.commitments.local, n, &point)
        .unwrap();
    let funding = funding_script(&me.keys.funding_pubkey, &other.keys.funding_pubkey);
    let mine = sign_p2wsh(
        secp,
        &built.commitment.tx,
        0,
        &funding,
        ch.funded.funding_amount,
        EcdsaSighashType::All,
        &me.funding,
    )
    .unwrap();
    let theirs = Signature {
        signature: ch.local_signatures.signature,
        sighash_type: EcdsaSighashType::All,
    };
    let mut tx = built.commitment.tx.clone();
    tx.input[0].witness = funding_witness(
        &me.keys.funding_pubkey,
        &mine,
        &other.keys.funding_pubkey,
        &theirs,
    );
    funding_script_pubkey(&me.keys.funding_pubkey, &other.keys.funding_pubkey)
        .verify(0, ch.funded.funding_amount, &serialize(&tx))
        .unwrap();
}

/// A fully signed closing (or any funding-spending) transaction passes the
/// interpreter.
pub fn check_closing(tx: &bitcoin::Transaction, a: &Party, b: &Party) {
    funding_script_pubkey(&a.keys.funding_pubkey, &b.keys.funding_pubkey)
        .verify(0, FUNDING, &serialize(tx))
        .unwrap();
}

/// The preimage, among `Preimage([b; 32])` for every byte `b`, of a test
/// payment hash.
pub fn preimage_of(hash: beongae_wire::PaymentHash) -> beongae_wire::Preimage {
    (0..=255u8)
        .map(|b| beongae_wire::Preimage([b; 32]))
        .find(|p| p.payment_hash() == hash)
        .unwrap()
}
