//! The stored form of the node's channels and payments.
//!
//! Namespaces of the store:
//! - `channels`: one record per channel, keyed by `channel_id`: the peer,
//!   the key index, the phase and the channel crate's own record
//!   (`Funding::encode_state`, `NormalChannel::encode_state`). No secret is
//!   stored: keys derive again from the seed by index.
//! - `onions`: the onions of open channels' HTLCs in flight, apart from
//!   their records ([`super::onions`]).
//! - `payments`: `i` + payment hash for our invoices, `o` + payment hash for
//!   payments we make.
//! - `node`: counters (next channel and invoice index) and the height the
//!   core has processed blocks up to.

use beongae_channel::funding::Funding;
use beongae_channel::normal::{NormalChannel, OnionKey};
use beongae_channel::persist::PersistError;
use beongae_onion::SharedSecret;
use beongae_script::FeeratePerKw;
use beongae_wire::msgs::Message;
use beongae_wire::msgs::OnionPacketBytes;
use beongae_wire::{
    ChannelId, Msat, NodeId, PaymentHash, Preimage, Reader, ShortChannelId, Writer,
};
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Transaction, Txid};
use std::collections::BTreeMap;

/// Namespace of channel records.
pub const NS_CHANNELS: &str = "channels";
/// Namespace of invoice and payment records.
pub const NS_PAYMENTS: &str = "payments";
/// Namespace of node counters.
pub const NS_NODE: &str = "node";
/// Namespace of channel peers' addresses (node id → `HOST:PORT`), for
/// reconnecting.
pub const NS_PEERS: &str = "peers";
/// Namespace of the HTLCs of the peer's commitments we signed, each stored
/// once, when the first commitment of the peer's with it is signed: what a
/// penalty needs to rebuild the HTLC output scripts of a revoked
/// commitment ([`remote_htlcs_in`]). One entry per commitment signed with
/// new HTLCs, its list of them ([`remote_htlcs_key`]: `channel_id` || the
/// commitment's number; [`encode_remote_htlcs`]). A number is signed once
/// (a commitment signed and stored is sent again as it is, never signed
/// anew), so an entry is never overwritten. Stores written before hold one
/// entry per HTLC ([`remote_htlc_key`]: `channel_id` || number || offered
/// || id), and older ones a list of every HTLC per commitment; both are
/// still read.
pub const NS_REMOTE_HTLCS: &str = "remote_htlcs";
/// Key of the next channel key index.
pub const KEY_NEXT_CHANNEL: &[u8] = b"next_channel_index";
/// Key of the next invoice index.
pub const KEY_NEXT_INVOICE: &[u8] = b"next_invoice_index";
/// Key of the height blocks were processed to.
pub const KEY_HEIGHT: &[u8] = b"height";
/// Key of the hashes of the last blocks processed ([`encode_recent_blocks`]):
/// where following the chain resumes after a restart, so that blocks
/// reorganised away while the node was down are undone.
pub const KEY_RECENT_BLOCKS: &[u8] = b"recent_blocks";

const RECORD_VERSION: u8 = 1;
/// Channel records: version 2 keeps a closed channel's state and a
/// normal channel's broadcast closing transactions, version 3 whether a
/// closed channel's commitment was withheld and its sweeps, version 4 the
/// peer's spends of the confirmed commitment's outputs, version 5 each
/// sweep's feerate, replacement and conflict, and when an unfunded channel
/// was signed, version 6 the cheater's HTLC transactions, version 7 who
/// opened a closed channel and the peer's balance at closing, version 8 a
/// normal channel's funding transaction (its funder's); all are read.
const CHANNEL_RECORD_VERSION: u8 = 8;

/// A stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The channel crate's record.
    #[error(transparent)]
    Channel(#[from] PersistError),
    /// Truncated or malformed.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

impl From<beongae_wire::DecodeError> for RecordError {
    fn from(e: beongae_wire::DecodeError) -> Self {
        RecordError::Corrupt(e.to_string())
    }
}

/// The stored phase of a channel (the phases before both commitment 0
/// signatures exist are not stored: nothing can be lost in them).
#[derive(Debug, Clone)]
pub enum StoredPhase {
    /// Signed commitment 0s; waiting for the funding transaction's depth
    /// and both `channel_ready`s.
    Funded {
        /// The channel crate's record.
        state: Vec<u8>,
        /// The funding transaction, if we built it (funder).
        tx: Option<Transaction>,
        /// `minimum_depth`
        depth: u32,
        /// Block height and index of the funding transaction once mined.
        confirmed: Option<(u32, u32)>,
        /// The height when both commitment 0s were signed (unknown before
        /// record version 4).
        since: Option<u32>,
    },
    /// In normal operation (or shutting down).
    Normal {
        /// The channel crate's record.
        state: Vec<u8>,
        /// The real short channel id, once the funding is deep enough.
        scid: Option<ShortChannelId>,
        /// Our fulfills and fails a disconnection forgot, to offer again
        /// after the next `channel_reestablish`.
        redo: Vec<Message>,
        /// The alias the peer gave us in its `channel_ready`.
        remote_alias: Option<ShortChannelId>,
        /// Mutual closing transactions signed by both and broadcast, none
        /// confirmed yet: the channel stays until one is (BOLT 2 gives no
        /// other end to a close), so a close can be redone or forced.
        closing_txs: Vec<Transaction>,
        /// Our funding transaction, as the funder (from record version 8).
        funding_tx: Option<Transaction>,
    },
    /// Closed: the closing (or our commitment) transaction.
    Closed(Closed),
}

/// The channel crate's record of a channel as it was when it closed:
/// everything a resolution on chain needs (both sides' basepoints,
/// `to_self_delay`s, the obscuring factor, the peer's revealed secrets,
/// the HTLCs and signatures of our last commitment, commitment numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptState {
    /// Closed before `channel_ready` (`Funding::encode_state`).
    Funded(Vec<u8>),
    /// Closed in normal operation (`NormalChannel::encode_state`).
    Normal(Vec<u8>),
}

/// A closed channel, stored and live alike.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The funding outpoint (to recognise whatever spends it).
    pub funding_outpoint: OutPoint,
    /// Our transaction spending the funding output, to broadcast.
    pub tx: Option<Transaction>,
    /// The txid of the transaction that spends it (ours, or the one seen
    /// on chain), once known.
    pub txid: Option<Txid>,
    /// Our balance when the channel closed.
    pub local: Msat,
    /// Height it confirmed at.
    pub confirmed: Option<u32>,
    /// Why it closed.
    pub reason: String,
    /// The channel's state at closing, kept until the close is resolved on
    /// chain and buried ([`Closed::resolved`] says when).
    pub kept: Option<KeptState>,
    /// Whether our commitment was held back, and why.
    pub withheld: Withheld,
    /// Our transactions claiming outputs of the confirmed spend (BOLT 5),
    /// broadcast again until they confirm.
    pub sweeps: Vec<Sweep>,
    /// Outputs of the confirmed commitment that a transaction not ours
    /// spent: not claimed again unless a reorg undoes that spend.
    pub spent: Vec<Spent>,
    /// The cheater's transactions spending HTLC outputs of its revoked
    /// commitment, whose outputs we claim (BOLT 5): what a fee bump of
    /// those claims reads the values they spend from.
    pub theirs: Vec<Transaction>,
    /// Whether we opened the channel (none: closed before version 7).
    pub we_are_funder: Option<bool>,
    /// The peer's balance when it closed (none: closed before version 7).
    pub remote: Option<Msat>,
    /// Our funding transaction (as its funder; from version 8), and the
    /// height of the block holding it (none while off the chain): while a
    /// reorg keeps it off, it goes out again ahead of the closing
    /// transaction, since mempools may have dropped it.
    pub funding_tx: Option<(Transaction, Option<u32>)>,
}

/// An output a transaction not ours spent, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// The output.
    pub outpoint: OutPoint,
    /// The spending transaction.
    pub txid: Txid,
    /// The height of its block.
    pub height: u32,
}

/// One of our claims on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// The signed transaction.
    pub tx: Transaction,
    /// Height it confirmed at.
    pub confirmed: Option<u32>,
    /// The feerate it pays (for a fee bump to beat), if we set its fee
    /// (not for an HTLC transaction whose fee was fixed when signed).
    pub feerate: Option<FeeratePerKw>,
    /// Replaced by a later one paying more (RBF): not broadcast again, but
    /// still ours if it confirms instead.
    pub replaced: bool,
    /// The height of the block whose transaction conflicts with it (it can
    /// never confirm unless a reorg undoes that block): not broadcast, not
    /// counted, kept until buried in case it confirms after all.
    pub dropped_at: Option<u32>,
}

impl Sweep {
    /// Waiting to confirm, and the one to broadcast: not confirmed, not
    /// replaced by a bump, not in conflict with a confirmed transaction.
    pub fn pending(&self) -> bool {
        self.confirmed.is_none() && !self.replaced && self.dropped_at.is_none()
    }

    /// Confirmed, or still able to (not replaced, not in conflict).
    pub fn live(&self) -> bool {
        self.confirmed.is_some() || self.pending()
    }
}

/// Why a failed channel's commitment was not broadcast (ADR 0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Withheld {
    /// Not held back (broadcast, or a mutual close).
    #[default]
    No,
    /// The peer failed the channel before its `channel_reestablish`, or
    /// claimed a later state without proving it: our state may be an old
    /// copy. A later `channel_reestablish` showing it is current releases
    /// the commitment; `closechannel --force` may too.
    Unverified,
    /// The peer proved our state is old (it holds our secret for a
    /// commitment we never revoked): our commitment is revoked and must
    /// never go out.
    Behind,
    /// Our funding transaction never confirmed and is being double-spent
    /// back to the wallet: our commitment goes out only if the funding
    /// confirms first after all.
    UntilFunded,
}

/// The `reason` of a channel closed by a mutual closing transaction.
pub const COOPERATIVE_CLOSE: &str = "cooperative close";

/// Blocks after which a confirmed mutual close is buried beyond any reorg
/// we follow, and a closed channel's state may be dropped.
pub const BURIED_DEPTH: u32 = 100;

impl Closed {
    /// Whether nothing on chain can still need the kept state at `height`:
    /// a mutual close (the confirmed spend is our closing transaction, which
    /// has no outputs to claim) buried [`BURIED_DEPTH`] blocks. A commitment's outputs (ours to sweep, a revoked one's to
    /// punish, HTLCs) need the state until on-chain enforcement resolves
    /// them, so those channels keep it.
    pub fn resolved(&self, height: u32) -> bool {
        self.mutual() && self.confirmed.is_some_and(|h| height >= h + BURIED_DEPTH)
    }

    /// Whether our commitment waits for a `channel_reestablish` that shows
    /// our state is current (and the funding is not spent yet).
    pub fn awaits_reestablish(&self) -> bool {
        self.withheld == Withheld::Unverified && self.txid.is_none() && self.kept.is_some()
    }

    /// Whether the confirmed spend of the funding output is our mutual
    /// closing transaction (not another spend that replaced it in a reorg).
    pub fn mutual(&self) -> bool {
        self.reason == COOPERATIVE_CLOSE
            && self.txid.is_some()
            && self.txid == self.tx.as_ref().map(Transaction::compute_txid)
    }
}

/// One stored channel.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    /// The peer.
    pub peer: NodeId,
    /// Key index (`KeyManager::channel`).
    pub index: u32,
    /// Capacity.
    pub funding: Amount,
    /// The phase.
    pub phase: StoredPhase,
}

fn put_tx(w: &mut Writer, tx: &Option<Transaction>) {
    match tx {
        None => w.write_u8(0),
        Some(tx) => {
            w.write_u8(1);
            let bytes = serialize(tx);
            w.write_u32(bytes.len() as u32);
            w.write_bytes(&bytes);
        }
    }
}

fn get_tx(r: &mut Reader<'_>) -> Result<Option<Transaction>, RecordError> {
    match r.read_u8()? {
        0 => Ok(None),
        1 => {
            let len = r.read_u32()? as usize;
            let tx = deserialize(r.read_bytes(len)?)
                .map_err(|e| RecordError::Corrupt(format!("transaction: {e}")))?;
            Ok(Some(tx))
        }
        _ => Err(RecordError::Corrupt("transaction flag".into())),
    }
}

fn put_blob(w: &mut Writer, b: &[u8]) {
    w.write_u32(b.len() as u32);
    w.write_bytes(b);
}

fn get_blob(r: &mut Reader<'_>) -> Result<Vec<u8>, RecordError> {
    let len = r.read_u32()? as usize;
    Ok(r.read_bytes(len)?.to_vec())
}

fn put_str(w: &mut Writer, s: &str) {
    put_blob(w, s.as_bytes());
}

fn get_str(r: &mut Reader<'_>) -> Result<String, RecordError> {
    String::from_utf8(get_blob(r)?).map_err(|_| RecordError::Corrupt("text".into()))
}

impl ChannelRecord {
    /// Bytes for the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(CHANNEL_RECORD_VERSION);
        w.write_bytes(&self.peer.serialize());
        w.write_u32(self.index);
        w.write_u64(self.funding.to_sat());
        match &self.phase {
            StoredPhase::Funded {
                state,
                tx,
                depth,
                confirmed,
                since,
            } => {
                w.write_u8(1);
                put_blob(&mut w, state);
                put_tx(&mut w, tx);
                w.write_u32(*depth);
                match confirmed {
                    None => w.write_u8(0),
                    Some((h, i)) => {
                        w.write_u8(1);
                        w.write_u32(*h);
                        w.write_u32(*i);
                    }
                }
                w.write_u32(since.map_or(0, |h| h + 1));
            }
            StoredPhase::Normal {
                state,
                scid,
                redo,
                remote_alias,
                closing_txs,
                funding_tx,
            } => {
                w.write_u8(2);
                put_blob(&mut w, state);
                w.write_u64(scid.map_or(0, ShortChannelId::to_u64));
                w.write_u64(remote_alias.map_or(0, ShortChannelId::to_u64));
                w.write_u32(redo.len() as u32);
                for m in redo {
                    // Removals always encode.
                    put_blob(&mut w, &m.encode().unwrap_or_default());
                }
                w.write_u32(closing_txs.len() as u32);
                for tx in closing_txs {
                    put_tx(&mut w, &Some(tx.clone()));
                }
                put_tx(&mut w, funding_tx);
            }
            StoredPhase::Closed(Closed {
                funding_outpoint,
                tx,
                txid,
                local,
                confirmed,
                reason,
                kept,
                withheld,
                sweeps,
                spent,
                theirs,
                we_are_funder,
                remote,
                funding_tx,
            }) => {
                w.write_u8(3);
                w.write_bytes(&funding_outpoint.txid.to_byte_array());
                w.write_u32(funding_outpoint.vout);
                put_tx(&mut w, tx);
                match txid {
                    None => w.write_u8(0),
                    Some(t) => {
                        w.write_u8(1);
                        w.write_bytes(&t.to_byte_array());
                    }
                }
                w.write_u64(local.to_msat());
                w.write_u32(confirmed.map_or(0, |h| h + 1));
                put_str(&mut w, reason);
                w.write_u8(match withheld {
                    Withheld::No => 0,
                    Withheld::Unverified => 1,
                    Withheld::Behind => 2,
                    Withheld::UntilFunded => 3,
                });
                match kept {
                    None => w.write_u8(0),
                    Some(KeptState::Funded(b)) => {
                        w.write_u8(1);
                        put_blob(&mut w, b);
                    }
                    Some(KeptState::Normal(b)) => {
                        w.write_u8(2);
                        put_blob(&mut w, b);
                    }
                }
                w.write_u32(sweeps.len() as u32);
                for s in sweeps {
                    put_tx(&mut w, &Some(s.tx.clone()));
                    w.write_u32(s.confirmed.map_or(0, |h| h + 1));
                    w.write_u32(s.feerate.map_or(0, |f| f.0));
                    w.write_u8(u8::from(s.replaced));
                    w.write_u32(s.dropped_at.map_or(0, |h| h + 1));
                }
                w.write_u32(spent.len() as u32);
                for s in spent {
                    w.write_bytes(&s.outpoint.txid.to_byte_array());
                    w.write_u32(s.outpoint.vout);
                    w.write_bytes(&s.txid.to_byte_array());
                    w.write_u32(s.height);
                }
                w.write_u32(theirs.len() as u32);
                for tx in theirs {
                    put_tx(&mut w, &Some(tx.clone()));
                }
                // 0: unknown, 1: the peer opened it, 2: we did.
                w.write_u8(match we_are_funder {
                    None => 0,
                    Some(false) => 1,
                    Some(true) => 2,
                });
                // Unknown as u64::MAX (no balance is that large).
                w.write_u64(remote.map_or(u64::MAX, Msat::to_msat));
                put_tx(&mut w, &funding_tx.as_ref().map(|(t, _)| t.clone()));
                if let Some((_, height)) = funding_tx {
                    w.write_u32(height.map_or(0, |h| h + 1));
                }
            }
        }
        w.into_vec()
    }

    /// A record from the store.
    pub fn decode(bytes: &[u8]) -> Result<ChannelRecord, RecordError> {
        let mut r = Reader::new(bytes);
        let v = r.read_u8()?;
        if !(1..=CHANNEL_RECORD_VERSION).contains(&v) {
            return Err(RecordError::Corrupt(format!(
                "record version {v} (this build reads up to {CHANNEL_RECORD_VERSION}; upgrade beongae)"
            )));
        }
        let peer = bitcoin::secp256k1::PublicKey::from_slice(&r.read_array::<33>()?)
            .map(NodeId::from_pubkey)
            .map_err(|_| RecordError::Corrupt("peer node id".into()))?;
        let index = r.read_u32()?;
        let funding = Amount::from_sat(r.read_u64()?);
        let phase = match r.read_u8()? {
            1 => {
                let state = get_blob(&mut r)?;
                let tx = get_tx(&mut r)?;
                let depth = r.read_u32()?;
                let confirmed = match r.read_u8()? {
                    0 => None,
                    1 => Some((r.read_u32()?, r.read_u32()?)),
                    _ => return Err(RecordError::Corrupt("confirmation flag".into())),
                };
                let since = if v >= 5 {
                    r.read_u32()?.checked_sub(1)
                } else {
                    None
                };
                StoredPhase::Funded {
                    state,
                    tx,
                    depth,
                    confirmed,
                    since,
                }
            }
            2 => {
                let state = get_blob(&mut r)?;
                let scid = match r.read_u64()? {
                    0 => None,
                    v => Some(ShortChannelId::from_u64(v)),
                };
                let remote_alias = match r.read_u64()? {
                    0 => None,
                    v => Some(ShortChannelId::from_u64(v)),
                };
                let n = r.read_u32()?;
                let redo = (0..n)
                    .map(|_| {
                        Message::decode(&get_blob(&mut r)?)
                            .map_err(|e| RecordError::Corrupt(format!("stored removal: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
                let closing_txs = if v >= 2 {
                    let n = r.read_u32()?;
                    (0..n)
                        .map(|_| {
                            get_tx(&mut r)?
                                .ok_or_else(|| RecordError::Corrupt("closing transaction".into()))
                        })
                        .collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                };
                let funding_tx = if v >= 8 { get_tx(&mut r)? } else { None };
                StoredPhase::Normal {
                    state,
                    scid,
                    redo,
                    remote_alias,
                    closing_txs,
                    funding_tx,
                }
            }
            3 => {
                let funding_outpoint = OutPoint {
                    txid: Txid::from_byte_array(r.read_array()?),
                    vout: r.read_u32()?,
                };
                let tx = get_tx(&mut r)?;
                let txid = match r.read_u8()? {
                    0 => None,
                    1 => Some(Txid::from_byte_array(r.read_array()?)),
                    _ => return Err(RecordError::Corrupt("txid flag".into())),
                };
                let local = Msat::from_msat(r.read_u64()?);
                let confirmed = r.read_u32()?.checked_sub(1);
                let reason = get_str(&mut r)?;
                let withheld = match if v >= 3 { r.read_u8()? } else { 0 } {
                    0 => Withheld::No,
                    1 => Withheld::Unverified,
                    2 => Withheld::Behind,
                    3 => Withheld::UntilFunded,
                    _ => return Err(RecordError::Corrupt("withheld kind".into())),
                };
                let kept = match if v >= 2 { r.read_u8()? } else { 0 } {
                    0 => None,
                    1 => Some(KeptState::Funded(get_blob(&mut r)?)),
                    2 => Some(KeptState::Normal(get_blob(&mut r)?)),
                    _ => return Err(RecordError::Corrupt("kept state kind".into())),
                };
                let sweeps = if v >= 3 {
                    let n = r.read_u32()?;
                    (0..n)
                        .map(|_| {
                            let tx = get_tx(&mut r)?
                                .ok_or_else(|| RecordError::Corrupt("sweep".into()))?;
                            let confirmed = r.read_u32()?.checked_sub(1);
                            let (feerate, replaced, dropped_at) = if v >= 5 {
                                let f = r.read_u32()?;
                                let replaced = match r.read_u8()? {
                                    0 => false,
                                    1 => true,
                                    _ => return Err(RecordError::Corrupt("sweep flag".into())),
                                };
                                let dropped = r.read_u32()?.checked_sub(1);
                                ((f > 0).then_some(FeeratePerKw(f)), replaced, dropped)
                            } else {
                                (None, false, None)
                            };
                            Ok(Sweep {
                                tx,
                                confirmed,
                                feerate,
                                replaced,
                                dropped_at,
                            })
                        })
                        .collect::<Result<_, RecordError>>()?
                } else {
                    Vec::new()
                };
                let spent = if v >= 4 {
                    let n = r.read_u32()?;
                    (0..n)
                        .map(|_| {
                            Ok(Spent {
                                outpoint: OutPoint {
                                    txid: Txid::from_byte_array(r.read_array()?),
                                    vout: r.read_u32()?,
                                },
                                txid: Txid::from_byte_array(r.read_array()?),
                                height: r.read_u32()?,
                            })
                        })
                        .collect::<Result<_, RecordError>>()?
                } else {
                    Vec::new()
                };
                let theirs = if v >= 6 {
                    let n = r.read_u32()?;
                    (0..n)
                        .map(|_| {
                            get_tx(&mut r)?.ok_or_else(|| {
                                RecordError::Corrupt("the cheater's transaction".into())
                            })
                        })
                        .collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                };
                let (we_are_funder, remote) = if v >= 7 {
                    let funder = match r.read_u8()? {
                        0 => None,
                        1 => Some(false),
                        2 => Some(true),
                        _ => return Err(RecordError::Corrupt("funder flag".into())),
                    };
                    let remote = r.read_u64()?;
                    (
                        funder,
                        (remote != u64::MAX).then(|| Msat::from_msat(remote)),
                    )
                } else {
                    (None, None)
                };
                let funding_tx = if v >= 8 {
                    match get_tx(&mut r)? {
                        Some(tx) => Some((tx, r.read_u32()?.checked_sub(1))),
                        None => None,
                    }
                } else {
                    None
                };
                StoredPhase::Closed(Closed {
                    funding_outpoint,
                    tx,
                    txid,
                    local,
                    confirmed,
                    reason,
                    kept,
                    withheld,
                    sweeps,
                    spent,
                    theirs,
                    we_are_funder,
                    remote,
                    funding_tx,
                })
            }
            p => return Err(RecordError::Corrupt(format!("channel phase {p}"))),
        };
        r.finish()?;
        Ok(ChannelRecord {
            peer,
            index,
            funding,
            phase,
        })
    }
}

/// How an invoice of ours is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredInvoice {
    /// The BOLT 11 string as it was given out.
    Text(String),
    /// Its compact form ([`beongae_invoice::Invoice::to_compact`]) without
    /// the payment hash and secret, which derive from the invoice's index:
    /// 154 bytes where the string takes 352. Kept only when it gave back
    /// the exact string as the invoice was made.
    Compact(Vec<u8>),
}

/// The state of one of our invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRecord {
    /// Index its preimage and payment secret derive from.
    pub index: u64,
    /// The invoice.
    pub invoice: StoredInvoice,
    /// What it asks (none: any amount).
    pub amount: Option<Msat>,
    /// What arrived, once paid.
    pub received: Option<Msat>,
    /// The HTLC that paid it: `(channel_id, htlc id)`.
    pub settled_by: Option<(ChannelId, u64)>,
}

/// Version of [`InvoiceRecord`]s: 2 keeps the invoice in either form of
/// [`StoredInvoice`] (a flag, then the string or the compact bytes);
/// version 1 (the string) is read.
const INVOICE_VERSION: u8 = 2;

impl InvoiceRecord {
    /// Bytes for the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(INVOICE_VERSION);
        w.write_u64(self.index);
        match &self.invoice {
            StoredInvoice::Text(s) => {
                w.write_u8(0);
                put_str(&mut w, s);
            }
            StoredInvoice::Compact(b) => {
                w.write_u8(1);
                put_blob(&mut w, b);
            }
        }
        w.write_u64(self.amount.map_or(u64::MAX, Msat::to_msat));
        w.write_u64(self.received.map_or(u64::MAX, Msat::to_msat));
        match &self.settled_by {
            None => w.write_u8(0),
            Some((c, id)) => {
                w.write_u8(1);
                w.write_bytes(&c.0);
                w.write_u64(*id);
            }
        }
        w.into_vec()
    }

    /// A record from the store.
    pub fn decode(bytes: &[u8]) -> Result<InvoiceRecord, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.read_u8()?;
        if !(1..=INVOICE_VERSION).contains(&version) {
            return Err(RecordError::Corrupt("invoice record version".into()));
        }
        let index = r.read_u64()?;
        let invoice = match version {
            1 => StoredInvoice::Text(get_str(&mut r)?),
            _ => match r.read_u8()? {
                0 => StoredInvoice::Text(get_str(&mut r)?),
                1 => StoredInvoice::Compact(get_blob(&mut r)?),
                _ => return Err(RecordError::Corrupt("invoice form".into())),
            },
        };
        let opt = |v: u64| (v != u64::MAX).then(|| Msat::from_msat(v));
        let amount = opt(r.read_u64()?);
        let received = opt(r.read_u64()?);
        let settled_by = match r.read_u8()? {
            0 => None,
            1 => Some((ChannelId(r.read_array()?), r.read_u64()?)),
            _ => return Err(RecordError::Corrupt("invoice settlement flag".into())),
        };
        r.finish()?;
        Ok(InvoiceRecord {
            index,
            invoice,
            amount,
            received,
            settled_by,
        })
    }
}

/// Where a payment we make stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingStatus {
    /// The HTLC is offered.
    Pending,
    /// The payee revealed the preimage.
    Succeeded(Preimage),
    /// It failed; the text says why.
    Failed(String),
}

/// One payment we make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// Amount delivered to the payee.
    pub amount: Msat,
    /// The channel carrying it.
    pub channel_id: ChannelId,
    /// Our HTLC id in it.
    pub htlc_id: u64,
    /// Secrets shared with each hop (to read a failure).
    pub shared_secrets: Vec<SharedSecret>,
    /// Where it stands.
    pub status: OutgoingStatus,
    /// What the payee gets (`amount` less the fees of the hops between).
    pub delivered: Msat,
    /// Routes tried so far, this one included.
    pub attempts: u32,
    /// The nodes of the route of the last attempt, the payee last.
    pub route: Vec<NodeId>,
    /// When the payment was first sent (seconds since 1970; 0: a record
    /// from before version 3, time unknown).
    pub created: u64,
}

/// Version of [`OutgoingRecord`]s: 2 added the amount delivered, the
/// attempts and the route (version 1: none of them; read as a direct
/// payment's); 3 the time it was sent.
const OUTGOING_VERSION: u8 = 3;

impl OutgoingRecord {
    /// Bytes for the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(OUTGOING_VERSION);
        w.write_bytes(&self.payment_hash.0);
        w.write_u64(self.amount.to_msat());
        w.write_bytes(&self.channel_id.0);
        w.write_u64(self.htlc_id);
        w.write_u8(self.shared_secrets.len() as u8); // at most 20 hops
        for s in &self.shared_secrets {
            w.write_bytes(&s.0);
        }
        match &self.status {
            OutgoingStatus::Pending => w.write_u8(0),
            OutgoingStatus::Succeeded(p) => {
                w.write_u8(1);
                w.write_bytes(&p.0);
            }
            OutgoingStatus::Failed(why) => {
                w.write_u8(2);
                put_str(&mut w, why);
            }
        }
        w.write_u64(self.delivered.to_msat());
        w.write_u32(self.attempts);
        w.write_u8(self.route.len() as u8); // at most 20 hops
        for n in &self.route {
            w.write_bytes(&n.serialize());
        }
        w.write_u64(self.created);
        w.into_vec()
    }

    /// A record from the store.
    pub fn decode(bytes: &[u8]) -> Result<OutgoingRecord, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.read_u8()?;
        if !(1..=OUTGOING_VERSION).contains(&version) {
            return Err(RecordError::Corrupt("payment record version".into()));
        }
        let payment_hash = PaymentHash(r.read_array()?);
        let amount = Msat::from_msat(r.read_u64()?);
        let channel_id = ChannelId(r.read_array()?);
        let htlc_id = r.read_u64()?;
        let n = r.read_u8()?;
        let shared_secrets = (0..n)
            .map(|_| Ok(SharedSecret(r.read_array()?)))
            .collect::<Result<_, RecordError>>()?;
        let status = match r.read_u8()? {
            0 => OutgoingStatus::Pending,
            1 => OutgoingStatus::Succeeded(Preimage(r.read_array()?)),
            2 => OutgoingStatus::Failed(get_str(&mut r)?),
            _ => return Err(RecordError::Corrupt("payment status".into())),
        };
        let (delivered, attempts, route) = if version >= 2 {
            let delivered = Msat::from_msat(r.read_u64()?);
            let attempts = r.read_u32()?;
            let n = r.read_u8()?;
            let route = (0..n)
                .map(|_| {
                    bitcoin::secp256k1::PublicKey::from_slice(&r.read_array::<33>()?)
                        .map(NodeId::from_pubkey)
                        .map_err(|_| RecordError::Corrupt("route node".into()))
                })
                .collect::<Result<_, RecordError>>()?;
            (delivered, attempts, route)
        } else {
            (amount, 1, Vec::new())
        };
        let created = if version >= 3 { r.read_u64()? } else { 0 };
        r.finish()?;
        Ok(OutgoingRecord {
            payment_hash,
            amount,
            channel_id,
            htlc_id,
            shared_secrets,
            status,
            delivered,
            attempts,
            route,
            created,
        })
    }
}

/// Decodes a funding-phase channel crate record.
pub fn decode_funding(
    state: &[u8],
    signing: beongae_channel::sign::SigningKeys,
    secrets: beongae_channel::revocation::LocalSecrets,
) -> Result<Funding, RecordError> {
    Ok(Funding::decode_state(state, signing, secrets)?)
}

/// Decodes a normal-phase channel crate record.
pub fn decode_normal(
    state: &[u8],
    signing: beongae_channel::sign::SigningKeys,
    secrets: beongae_channel::revocation::LocalSecrets,
) -> Result<NormalChannel, RecordError> {
    Ok(NormalChannel::decode_state(state, signing, secrets)?)
}

/// Decodes an open channel's channel crate record, of either format, with
/// the onions kept apart from it ([`super::onions`]).
pub fn decode_normal_apart(
    state: &[u8],
    onions: &BTreeMap<OnionKey, OnionPacketBytes>,
    signing: beongae_channel::sign::SigningKeys,
    secrets: beongae_channel::revocation::LocalSecrets,
) -> Result<NormalChannel, RecordError> {
    Ok(NormalChannel::decode_state_apart(
        state, onions, signing, secrets,
    )?)
}

/// `(height, hash)` of the last blocks processed, lowest first, heights
/// consecutive.
pub fn encode_recent_blocks(
    blocks: &std::collections::VecDeque<(u32, bitcoin::BlockHash)>,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.write_u8(RECORD_VERSION);
    w.write_u32(blocks.front().map_or(0, |(h, _)| *h));
    w.write_u16(blocks.len() as u16);
    for (_, hash) in blocks {
        w.write_bytes(&hash.to_byte_array());
    }
    w.into_vec()
}

/// Reads [`encode_recent_blocks`].
pub fn decode_recent_blocks(
    bytes: &[u8],
) -> Result<std::collections::VecDeque<(u32, bitcoin::BlockHash)>, RecordError> {
    let mut r = Reader::new(bytes);
    if r.read_u8()? != RECORD_VERSION {
        return Err(RecordError::Corrupt("recent blocks version".into()));
    }
    let base = r.read_u32()?;
    let n = r.read_u16()?;
    let blocks = (0..u32::from(n))
        .map(|i| {
            Ok((
                base + i,
                bitcoin::BlockHash::from_byte_array(r.read_array()?),
            ))
        })
        .collect::<Result<_, RecordError>>()?;
    r.finish()?;
    Ok(blocks)
}

/// Version of an entry of one HTLC in [`NS_REMOTE_HTLCS`] (stores written
/// before); a list has [`RECORD_VERSION`].
const REMOTE_HTLC_VERSION: u8 = 2;

/// The key of HTLC `h` (as the peer sees it) in [`NS_REMOTE_HTLCS`], first
/// in the peer's commitment `from`, as stores written before kept it.
#[cfg(test)]
fn remote_htlc_key(
    channel: ChannelId,
    from: u64,
    h: &beongae_channel::commitments::SpecHtlc,
) -> Vec<u8> {
    let mut k = channel.0.to_vec();
    k.extend_from_slice(&from.to_be_bytes());
    k.push(u8::from(h.offered));
    k.extend_from_slice(&h.id.to_be_bytes());
    k
}

/// The value of HTLC `h` in [`NS_REMOTE_HTLCS`]: `amount_msat`,
/// `payment_hash`, `cltv_expiry` (the rest is in the key), as stores
/// written before kept it.
#[cfg(test)]
fn encode_remote_htlc(h: &beongae_channel::commitments::SpecHtlc) -> Vec<u8> {
    let mut w = Writer::new();
    w.write_u8(REMOTE_HTLC_VERSION);
    w.write_u64(h.amount.to_msat());
    w.write_bytes(&h.payment_hash.0);
    w.write_u32(h.cltv_expiry);
    w.into_vec()
}

/// Of a channel's entries in [`NS_REMOTE_HTLCS`], the HTLCs the peer's
/// commitment `number` may carry: every HTLC first signed in it or before,
/// and every HTLC of the lists per commitment of stores written before, up
/// to it (an HTLC signed before an upgrade and still in a later commitment
/// has no entry of its own). Those removed since match no output of the
/// commitment and are skipped by `beongae_channel::penalty::revoked_claims`.
/// Entries that do not read are skipped and counted (the second value):
/// the others still make their claims.
pub fn remote_htlcs_in(
    entries: &[(Vec<u8>, Vec<u8>)],
    number: u64,
) -> (Vec<beongae_channel::commitments::SpecHtlc>, usize) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    for (k, v) in entries {
        match remote_htlc_entry(k, v, number) {
            Ok(h) => out.extend(h),
            Err(_) => unreadable += 1,
        }
    }
    (out, unreadable)
}

/// One entry of [`remote_htlcs_in`]: its HTLCs if first signed at or
/// before `number`.
fn remote_htlc_entry(
    k: &[u8],
    v: &[u8],
    number: u64,
) -> Result<Vec<beongae_channel::commitments::SpecHtlc>, RecordError> {
    let from = k
        .get(32..40)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| RecordError::Corrupt("remote htlc key".into()))?;
    match k.len() {
        40 if from <= number => decode_remote_htlcs(v),
        49 if from <= number => {
            let mut r = Reader::new(v);
            if r.read_u8()? != REMOTE_HTLC_VERSION {
                return Err(RecordError::Corrupt("remote htlc version".into()));
            }
            let h = beongae_channel::commitments::SpecHtlc {
                offered: match k[40] {
                    0 => false,
                    1 => true,
                    _ => return Err(RecordError::Corrupt("htlc direction".into())),
                },
                id: u64::from_be_bytes(k[41..49].try_into().unwrap_or_default()),
                amount: Msat::from_msat(r.read_u64()?),
                payment_hash: PaymentHash(r.read_array()?),
                cltv_expiry: r.read_u32()?,
            };
            r.finish()?;
            Ok(vec![h])
        }
        40 | 49 => Ok(Vec::new()),
        _ => Err(RecordError::Corrupt("remote htlc key".into())),
    }
}

/// The key of the list of HTLCs first in the peer's commitment `number`
/// in [`NS_REMOTE_HTLCS`].
pub fn remote_htlcs_key(channel: ChannelId, number: u64) -> Vec<u8> {
    let mut k = channel.0.to_vec();
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// HTLCs of a commitment of the peer's, as its owner sees them: `(offered
/// by the peer, id, amount, payment_hash, cltv_expiry)`: those first signed
/// in it (the oldest stores: all of its HTLCs). 53 bytes each, where an
/// entry per HTLC took 94 and a row of its own.
pub fn encode_remote_htlcs(htlcs: &[beongae_channel::commitments::SpecHtlc]) -> Vec<u8> {
    let mut w = Writer::new();
    w.write_u8(RECORD_VERSION);
    w.write_u16(htlcs.len() as u16); // at most 966
    for h in htlcs {
        w.write_u8(u8::from(h.offered));
        w.write_u64(h.id);
        w.write_u64(h.amount.to_msat());
        w.write_bytes(&h.payment_hash.0);
        w.write_u32(h.cltv_expiry);
    }
    w.into_vec()
}

/// Reads a list of HTLCs of one commitment ([`encode_remote_htlcs`]).
fn decode_remote_htlcs(
    bytes: &[u8],
) -> Result<Vec<beongae_channel::commitments::SpecHtlc>, RecordError> {
    let mut r = Reader::new(bytes);
    if r.read_u8()? != RECORD_VERSION {
        return Err(RecordError::Corrupt("htlc list version".into()));
    }
    let n = r.read_u16()?;
    let v = (0..n)
        .map(|_| {
            Ok(beongae_channel::commitments::SpecHtlc {
                offered: match r.read_u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(RecordError::Corrupt("htlc direction".into())),
                },
                id: r.read_u64()?,
                amount: Msat::from_msat(r.read_u64()?),
                payment_hash: PaymentHash(r.read_array()?),
                cltv_expiry: r.read_u32()?,
            })
        })
        .collect::<Result<_, RecordError>>()?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use beongae_wire::msgs::{U16Bytes, UpdateFailHtlc, UpdateFulfillHtlc};
    use beongae_wire::TlvStream;

    #[test]
    fn records_round_trip_and_refuse_truncation() {
        let peer = NodeId::from_pubkey(
            bitcoin::secp256k1::PublicKey::from_slice(&[
                2, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce,
                0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81,
                0x5b, 0x16, 0xf8, 0x17, 0x98,
            ])
            .unwrap(),
        );
        let redo = vec![
            Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
                channel_id: ChannelId([1; 32]),
                id: 4,
                payment_preimage: [9; 32],
                extension: TlvStream::default(),
            }),
            Message::UpdateFailHtlc(UpdateFailHtlc {
                channel_id: ChannelId([1; 32]),
                id: 5,
                reason: U16Bytes(vec![7; 292]),
                extension: TlvStream::default(),
            }),
        ];
        let funding_tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn::default()],
            output: vec![bitcoin::TxOut {
                value: Amount::from_sat(1_000_000),
                script_pubkey: bitcoin::ScriptBuf::new(),
            }],
        };
        let rec = ChannelRecord {
            peer,
            index: 3,
            funding: Amount::from_sat(1_000_000),
            phase: StoredPhase::Normal {
                state: vec![1, 2, 3],
                scid: ShortChannelId::new(800_000, 12, 1),
                redo: redo.clone(),
                remote_alias: ShortChannelId::new(16_000_123, 4, 5),
                closing_txs: Vec::new(),
                funding_tx: Some(funding_tx.clone()),
            },
        };
        let bytes = rec.encode();
        let back = ChannelRecord::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        let StoredPhase::Normal {
            redo: got,
            scid,
            funding_tx: kept,
            ..
        } = back.phase
        else {
            panic!()
        };
        assert_eq!(got, redo);
        assert_eq!(kept, Some(funding_tx));
        // As version 7 wrote it: no funding transaction (the flag byte of
        // an absent one is the last), read as none.
        let mut without = rec;
        if let StoredPhase::Normal { funding_tx, .. } = &mut without.phase {
            *funding_tx = None;
        }
        let mut v7 = without.encode();
        assert_eq!(v7.pop(), Some(0));
        v7[0] = 7;
        let old = ChannelRecord::decode(&v7).unwrap();
        assert_eq!(old.encode(), without.encode());
        assert_eq!(scid, ShortChannelId::new(800_000, 12, 1));
        for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(ChannelRecord::decode(&bytes[..cut]).is_err(), "{cut}");
        }

        // The peer's HTLCs, each kept once from its first commitment; a
        // list per commitment from stores written before.
        let htlc = |offered, id, msat| beongae_channel::commitments::SpecHtlc {
            offered,
            id,
            amount: Msat::from_msat(msat),
            payment_hash: PaymentHash([id as u8; 32]),
            cltv_expiry: 500 + id as u32,
        };
        let ch = ChannelId([4; 32]);
        let (h1, h2, h3) = (
            htlc(true, 1, 5_000_000),
            htlc(false, 7, 1_000),
            htlc(true, 2, 9),
        );
        let mut entries = vec![
            (remote_htlc_key(ch, 3, &h1), encode_remote_htlc(&h1)),
            (remote_htlc_key(ch, 5, &h2), encode_remote_htlc(&h2)),
            (remote_htlc_key(ch, 9, &h3), encode_remote_htlc(&h3)),
        ];
        let read = |e: &[(Vec<u8>, Vec<u8>)], n| remote_htlcs_in(e, n);
        assert_eq!(read(&entries, 2), (vec![], 0));
        assert_eq!(read(&entries, 5), (vec![h1.clone(), h2.clone()], 0));
        assert_eq!(
            read(&entries, 9),
            (vec![h1.clone(), h2.clone(), h3.clone()], 0)
        );
        // A list of commitment 4 from before (h3 in it, later carried into
        // commitments 5.. without an entry of its own): a candidate from 4 on.
        let mut legacy = ch.0.to_vec();
        legacy.extend_from_slice(&4u64.to_be_bytes());
        entries.push((legacy, encode_remote_htlcs(std::slice::from_ref(&h3))));
        assert_eq!(read(&entries, 3), (vec![h1.clone()], 0));
        assert_eq!(read(&entries, 4), (vec![h1.clone(), h3.clone()], 0));
        assert_eq!(
            read(&entries, 5),
            (vec![h1.clone(), h2.clone(), h3.clone()], 0)
        );
        // What is written now: the HTLCs first in commitment 11, in one
        // list.
        let (h4, h5) = (htlc(false, 8, 2_000), htlc(true, 3, 3_000));
        entries.push((
            remote_htlcs_key(ch, 11),
            encode_remote_htlcs(&[h4.clone(), h5.clone()]),
        ));
        assert_eq!(entries.last().unwrap().0.len(), 40);
        assert_eq!(entries.last().unwrap().1.len(), 3 + 2 * 53);
        // (h3 twice: its own entry and the old list; a penalty takes each
        // output once.)
        let before_11 = vec![h1.clone(), h2.clone(), h3.clone(), h3.clone()];
        assert_eq!(read(&entries, 10), (before_11.clone(), 0));
        assert_eq!(read(&entries, 11), ([before_11, vec![h4, h5]].concat(), 0));
        // An entry that does not read is skipped and counted; the others
        // still count.
        entries[0].1.pop();
        entries.push((vec![4; 33], vec![]));
        assert_eq!(read(&entries, 5), (vec![h2, h3], 2));

        let inv = InvoiceRecord {
            index: 7,
            invoice: StoredInvoice::Text("lnbcrt1...".into()),
            amount: Some(Msat::from_msat(1_500)),
            received: Some(Msat::from_msat(1_500)),
            settled_by: Some((ChannelId([2; 32]), 9)),
        };
        let bytes = inv.encode();
        assert_eq!(InvoiceRecord::decode(&bytes).unwrap(), inv);
        assert!(InvoiceRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        let compact = InvoiceRecord {
            invoice: StoredInvoice::Compact(vec![6, 1, 2, 3]),
            received: None,
            settled_by: None,
            ..inv
        };
        let bytes = compact.encode();
        assert_eq!(
            bytes,
            [
                &[2][..],
                &7u64.to_be_bytes(),
                &[1, 0, 0, 0, 4, 6, 1, 2, 3],
                &1_500u64.to_be_bytes(),
                &u64::MAX.to_be_bytes(),
                &[0],
            ]
            .concat()
        );
        assert_eq!(InvoiceRecord::decode(&bytes).unwrap(), compact);
        let mut unknown_form = bytes;
        unknown_form[9] = 2;
        assert!(InvoiceRecord::decode(&unknown_form).is_err());
    }

    /// Invoice records of version 1 kept the string: still read.
    #[test]
    fn an_invoice_record_of_version_1_reads() {
        let mut w = Writer::new();
        w.write_u8(1);
        w.write_u64(3);
        put_str(&mut w, "lnbcrt10u1p...");
        w.write_u64(1_000_000);
        w.write_u64(1_000_000);
        w.write_u8(1);
        w.write_bytes(&[8; 32]);
        w.write_u64(4);
        assert_eq!(
            InvoiceRecord::decode(&w.into_vec()).unwrap(),
            InvoiceRecord {
                index: 3,
                invoice: StoredInvoice::Text("lnbcrt10u1p...".into()),
                amount: Some(Msat::from_msat(1_000_000)),
                received: Some(Msat::from_msat(1_000_000)),
                settled_by: Some((ChannelId([8; 32]), 4)),
            }
        );
    }

    /// Issue 14: outgoing payments keep when they were sent (version 3);
    /// a version 2 record reads with the time unknown (0).
    #[test]
    fn an_outgoing_record_keeps_its_time_and_reads_version_2() {
        let node = NodeId::from_pubkey(bitcoin::secp256k1::PublicKey::from_secret_key(
            &bitcoin::secp256k1::Secp256k1::new(),
            &bitcoin::secp256k1::SecretKey::from_slice(&[7; 32]).unwrap(),
        ));
        let rec = OutgoingRecord {
            payment_hash: PaymentHash([1; 32]),
            amount: Msat::from_msat(2_500_000),
            channel_id: ChannelId([2; 32]),
            htlc_id: 3,
            shared_secrets: vec![SharedSecret([4; 32])],
            status: OutgoingStatus::Succeeded(Preimage([5; 32])),
            delivered: Msat::from_msat(2_499_000),
            attempts: 2,
            route: vec![node],
            created: 1_796_573_152,
        };
        let bytes = rec.encode();
        assert_eq!(bytes[0], 3);
        assert_eq!(OutgoingRecord::decode(&bytes).unwrap(), rec);
        // The same record as version 2 wrote it: no time at the end.
        let mut v2 = bytes[..bytes.len() - 8].to_vec();
        v2[0] = 2;
        let old = OutgoingRecord::decode(&v2).unwrap();
        assert_eq!(old.created, 0);
        assert_eq!(old, OutgoingRecord { created: 0, ..rec });
        // A version 3 record cut short is refused, not misread.
        let mut short = bytes.clone();
        short.pop();
        assert!(OutgoingRecord::decode(&short).is_err());
    }

    /// Issue 14: a closed channel keeps who opened it and the peer's
    /// balance (version 7); a version 6 record reads them as unknown.
    #[test]
    fn a_closed_channel_keeps_its_funder_and_the_peers_balance() {
        let peer = NodeId::from_pubkey(bitcoin::secp256k1::PublicKey::from_secret_key(
            &bitcoin::secp256k1::Secp256k1::new(),
            &bitcoin::secp256k1::SecretKey::from_slice(&[9; 32]).unwrap(),
        ));
        let rec = ChannelRecord {
            peer,
            index: 4,
            funding: Amount::from_sat(1_000_000),
            phase: StoredPhase::Closed(Closed {
                funding_outpoint: OutPoint {
                    txid: Txid::from_byte_array([3; 32]),
                    vout: 1,
                },
                tx: None,
                txid: Some(Txid::from_byte_array([5; 32])),
                local: Msat::from_msat(750_000_000),
                confirmed: Some(200),
                reason: "cooperative close".into(),
                kept: None,
                withheld: Withheld::No,
                sweeps: Vec::new(),
                spent: Vec::new(),
                theirs: Vec::new(),
                we_are_funder: Some(true),
                remote: Some(Msat::from_msat(250_000_000)),
                funding_tx: None,
            }),
        };
        let bytes = rec.encode();
        assert_eq!(bytes[0], 8);
        let closed = |r: ChannelRecord| match r.phase {
            StoredPhase::Closed(c) => c,
            _ => panic!("not closed"),
        };
        let back = closed(ChannelRecord::decode(&bytes).unwrap());
        assert_eq!(back.we_are_funder, Some(true));
        assert_eq!(back.remote, Some(Msat::from_msat(250_000_000)));
        assert_eq!(back.local, Msat::from_msat(750_000_000));
        assert_eq!(back.reason, "cooperative close");
        // As version 7 wrote it: without the last byte (no funding
        // transaction).
        let mut v7 = bytes[..bytes.len() - 1].to_vec();
        v7[0] = 7;
        assert_eq!(
            closed(ChannelRecord::decode(&v7).unwrap()).remote,
            Some(Msat::from_msat(250_000_000))
        );
        // As version 6 wrote it: without the last ten bytes.
        let mut v6 = bytes[..bytes.len() - 10].to_vec();
        v6[0] = 6;
        let old = closed(ChannelRecord::decode(&v6).unwrap());
        assert_eq!((old.we_are_funder, old.remote), (None, None));
        assert_eq!(old.confirmed, Some(200));
        assert!(ChannelRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        // Our funding, on chain at 150 or off it.
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn::default()],
            output: Vec::new(),
        };
        for at in [Some(150), None] {
            let mut with = rec.clone();
            if let StoredPhase::Closed(c) = &mut with.phase {
                c.funding_tx = Some((tx.clone(), at));
            }
            let bytes = with.encode();
            let back = closed(ChannelRecord::decode(&bytes).unwrap());
            assert_eq!(back.funding_tx, Some((tx.clone(), at)));
            assert!(ChannelRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
