//! The channel layer of two cores wired to each other in memory (no I/O):
//! opening, a payment, and what a misbehaving peer gets. Every output list
//! is checked for the persistence rule: the `Persist` batch comes before
//! any channel message, broadcast or reply of the same input.

use std::collections::{BTreeMap, VecDeque};

use beongae_chain::devnet::{Devnet, COINBASE_MATURITY};
use beongae_wallet::{KeyManager, Seed};
use beongae_wire::msgs::{OnionPacketBytes, UpdateAddHtlc, ONION_PACKET_LEN};
use beongae_wire::{ErrorMessage, Feature, Init, TlvStream};
use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, Sequence, TxIn, TxOut, Witness};

use super::*;

const PA: PeerId = PeerId(1);
const PB: PeerId = PeerId(2);

fn keys(b: u8) -> KeyManager {
    let seed = Seed::from_entropy([b; 32]);
    KeyManager::new(
        seed.master_key(bitcoin::NetworkKind::Test),
        bitcoin::Network::Regtest,
    )
}

fn node_id_of(k: &KeyManager) -> NodeId {
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    NodeId::from_pubkey(bitcoin::secp256k1::PublicKey::from_secret_key(
        &secp,
        &k.node_secret(),
    ))
}

mod htlcs;
mod onchain;
mod safety;
mod trio;
mod unfunded;

/// A store in memory: (namespace, key) -> value.
type MemStore = beongae_store::MemoryMap;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    A,
    B,
}

struct Pair {
    a: NodeCore,
    b: NodeCore,
    ids: (NodeId, NodeId),
    now: Duration,
    height: u32,
    /// Transactions each side broadcast.
    broadcasts: Vec<(Side, Transaction)>,
    /// Replies each side gave.
    replies: Vec<(Side, Reply)>,
    /// Transactions each side told its wallet to forget.
    forgotten: Vec<(Side, Txid)>,
    /// Messages each side sent (after the fact).
    sent: Vec<(Side, Message)>,
    /// The events each side raised.
    events: Vec<(Side, super::Event)>,
    /// Whether messages are delivered (false: the link is down).
    linked: bool,
    /// What each side's store holds: (namespace, key) -> value.
    stores: [MemStore; 2],
    /// Changes a message on its way (a misbehaving or broken peer).
    tamper: Option<fn(Side, &mut Message)>,
    /// Once this side sends a message of this name, neither it nor
    /// anything after it of that side's reaches the other (it goes silent).
    mute_after: Option<(Side, &'static str)>,
    /// A real regtest chain whose mempool (Bitcoin Core's script
    /// interpreter) is offered every transaction the nodes broadcast; the
    /// funding transactions spend its coins.
    devnet: Devnet,
    /// What the devnet's mempool said of each broadcast.
    mempool: Vec<(Txid, Result<(), String>)>,
    /// Store reads asked for and not answered (a crash before the answer).
    drop_loads: bool,
    /// Wallet requests ([`Output::FundClaim`]) asked for and not answered
    /// (a crash before the answer, or an answer still to come: kept in
    /// `unanswered`).
    drop_funding: bool,
    /// Wallet requests not answered while `drop_funding`.
    unanswered: Vec<(Side, Output)>,
}

/// The key the devnet's coins pay to (P2WPKH); funding transactions spend them.
fn coin_key() -> SecretKey {
    SecretKey::from_slice(&[0x77; 32]).unwrap()
}

fn coin_script() -> ScriptBuf {
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let pk = bitcoin::CompressedPublicKey(bitcoin::secp256k1::PublicKey::from_secret_key(
        &secp,
        &coin_key(),
    ));
    ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
}

/// A devnet with 20 mature coins paying [`coin_script`].
fn funded_devnet() -> Devnet {
    let mut d = Devnet::new();
    d.mine(20, &coin_script(), 1_700_000_000);
    d.mine(
        COINBASE_MATURITY,
        &ScriptBuf::new_op_return([0u8; 4]),
        1_700_000_000,
    );
    d
}

/// `fee` is `rate` (sat/kW) on the estimated weight of `tx`: at least on
/// its real weight, and within the 50 weight units the estimate may
/// exceed it by (73-byte signatures assumed).
fn assert_fee_at(fee: u64, tx: &Transaction, rate: u64) {
    let w = tx.weight().to_wu();
    assert!(
        fee >= rate * w / 1000 && fee <= rate * (w + 50) / 1000,
        "a fee of {fee} sat is not {rate} sat/kW on {w} weight units"
    );
}

/// Signs input `n` of `tx`, spending a devnet coin of `value` paying
/// [`coin_script`] (P2WPKH, `SIGHASH_ALL`).
fn sign_coin(tx: &mut Transaction, n: usize, value: Amount) {
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let sighash = SighashCache::new(&*tx)
        .p2wpkh_signature_hash(n, &coin_script(), value, EcdsaSighashType::All)
        .unwrap();
    let signature = secp.sign_ecdsa(
        &bitcoin::secp256k1::Message::from_digest(sighash.to_byte_array()),
        &coin_key(),
    );
    let pk = bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &coin_key());
    tx.input[n].witness = Witness::p2wpkh(
        &bitcoin::ecdsa::Signature {
            signature,
            sighash_type: EcdsaSighashType::All,
        },
        &pk,
    );
}

/// A signed transaction paying `amount` to `script_pubkey` from the next
/// unspent devnet coin, the change back to the coin key.
fn real_funding(d: &Devnet, script_pubkey: ScriptBuf, amount: Amount, used: usize) -> Transaction {
    let (outpoint, coin) = d.utxos_for(&coin_script())[used].clone();
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![
            TxOut {
                value: amount,
                script_pubkey,
            },
            TxOut {
                value: coin.txout.value - amount - Amount::from_sat(1_000),
                script_pubkey: coin_script(),
            },
        ],
    };
    sign_coin(&mut tx, 0, coin.txout.value);
    tx
}

fn settings() -> ChannelSettings {
    ChannelSettings {
        close_script: Some(ScriptBuf::new_p2wpkh(
            &bitcoin::WPubkeyHash::from_byte_array([9; 20]),
        )),
        ..ChannelSettings::default()
    }
}

use bitcoin::hashes::Hash as _;

/// Every output list: the persist batch precedes what depends on it.
fn check_order(outs: &[Output]) {
    if let Some((i, o)) = super::misordered_output(outs) {
        panic!("output {i} ({o:?}) before the persist of its input");
    }
}

/// A channel crate record of `side`'s first channel, read with its keys
/// and the onions kept apart from it.
fn decode_channel(
    side: Side,
    state: &[u8],
    onions: &channels::onions::Kept,
) -> beongae_channel::normal::NormalChannel {
    let k = keys(if side == Side::A { 1 } else { 2 }).channel(0);
    beongae_channel::normal::NormalChannel::decode_state_apart(
        state,
        onions,
        beongae_channel::sign::SigningKeys {
            funding_key: k.funding,
            htlc_base_key: k.htlc_base,
        },
        beongae_channel::revocation::LocalSecrets::new(k.commitment_seed),
    )
    .expect("a channel record")
}

/// `side`'s normal channel `id` as `store` holds it.
fn stored_channel(
    store: &MemStore,
    side: Side,
    id: ChannelId,
) -> beongae_channel::normal::NormalChannel {
    let bytes = store
        .get(&(channels::record::NS_CHANNELS.to_string(), id.0.to_vec()))
        .expect("a stored channel");
    let channels::record::StoredPhase::Normal { state, .. } =
        channels::record::ChannelRecord::decode(bytes)
            .unwrap()
            .phase
    else {
        panic!("not a normal channel")
    };
    let entries: Vec<(Vec<u8>, Vec<u8>)> = store
        .iter()
        .filter(|((ns, _), _)| ns == channels::onions::NS_ONIONS)
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect();
    let onions = channels::onions::load(&entries)
        .unwrap()
        .remove(&id)
        .unwrap_or_default();
    decode_channel(side, &state, &onions)
}

/// A core with keys `k` and node id `id` built from `store` alone, at
/// `height`.
fn restore_core(k: KeyManager, id: NodeId, store: &MemStore, height: u32) -> NodeCore {
    restore_core_with(k, id, store, height, settings())
}

/// [`restore_core`] with `settings`.
fn restore_core_with(
    k: KeyManager,
    id: NodeId,
    store: &MemStore,
    height: u32,
    settings: ChannelSettings,
) -> NodeCore {
    let stored = StoredState::from_map(store);
    NodeCore::with_channels(
        id,
        CoreConfig::new(ChainHash::REGTEST),
        k,
        settings,
        height,
        stored,
    )
    .expect("the store reads back")
}

/// What the store must reproduce of a channel: everything but whether the
/// peer is connected right now.
fn stored_view(mut c: ChannelSummary) -> ChannelSummary {
    // What depends on the connection, not on what is stored.
    c.active = false;
    c.spendable = Msat::ZERO;
    c.receivable = Msat::ZERO;
    c
}

impl Pair {
    fn new() -> Pair {
        Pair::with_b_config(CoreConfig::new(ChainHash::REGTEST))
    }

    /// A pair where B runs with `b_config` (e.g. other features).
    fn with_b_config(b_config: CoreConfig) -> Pair {
        let (ka, kb) = (keys(1), keys(2));
        let ids = (node_id_of(&ka), node_id_of(&kb));
        let config = CoreConfig::new(ChainHash::REGTEST);
        let a = NodeCore::with_channels(ids.0, config, ka, settings(), 100, StoredState::default())
            .unwrap();
        let b =
            NodeCore::with_channels(ids.1, b_config, kb, settings(), 100, StoredState::default())
                .unwrap();
        let mut p = Pair {
            a,
            b,
            ids,
            now: Duration::ZERO,
            height: 100,
            broadcasts: Vec::new(),
            replies: Vec::new(),
            forgotten: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
            linked: true,
            stores: [BTreeMap::new(), BTreeMap::new()],
            tamper: None,
            mute_after: None,
            devnet: funded_devnet(),
            mempool: Vec::new(),
            drop_loads: false,
            drop_funding: false,
            unanswered: Vec::new(),
        };
        p.connect();
        p
    }

    fn connect(&mut self) {
        self.linked = true;
        let (ida, idb) = self.ids;
        self.run(vec![
            (
                Side::A,
                Input::PeerConnected {
                    peer: PA,
                    node_id: idb,
                    direction: Direction::Outbound,
                    remote_addr: None,
                },
            ),
            (
                Side::B,
                Input::PeerConnected {
                    peer: PB,
                    node_id: ida,
                    direction: Direction::Inbound,
                    remote_addr: None,
                },
            ),
        ]);
    }

    fn disconnect(&mut self) {
        self.linked = false;
        self.run(vec![
            (Side::A, Input::PeerDisconnected { peer: PA }),
            (Side::B, Input::PeerDisconnected { peer: PB }),
        ]);
    }

    /// `side` restarts from what its store holds (its link drops first).
    fn restart(&mut self, side: Side) {
        self.disconnect();
        let store = self.stores[side as usize].clone();
        *self.core(side) = self.restored(side, &store);
        self.connect();
    }

    /// A core of `side` built from `store` alone.
    fn restored(&self, side: Side, store: &MemStore) -> NodeCore {
        let (k, id) = match side {
            Side::A => (keys(1), self.ids.0),
            Side::B => (keys(2), self.ids.1),
        };
        restore_core(k, id, store, self.height)
    }

    /// After every input: a core restored from the store alone holds the
    /// same channels as the live one (states, balances, HTLCs, short
    /// channel ids, closing transactions), so an input that changed a
    /// channel and forgot to persist it fails here.
    fn check_restorable(&self, side: Side, input: &str) {
        let live: Vec<ChannelSummary> = match side {
            Side::A => self.a.channels(),
            Side::B => self.b.channels(),
        }
        .into_iter()
        .map(stored_view)
        .collect();
        let back: Vec<ChannelSummary> = self
            .restored(side, &self.stores[side as usize])
            .channels()
            .into_iter()
            .map(stored_view)
            .collect();
        assert_eq!(live, back, "{side:?} did not persist what {input} changed");
    }

    /// The channel state `side`'s store keeps for a closed channel.
    fn kept_state(&self, side: Side, id: ChannelId) -> Option<channels::record::KeptState> {
        let bytes = self.stores[side as usize]
            .get(&(channels::record::NS_CHANNELS.to_string(), id.0.to_vec()))
            .expect("a stored channel");
        match channels::record::ChannelRecord::decode(bytes)
            .unwrap()
            .phase
        {
            channels::record::StoredPhase::Closed(c) => c.kept,
            _ => panic!("not closed"),
        }
    }

    fn unmuted(&self, side: Side) -> bool {
        self.mute_after.is_none_or(|(muted, name)| {
            muted != side
                || !self
                    .sent
                    .iter()
                    .any(|(s, m)| *s == side && m.name() == name)
        })
    }

    fn core(&mut self, s: Side) -> &mut NodeCore {
        match s {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Feeds inputs and everything they cause until quiet.
    fn run(&mut self, start: Vec<(Side, Input)>) {
        let mut queue: VecDeque<(Side, Input)> = start.into();
        let mut steps = 0;
        while let Some((side, input)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 10_000, "no quiescence");
            let now = self.now;
            let what = format!("{input:?}").chars().take(120).collect::<String>();
            let outs = self.core(side).handle(now, input);
            check_order(&outs);
            let other = if side == Side::A { Side::B } else { Side::A };
            let to_peer = if other == Side::A { PA } else { PB };
            for o in outs {
                match o {
                    Output::Send { mut msg, .. } => {
                        self.sent.push((side, msg.clone()));
                        let deliver = self.linked && self.unmuted(side);
                        if let Some(t) = self.tamper {
                            t(side, &mut msg);
                        }
                        if deliver {
                            let bytes = msg.encode().unwrap();
                            queue.push_back((
                                other,
                                Input::PeerMessage {
                                    peer: to_peer,
                                    bytes,
                                },
                            ));
                        }
                    }
                    Output::BuildFunding {
                        node_id,
                        temporary_channel_id,
                        script_pubkey,
                        amount,
                        ..
                    } => {
                        let used = self
                            .broadcasts
                            .iter()
                            .filter(|(_, t)| {
                                t.output.len() == 2 && t.output[1].script_pubkey == coin_script()
                            })
                            .count();
                        let tx = real_funding(&self.devnet, script_pubkey, amount, used);
                        queue.push_back((
                            side,
                            Input::FundingBuilt {
                                node_id,
                                temporary_channel_id,
                                result: Ok(tx),
                            },
                        ));
                    }
                    Output::BroadcastPackage { parent, child } => {
                        // The devnet takes the parent alone (no mempool
                        // minimum above 1 sat/vB), then the child.
                        let _ = self.devnet.accept(parent);
                        let got = self
                            .devnet
                            .accept(child.clone())
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        self.mempool.push((child.compute_txid(), got));
                        self.broadcasts.push((side, child));
                    }
                    Output::Broadcast { tx } => {
                        let got = self
                            .devnet
                            .accept(tx.clone())
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        self.mempool.push((tx.compute_txid(), got));
                        self.broadcasts.push((side, tx));
                    }
                    Output::Persist(batch) => batch.apply_to(&mut self.stores[side as usize]),
                    Output::Reply { reply, .. } => self.replies.push((side, reply)),
                    Output::FundClaim {
                        channel_id,
                        tx,
                        feerate,
                        parent,
                        max_fee,
                        ..
                    } if !self.drop_funding => {
                        let outpoint = tx.input[0].previous_output;
                        let result = Ok(self.add_fee_input(tx, feerate, parent, max_fee));
                        queue.push_back((
                            side,
                            Input::ClaimFunded {
                                channel_id,
                                outpoint,
                                result,
                            },
                        ));
                    }
                    Output::DoubleSpend {
                        channel_id,
                        tx,
                        feerate,
                        descendants_fee,
                    } if !self.drop_funding => {
                        let result = Ok(self.double_spend(&tx, feerate, descendants_fee));
                        queue.push_back((side, Input::DoubleSpent { channel_id, result }));
                    }
                    o @ (Output::FundClaim { .. } | Output::DoubleSpend { .. }) => {
                        self.unanswered.push((side, o));
                    }
                    Output::Forget { txid } => self.forgotten.push((side, txid)),
                    Output::Event(e) => self.events.push((side, e)),
                    Output::LoadRemoteHtlcs { channel_id, number } if !self.drop_loads => {
                        let stored = beongae_store::list_memory(
                            &self.stores[side as usize],
                            channels::record::NS_REMOTE_HTLCS,
                            &channel_id.0,
                        );
                        queue.push_back((
                            side,
                            Input::RemoteHtlcs {
                                channel_id,
                                number,
                                stored: Ok(stored),
                            },
                        ));
                    }
                    _ => {}
                }
            }
            self.check_restorable(side, &what);
        }
    }

    fn command(&mut self, side: Side, command: Command) -> Reply {
        let before = self.replies.len();
        self.run(vec![(
            side,
            Input::Command {
                id: CommandId(self.replies.len() as u64 + 1),
                command,
            },
        )]);
        self.replies[before..]
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, r)| r.clone())
            .expect("a reply")
    }

    /// What a wallet does with [`Output::FundClaim`]: adds a mature devnet
    /// coin no broadcast spent yet and a change output back to the coin
    /// key, so that the whole (with an unconfirmed `parent`'s weight and
    /// fee) pays `feerate`, and signs the coin.
    fn add_fee_input(
        &self,
        mut tx: Transaction,
        feerate: FeeratePerKw,
        parent: Option<(u64, Amount)>,
        max_fee: Amount,
    ) -> Transaction {
        let spent: std::collections::BTreeSet<bitcoin::OutPoint> = self
            .broadcasts
            .iter()
            .flat_map(|(_, t)| t.input.iter().map(|i| i.previous_output))
            .collect();
        let tip = self.devnet.height();
        let (outpoint, coin) = self
            .devnet
            .utxos_for(&coin_script())
            .into_iter()
            .find(|(o, c)| !spent.contains(o) && (!c.coinbase || c.height + 100 <= tip))
            .expect("a spendable devnet coin");
        tx.input.push(TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        });
        tx.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: coin_script(),
        });
        // The coin's witness: a 72-byte signature and a 33-byte key.
        let weight = tx.weight().to_wu() + 1 + 73 + 34;
        let (pw, pfee) = parent.unwrap_or((0, Amount::ZERO));
        let fee = (feerate.fee_for_weight(weight + pw) - pfee).max(feerate.fee_for_weight(weight));
        assert!(
            fee <= max_fee,
            "a fee of {fee} above the {max_fee} at stake"
        );
        let last = tx.output.len() - 1;
        tx.output[last].value = coin.txout.value - fee;
        let n = tx.input.len() - 1;
        sign_coin(&mut tx, n, coin.txout.value);
        tx
    }

    /// What a wallet does with [`Output::DoubleSpend`]: spends the devnet
    /// coin of funding transaction `tx` back to the coin key, paying at
    /// least `feerate` and more than `tx` and its descendants (BIP 125).
    fn double_spend(
        &self,
        tx: &Transaction,
        feerate: FeeratePerKw,
        descendants_fee: Amount,
    ) -> Transaction {
        let outpoint = tx.input[0].previous_output;
        let coin = self
            .devnet
            .utxos_for(&coin_script())
            .into_iter()
            .find(|(o, _)| *o == outpoint)
            .expect("the funding's coin")
            .1;
        let paid = coin.txout.value - tx.output.iter().map(|o| o.value).sum();
        let mut spend = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: coin_script(),
            }],
        };
        let weight = spend.weight().to_wu() + 2 + 1 + 73 + 34;
        let fee = feerate
            .fee_for_weight(weight)
            .max(paid + descendants_fee + Amount::from_sat(weight.div_ceil(4)));
        spend.output[0].value = coin.txout.value - fee;
        sign_coin(&mut spend, 0, coin.txout.value);
        spend
    }

    /// A block holding `txs` at the next height, to both sides.
    fn block(&mut self, txs: Vec<Transaction>) {
        self.height += 1;
        let mut header = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        header.time = self.height;
        let block = Arc::new(Block {
            header,
            txdata: txs,
        });
        let h = self.height;
        self.run(vec![
            (
                Side::A,
                Input::BlockConnected {
                    height: h,
                    block: block.clone(),
                },
            ),
            (Side::B, Input::BlockConnected { height: h, block }),
        ]);
    }

    fn channel(&self, side: Side) -> ChannelSummary {
        let c = match side {
            Side::A => self.a.channels(),
            Side::B => self.b.channels(),
        };
        c.into_iter().next().expect("a channel")
    }

    /// A opens 1_000_000 sat to B and the channel becomes normal.
    fn open(&mut self) -> (ChannelId, Transaction) {
        self.open_with(Msat::from_msat(100_000_000))
    }

    /// A opens 1_000_000 sat to B pushing `push`, and the channel becomes normal.
    fn open_with(&mut self, push: Msat) -> (ChannelId, Transaction) {
        let (id, funding) = self.start_open(push);
        self.confirm(&funding);
        (id, funding)
    }

    /// The funding is mined and buried 3 blocks: both sides are normal.
    fn confirm(&mut self, funding: &Transaction) {
        self.block(vec![funding.clone()]);
        self.block(vec![]);
        assert_eq!(
            self.channel(Side::B).state,
            ChannelState::AwaitingConfirmation
        );
        self.block(vec![]);
        assert_eq!(self.channel(Side::A).state, ChannelState::Normal);
        assert_eq!(self.channel(Side::B).state, ChannelState::Normal);
    }

    /// A opens 1_000_000 sat to B: both commitment 0s are signed and the
    /// funding is broadcast, not mined.
    fn start_open(&mut self, push: Msat) -> (ChannelId, Transaction) {
        let reply = self.command(
            Side::A,
            Command::OpenChannel {
                node_id: self.ids.1,
                funding: Amount::from_sat(1_000_000),
                push,
                announce: false,
            },
        );
        let Reply::ChannelOpened {
            channel_id,
            funding_txid,
        } = reply
        else {
            panic!("{reply:?}")
        };
        let funding = self
            .broadcasts
            .iter()
            .find(|(s, tx)| *s == Side::A && tx.compute_txid() == funding_txid)
            .unwrap()
            .1
            .clone();
        (channel_id, funding)
    }

    fn pay(&mut self, from: Side, msat: u64) -> Reply {
        let pay = self.pay_command(from, msat);
        self.command(from, pay)
    }

    /// The other side's invoice for `msat`, and the command for `from` to pay it.
    fn pay_command(&mut self, from: Side, msat: u64) -> Command {
        let to = if from == Side::A { Side::B } else { Side::A };
        let Reply::Invoice { invoice, .. } = self.command(
            to,
            Command::CreateInvoice {
                amount: Some(Msat::from_msat(msat)),
                description: "t".into(),
                expiry_secs: 3600,
                now_secs: 1_700_000_000,
            },
        ) else {
            panic!()
        };
        Command::Pay {
            invoice,
            amount: None,
            now_secs: 1_700_000_000,
            session_key: SecretKey::from_slice(&[0x33; 32]).unwrap(),
        }
    }

    /// `from` starts paying `msat` to the other side; no reply is awaited.
    fn start_pay(&mut self, from: Side, msat: u64) {
        let command = self.pay_command(from, msat);
        let id = CommandId(1_000 + self.replies.len() as u64);
        self.run(vec![(from, Input::Command { id, command })]);
    }

    /// `payer` pays 10_000 sat; the payee fulfils and goes silent from its
    /// `update_fulfill_htlc` on (which is lost too). Returns the HTLC's
    /// `cltv_expiry`.
    fn pay_then_silence(&mut self, payer: Side) -> u32 {
        self.pay_then_silence_of(payer, 10_000_000)
    }

    /// [`Pair::pay_then_silence`] of `msat`.
    fn pay_then_silence_of(&mut self, payer: Side, msat: u64) -> u32 {
        let payee = if payer == Side::A { Side::B } else { Side::A };
        self.mute_after = Some((payee, "UpdateFulfillHtlc"));
        self.start_pay(payer, msat);
        assert!(self
            .sent
            .iter()
            .any(|(s, m)| *s == payee && m.name() == "UpdateFulfillHtlc"));
        self.sent
            .iter()
            .find_map(|(s, m)| match m {
                Message::UpdateAddHtlc(UpdateAddHtlc { cltv_expiry, .. }) if *s == payer => {
                    Some(*cltv_expiry)
                }
                _ => None,
            })
            .expect("the payer's update_add_htlc")
    }

    /// A's broadcasts from `since` on.
    fn a_broadcasts(&self, since: usize) -> Vec<Transaction> {
        self.broadcasts[since..]
            .iter()
            .filter(|(s, _)| *s == Side::A)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The block at the tip leaves the chain (both sides).
    fn unblock(&mut self) {
        let height = self.height;
        self.height -= 1;
        self.run(vec![
            (Side::A, Input::BlockDisconnected { height }),
            (Side::B, Input::BlockDisconnected { height }),
        ]);
    }

    /// The transaction `txid` one of the nodes broadcast.
    fn broadcast(&self, txid: Txid) -> Transaction {
        self.broadcasts
            .iter()
            .find(|(_, t)| t.compute_txid() == txid)
            .map(|(_, t)| t.clone())
            .expect("broadcast")
    }

    /// `side` forces channel `id` closed: its commitment, broadcast (or
    /// kept, while its unconfirmed funding is double-spent).
    /// (A payment waiting on the channel is answered first: pending on
    /// chain.)
    fn force_close(&mut self, side: Side, id: ChannelId) -> Transaction {
        let before = self.replies.len();
        self.command(side, Command::ForceCloseChannel { channel_id: id });
        let txid = self.replies[before..]
            .iter()
            .find_map(|(s, r)| match r {
                Reply::ChannelClosed { txid, .. } if *s == side => Some(*txid),
                _ => None,
            })
            .unwrap_or_else(|| panic!("not forced: {:?}", &self.replies[before..]));
        // Held back while an unconfirmed funding is double-spent: kept.
        let kept = match self
            .core(side)
            .channels
            .as_ref()
            .map(|c| &c.entries[&id].phase)
        {
            Some(channels::Phase::Closed(c)) => c.tx.clone(),
            _ => None,
        };
        kept.filter(|t| t.compute_txid() == txid)
            .unwrap_or_else(|| self.broadcast(txid))
    }

    /// A connects to B and gets B's `init`, and nothing more of B's (no
    /// `channel_reestablish`): the link is down again afterwards.
    fn reconnect_a_alone(&mut self) {
        self.linked = true;
        self.run(vec![(
            Side::A,
            Input::PeerConnected {
                peer: PA,
                node_id: self.ids.1,
                direction: Direction::Outbound,
                remote_addr: None,
            },
        )]);
        self.linked = false;
        let init = Init {
            features: default_features(),
            networks: Some(vec![ChainHash::REGTEST]),
            ..Init::default()
        };
        self.run(vec![(
            Side::A,
            Input::PeerMessage {
                peer: PA,
                bytes: Message::Init(init).encode().unwrap(),
            },
        )]);
    }

    /// A message from B to A, as B's connection would deliver it.
    fn deliver_from_b(&mut self, msg: Message) -> usize {
        let before = self.sent.len();
        let bytes = msg.encode().unwrap();
        self.run(vec![(Side::A, Input::PeerMessage { peer: PA, bytes })]);
        before
    }
}

/// A's failed channel: its own latest commitment (anchors, no HTLC) went
/// out, spending the funding output, and the devnet's mempool took it: it
/// pays B's balance exactly, and A's less the commitment fee (1_124 weight
/// units at 2_500 sat/kw) and the two 330 sat anchors it owes as funder.
fn check_force_closed(p: &Pair, funding: &Transaction, a_msat: u64, b_msat: u64) {
    let (_, tx) = p.broadcasts.iter().rfind(|(s, _)| *s == Side::A).unwrap();
    assert_eq!(
        tx.input[0].previous_output,
        OutPoint {
            txid: funding.compute_txid(),
            vout: 0
        }
    );
    let mut values: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
    values.sort_unstable();
    let fee = 1_124 * 2_500 / 1000;
    assert_eq!(
        values,
        vec![330, 330, b_msat / 1000, a_msat / 1000 - fee - 660],
        "anchors, B, A"
    );
    let txid = tx.compute_txid();
    assert_eq!(
        p.mempool
            .iter()
            .rfind(|(t, _)| *t == txid)
            .map(|(_, r)| r.clone()),
        Some(Ok(())),
        "the devnet's mempool accepts A's commitment"
    );
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
}

fn errors_sent(p: &Pair, since: usize) -> Vec<String> {
    p.sent[since..]
        .iter()
        .filter_map(|(s, m)| match (s, m) {
            (Side::A, Message::Error(e)) => Some(e.printable_data()),
            _ => None,
        })
        .collect()
}

#[test]
fn open_and_pay_with_persistence_first() {
    let mut p = Pair::new();
    let (_, funding) = p.open();
    assert_eq!(funding.output[0].value, Amount::from_sat(1_000_000));
    let Reply::Paid { amount, .. } = p.pay(Side::A, 25_000_000) else {
        panic!()
    };
    assert_eq!(amount, Msat::from_msat(25_000_000));
    let Reply::Paid { .. } = p.pay(Side::B, 5_000_000) else {
        panic!()
    };
    assert_eq!(
        p.channel(Side::A).local,
        Msat::from_msat(900_000_000 - 25_000_000 + 5_000_000)
    );
    assert_eq!(
        p.channel(Side::B).local,
        Msat::from_msat(100_000_000 + 25_000_000 - 5_000_000)
    );
    assert_eq!(p.channel(Side::A).short_channel_id.unwrap().block(), 101);
    // A kept each HTLC of B's commitments it signed once, with the first
    // commitment of B's it is in (what a penalty needs): A's 25_000 sat
    // payment as received by B, B's 5_000 sat as offered by B.
    let kept: Vec<(u64, Vec<u8>)> = p.stores[0]
        .iter()
        .filter(|((ns, _), _)| ns == channels::record::NS_REMOTE_HTLCS)
        .map(|((_, k), _)| (u64::from_be_bytes(k[32..40].try_into().unwrap()), k.clone()))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let entries: Vec<(Vec<u8>, Vec<u8>)> = p.stores[0]
        .iter()
        .filter(|((ns, _), _)| ns == channels::record::NS_REMOTE_HTLCS)
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect();
    let last = kept.iter().map(|(n, _)| *n).max().unwrap();
    let (all, unreadable) = channels::record::remote_htlcs_in(&entries, last);
    assert_eq!(unreadable, 0);
    let seen = |offered: bool, msat: u64| {
        all.iter()
            .any(|h| h.offered == offered && h.amount == Msat::from_msat(msat))
    };
    assert!(seen(false, 25_000_000) && seen(true, 5_000_000), "{all:?}");
    assert!(kept.iter().all(|(n, _)| *n >= 1));
    // Each side sent its alias in channel_ready and keeps the peer's.
    let (a, b) = (p.channel(Side::A), p.channel(Side::B));
    assert!(a.alias.unwrap().block() >= 16_000_000);
    assert_ne!(a.alias, b.alias);
    assert_eq!(b.remote_alias, a.alias);
    assert_eq!(a.remote_alias, b.alias);
}

#[test]
fn a_bad_htlc_fails_the_channel_and_broadcasts_our_commitment() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    // BOLT 2: an amount_msat below our htlc_minimum_msat MUST fail the
    // channel. (B does not get our error: the link drops.)
    p.linked = false;
    let since = p.deliver_from_b(Message::UpdateAddHtlc(UpdateAddHtlc {
        channel_id: id,
        id: 0,
        amount_msat: 0,
        payment_hash: [1; 32],
        cltv_expiry: 500,
        onion_routing_packet: OnionPacketBytes(Box::new([0; ONION_PACKET_LEN])),
        path_key: None,
        extension: TlvStream::default(),
    }));
    let errors = errors_sent(&p, since);
    assert_eq!(errors, ["htlc amount is zero"]);
    check_force_closed(&p, &funding, 900_000_000, 100_000_000);
    // The failed channel's error goes again when the peer comes back.
    p.disconnect();
    let before = p.sent.len();
    p.connect();
    assert!(p.sent[before..]
        .iter()
        .any(|(s, m)| *s == Side::A && matches!(m, Message::Error(_))));
}

#[test]
fn the_peers_error_fails_the_channel() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    p.pay(Side::A, 10_000_000);
    p.deliver_from_b(Message::Error(ErrorMessage::new(id, "something broke")));
    check_force_closed(&p, &funding, 890_000_000, 110_000_000);
}

#[test]
fn unknown_odd_messages_and_early_updates_keep_the_channel() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    // An unknown odd channel message (type 99) is ignored (BOLT 1).
    let mut bytes = 99u16.to_be_bytes().to_vec();
    bytes.extend_from_slice(&id.0);
    let since = p.sent.len();
    p.run(vec![(Side::A, Input::PeerMessage { peer: PA, bytes })]);
    assert!(p.sent[since..].is_empty(), "{:?}", &p.sent[since..]);
    // An update before channel_reestablish after a reconnection: a warning,
    // the channel stays.
    p.disconnect();
    let sent = p.sent.len();
    p.reconnect_a_alone();
    assert!(p.sent[sent..]
        .iter()
        .any(|(s, m)| *s == Side::A && matches!(m, Message::ChannelReestablish(_))));
    let since = p.deliver_from_b(Message::UpdateAddHtlc(UpdateAddHtlc {
        channel_id: id,
        id: 0,
        amount_msat: 5_000_000,
        payment_hash: [1; 32],
        cltv_expiry: 500,
        onion_routing_packet: OnionPacketBytes(Box::new([0; ONION_PACKET_LEN])),
        path_key: None,
        extension: TlvStream::default(),
    }));
    assert!(
        matches!(&p.sent[since..], [(Side::A, Message::Warning(_))]),
        "{:?}",
        &p.sent[since..]
    );
    assert_eq!(p.channel(Side::A).state, ChannelState::Normal);
    assert!(
        p.broadcasts
            .iter()
            .all(|(_, tx)| tx.output[1].script_pubkey == coin_script()),
        "only the funding went out"
    );
}

#[test]
fn restarts_restore_channels_and_payments_then_a_cooperative_close() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    p.pay(Side::A, 30_000_000);
    // Each side restarts from its store alone and the channel goes on.
    p.restart(Side::A);
    p.restart(Side::B);
    assert_eq!(p.channel(Side::A).state, ChannelState::Normal);
    assert_eq!(p.channel(Side::A).local, Msat::from_msat(870_000_000));
    let Reply::Payments(list) = p.command(Side::A, Command::ListPayments) else {
        panic!()
    };
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].status.as_str(), list[0].amount),
        ("succeeded", Some(Msat::from_msat(30_000_000)))
    );
    let Reply::Paid { .. } = p.pay(Side::B, 1_000_000) else {
        panic!()
    };
    assert_eq!(p.channel(Side::B).local, Msat::from_msat(129_000_000));
    let Reply::ChannelClosed { txid, .. } =
        p.command(Side::B, Command::CloseChannel { channel_id: id })
    else {
        panic!()
    };
    let (_, tx) = p
        .broadcasts
        .iter()
        .find(|(_, t)| t.compute_txid() == txid)
        .unwrap();
    let values: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
    // option_simple_close: B, the closer, pays the fee for 700 weight units
    // at the 2_500 sat/kw default; A, the closee, gets its balance exactly.
    let fee = 2_500 * 700 / 1000;
    let mut sorted = values.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![129_000 - fee, 871_000], "{values:?}");
    assert_eq!(tx.input[0].sequence, bitcoin::Sequence(0xFFFF_FFFD));
    assert_eq!(tx.lock_time.to_consensus_u32(), p.height);
    // Both keep the channel until the closing transaction confirms.
    let tx = tx.clone();
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closing);
        assert_eq!(p.channel(side).closing_txid, Some(txid));
        assert!(p.core(side).pending_broadcasts().contains(&tx));
    }
    p.block(vec![tx.clone()]);
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closed);
        assert_eq!(p.channel(side).closing_txid, Some(txid));
        assert!(p.core(side).pending_broadcasts().is_empty());
        assert!(p.kept_state(side, id).is_some());
    }
    // Buried 100 blocks deep, a mutual close needs nothing any more.
    for _ in 0..99 {
        p.block(vec![]);
    }
    assert!(p.kept_state(Side::A, id).is_some());
    p.block(vec![]);
    assert!(p.kept_state(Side::A, id).is_none());
    assert!(p.kept_state(Side::B, id).is_none());
}

/// BOLT 2 rules whose violation MUST fail the channel, each sent by the
/// peer on an open channel with a 20_000 sat payment committed: we answer
/// with exactly this `error`, and broadcast our latest commitment, which
/// pays both sides their exact balances (no funds lost). (The channel
/// crate's tests cover every rule on the state machine itself, e.g. the
/// HTLC signature count, which needs the peer's valid commitment signature.)
#[test]
fn each_must_fail_violation_gets_an_error_and_our_commitment() {
    use beongae_wire::msgs::{
        CommitmentSigned, RevokeAndAck, UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc,
    };
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = SecretKey::from_slice(&[0x44; 32]).unwrap();
    let sig = secp.sign_ecdsa(&bitcoin::secp256k1::Message::from_digest([7; 32]), &key);
    let point = bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &key);
    let add = |id: ChannelId, htlc: u64, amount: u64| {
        Message::UpdateAddHtlc(UpdateAddHtlc {
            channel_id: id,
            id: htlc,
            amount_msat: amount,
            payment_hash: [1; 32],
            cltv_expiry: 500,
            onion_routing_packet: OnionPacketBytes(Box::new([0; ONION_PACKET_LEN])),
            path_key: None,
            extension: TlvStream::default(),
        })
    };
    type Case = (&'static str, Box<dyn Fn(ChannelId) -> Vec<Message>>);
    let cases: Vec<Case> = vec![
        // "if it receives an amount_msat equal to 0, or less than its own htlc_minimum_msat"
        (
            "htlc amount is zero",
            Box::new(move |id| vec![add(id, 1, 0)]),
        ),
        // "if the id is not exactly one greater than the last ... MUST fail"
        (
            "htlc id 5 out of sequence, expected 1",
            Box::new(move |id| vec![add(id, 5, 1_000_000)]),
        ),
        // "if the sending node sets amount_msat above what it can pay"
        (
            "htlc of 150000000 msat exceeds the offerer's balance 80000000 msat",
            Box::new(move |id| vec![add(id, 1, 150_000_000)]),
        ),
        // update_fulfill_htlc: "if the id does not correspond to an HTLC in its
        // current commitment transaction: MUST fail the channel"
        (
            "no htlc with id 7 to remove",
            Box::new(|id| {
                vec![Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
                    channel_id: id,
                    id: 7,
                    payment_preimage: [2; 32],
                    extension: TlvStream::default(),
                })]
            }),
        ),
        // update_fail_malformed_htlc without BADONION
        (
            "update_fail_malformed_htlc failure_code 0x1000 lacks BADONION",
            Box::new(|id| {
                vec![Message::UpdateFailMalformedHtlc(UpdateFailMalformedHtlc {
                    channel_id: id,
                    id: 0,
                    sha256_of_onion: [3; 32],
                    failure_code: 0x1000,
                    extension: TlvStream::default(),
                })]
            }),
        ),
        // "if signature is not valid for its local commitment transaction"
        (
            "commitment signature does not verify",
            Box::new(move |id| {
                vec![
                    add(id, 1, 1_000_000),
                    Message::CommitmentSigned(CommitmentSigned {
                        channel_id: id,
                        signature: sig,
                        htlc_signatures: vec![sig],
                        extension: TlvStream::default(),
                    }),
                ]
            }),
        ),
        // revoke_and_ack with no commitment of ours to revoke
        (
            "revoke_and_ack without a pending commitment_signed",
            Box::new(move |id| {
                vec![Message::RevokeAndAck(RevokeAndAck {
                    channel_id: id,
                    per_commitment_secret: [9; 32],
                    next_per_commitment_point: point,
                    extension: TlvStream::default(),
                })]
            }),
        ),
        // "if the sender is not responsible for paying the Bitcoin fee: MUST fail"
        (
            "update_fee from the non-funder",
            Box::new(|id| {
                vec![Message::UpdateFee(UpdateFee {
                    channel_id: id,
                    feerate_per_kw: 3_000,
                    extension: TlvStream::default(),
                })]
            }),
        ),
    ];
    let mut mismatches = Vec::new();
    for (expected, messages) in cases {
        let mut p = Pair::new();
        let (id, funding) = p.open();
        let Reply::Paid { .. } = p.pay(Side::B, 20_000_000) else {
            panic!()
        };
        p.linked = false;
        let since = p.sent.len();
        let events = p.events.len();
        for m in messages(id) {
            p.deliver_from_b(m);
        }
        let got = errors_sent(&p, since);
        if got != [expected] {
            mismatches.push(format!("expected {expected:?}, got {got:?}"));
            continue;
        }
        // A commitment_signed that does not sign the commitment we compute
        // for its number is counted as refused; nothing else is.
        let refused: Vec<String> = p.events[events..]
            .iter()
            .filter_map(|(s, e)| match (s, e) {
                (Side::A, super::Event::CommitmentRefused { reason, .. }) => Some(reason.clone()),
                _ => None,
            })
            .collect();
        let want: Vec<String> = if expected == "commitment signature does not verify" {
            vec![format!("commitment_signed: {expected}")]
        } else {
            vec![]
        };
        if refused != want {
            mismatches.push(format!("{expected}: refused {refused:?}"));
        }
        check_force_closed(&p, &funding, 920_000_000, 80_000_000);
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// The payer's stored record of a payment keeps the secrets shared with
/// the hops (BOLT 4: to read a failure returned for its HTLC) while the
/// payment is pending, and drops them once it succeeded or failed: a
/// million payments' records do not carry 32 bytes per hop for nothing.
#[test]
fn a_finished_payments_record_drops_its_shared_secrets() {
    let stored = |p: &Pair, hash: &PaymentHash| {
        let bytes = p.stores[Side::A as usize]
            .get(&(
                channels::record::NS_PAYMENTS.to_owned(),
                [&[b'o'][..], &hash.0].concat(),
            ))
            .expect("the payer's record")
            .clone();
        channels::record::OutgoingRecord::decode(&bytes).unwrap()
    };
    let mut p = Pair::new();
    p.open();
    // Pending: the payee fulfils and goes silent before A hears it.
    p.pay_then_silence(Side::A);
    let pending = p.core(Side::A).payments();
    let hash = pending.iter().find(|x| !x.incoming).unwrap().payment_hash;
    let rec = stored(&p, &hash);
    assert_eq!(rec.status, channels::record::OutgoingStatus::Pending);
    assert_eq!(rec.shared_secrets.len(), 1, "one hop");
    // Settled: the secrets are gone, the preimage kept.
    p.mute_after = None;
    p.disconnect();
    p.connect();
    let rec = stored(&p, &hash);
    assert!(matches!(
        rec.status,
        channels::record::OutgoingStatus::Succeeded(_)
    ));
    assert!(rec.shared_secrets.is_empty());
    assert_eq!(rec.amount, Msat::from_msat(10_000_000));
}
