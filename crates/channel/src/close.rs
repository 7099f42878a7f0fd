//! BOLT 2 §"Channel Close": the `shutdown` script rules and the legacy fee
//! negotiation with `closing_signed` (BOLT 2 §"Legacy Closing Negotiation",
//! BOLT 3 §"Legacy Closing Transaction"), which every implementation
//! speaks. We always send a `fee_range` (the "modern method": two or three
//! messages); a peer that sends none is handled with the "strictly between"
//! rule.

use beongae_script::closing::{build_legacy_closing, ClosingError, ClosingOutput};
use beongae_wire::msgs::{ClosingSigned, FeeRange};
use beongae_wire::{ChannelId, Msat, TlvStream};
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, Script, ScriptBuf, Transaction};

use crate::sign::FundedChannel;

/// BOLT 2 `shutdown` `scriptpubkey`: P2PKH, P2SH, P2WPKH, P2WSH, or with
/// `option_shutdown_anysegwit` any witness program of version 1 to 16 and
/// 2 to 40 bytes.
pub fn is_valid_shutdown_script(script: &Script, anysegwit: bool) -> bool {
    if script.is_p2pkh() || script.is_p2sh() || script.is_p2wpkh() || script.is_p2wsh() {
        return true;
    }
    anysegwit
        && script.witness_version().is_some_and(|v| v.to_num() >= 1)
        && (4..=42).contains(&script.len())
}

/// BOLT 3 §"Dust Limits": the smallest output Bitcoin Core relays for a
/// script of this kind.
pub fn dust_limit_for(script: &Script) -> Amount {
    let sat = if script.is_p2pkh() {
        546
    } else if script.is_p2sh() {
        540
    } else if script.is_p2wpkh() {
        294
    } else if script.is_p2wsh() {
        330
    } else {
        354
    };
    Amount::from_sat(sat)
}

/// Why the negotiation failed (the channel is force-closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The signature is valid for neither variant of the closing transaction.
    #[error("closing_signed signature is valid for neither closing transaction")]
    BadSignature,
    /// Our range and the peer's do not overlap. BOLT 2: the receiver
    /// "SHOULD send a `warning`" and "MUST fail the channel if it doesn't
    /// receive a satisfying `fee_range` after a reasonable amount of time";
    /// the negotiation is unchanged by it.
    #[error("fee ranges do not overlap: ours {ours_min}..={ours_max} sat, theirs {theirs_min}..={theirs_max} sat")]
    NoOverlap {
        /// Ours.
        ours_min: u64,
        /// Ours.
        ours_max: u64,
        /// Theirs.
        theirs_min: u64,
        /// Theirs.
        theirs_max: u64,
    },
    /// BOLT 2: the funder "MUST fail the channel" if `fee_satoshis` is not in
    /// the overlap; the non-funder if it differs from what it already sent.
    #[error("fee_satoshis {0} breaks the negotiation rules")]
    FeeOutOfRules(u64),
    /// The fee cannot be paid from the funder's balance, or nothing is left.
    #[error(transparent)]
    Closing(#[from] ClosingError),
    /// BOLT 2: an output below the dust limit of its script "MUST fail the channel".
    #[error("closing output of {0} is below the dust limit of its script")]
    DustOutput(Amount),
}

/// What to do after a `closing_signed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseStep {
    /// Send this counter-proposal and wait.
    Send(ClosingSigned),
    /// Agreed: send this (same fee) and broadcast the transaction.
    SendAndDone(ClosingSigned, Transaction),
    /// Agreed on what we sent: broadcast the transaction.
    Done(Transaction),
}

/// One legacy closing negotiation, from our side.
#[derive(Debug, Clone)]
pub struct ClosingNegotiation {
    channel_id: ChannelId,
    funded: FundedChannel,
    funding_key: SecretKey,
    /// Our final balance (the last commitment, with no HTLCs).
    local_balance: Msat,
    remote_balance: Msat,
    local_script: ScriptBuf,
    remote_script: ScriptBuf,
    /// The fees we accept, in satoshi.
    range: (u64, u64),
    last_sent: Option<u64>,
    last_received: Option<u64>,
}

impl ClosingNegotiation {
    /// Starts a negotiation once `shutdown` was exchanged and no HTLC is
    /// left; `range` is the fees we accept (`min_fee_satoshis`,
    /// `max_fee_satoshis`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        channel_id: ChannelId,
        funded: FundedChannel,
        funding_key: SecretKey,
        local_balance: Msat,
        remote_balance: Msat,
        local_script: ScriptBuf,
        remote_script: ScriptBuf,
        range: (Amount, Amount),
    ) -> Self {
        ClosingNegotiation {
            channel_id,
            funded,
            funding_key,
            local_balance,
            remote_balance,
            local_script,
            remote_script,
            range: (range.0.to_sat(), range.1.to_sat()),
            last_sent: None,
            last_received: None,
        }
    }

    /// The closing transaction at `fee`, trimmed by `dust_limit`; with
    /// `drop_remote`, without the peer's output (the variant it may sign).
    /// BOLT 3 §"Legacy Closing Transaction": "Each node offering a
    /// signature ... MUST remove any output below its own
    /// `dust_limit_satoshis`": ours for what we sign, the peer's for what it
    /// signed.
    fn tx(
        &self,
        fee: u64,
        drop_remote: bool,
        dust_limit: Amount,
    ) -> Result<Transaction, CloseError> {
        let local = ClosingOutput {
            balance: self.local_balance,
            script_pubkey: self.local_script.clone(),
        };
        let remote = ClosingOutput {
            balance: if drop_remote {
                Msat::ZERO
            } else {
                self.remote_balance
            },
            script_pubkey: self.remote_script.clone(),
        };
        let (funder, fundee) = if self.funded.we_are_funder {
            (&local, &remote)
        } else {
            (&remote, &local)
        };
        let tx = build_legacy_closing(
            self.funded.funding_outpoint,
            funder,
            fundee,
            Amount::from_sat(fee),
            dust_limit,
        )?;
        if let Some(o) = tx
            .output
            .iter()
            .find(|o| o.value < dust_limit_for(&o.script_pubkey))
        {
            return Err(CloseError::DustOutput(o.value));
        }
        Ok(tx)
    }

    fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
    ) -> Result<Signature, CloseError> {
        self.funded
            .sign_funding_spend(secp, tx, &self.funding_key)
            .map(|signature| Signature {
                signature,
                sighash_type: EcdsaSighashType::All,
            })
            .map_err(|_| CloseError::BadSignature)
    }

    fn message<C: Signing>(
        &mut self,
        secp: &Secp256k1<C>,
        fee: u64,
        tx: &Transaction,
    ) -> Result<ClosingSigned, CloseError> {
        self.last_sent = Some(fee);
        Ok(ClosingSigned {
            channel_id: self.channel_id,
            fee_satoshis: fee,
            signature: self.sign(secp, tx)?.signature,
            fee_range: Some(FeeRange {
                min_fee_satoshis: self.range.0,
                max_fee_satoshis: self.range.1,
            }),
            extension: TlvStream::default(),
        })
    }

    /// Our proposal at `fee` (clamped into our range): the funder's first
    /// message, or any later one.
    pub fn propose<C: Signing>(
        &mut self,
        secp: &Secp256k1<C>,
        fee: Amount,
    ) -> Result<ClosingSigned, CloseError> {
        let fee = fee.to_sat().clamp(self.range.0, self.range.1);
        let tx = self.tx(fee, false, self.funded.local_dust_limit)?;
        self.message(secp, fee, &tx)
    }

    /// The fully signed transaction.
    fn complete(&self, tx: Transaction, ours: &Signature, theirs: &Signature) -> Transaction {
        self.funded
            .with_funding_witness(tx, ours.signature, theirs.signature)
    }

    /// The peer's `closing_signed`.
    pub fn receive<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &ClosingSigned,
    ) -> Result<CloseStep, CloseError> {
        let fee = msg.fee_satoshis;
        let theirs = Signature {
            signature: msg.signature,
            sighash_type: EcdsaSighashType::All,
        };
        // Either variant (with both outputs, or without the sender's own),
        // trimmed by the sender's dust limit, or by ours when the sender
        // agrees to a transaction we signed; once we agree we sign that same
        // transaction.
        let verifies = |tx: &Transaction| self.funded.verify_funding_spend(secp, tx, msg.signature);
        let f = &self.funded;
        let tx = [(false, f.remote_dust_limit), (true, f.remote_dust_limit)]
            .into_iter()
            .chain([(false, f.local_dust_limit), (true, f.local_dust_limit)])
            .filter_map(|(drop, dust)| self.tx(fee, drop, dust).ok())
            .find(|tx| verifies(tx))
            .ok_or(CloseError::BadSignature)?;
        if let Some(r) = &msg.fee_range {
            let (lo, hi) = self.range;
            if lo.max(r.min_fee_satoshis) > hi.min(r.max_fee_satoshis) {
                // Nothing recorded: the peer may send a better range.
                return Err(CloseError::NoOverlap {
                    ours_min: lo,
                    ours_max: hi,
                    theirs_min: r.min_fee_satoshis,
                    theirs_max: r.max_fee_satoshis,
                });
            }
        }
        let previous = self.last_received.replace(fee);
        let agree = |this: &mut Self, tx: Transaction| -> Result<CloseStep, CloseError> {
            let ours = this.sign(secp, &tx)?;
            let done = this.complete(tx.clone(), &ours, &theirs);
            if this.last_sent == Some(fee) {
                Ok(CloseStep::Done(done))
            } else {
                let reply = this.message(secp, fee, &tx)?;
                Ok(CloseStep::SendAndDone(reply, done))
            }
        };
        if self.last_sent == Some(fee) {
            return agree(self, tx);
        }
        let (lo, hi) = self.range;
        if let Some(r) = &msg.fee_range {
            let (min, max) = (lo.max(r.min_fee_satoshis), hi.min(r.max_fee_satoshis));
            let in_overlap = (min..=max).contains(&fee);
            if self.funded.we_are_funder || self.last_sent.is_some() {
                if !in_overlap || (!self.funded.we_are_funder && self.last_sent != Some(fee)) {
                    return Err(CloseError::FeeOutOfRules(fee));
                }
                return agree(self, tx);
            }
            if in_overlap {
                return agree(self, tx);
            }
            let counter = fee.clamp(min, max);
            let ours = self.tx(counter, false, self.funded.local_dust_limit)?;
            return Ok(CloseStep::Send(self.message(secp, counter, &ours)?));
        }
        // No fee_range: each offer strictly between the last two.
        if let (Some(sent), Some(prev)) = (self.last_sent, previous) {
            let (a, b) = (sent.min(prev), sent.max(prev));
            if fee <= a || fee >= b {
                return Err(CloseError::FeeOutOfRules(fee));
            }
        }
        if (lo..=hi).contains(&fee) {
            return agree(self, tx);
        }
        let target = fee.clamp(lo, hi);
        let counter = match self.last_sent {
            // Strictly between what they offered and what we sent last.
            Some(sent) if sent.abs_diff(fee) > 1 => fee.midpoint(sent),
            _ => target,
        };
        let ours = self.tx(counter, false, self.funded.local_dust_limit)?;
        Ok(CloseStep::Send(self.message(secp, counter, &ours)?))
    }
}
