//! The on-chain wallet: BDK with BIP 84 (P2WPKH) and BIP 86 (P2TR)
//! descriptors from the seed, fed blocks from a [`ChainSource`].

use std::str::FromStr;

use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use bitcoin::bip32::Xpriv;
use bitcoin::{
    Address, Amount, BlockHash, FeeRate, Network, OutPoint, ScriptBuf, Transaction, Weight,
};

use beongae_chain::{ChainError, ChainSource};
use beongae_script::FeeratePerKw;

/// A transaction built from the wallet's coins and not broadcast yet.
#[derive(Debug, Clone)]
struct Reserved {
    /// The coins it spends.
    coins: Vec<OutPoint>,
    /// Its outputs back to the wallet (change).
    back: Amount,
}

/// Why a wallet operation failed; each says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The chain could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Not enough confirmed funds.
    #[error("insufficient funds: need {needed} (amount plus fee), have {available} spendable")]
    InsufficientFunds {
        /// What the payment needs.
        needed: Amount,
        /// What is spendable.
        available: Amount,
    },
    /// Funding a channel, or a payment, would leave less than the fee
    /// reserve.
    #[error("the wallet would keep {} sat, below the {} sat kept to pay the fees of anchor channels' force closes (10,000 sat per channel, at most 100,000): add funds, or spend less (`all` leaves the reserve)", .left.to_sat(), .reserve.to_sat())]
    BelowFeeReserve {
        /// What would be left.
        left: Amount,
        /// The reserve.
        reserve: Amount,
    },
    /// A payment of everything would pay nothing once the fee (and the
    /// fee reserve) are taken.
    #[error("the wallet has nothing to send once the fee and the reserve kept for anchor channels' force closes are paid")]
    NothingToSend,
    /// The amount is below what the network relays.
    #[error("amount {0} is below the dust limit for that address; send more")]
    Dust(Amount),
    /// The address is for another network.
    #[error("address {address} is for another network than this node's ({network})")]
    WrongNetwork {
        /// The address.
        address: String,
        /// Our network.
        network: Network,
    },
    /// The address does not parse.
    #[error("`{0}` is not a bitcoin address")]
    BadAddress(String),
    /// BDK failed (a bug or an inconsistent chain).
    #[error("wallet: {0}")]
    Internal(String),
}

/// Balances in satoshi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OnchainBalance {
    /// Confirmed and spendable.
    pub confirmed: Amount,
    /// In the mempool.
    pub unconfirmed: Amount,
    /// Coinbase outputs not yet mature.
    pub immature: Amount,
}

/// Which kind of address to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressKind {
    /// BIP 84 native segwit v0 (`bc1q…`).
    #[default]
    P2wpkh,
    /// BIP 86 taproot key path (`bc1p…`).
    P2tr,
}

/// What a transaction pays to its recipient.
enum Target {
    /// This amount; change comes back.
    Pay(Amount),
    /// Everything, but for this output kept back to the wallet.
    Sweep { keep: Option<(ScriptBuf, Amount)> },
}

/// Which coins a payment may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Funding {
    Taproot,
    SegwitV0,
    Both,
}

/// The node's on-chain wallet: a BIP 84 (P2WPKH) and a BIP 86 (P2TR) BDK
/// wallet from the same master key, synced together.
pub struct OnchainWallet {
    wpkh: Wallet,
    tr: Wallet,
    master: Xpriv,
    network: Network,
    /// Last block applied.
    synced: (u32, BlockHash),
    /// Where each wallet is persisted (BDK's SQLite tables), if it is.
    db: Option<Persistence>,
    /// Coins of transactions built and not broadcast yet (a funding
    /// awaiting the peer's signature, a claim the node keeps first): not
    /// picked again, and in memory only, so that a crash before the
    /// broadcast frees them.
    reserved: std::collections::HashMap<bitcoin::Txid, Reserved>,
}

/// The two wallets' SQLite databases, in a directory.
struct Persistence {
    dir: std::path::PathBuf,
    wpkh: bdk_wallet::rusqlite::Connection,
    tr: bdk_wallet::rusqlite::Connection,
}

/// File names of the persisted wallets in their directory.
const WPKH_DB: &str = "wallet-p2wpkh.sqlite";
const TR_DB: &str = "wallet-p2tr.sqlite";

impl std::fmt::Debug for OnchainWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OnchainWallet({}, synced to {})",
            self.network, self.synced.0
        )
    }
}

fn internal(e: impl std::fmt::Display) -> WalletError {
    WalletError::Internal(e.to_string())
}

impl OnchainWallet {
    /// A wallet for `network` with BIP 84 and BIP 86 keys under `master`.
    pub fn new(master: &Xpriv, network: Network) -> Result<Self, WalletError> {
        let (wpkh, tr) = Self::empty_pair(master, network)?;
        let genesis = bitcoin::constants::genesis_block(network).block_hash();
        Ok(OnchainWallet {
            wpkh,
            tr,
            master: *master,
            network,
            synced: (0, genesis),
            db: None,
            reserved: std::collections::HashMap::new(),
        })
    }

    /// A wallet persisted in `dir` (BDK's own SQLite persistence, one file
    /// per descriptor pair): what it learned — blocks, our unconfirmed
    /// transactions, the addresses it gave out — survives a restart, and
    /// syncing resumes from where it stopped. Loads what is there, or
    /// starts one.
    pub fn open(
        master: &Xpriv,
        network: Network,
        dir: &std::path::Path,
    ) -> Result<Self, WalletError> {
        std::fs::create_dir_all(dir).map_err(internal)?;
        let mut wpkh_db =
            bdk_wallet::rusqlite::Connection::open(dir.join(WPKH_DB)).map_err(internal)?;
        let mut tr_db =
            bdk_wallet::rusqlite::Connection::open(dir.join(TR_DB)).map_err(internal)?;
        let (fresh_wpkh, fresh_tr) = Self::empty_pair(master, network)?;
        let load =
            |db: &mut bdk_wallet::rusqlite::Connection| -> Result<Option<Wallet>, WalletError> {
                let tx = db.transaction().map_err(internal)?;
                bdk_wallet::ChangeSet::init_sqlite_tables(&tx).map_err(internal)?;
                let changeset = bdk_wallet::ChangeSet::from_sqlite(&tx).map_err(internal)?;
                tx.commit().map_err(internal)?;
                Wallet::load()
                    .check_network(network)
                    .load_wallet_no_persist(changeset)
                    .map_err(|e| internal(format!("the stored wallet does not load: {e}")))
            };
        let stored = (load(&mut wpkh_db)?, load(&mut tr_db)?);
        let (wpkh, tr) = match stored {
            (Some(a), Some(b))
                if a.public_descriptor(KeychainKind::External)
                    == fresh_wpkh.public_descriptor(KeychainKind::External)
                    && b.public_descriptor(KeychainKind::External)
                        == fresh_tr.public_descriptor(KeychainKind::External) =>
            {
                (a, b)
            }
            (None, None) => (fresh_wpkh, fresh_tr),
            _ => {
                return Err(internal(format!(
                    "the wallet in {} is not this seed's; move it away to start afresh",
                    dir.display()
                )))
            }
        };
        let tip = wpkh.latest_checkpoint().block_id();
        let mut w = OnchainWallet {
            wpkh,
            tr,
            master: *master,
            network,
            synced: (tip.height, tip.hash),
            db: Some(Persistence {
                dir: dir.to_owned(),
                wpkh: wpkh_db,
                tr: tr_db,
            }),
            reserved: std::collections::HashMap::new(),
        };
        w.persist()?;
        Ok(w)
    }

    /// Keeps the coins `tx` spends for it until it is broadcast
    /// ([`OnchainWallet::note_broadcast`]) or forgotten
    /// ([`OnchainWallet::forget`]).
    pub fn reserve(&mut self, tx: &Transaction) {
        let back = tx
            .output
            .iter()
            .filter(|o| self.is_mine(&o.script_pubkey))
            .map(|o| o.value)
            .sum();
        self.reserved.insert(
            tx.compute_txid(),
            Reserved {
                coins: tx.input.iter().map(|i| i.previous_output).collect(),
                back,
            },
        );
    }

    fn is_reserved(&self, outpoint: &OutPoint) -> bool {
        self.reserved.values().any(|r| r.coins.contains(outpoint))
    }

    /// Writes what changed to the wallets' databases, if persisted.
    fn persist(&mut self) -> Result<(), WalletError> {
        let Some(db) = &mut self.db else {
            return Ok(());
        };
        for (wallet, conn) in [(&mut self.wpkh, &mut db.wpkh), (&mut self.tr, &mut db.tr)] {
            if let Some(changes) = wallet.take_staged() {
                let tx = conn.transaction().map_err(internal)?;
                changes.persist_to_sqlite(&tx).map_err(internal)?;
                tx.commit().map_err(internal)?;
            }
        }
        Ok(())
    }

    /// After a reorg the wallets start over from genesis (a new pair, the
    /// databases emptied).
    fn restart_from_genesis(&mut self) -> Result<(), WalletError> {
        (self.wpkh, self.tr) = Self::empty_pair(&self.master, self.network)?;
        if let Some(db) = self.db.take() {
            let dir = db.dir.clone();
            drop(db);
            for f in [WPKH_DB, TR_DB] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            let w = Self::open(&self.master, self.network, &dir)?;
            self.db = w.db;
            (self.wpkh, self.tr) = (w.wpkh, w.tr);
        }
        Ok(())
    }

    fn empty_pair(master: &Xpriv, network: Network) -> Result<(Wallet, Wallet), WalletError> {
        let coin = if network == Network::Bitcoin { 0 } else { 1 };
        let make = |script: &str, purpose: u32| {
            Wallet::create(
                format!("{script}({master}/{purpose}'/{coin}'/0'/0/*)"),
                format!("{script}({master}/{purpose}'/{coin}'/0'/1/*)"),
            )
            .network(network)
            .create_wallet_no_persist()
            .map_err(internal)
        };
        Ok((make("wpkh", 84)?, make("tr", 86)?))
    }

    /// Applies every block from the last synced one to the tip. After a reorg
    /// (the synced block left the chain) it rescans from genesis.
    pub fn sync(&mut self, chain: &dyn ChainSource) -> Result<(), WalletError> {
        let (tip, _) = chain.tip()?;
        if chain.block_hash(self.synced.0)? != Some(self.synced.1) {
            self.restart_from_genesis()?;
            self.synced = (
                0,
                bitcoin::constants::genesis_block(self.network).block_hash(),
            );
        }
        for height in self.synced.0 + 1..=tip {
            let hash = chain
                .block_hash(height)?
                .ok_or_else(|| internal(format!("no block at height {height}")))?;
            let block = chain
                .block(&hash)?
                .ok_or_else(|| internal(format!("block {hash} vanished")))?;
            self.wpkh.apply_block(&block, height).map_err(internal)?;
            self.tr.apply_block(&block, height).map_err(internal)?;
            self.synced = (height, hash);
            if height % 1000 == 0 {
                self.persist()?;
            }
        }
        self.persist()
    }

    /// The height the wallet has seen.
    pub fn synced_height(&self) -> u32 {
        self.synced.0
    }

    /// A new receiving address (P2WPKH).
    pub fn new_address(&mut self) -> Address {
        self.new_address_of(AddressKind::P2wpkh)
    }

    /// A new receiving address of the given kind.
    pub fn new_address_of(&mut self, kind: AddressKind) -> Address {
        let wallet = match kind {
            AddressKind::P2wpkh => &mut self.wpkh,
            AddressKind::P2tr => &mut self.tr,
        };
        let address = wallet.reveal_next_address(KeychainKind::External).address;
        // Not given out again even if this write fails (BDK keeps the
        // index in memory); the next write saves it.
        let _ = self.persist();
        address
    }

    /// Balances (both kinds together).
    pub fn balance(&self) -> OnchainBalance {
        let (a, b) = (self.wpkh.balance(), self.tr.balance());
        OnchainBalance {
            confirmed: a.confirmed + b.confirmed,
            unconfirmed: a.trusted_pending
                + a.untrusted_pending
                + b.trusted_pending
                + b.untrusted_pending,
            immature: a.immature + b.immature,
        }
    }

    /// What the wallet can count on once `tx`, built from its coins and not
    /// broadcast yet, is: its confirmed coins and its own unconfirmed
    /// change (not coins others send that may never confirm), less what
    /// `tx` and every other transaction built and not broadcast yet
    /// ([`OnchainWallet::reserve`]) spend of it, plus their outputs back
    /// to the wallet.
    pub fn left_after(&self, tx: &Transaction) -> Amount {
        let (a, b) = (self.wpkh.balance(), self.tr.balance());
        let held = a.confirmed + a.trusted_pending + b.confirmed + b.trusted_pending;
        let coin = |o: &OutPoint| {
            self.wpkh
                .get_utxo(*o)
                .or_else(|| self.tr.get_utxo(*o))
                .map_or(Amount::ZERO, |u| u.txout.value)
        };
        let txid = tx.compute_txid();
        let spent: Amount = tx
            .input
            .iter()
            .map(|i| i.previous_output)
            .chain(
                self.reserved
                    .iter()
                    .filter(|(t, _)| **t != txid)
                    .flat_map(|(_, r)| r.coins.iter().copied()),
            )
            .map(|o| coin(&o))
            .sum();
        let back: Amount = tx
            .output
            .iter()
            .filter(|o| self.is_mine(&o.script_pubkey))
            .map(|o| o.value)
            .chain(
                self.reserved
                    .iter()
                    .filter(|(t, _)| **t != txid)
                    .map(|(_, r)| r.back),
            )
            .sum();
        (held + back).checked_sub(spent).unwrap_or(Amount::ZERO)
    }

    /// The value of the wallet's coins `tx` spends (all of its inputs, for
    /// a transaction the wallet built and has not broadcast yet).
    pub fn spent_by(&self, tx: &Transaction) -> Amount {
        tx.input
            .iter()
            .filter_map(|i| {
                self.wpkh
                    .get_utxo(i.previous_output)
                    .or_else(|| self.tr.get_utxo(i.previous_output))
            })
            .map(|u| u.txout.value)
            .sum()
    }

    fn is_mine(&self, script_pubkey: &ScriptBuf) -> bool {
        self.wpkh.is_mine(script_pubkey.clone()) || self.tr.is_mine(script_pubkey.clone())
    }

    /// Parses a user's address for this wallet's network.
    pub fn parse_address(&self, s: &str) -> Result<Address, WalletError> {
        Address::from_str(s)
            .map_err(|_| WalletError::BadAddress(s.to_owned()))?
            .require_network(self.network)
            .map_err(|_| WalletError::WrongNetwork {
                address: s.to_owned(),
                network: self.network,
            })
    }

    /// Builds and signs a transaction paying `amount` to `script_pubkey` at
    /// `feerate` (also how a channel's funding transaction is made). The
    /// caller broadcasts it and then calls [`OnchainWallet::note_broadcast`].
    ///
    /// Coins of one kind pay if they can (taproot first); otherwise every
    /// taproot coin is spent together with as many P2WPKH coins as needed.
    pub fn pay_to(
        &mut self,
        script_pubkey: ScriptBuf,
        amount: Amount,
        feerate: FeeratePerKw,
    ) -> Result<Transaction, WalletError> {
        self.pay_to_keeping(script_pubkey, amount, feerate, Amount::ZERO)
    }

    /// [`OnchainWallet::pay_to`], leaving at least `keep` in the wallet
    /// (as [`OnchainWallet::left_after`] counts): a kind of coins that
    /// would leave less (its change output costs more fee, say) is passed
    /// over for the next; if none leaves enough, the error says what would
    /// be left.
    pub fn pay_to_keeping(
        &mut self,
        script_pubkey: ScriptBuf,
        amount: Amount,
        feerate: FeeratePerKw,
        keep: Amount,
    ) -> Result<Transaction, WalletError> {
        if amount < script_pubkey.minimal_non_dust() {
            return Err(WalletError::Dust(amount));
        }
        let feerate = FeeRate::from_sat_per_kwu(u64::from(feerate.0));
        let mut below_reserve = None;
        let mut short = None;
        for funding in [Funding::Taproot, Funding::SegwitV0, Funding::Both] {
            match self.build(funding, &script_pubkey, Target::Pay(amount), feerate) {
                Ok(tx) => {
                    let left = self.left_after(&tx);
                    if left >= keep {
                        return Ok(tx);
                    }
                    below_reserve.get_or_insert(WalletError::BelowFeeReserve {
                        left,
                        reserve: keep,
                    });
                }
                Err(e @ WalletError::InsufficientFunds { .. }) => short = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(below_reserve
            .or(short)
            .unwrap_or_else(|| internal("no way of funding was tried")))
    }

    /// Builds and signs a transaction paying everything the wallet can
    /// spend to `script_pubkey` at `feerate`, except `keep`, which goes to
    /// a new change address of the wallet (the fee reserve of anchor
    /// channels). Spends every confirmed coin but immature coinbase
    /// outputs, and the wallet's own unconfirmed P2WPKH change; coins
    /// reserved for a transaction not yet broadcast stay, and so do
    /// unconfirmed coins paid to a receiving address. The caller broadcasts it and then
    /// calls [`OnchainWallet::note_broadcast`].
    pub fn sweep_to(
        &mut self,
        script_pubkey: ScriptBuf,
        feerate: FeeratePerKw,
        keep: Amount,
    ) -> Result<Transaction, WalletError> {
        let feerate = FeeRate::from_sat_per_kwu(u64::from(feerate.0));
        // A reserve too small to be an output is left to the fee.
        let keep = (keep > Amount::ZERO).then(|| {
            let spk = self
                .wpkh
                .next_unused_address(KeychainKind::Internal)
                .script_pubkey();
            let keep = keep.max(spk.minimal_non_dust());
            (spk, keep)
        });
        let tx = self
            .build(
                Funding::Both,
                &script_pubkey,
                Target::Sweep { keep },
                feerate,
            )
            .map_err(|e| match e {
                WalletError::InsufficientFunds { available, .. } if available == Amount::ZERO => {
                    WalletError::NothingToSend
                }
                other => other,
            })?;
        let sent = tx
            .output
            .iter()
            .find(|o| o.script_pubkey == script_pubkey)
            .map_or(Amount::ZERO, |o| o.value);
        if sent < script_pubkey.minimal_non_dust() {
            return Err(WalletError::NothingToSend);
        }
        Ok(tx)
    }

    fn build(
        &mut self,
        funding: Funding,
        spk: &ScriptBuf,
        target: Target,
        feerate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        let height = self.synced.0;
        let foreign: Vec<(OutPoint, bitcoin::psbt::Input)> = match funding {
            Funding::Both => {
                // Foreign inputs skip BDK's own filters: take only confirmed
                // coins, and coinbase outputs only once mature (100 blocks).
                let utxos: Vec<_> = self
                    .tr
                    .list_unspent()
                    .filter(|u| {
                        let bdk_wallet::chain::ChainPosition::Confirmed { anchor, .. } =
                            &u.chain_position
                        else {
                            return false;
                        };
                        let coinbase = self
                            .tr
                            .get_tx(u.outpoint.txid)
                            .is_none_or(|t| t.tx_node.tx.is_coinbase());
                        !coinbase || (height + 1).saturating_sub(anchor.block_id.height) >= 100
                    })
                    .filter(|u| !self.is_reserved(&u.outpoint))
                    .collect();
                utxos
                    .into_iter()
                    .map(|u| {
                        Ok((
                            u.outpoint,
                            self.tr.get_psbt_input(u, None, false).map_err(internal)?,
                        ))
                    })
                    .collect::<Result<_, WalletError>>()?
            }
            Funding::Taproot | Funding::SegwitV0 => Vec::new(),
        };
        let reserved: Vec<OutPoint> = self
            .reserved
            .values()
            .flat_map(|r| r.coins.iter().copied())
            .collect();
        let wallet = if funding == Funding::Taproot {
            &mut self.tr
        } else {
            &mut self.wpkh
        };
        // Unconfirmed coins paid to a receiving address (not our change):
        // a mutual close or a claim of ours that a racing transaction may
        // still replace. They pay once confirmed (`left_after` does not
        // count them either).
        let untrusted: Vec<OutPoint> = wallet
            .list_unspent()
            .filter(|u| u.keychain == KeychainKind::External && !u.chain_position.is_confirmed())
            .map(|u| u.outpoint)
            .collect();
        let mut builder = wallet.build_tx();
        builder
            .fee_rate(feerate)
            .current_height(height)
            .unspendable(reserved.into_iter().chain(untrusted).collect());
        match target {
            Target::Pay(amount) => {
                builder.add_recipient(spk.clone(), amount);
            }
            Target::Sweep { keep } => {
                builder.drain_wallet().drain_to(spk.clone());
                if let Some((keep_spk, keep)) = keep {
                    builder.add_recipient(keep_spk, keep);
                }
            }
        }
        for (outpoint, input) in foreign {
            // Key-path spend: item count, length and a 64-byte signature.
            builder
                .add_foreign_utxo(outpoint, input, Weight::from_wu(66))
                .map_err(internal)?;
        }
        let mut psbt = builder.finish().map_err(|e| match e {
            bdk_wallet::error::CreateTxError::CoinSelection(c) => WalletError::InsufficientFunds {
                needed: c.needed,
                available: c.available,
            },
            // A sweep of nothing, or of less than its fee.
            bdk_wallet::error::CreateTxError::NoUtxosSelected
            | bdk_wallet::error::CreateTxError::OutputBelowDustLimit(_) => {
                WalletError::NothingToSend
            }
            other => internal(other),
        })?;
        psbt.sign(&self.master, self.wpkh.secp_ctx())
            .map_err(|(_, errors)| internal(format!("{errors:?}")))?;
        // Each wallet finalizes the inputs of its own descriptors.
        self.wpkh
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(internal)?;
        self.tr
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(internal)?;
        if psbt.inputs.iter().any(|i| i.final_script_witness.is_none()) {
            return Err(internal("could not sign every input"));
        }
        psbt.extract_tx().map_err(internal)
    }

    /// Adds confirmed coins of the wallet and a change output (after the
    /// existing outputs) to `tx`, so that the whole pays `feerate`, and
    /// signs the added inputs. The existing inputs (spending `prevouts`) are
    /// signed already in a way that lets inputs and outputs be added
    /// (`SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`, as an anchor channel's HTLC
    /// transactions are, BOLT 3) and pay no fee themselves. With `parent`
    /// (the weight and fee of an unconfirmed transaction `tx` spends), the
    /// fee brings the two together to `feerate` (child pays for parent).
    /// A fee above `max_fee` (what the transaction saves) is refused.
    /// The caller broadcasts it and then calls
    /// [`OnchainWallet::note_broadcast`].
    pub fn add_fee_inputs(
        &mut self,
        tx: Transaction,
        prevouts: &[bitcoin::TxOut],
        feerate: FeeratePerKw,
        parent: Option<(u64, Amount)>,
        max_fee: Amount,
    ) -> Result<Transaction, WalletError> {
        if prevouts.len() != tx.input.len() {
            return Err(internal("one previous output per existing input"));
        }
        let height = self.synced.0;
        let mature = |w: &Wallet, u: &bdk_wallet::LocalOutput| {
            let bdk_wallet::chain::ChainPosition::Confirmed { anchor, .. } = &u.chain_position
            else {
                return false;
            };
            let coinbase = w
                .get_tx(u.outpoint.txid)
                .is_none_or(|t| t.tx_node.tx.is_coinbase());
            !coinbase || (height + 1).saturating_sub(anchor.block_id.height) >= 100
        };
        // (coin, taproot), largest first.
        let mut coins: Vec<(bdk_wallet::LocalOutput, bool)> = self
            .wpkh
            .list_unspent()
            .filter(|u| mature(&self.wpkh, u))
            .map(|u| (u, false))
            .chain(
                self.tr
                    .list_unspent()
                    .filter(|u| mature(&self.tr, u))
                    .map(|u| (u, true)),
            )
            .filter(|(u, _)| !self.is_reserved(&u.outpoint))
            .collect();
        coins.sort_by_key(|(u, _)| std::cmp::Reverse(u.txout.value));
        let change_script = self
            .wpkh
            .next_unused_address(KeychainKind::Internal)
            .script_pubkey();
        // The change output (8 + 1 + 22 bytes) and a margin for the counts.
        let mut weight = tx.weight().to_wu() + 4 * 31 + 8;
        let mut total = Amount::ZERO;
        let mut chosen = Vec::new();
        let dust = change_script.minimal_non_dust();
        let (parent_weight, parent_fee) = parent.unwrap_or((0, Amount::ZERO));
        let fee_for = |weight: u64| {
            // At least the child's own feerate, whatever the parent paid.
            feerate
                .fee_for_weight(weight + parent_weight)
                .checked_sub(parent_fee)
                .unwrap_or(Amount::ZERO)
                .max(feerate.fee_for_weight(weight))
        };
        let mut fee = fee_for(weight);
        for (coin, taproot) in coins {
            // Outpoint, script length, sequence; then the witness: a 64-byte
            // Schnorr signature, or a 72-byte ECDSA one and a 33-byte key.
            weight += 4 * 41 + if taproot { 66 } else { 1 + 73 + 34 };
            total += coin.txout.value;
            chosen.push((coin, taproot));
            fee = fee_for(weight);
            if total >= fee + dust {
                break;
            }
        }
        if total < fee + dust {
            return Err(WalletError::InsufficientFunds {
                needed: fee + dust,
                available: total,
            });
        }
        if fee > max_fee {
            return Err(internal(format!(
                "the fee {fee} would exceed the {max_fee} at stake"
            )));
        }
        let mut unsigned = tx.clone();
        for input in &mut unsigned.input {
            input.witness = bitcoin::Witness::new();
        }
        for (coin, _) in &chosen {
            unsigned.input.push(bitcoin::TxIn {
                previous_output: coin.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: bitcoin::Witness::new(),
            });
        }
        unsigned.output.push(bitcoin::TxOut {
            value: total - fee,
            script_pubkey: change_script,
        });
        let first = tx.input.len();
        self.sign_coins(unsigned, &tx, prevouts, chosen, first)
    }

    /// Signs inputs `first..` of `unsigned` (our `coins`, in order); the
    /// inputs before keep `signed`'s witnesses and spend `prevouts`.
    fn sign_coins(
        &self,
        unsigned: Transaction,
        signed: &Transaction,
        prevouts: &[bitcoin::TxOut],
        coins: Vec<(bdk_wallet::LocalOutput, bool)>,
        first: usize,
    ) -> Result<Transaction, WalletError> {
        let mut psbt = bitcoin::Psbt::from_unsigned_tx(unsigned).map_err(internal)?;
        for (n, prevout) in prevouts.iter().enumerate().take(first) {
            psbt.inputs[n].witness_utxo = Some(prevout.clone());
        }
        for (k, (coin, taproot)) in coins.into_iter().enumerate() {
            let wallet = if taproot { &self.tr } else { &self.wpkh };
            psbt.inputs[first + k] = wallet.get_psbt_input(coin, None, false).map_err(internal)?;
        }
        // Signs the inputs with our key derivations (not the others).
        let _ = psbt.sign(&self.master, self.wpkh.secp_ctx());
        self.wpkh
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(internal)?;
        self.tr
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(internal)?;
        let mut out = psbt.unsigned_tx.clone();
        for (n, input) in out.input.iter_mut().enumerate() {
            input.witness = if n < first {
                signed.input[n].witness.clone()
            } else {
                psbt.inputs[n]
                    .final_script_witness
                    .clone()
                    .ok_or_else(|| internal("could not sign an input of ours"))?
            };
        }
        Ok(out)
    }

    /// Spends every input of our unconfirmed transaction `tx` (a channel's
    /// funding) back to a new address of ours, paying at least `feerate`
    /// and more than `tx` and its descendants did (BIP 125: their fees,
    /// `descendants_fee` for those, plus 1 sat/vB of the new size), so that
    /// `tx` can never confirm. The wallet forgets `tx`. The caller
    /// broadcasts it and then calls [`OnchainWallet::note_broadcast`].
    pub fn double_spend(
        &mut self,
        tx: &Transaction,
        feerate: FeeratePerKw,
        descendants_fee: Amount,
        now: u64,
    ) -> Result<Transaction, WalletError> {
        self.forget(tx.compute_txid(), now);
        let coins: Vec<(bdk_wallet::LocalOutput, bool)> = tx
            .input
            .iter()
            .map(|i| {
                self.wpkh
                    .get_utxo(i.previous_output)
                    .map(|u| (u, false))
                    .or_else(|| self.tr.get_utxo(i.previous_output).map(|u| (u, true)))
                    .ok_or_else(|| {
                        internal(format!(
                            "input {} is not an unspent coin of this wallet",
                            i.previous_output
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let total: Amount = coins.iter().map(|(u, _)| u.txout.value).sum();
        let paid = total
            .checked_sub(tx.output.iter().map(|o| o.value).sum())
            .ok_or_else(|| internal("the transaction pays out more than its inputs"))?;
        let script = self
            .wpkh
            .next_unused_address(KeychainKind::Internal)
            .script_pubkey();
        // Version, counts, locktime; each input; one P2WPKH output; the
        // witnesses (a 64-byte Schnorr signature, or a 72-byte ECDSA one
        // and a 33-byte key).
        let weight = 4 * (10 + 31)
            + 2
            + coins
                .iter()
                .map(|(_, taproot)| 4 * 41 + if *taproot { 66 } else { 1 + 73 + 34 })
                .sum::<u64>();
        let fee = feerate
            .fee_for_weight(weight)
            .max(paid + descendants_fee + Amount::from_sat(weight.div_ceil(4)));
        let value = total
            .checked_sub(fee)
            .filter(|v| *v >= script.minimal_non_dust())
            .ok_or(WalletError::InsufficientFunds {
                needed: fee + script.minimal_non_dust(),
                available: total,
            })?;
        let unsigned = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: coins
                .iter()
                .map(|(u, _)| bitcoin::TxIn {
                    previous_output: u.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: bitcoin::Witness::new(),
                })
                .collect(),
            output: vec![bitcoin::TxOut {
                value,
                script_pubkey: script,
            }],
        };
        let signed = unsigned.clone();
        self.sign_coins(unsigned, &signed, &[], coins, 0)
    }

    /// Forgets a transaction recorded with
    /// [`OnchainWallet::note_broadcast`] that will never confirm (replaced,
    /// or conflicting with one that did): its inputs count as unspent again
    /// and its outputs no more. If it confirms after all, the block says
    /// so.
    pub fn forget(&mut self, txid: bitcoin::Txid, now: u64) {
        // Evicted after it was last seen (note_broadcast's `now`).
        self.reserved.remove(&txid);
        self.wpkh.apply_evicted_txs([(txid, now + 1)]);
        self.tr.apply_evicted_txs([(txid, now + 1)]);
        let _ = self.persist();
    }

    /// Records a transaction we broadcast, so its change counts as unconfirmed
    /// and its inputs are not spent twice.
    pub fn note_broadcast(&mut self, tx: Transaction, now: u64) {
        self.reserved.remove(&tx.compute_txid());
        self.wpkh.apply_unconfirmed_txs([(tx.clone(), now)]);
        self.tr.apply_unconfirmed_txs([(tx, now)]);
        // Kept across a restart: its inputs are never spent twice.
        let _ = self.persist();
    }
}
