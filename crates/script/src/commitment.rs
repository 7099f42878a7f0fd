//! BOLT 3 §"Commitment Transaction" and §"Commitment Transaction Construction".

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::PublicKey;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use beongae_wire::{Msat, PaymentHash};

use crate::fees::{self, FeeratePerKw, ANCHOR_OUTPUT_VALUE};
use crate::keys::CommitmentKeys;
use crate::scripts::{self, HtlcKeys};
use crate::ChannelType;

/// Largest commitment number: commitment numbers are 48 bits.
pub const MAX_COMMITMENT_NUMBER: u64 = (1 << 48) - 1;

/// A 48-bit commitment number (BOLT 3 §"Commitment Transaction"); counts up
/// from 0, while per-commitment secret indexes count down from 2^48 - 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitmentNumber(u64);

impl CommitmentNumber {
    /// The first commitment.
    pub const ZERO: CommitmentNumber = CommitmentNumber(0);

    /// `None` past 48 bits.
    pub fn new(n: u64) -> Option<Self> {
        (n <= MAX_COMMITMENT_NUMBER).then_some(CommitmentNumber(n))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next commitment number, `None` after the last.
    pub fn next(self) -> Option<Self> {
        CommitmentNumber::new(self.0 + 1)
    }

    /// The per-commitment secret index for this commitment (BOLT 3: the
    /// first secret is index 2^48 - 1, and from there the index decrements).
    pub fn secret_index(self) -> u64 {
        MAX_COMMITMENT_NUMBER - self.0
    }
}

/// The 48-bit mask hiding commitment numbers on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObscuringFactor(u64);

impl ObscuringFactor {
    /// From a raw value (masked to 48 bits).
    pub fn from_u64(v: u64) -> Self {
        ObscuringFactor(v & MAX_COMMITMENT_NUMBER)
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// BOLT 3: the lower 48 bits of `SHA256(payment_basepoint from open_channel ||
/// payment_basepoint from accept_channel)`.
pub fn obscuring_factor(
    opener_payment_basepoint: &PublicKey,
    accepter_payment_basepoint: &PublicKey,
) -> ObscuringFactor {
    let mut engine = sha256::Hash::engine();
    engine.input(&opener_payment_basepoint.serialize());
    engine.input(&accepter_payment_basepoint.serialize());
    let h = sha256::Hash::from_engine(engine).to_byte_array();
    let mut low = [0u8; 8];
    low[2..].copy_from_slice(&h[26..]);
    ObscuringFactor(u64::from_be_bytes(low))
}

/// The commitment number hidden in `nLockTime` and `nSequence` (BOLT 3:
/// upper 8 bits 0x20 / 0x80, lower 24 bits from the obscured number).
pub fn obscured_locktime_and_sequence(n: CommitmentNumber, factor: ObscuringFactor) -> (u32, u32) {
    let obscured = n.0 ^ factor.0;
    let locktime = (0x20 << 24) | (obscured & 0xff_ffff) as u32;
    let sequence = (0x80 << 24) | ((obscured >> 24) & 0xff_ffff) as u32;
    (locktime, sequence)
}

/// Recovers the commitment number from a commitment transaction's locktime
/// and sequence (to recognise which commitment was broadcast).
pub fn commitment_number_from(
    locktime: u32,
    sequence: u32,
    factor: ObscuringFactor,
) -> Option<CommitmentNumber> {
    if locktime >> 24 != 0x20 || sequence >> 24 != 0x80 {
        return None;
    }
    let obscured = (u64::from(sequence & 0xff_ffff) << 24) | u64::from(locktime & 0xff_ffff);
    CommitmentNumber::new(obscured ^ factor.0)
}

/// An HTLC as the owner of the commitment sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Htlc {
    /// Offered by the commitment's owner (else received by it).
    pub offered: bool,
    /// `amount_msat`
    pub amount: Msat,
    /// `cltv_expiry`
    pub cltv_expiry: u32,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
}

/// Everything that determines one commitment transaction.
#[derive(Debug, Clone)]
pub struct CommitmentSpec<'a> {
    /// Channel type.
    pub channel_type: ChannelType,
    /// The funding output.
    pub funding_outpoint: OutPoint,
    /// The funding output's value.
    pub funding_amount: Amount,
    /// The commitment number.
    pub commitment_number: CommitmentNumber,
    /// See [`obscuring_factor`].
    pub obscuring_factor: ObscuringFactor,
    /// `to_self_delay` that applies to the owner's outputs (set by the counterparty).
    pub to_self_delay: u16,
    /// The owner's `dust_limit_satoshis`.
    pub dust_limit: Amount,
    /// `feerate_per_kw`.
    pub feerate: FeeratePerKw,
    /// The owner's balance before fees.
    pub to_local: Msat,
    /// The counterparty's balance before fees.
    pub to_remote: Msat,
    /// Whether the owner opened the channel (and so pays fee and anchors).
    pub owner_is_funder: bool,
    /// The commitment's keys.
    pub keys: &'a CommitmentKeys,
    /// All committed HTLCs.
    pub htlcs: &'a [Htlc],
}

/// What a commitment output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// `to_local`
    ToLocal,
    /// `to_remote`
    ToRemote,
    /// `to_local_anchor`
    LocalAnchor,
    /// `to_remote_anchor`
    RemoteAnchor,
    /// An HTLC output; the index into [`CommitmentSpec::htlcs`].
    Htlc(usize),
}

/// A built commitment transaction, unsigned, with what each output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentTx {
    /// The transaction (empty witness).
    pub tx: Transaction,
    /// Per output: what it is, and its witness script (none for a P2WPKH `to_remote`).
    pub outputs: Vec<(OutputKind, Option<ScriptBuf>)>,
    /// The base fee the funder paid (before trimmed amounts were added).
    pub base_fee: Amount,
}

impl CommitmentTx {
    /// Output index of HTLC `htlc` (index into the spec's HTLCs), or `None` if trimmed.
    pub fn htlc_output(&self, htlc: usize) -> Option<u32> {
        self.outputs
            .iter()
            .position(|(k, _)| *k == OutputKind::Htlc(htlc))
            .map(|i| i as u32)
    }

    /// Output index of an output kind.
    pub fn output_of(&self, kind: OutputKind) -> Option<u32> {
        self.outputs
            .iter()
            .position(|(k, _)| *k == kind)
            .map(|i| i as u32)
    }

    /// Untrimmed HTLCs in output order (the order of `htlc_signatures`).
    pub fn htlcs_in_output_order(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.outputs
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| match k {
                OutputKind::Htlc(h) => Some((i as u32, *h)),
                _ => None,
            })
    }

    /// The actual fee: funding amount minus the outputs.
    pub fn actual_fee(&self, funding_amount: Amount) -> Amount {
        let out: Amount = self.tx.output.iter().map(|o| o.value).sum();
        funding_amount - out
    }
}

/// Why a commitment could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitmentError {
    /// The funder's balance does not cover the two anchor outputs.
    #[error("funder balance {balance} cannot pay the two 330-sat anchors")]
    FunderCannotAffordAnchors {
        /// The funder's balance.
        balance: Msat,
    },
    /// Balances and HTLCs do not add up to the funding amount.
    #[error("balances and htlcs add up to {total:?}, funding output holds {funding}")]
    Unbalanced {
        /// Their sum (None on overflow).
        total: Option<Msat>,
        /// The funding amount.
        funding: Amount,
    },
}

/// Whether an HTLC is trimmed on this commitment (BOLT 3 §"Trimmed Outputs"):
/// its amount minus the second-stage fee is below the owner's dust limit.
pub fn is_trimmed(
    htlc: &Htlc,
    channel_type: ChannelType,
    feerate: FeeratePerKw,
    dust_limit: Amount,
) -> bool {
    let fee = fees::second_stage_fee(htlc.offered, channel_type, feerate);
    let amount = htlc.amount.to_amount_floor();
    amount.checked_sub(fee).is_none_or(|left| left < dust_limit)
}

/// The witness script of an HTLC's commitment output.
pub fn htlc_script(htlc: &Htlc, keys: &CommitmentKeys, channel_type: ChannelType) -> ScriptBuf {
    let hk = HtlcKeys {
        revocation_key: &keys.revocation_key,
        local_htlc_key: &keys.local_htlc_key,
        remote_htlc_key: &keys.remote_htlc_key,
    };
    if htlc.offered {
        scripts::offered_htlc_script(hk, &htlc.payment_hash, channel_type)
    } else {
        scripts::received_htlc_script(hk, &htlc.payment_hash, htlc.cltv_expiry, channel_type)
    }
}

/// BOLT 3 §"Commitment Transaction Construction".
pub fn build_commitment(spec: &CommitmentSpec<'_>) -> Result<CommitmentTx, CommitmentError> {
    let total = Msat::checked_sum(
        [spec.to_local, spec.to_remote]
            .into_iter()
            .chain(spec.htlcs.iter().map(|h| h.amount)),
    );
    let funding = Msat::from_sat(spec.funding_amount.to_sat());
    if total.is_none() || total != funding {
        return Err(CommitmentError::Unbalanced {
            total,
            funding: spec.funding_amount,
        });
    }
    let ct = spec.channel_type;
    let keys = spec.keys;

    // Which HTLCs are trimmed, and the base fee.
    let untrimmed: Vec<usize> = (0..spec.htlcs.len())
        .filter(|&i| !is_trimmed(&spec.htlcs[i], ct, spec.feerate, spec.dust_limit))
        .collect();
    let base_fee = fees::commitment_fee(ct, spec.feerate, untrimmed.len());

    // BOLT 3: the funder pays both anchors and the base fee. The anchors are
    // outputs, so a funder that cannot pay them would create money: refuse.
    // A funder that cannot pay the whole fee ends with nothing (its output
    // disappears and the fee is what is left); BOLT 2 keeps channels out of
    // that state, and the Appendix C/F vectors exercise it.
    let anchors_cost = match ct {
        ChannelType::StaticRemoteKey => Msat::ZERO,
        ChannelType::Anchors => Msat::from_msat(ANCHOR_OUTPUT_VALUE.to_sat() * 2 * 1000),
    };
    let fee_msat = Msat::from_sat(base_fee.to_sat()).unwrap_or(Msat::MAX_MONEY);
    let (mut to_local, mut to_remote) = (spec.to_local, spec.to_remote);
    let funder = if spec.owner_is_funder {
        &mut to_local
    } else {
        &mut to_remote
    };
    *funder = funder
        .checked_sub(anchors_cost)
        .ok_or(CommitmentError::FunderCannotAffordAnchors { balance: *funder })?
        .saturating_sub(fee_msat);

    let mut outputs: Vec<(TxOut, OutputKind, Option<ScriptBuf>, u32)> = Vec::new();
    for &i in &untrimmed {
        let htlc = &spec.htlcs[i];
        let script = htlc_script(htlc, keys, ct);
        let txout = TxOut {
            value: htlc.amount.to_amount_floor(),
            script_pubkey: script.to_p2wsh(),
        };
        outputs.push((txout, OutputKind::Htlc(i), Some(script), htlc.cltv_expiry));
    }
    let to_local_amount = to_local.to_amount_floor();
    let has_to_local = to_local_amount >= spec.dust_limit;
    if has_to_local {
        let script = scripts::to_local_script(
            &keys.revocation_key,
            spec.to_self_delay,
            &keys.local_delayed_key,
        );
        let txout = TxOut {
            value: to_local_amount,
            script_pubkey: script.to_p2wsh(),
        };
        outputs.push((txout, OutputKind::ToLocal, Some(script), 0));
    }
    let to_remote_amount = to_remote.to_amount_floor();
    let has_to_remote = to_remote_amount >= spec.dust_limit;
    if has_to_remote {
        let script_pubkey = scripts::to_remote_script_pubkey(ct, &keys.remote_payment_key);
        let witness_script = match ct {
            ChannelType::StaticRemoteKey => None,
            ChannelType::Anchors => {
                Some(scripts::to_remote_anchors_script(&keys.remote_payment_key))
            }
        };
        outputs.push((
            TxOut {
                value: to_remote_amount,
                script_pubkey,
            },
            OutputKind::ToRemote,
            witness_script,
            0,
        ));
    }
    if ct == ChannelType::Anchors {
        let any_htlc = !untrimmed.is_empty();
        if has_to_local || any_htlc {
            let script = scripts::anchor_script(&keys.local_funding_key);
            let txout = TxOut {
                value: ANCHOR_OUTPUT_VALUE,
                script_pubkey: script.to_p2wsh(),
            };
            outputs.push((txout, OutputKind::LocalAnchor, Some(script), 0));
        }
        if has_to_remote || any_htlc {
            let script = scripts::anchor_script(&keys.remote_funding_key);
            let txout = TxOut {
                value: ANCHOR_OUTPUT_VALUE,
                script_pubkey: script.to_p2wsh(),
            };
            outputs.push((txout, OutputKind::RemoteAnchor, Some(script), 0));
        }
    }
    // BOLT 3 §"Transaction Output Ordering": value, then scriptpubkey bytes,
    // then cltv_expiry for identical HTLC outputs.
    outputs.sort_by(|a, b| {
        (a.0.value, a.0.script_pubkey.as_bytes(), a.3).cmp(&(
            b.0.value,
            b.0.script_pubkey.as_bytes(),
            b.3,
        ))
    });

    let (locktime, sequence) =
        obscured_locktime_and_sequence(spec.commitment_number, spec.obscuring_factor);
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(locktime),
        input: vec![TxIn {
            previous_output: spec.funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence(sequence),
            witness: Witness::new(),
        }],
        output: outputs.iter().map(|o| o.0.clone()).collect(),
    };
    Ok(CommitmentTx {
        tx,
        outputs: outputs.into_iter().map(|(_, k, s, _)| (k, s)).collect(),
        base_fee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_number_round_trips_through_locktime_and_sequence() {
        let factor = ObscuringFactor::from_u64(0x2bb0_3852_1914);
        for n in [0, 1, 42, 0xff_ffff, 0x100_0000, MAX_COMMITMENT_NUMBER] {
            let n = CommitmentNumber::new(n).unwrap();
            let (l, s) = obscured_locktime_and_sequence(n, factor);
            assert_eq!(l >> 24, 0x20);
            assert_eq!(s >> 24, 0x80);
            assert_eq!(commitment_number_from(l, s, factor), Some(n));
        }
        assert_eq!(
            commitment_number_from(0x2000_0000, 0x8000_0000, factor).map(CommitmentNumber::get),
            Some(factor.get())
        );
        assert_eq!(commitment_number_from(0, 0, factor), None);
        assert_eq!(CommitmentNumber::new(MAX_COMMITMENT_NUMBER + 1), None);
        assert_eq!(
            CommitmentNumber::new(MAX_COMMITMENT_NUMBER).unwrap().next(),
            None
        );
        assert_eq!(
            CommitmentNumber::ZERO.secret_index(),
            crate::shachain::FIRST_INDEX
        );
    }
}
