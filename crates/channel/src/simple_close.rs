//! BOLT 2 §"Closing Negotiation: `closing_complete` and `closing_sig`"
//! (`option_simple_close`) and BOLT 3 §"Closing Transaction": each side
//! builds its own closing transaction, pays its own fee and asks the peer to
//! sign it; no negotiation can fail over fees.

use beongae_script::closing::{build_simple_closing, ClosingOutput};
use beongae_wire::msgs::{ClosingComplete, ClosingSig, U16Bytes};
use beongae_wire::{ChannelId, Msat, TlvStream};
use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{ecdsa, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::{Amount, Script, ScriptBuf, Transaction};

use crate::close::{dust_limit_for, is_valid_shutdown_script};
use crate::sign::FundedChannel;

/// Why a simple close message is refused (BOLT 2: "send a `warning` and
/// close the connection, or send an `error` and fail the channel").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimpleCloseError {
    /// The closer cannot pay the fee from its balance.
    #[error("fee_satoshis {fee} exceeds the closer's balance of {balance} sat")]
    FeeAboveBalance {
        /// `fee_satoshis`
        fee: u64,
        /// The closer's balance, rounded down.
        balance: u64,
    },
    /// Both outputs would be dust.
    #[error("both closing outputs would be dust")]
    AllDust,
    /// `closee_scriptpubkey` is not the script we last sent (BOLT 2: ignore
    /// the message, send a `warning`, close the connection).
    #[error("closee_scriptpubkey {0} is not the script we sent")]
    WrongCloseeScript(String),
    /// `closer_scriptpubkey` is not an allowed `shutdown` script.
    #[error("closer_scriptpubkey {0} is not allowed")]
    BadCloserScript(String),
    /// The signature we must check is missing.
    #[error("closing_complete lacks the {0} signature")]
    MissingSignature(&'static str),
    /// A signature does not verify.
    #[error("the {0} signature does not verify")]
    BadSignature(&'static str),
    /// `closing_sig` does not answer our `closing_complete`.
    #[error("closing_sig does not match our closing_complete: {0}")]
    Mismatch(&'static str),
    /// The transaction could not be built.
    #[error("closing transaction: {0}")]
    Build(String),
}

/// Which closing transaction a signature is for (the TLV it travels in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `closer_output_only`
    CloserOnly,
    /// `closee_output_only`
    CloseeOnly,
    /// `closer_and_closee_outputs`
    Both,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::CloserOnly => "closer_output_only",
            Variant::CloseeOnly => "closee_output_only",
            Variant::Both => "closer_and_closee_outputs",
        }
    }
}

/// The signatures of a `closing_complete` or `closing_sig`, by variant.
#[derive(Debug, Clone, Copy, Default)]
struct Sigs {
    closer_only: Option<ecdsa::Signature>,
    closee_only: Option<ecdsa::Signature>,
    both: Option<ecdsa::Signature>,
}

impl Sigs {
    fn get(&self, v: Variant) -> Option<ecdsa::Signature> {
        match v {
            Variant::CloserOnly => self.closer_only,
            Variant::CloseeOnly => self.closee_only,
            Variant::Both => self.both,
        }
    }

    fn set(&mut self, v: Variant, s: ecdsa::Signature) {
        match v {
            Variant::CloserOnly => self.closer_only = Some(s),
            Variant::CloseeOnly => self.closee_only = Some(s),
            Variant::Both => self.both = Some(s),
        }
    }

    fn count(&self) -> usize {
        [self.closer_only, self.closee_only, self.both]
            .iter()
            .filter(|s| s.is_some())
            .count()
    }
}

/// BOLT 2 `shutdown` script forms with `option_simple_close`: the usual
/// ones, or `OP_RETURN` with one push of 6 to 80 bytes (`6`..`75` then that
/// many bytes, or `76` (`OP_PUSHDATA1`) then `76`..`80` and that many).
pub fn is_valid_simple_close_script(script: &Script, anysegwit: bool) -> bool {
    if is_valid_shutdown_script(script, anysegwit) {
        return true;
    }
    let b = script.as_bytes();
    match b {
        [0x6a, n @ 6..=75, rest @ ..] => rest.len() == usize::from(*n),
        [0x6a, 76, n @ 76..=80, rest @ ..] => rest.len() == usize::from(*n),
        _ => false,
    }
}

/// BOLT 3 dust, with `OP_RETURN` never dust.
fn is_dust(amount: Amount, script: &Script) -> bool {
    !script.is_op_return() && amount < dust_limit_for(script)
}

/// Our `closing_complete` awaiting its `closing_sig`.
#[derive(Debug, Clone)]
struct Sent {
    msg: ClosingComplete,
    txs: Vec<(Variant, Transaction)>,
}

/// One channel's simple close, from our side (we may be the closer of our
/// transaction and the closee of the peer's).
#[derive(Debug, Clone)]
pub struct SimpleClose {
    channel_id: ChannelId,
    funded: FundedChannel,
    funding_key: SecretKey,
    local_balance: Msat,
    remote_balance: Msat,
    /// Our script: `closer_scriptpubkey` of ours, `closee_scriptpubkey` of theirs.
    local_script: ScriptBuf,
    /// The peer's latest script.
    remote_script: ScriptBuf,
    anysegwit: bool,
    sent: Option<Sent>,
}

impl SimpleClose {
    /// A simple close once both `shutdown`s were exchanged and no HTLC is
    /// left; balances are those of the last commitment.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        channel_id: ChannelId,
        funded: FundedChannel,
        funding_key: SecretKey,
        local_balance: Msat,
        remote_balance: Msat,
        local_script: ScriptBuf,
        remote_script: ScriptBuf,
        anysegwit: bool,
    ) -> Self {
        SimpleClose {
            channel_id,
            funded,
            funding_key,
            local_balance,
            remote_balance,
            local_script,
            remote_script,
            anysegwit,
            sent: None,
        }
    }

    /// Whether a `closing_complete` of ours awaits its `closing_sig`.
    pub fn awaiting_sig(&self) -> bool {
        self.sent.is_some()
    }

    /// BOLT 3 §"Closing Transaction" for one variant.
    #[allow(clippy::too_many_arguments)]
    fn tx(
        &self,
        variant: Variant,
        closer: (Msat, &ScriptBuf),
        closee: (Msat, &ScriptBuf),
        fee: u64,
        locktime: u32,
    ) -> Result<Transaction, SimpleCloseError> {
        let closer_out = ClosingOutput {
            balance: closer.0,
            script_pubkey: closer.1.clone(),
        };
        let closee_out = ClosingOutput {
            balance: closee.0,
            script_pubkey: closee.1.clone(),
        };
        let (a, b) = match variant {
            Variant::CloserOnly => (Some(&closer_out), None),
            Variant::CloseeOnly => (None, Some(&closee_out)),
            Variant::Both => (Some(&closer_out), Some(&closee_out)),
        };
        build_simple_closing(
            self.funded.funding_outpoint,
            LockTime::from_consensus(locktime),
            a,
            b,
            Amount::from_sat(fee),
        )
        .map_err(|e| SimpleCloseError::Build(e.to_string()))
    }

    fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
    ) -> Result<ecdsa::Signature, SimpleCloseError> {
        self.funded
            .sign_funding_spend(secp, tx, &self.funding_key)
            .map_err(|e| SimpleCloseError::Build(e.to_string()))
    }

    /// Checks the peer's signature for `variant` (BOLT 2: valid for the
    /// transaction and LOW-S).
    fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        sig: ecdsa::Signature,
        variant: Variant,
    ) -> Result<(), SimpleCloseError> {
        // LOW-S: a high-S signature does not normalize to itself.
        let mut normalized = sig;
        normalized.normalize_s();
        if normalized != sig || !self.funded.verify_funding_spend(secp, tx, sig) {
            return Err(SimpleCloseError::BadSignature(variant.name()));
        }
        Ok(())
    }

    /// Our `closing_complete` (we are the closer and pay `fee`), with the
    /// signatures BOLT 2 requires of the closer for our balances.
    pub fn complete<C: Signing>(
        &mut self,
        secp: &Secp256k1<C>,
        fee: Amount,
        locktime: u32,
    ) -> Result<ClosingComplete, SimpleCloseError> {
        let ours_sat = self.local_balance.to_msat() / 1000;
        let fee = fee.to_sat();
        if fee > ours_sat {
            return Err(SimpleCloseError::FeeAboveBalance {
                fee,
                balance: ours_sat,
            });
        }
        let closer_amount = if self.local_script.is_op_return() {
            Amount::ZERO
        } else {
            Amount::from_sat(ours_sat - fee)
        };
        let closee_amount = Amount::from_sat(self.remote_balance.to_msat() / 1000);
        let closer_dust = is_dust(closer_amount, &self.local_script);
        let closee_dust = is_dust(closee_amount, &self.remote_script);
        if closer_dust && closee_dust {
            return Err(SimpleCloseError::AllDust);
        }
        let variants: &[Variant] = if self.local_balance < self.remote_balance {
            // The lesser side: never closer_output_only; only the closee's
            // output when ours is dust.
            if closer_dust {
                &[Variant::CloseeOnly]
            } else {
                &[Variant::Both]
            }
        } else if closee_dust {
            &[Variant::CloserOnly]
        } else {
            &[Variant::CloserOnly, Variant::Both]
        };
        let mut sigs = Sigs::default();
        let mut txs = Vec::new();
        for &v in variants {
            let tx = self.tx(
                v,
                (self.local_balance, &self.local_script),
                (self.remote_balance, &self.remote_script),
                fee,
                locktime,
            )?;
            sigs.set(v, self.sign(secp, &tx)?);
            txs.push((v, tx));
        }
        let msg = ClosingComplete {
            channel_id: self.channel_id,
            closer_scriptpubkey: U16Bytes(self.local_script.to_bytes()),
            closee_scriptpubkey: U16Bytes(self.remote_script.to_bytes()),
            fee_satoshis: fee,
            locktime,
            closer_output_only: sigs.closer_only,
            closee_output_only: sigs.closee_only,
            closer_and_closee_outputs: sigs.both,
            extension: TlvStream::default(),
        };
        self.sent = Some(Sent {
            msg: msg.clone(),
            txs,
        });
        Ok(msg)
    }

    /// The peer's `closing_complete` (we are the closee): checked, signed;
    /// returns our `closing_sig` and the complete transaction to broadcast.
    pub fn receive_complete<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &ClosingComplete,
    ) -> Result<(ClosingSig, Transaction), SimpleCloseError> {
        let theirs_sat = self.remote_balance.to_msat() / 1000;
        if msg.fee_satoshis > theirs_sat {
            return Err(SimpleCloseError::FeeAboveBalance {
                fee: msg.fee_satoshis,
                balance: theirs_sat,
            });
        }
        let closee_script = ScriptBuf::from_bytes(msg.closee_scriptpubkey.0.clone());
        if closee_script != self.local_script {
            return Err(SimpleCloseError::WrongCloseeScript(
                closee_script.to_hex_string(),
            ));
        }
        let closer_script = ScriptBuf::from_bytes(msg.closer_scriptpubkey.0.clone());
        if !is_valid_simple_close_script(&closer_script, self.anysegwit) {
            return Err(SimpleCloseError::BadCloserScript(
                closer_script.to_hex_string(),
            ));
        }
        let ours = if self.local_script.is_op_return() {
            Amount::ZERO
        } else {
            Amount::from_sat(self.local_balance.to_msat() / 1000)
        };
        let given = Sigs {
            closer_only: msg.closer_output_only,
            closee_only: msg.closee_output_only,
            both: msg.closer_and_closee_outputs,
        };
        let variant = if is_dust(ours, &self.local_script) {
            Variant::CloserOnly
        } else if given.both.is_some() {
            Variant::Both
        } else {
            Variant::CloseeOnly
        };
        let theirs_sig = given
            .get(variant)
            .ok_or(SimpleCloseError::MissingSignature(variant.name()))?;
        let tx = self.tx(
            variant,
            (self.remote_balance, &closer_script),
            (self.local_balance, &self.local_script),
            msg.fee_satoshis,
            msg.locktime,
        )?;
        self.verify(secp, &tx, theirs_sig, variant)?;
        let ours_sig = self.sign(secp, &tx)?;
        let mut reply = Sigs::default();
        reply.set(variant, ours_sig);
        // BOLT 2: "MUST use `closer_scriptpubkey` for its own future
        // `closing_complete` messages".
        self.remote_script = closer_script;
        let sig = ClosingSig {
            channel_id: self.channel_id,
            closer_scriptpubkey: msg.closer_scriptpubkey.clone(),
            closee_scriptpubkey: msg.closee_scriptpubkey.clone(),
            fee_satoshis: msg.fee_satoshis,
            locktime: msg.locktime,
            closer_output_only: reply.closer_only,
            closee_output_only: reply.closee_only,
            closer_and_closee_outputs: reply.both,
            extension: TlvStream::default(),
        };
        Ok((
            sig,
            self.funded.with_funding_witness(tx, ours_sig, theirs_sig),
        ))
    }

    /// The peer's `closing_sig` for our `closing_complete`: the complete
    /// transaction to broadcast.
    pub fn receive_sig<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &ClosingSig,
    ) -> Result<Transaction, SimpleCloseError> {
        let sent = self
            .sent
            .as_ref()
            .ok_or(SimpleCloseError::Mismatch("no closing_complete was sent"))?;
        let m = &sent.msg;
        if msg.closer_scriptpubkey != m.closer_scriptpubkey
            || msg.closee_scriptpubkey != m.closee_scriptpubkey
        {
            return Err(SimpleCloseError::Mismatch("scripts"));
        }
        if msg.fee_satoshis != m.fee_satoshis || msg.locktime != m.locktime {
            return Err(SimpleCloseError::Mismatch("fee_satoshis or locktime"));
        }
        let got = Sigs {
            closer_only: msg.closer_output_only,
            closee_only: msg.closee_output_only,
            both: msg.closer_and_closee_outputs,
        };
        if got.count() != 1 {
            return Err(SimpleCloseError::Mismatch("not exactly one signature"));
        }
        let (variant, tx, theirs) = sent
            .txs
            .iter()
            .find_map(|(v, tx)| got.get(*v).map(|s| (*v, tx.clone(), s)))
            .ok_or(SimpleCloseError::Mismatch(
                "a signature for a variant we did not send",
            ))?;
        self.verify(secp, &tx, theirs, variant)?;
        let ours = self.sign(secp, &tx)?;
        self.sent = None;
        Ok(self.funded.with_funding_witness(tx, ours, theirs))
    }
}
