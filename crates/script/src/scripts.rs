//! BOLT 3 witness scripts: funding, `to_local`, `to_remote` (anchors),
//! anchors, offered and received HTLCs.

use bitcoin::hashes::{ripemd160, Hash};
use bitcoin::opcodes::all::*;
use bitcoin::script::{Builder, ScriptBuf};
use bitcoin::secp256k1::PublicKey;
use bitcoin::PubkeyHash;

use beongae_wire::PaymentHash;

use crate::ChannelType;

/// BOLT 3 §"Funding Transaction Output": `2 <pubkey1> <pubkey2> 2
/// OP_CHECKMULTISIG` with the lexicographically lesser compressed key first.
pub fn funding_script(a: &PublicKey, b: &PublicKey) -> ScriptBuf {
    let (a, b) = (a.serialize(), b.serialize());
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    Builder::new()
        .push_int(2)
        .push_slice(first)
        .push_slice(second)
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script()
}

/// BOLT 3 §"`to_local` Output" (also the output of HTLC-success/timeout
/// transactions): revocable by `revocationpubkey`, else `local_delayedpubkey`
/// after `to_self_delay`.
pub fn to_local_script(
    revocation_key: &PublicKey,
    to_self_delay: u16,
    local_delayed_key: &PublicKey,
) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_IF)
        .push_slice(revocation_key.serialize())
        .push_opcode(OP_ELSE)
        .push_int(i64::from(to_self_delay))
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(local_delayed_key.serialize())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// BOLT 3 §"`to_remote` Output" with `option_anchors`:
/// `<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY`.
pub fn to_remote_anchors_script(remote_key: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(remote_key.serialize())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The `to_remote` output script: P2WPKH (static_remotekey) or P2WSH of
/// [`to_remote_anchors_script`] (anchors).
pub fn to_remote_script_pubkey(channel_type: ChannelType, remote_key: &PublicKey) -> ScriptBuf {
    match channel_type {
        ChannelType::StaticRemoteKey => {
            let key = bitcoin::CompressedPublicKey(*remote_key);
            ScriptBuf::new_p2wpkh(&key.wpubkey_hash())
        }
        ChannelType::Anchors => to_remote_anchors_script(remote_key).to_p2wsh(),
    }
}

/// BOLT 3 §"`to_local_anchor` and `to_remote_anchor` Output":
/// `<funding_pubkey> OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF`.
pub fn anchor_script(funding_key: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(funding_key.serialize())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_IFDUP)
        .push_opcode(OP_NOTIF)
        .push_int(16)
        .push_opcode(OP_CSV)
        .push_opcode(OP_ENDIF)
        .into_script()
}

fn revocation_hash(revocation_key: &PublicKey) -> PubkeyHash {
    bitcoin::PublicKey::new(*revocation_key).pubkey_hash()
}

fn payment_hash160(payment_hash: &PaymentHash) -> [u8; 20] {
    ripemd160::Hash::hash(&payment_hash.0).to_byte_array()
}

/// The keys an HTLC script needs.
#[derive(Debug, Clone, Copy)]
pub struct HtlcKeys<'a> {
    /// `revocationpubkey`
    pub revocation_key: &'a PublicKey,
    /// `local_htlcpubkey`
    pub local_htlc_key: &'a PublicKey,
    /// `remote_htlcpubkey`
    pub remote_htlc_key: &'a PublicKey,
}

/// The part both HTLC scripts share: the revocation branch, then
/// `<remote_htlcpubkey> OP_SWAP OP_SIZE 32 OP_EQUAL`.
fn htlc_script_head(keys: HtlcKeys<'_>) -> Builder {
    Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(revocation_hash(keys.revocation_key))
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(keys.remote_htlc_key.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
}

/// BOLT 3 §"Offered HTLC Outputs" (with the `1 OP_CSV OP_DROP` of `option_anchors`).
pub fn offered_htlc_script(
    keys: HtlcKeys<'_>,
    payment_hash: &PaymentHash,
    channel_type: ChannelType,
) -> ScriptBuf {
    let b = htlc_script_head(keys)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_DROP)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(keys.local_htlc_key.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    anchors_csv(b, channel_type)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// BOLT 3 §"Received HTLC Outputs" (with the `1 OP_CSV OP_DROP` of `option_anchors`).
pub fn received_htlc_script(
    keys: HtlcKeys<'_>,
    payment_hash: &PaymentHash,
    cltv_expiry: u32,
    channel_type: ChannelType,
) -> ScriptBuf {
    let b = htlc_script_head(keys)
        .push_opcode(OP_IF)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(keys.local_htlc_key.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_DROP)
        .push_int(i64::from(cltv_expiry))
        .push_opcode(OP_CLTV)
        .push_opcode(OP_DROP)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    anchors_csv(b, channel_type)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// `1 OP_CHECKSEQUENCEVERIFY OP_DROP` for anchor channels.
fn anchors_csv(b: Builder, channel_type: ChannelType) -> Builder {
    match channel_type {
        ChannelType::StaticRemoteKey => b,
        ChannelType::Anchors => b.push_int(1).push_opcode(OP_CSV).push_opcode(OP_DROP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    fn key(b: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
    }

    /// Appendix A gives the HTLC script sizes: offered 133 (136 with anchors),
    /// received 140 (143) with a 4-byte `cltv_expiry`.
    #[test]
    fn htlc_script_sizes_match_appendix_a() {
        let (r, l, rm) = (key(1), key(2), key(3));
        let keys = HtlcKeys {
            revocation_key: &r,
            local_htlc_key: &l,
            remote_htlc_key: &rm,
        };
        let h = PaymentHash([9; 32]);
        assert_eq!(
            offered_htlc_script(keys, &h, ChannelType::StaticRemoteKey).len(),
            133
        );
        assert_eq!(
            offered_htlc_script(keys, &h, ChannelType::Anchors).len(),
            136
        );
        // A cltv_expiry of 4 bytes (>= 2^23) as Appendix A assumes.
        assert_eq!(
            received_htlc_script(keys, &h, 1 << 24, ChannelType::StaticRemoteKey).len(),
            140
        );
        assert_eq!(
            received_htlc_script(keys, &h, 1 << 24, ChannelType::Anchors).len(),
            143
        );
        assert_eq!(funding_script(&l, &r), funding_script(&r, &l));
        assert_eq!(funding_script(&l, &r).len(), 71);
    }
}
