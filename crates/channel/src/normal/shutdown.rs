//! BOLT 2 §"Closing Initiation: `shutdown`", and the hand-over to the fee
//! negotiation once the channel is empty.

use beongae_wire::msgs::Shutdown;
use beongae_wire::msgs::U16Bytes;
use beongae_wire::TlvStream;
use bitcoin::{Amount, ScriptBuf};

use super::{ChannelError, Event, NormalChannel};
use crate::close::{is_valid_shutdown_script, ClosingNegotiation};
use crate::simple_close::SimpleClose;

impl NormalChannel {
    /// Our `shutdown`, paying our funds to `script`. BOLT 2: the sender
    /// "MUST NOT send multiple `shutdown` messages" and must not send one
    /// while updates it sent are not yet covered by a `commitment_signed`.
    pub fn send_shutdown(&mut self, script: ScriptBuf) -> Result<Shutdown, ChannelError> {
        if self.shutdown.local.is_some() {
            return Err(ChannelError::Unexpected("a second shutdown"));
        }
        if !is_valid_shutdown_script(&script, self.anysegwit) {
            return Err(ChannelError::BadShutdownScript(script.to_hex_string()));
        }
        if !self.retransmit.proposed_updates.is_empty() {
            return Err(ChannelError::Unexpected(
                "shutdown with updates not yet signed; send commitment_signed first",
            ));
        }
        self.shutdown.local = Some(script.clone());
        Ok(Shutdown {
            channel_id: self.channel_id,
            scriptpubkey: U16Bytes(script.into_bytes()),
            extension: TlvStream::default(),
        })
    }

    /// The peer's `shutdown`. BOLT 2 §"Message Retransmission": a node that
    /// sent `shutdown` "MUST retransmit `shutdown`" on reconnection, so a
    /// `shutdown` may arrive again: the same script changes nothing
    /// (`None`); another valid script replaces the one we hold (BOLT 2
    /// §"Channel Close": a reconnection "provides the opportunity for both
    /// nodes to send their latest output script in `shutdown`"), which a
    /// closing negotiation started afterwards uses.
    pub(super) fn receive_shutdown(&mut self, m: &Shutdown) -> Result<Option<Event>, ChannelError> {
        let script = ScriptBuf::from_bytes(m.scriptpubkey.0.clone());
        if self.shutdown.remote.as_ref() == Some(&script) {
            return Ok(None);
        }
        if !is_valid_shutdown_script(&script, self.anysegwit) {
            return Err(ChannelError::BadShutdownScript(script.to_hex_string()));
        }
        let first = self.shutdown.remote.replace(script.clone()).is_none();
        Ok(first.then_some(Event::ShutdownReceived { script }))
    }

    /// Whether fee negotiation may start: both `shutdown`s exchanged, no
    /// HTLC in either commitment and nothing in flight (BOLT 2 §"Closing
    /// Negotiation": "the channel is empty of HTLCs, there are no
    /// commitments for which a revocation is owed, and all updates are
    /// included on both commitments").
    pub fn ready_to_close(&self) -> bool {
        let c = &self.commitments;
        self.shutdown.local.is_some()
            && self.shutdown.remote.is_some()
            && c.local.htlcs.is_empty()
            && c.remote.htlcs.is_empty()
            && c.is_quiescent()
    }

    /// The closing negotiation, with the fees we accept.
    pub fn start_closing(
        &self,
        range: (Amount, Amount),
    ) -> Result<ClosingNegotiation, ChannelError> {
        let (Some(local), Some(remote)) = (&self.shutdown.local, &self.shutdown.remote) else {
            return Err(ChannelError::Unexpected("closing before both shutdowns"));
        };
        if !self.ready_to_close() {
            return Err(ChannelError::Unexpected(
                "closing with htlcs or updates in flight",
            ));
        }
        let c = &self.commitments.local;
        Ok(ClosingNegotiation::new(
            self.channel_id,
            self.funded,
            self.signing.funding_key,
            c.to_local,
            c.to_remote,
            local.clone(),
            remote.clone(),
            range,
        ))
    }

    /// The `option_simple_close` negotiation (BOLT 2 §"Closing Negotiation:
    /// `closing_complete` and `closing_sig`"), once the channel is empty.
    pub fn start_simple_close(&self) -> Result<SimpleClose, ChannelError> {
        let (Some(local), Some(remote)) = (&self.shutdown.local, &self.shutdown.remote) else {
            return Err(ChannelError::Unexpected("closing before both shutdowns"));
        };
        if !self.ready_to_close() {
            return Err(ChannelError::Unexpected(
                "closing with htlcs or updates in flight",
            ));
        }
        let c = &self.commitments.local;
        Ok(SimpleClose::new(
            self.channel_id,
            self.funded,
            self.signing.funding_key,
            c.to_local,
            c.to_remote,
            local.clone(),
            remote.clone(),
            self.anysegwit,
        ))
    }
}
