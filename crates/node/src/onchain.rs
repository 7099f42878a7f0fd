//! The node's on-chain side: a [`ChainSource`] and the wallet synced from it.
//! Calls block on the chain source; async callers run them with
//! `spawn_blocking`.

use std::sync::{Arc, Mutex};

use beongae_chain::{ChainError, ChainSource};
use beongae_script::FeeratePerKw;
use beongae_wallet::{AddressKind, OnchainBalance, OnchainWallet, WalletError};
use bitcoin::{Address, Amount, Txid};

/// Runs after a change the caller may want to persist (e.g. a devnet save).
pub type AfterChange = Box<dyn Fn() + Send + Sync>;

/// What [`Onchain::max_payable`] leaves for the fee's rounding.
const FEE_ROUNDING: Amount = Amount::from_sat(10);

/// A payment from the wallet, broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its txid.
    pub txid: Txid,
    /// What the address received.
    pub amount: Amount,
    /// The fee it pays.
    pub fee: Amount,
}

/// Chain and wallet together.
pub struct Onchain {
    chain: Arc<dyn ChainSource>,
    wallet: Mutex<OnchainWallet>,
    after_broadcast: Option<AfterChange>,
}

impl std::fmt::Debug for Onchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Onchain")
    }
}

impl Onchain {
    /// Wraps a chain source and a wallet; `after_broadcast` runs after each
    /// transaction we broadcast.
    pub fn new(
        chain: Arc<dyn ChainSource>,
        wallet: OnchainWallet,
        after_broadcast: Option<AfterChange>,
    ) -> Self {
        Onchain {
            chain,
            wallet: Mutex::new(wallet),
            after_broadcast,
        }
    }

    fn wallet(&self) -> std::sync::MutexGuard<'_, OnchainWallet> {
        self.wallet.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chain source.
    pub fn chain(&self) -> &Arc<dyn ChainSource> {
        &self.chain
    }

    /// Catches the wallet up with the chain.
    pub fn sync(&self) -> Result<u32, WalletError> {
        let mut w = self.wallet();
        w.sync(self.chain.as_ref())?;
        Ok(w.synced_height())
    }

    /// A new receiving address (P2WPKH).
    pub fn new_address(&self) -> Address {
        self.wallet().new_address()
    }

    /// A new receiving address of the given kind.
    pub fn new_address_of(&self, kind: AddressKind) -> Address {
        self.wallet().new_address_of(kind)
    }

    /// Balances after catching up with the chain.
    pub fn balance(&self) -> Result<OnchainBalance, WalletError> {
        self.sync()?;
        Ok(self.wallet().balance())
    }

    /// Pays `amount` (everything with `None`) to `address` at `feerate`
    /// (default: the chain's 6-block estimate) and broadcasts the
    /// transaction, leaving at least `reserve` in the wallet (the fee
    /// reserve for anchor channels' force closes): a payment that would
    /// leave less is refused, and a payment of everything keeps exactly
    /// that back.
    pub fn send(
        &self,
        address: &str,
        amount: Option<Amount>,
        feerate: Option<FeeratePerKw>,
        reserve: Amount,
    ) -> Result<Sent, WalletError> {
        self.sync()?;
        let feerate = match feerate {
            Some(f) => f,
            None => self.chain.fee_estimate(6)?,
        };
        let mut w = self.wallet();
        let address = w.parse_address(address)?;
        let spk = address.script_pubkey();
        let tx = match amount {
            Some(amount) => w.pay_to_keeping(spk.clone(), amount, feerate, reserve)?,
            None => w.sweep_to(spk.clone(), feerate, reserve)?,
        };
        let out: Amount = tx.output.iter().map(|o| o.value).sum();
        let sent = Sent {
            txid: tx.compute_txid(),
            amount: tx
                .output
                .iter()
                .filter(|o| o.script_pubkey == spk)
                .map(|o| o.value)
                .sum(),
            fee: w.spent_by(&tx).checked_sub(out).unwrap_or(Amount::ZERO),
        };
        let txid = self.chain.broadcast(&tx).map_err(|e| match e {
            ChainError::Rejected(why) => {
                WalletError::Internal(format!("the chain refused our transaction: {why}"))
            }
            other => WalletError::Chain(other),
        })?;
        debug_assert_eq!(txid, sent.txid);
        w.note_broadcast(tx, unix_now());
        drop(w);
        if let Some(f) = &self.after_broadcast {
            f();
        }
        Ok(sent)
    }

    /// The most a transaction paying `script_pubkey` at `feerate` can pay
    /// from the wallet while keeping `reserve`, less a few sat: what
    /// [`Onchain::build_funding`] can then fund with the same coins, the
    /// reserve coming back as its change (its fee is counted a little
    /// differently from a sweep's, by a sat or two either way).
    pub fn max_payable(
        &self,
        script_pubkey: bitcoin::ScriptBuf,
        feerate: FeeratePerKw,
        reserve: Amount,
    ) -> Result<Amount, WalletError> {
        self.sync()?;
        let mut w = self.wallet();
        let tx = w.sweep_to(script_pubkey.clone(), feerate, reserve)?;
        let most: Amount = tx
            .output
            .iter()
            .filter(|o| o.script_pubkey == script_pubkey)
            .map(|o| o.value)
            .sum();
        Ok(most.checked_sub(FEE_ROUNDING).unwrap_or(Amount::ZERO))
    }

    /// A signed transaction paying `amount` to `script_pubkey` (a channel's
    /// funding output), not broadcast, leaving at least `reserve` in the
    /// wallet (the fee reserve for anchor channels' force closes). Its
    /// inputs are reserved from now on (in memory: a crash before the
    /// broadcast frees them), so a second funding cannot pick them while
    /// the first waits for the peer's signature.
    pub fn build_funding(
        &self,
        script_pubkey: bitcoin::ScriptBuf,
        amount: Amount,
        feerate: FeeratePerKw,
        reserve: Amount,
    ) -> Result<bitcoin::Transaction, WalletError> {
        self.sync()?;
        let mut w = self.wallet();
        let tx = w.pay_to_keeping(script_pubkey, amount, feerate, reserve)?;
        w.reserve(&tx);
        Ok(tx)
    }

    /// Our transaction `tx` of an anchor channel (an HTLC transaction, or
    /// the child spending our anchor) with wallet inputs and change added
    /// to pay `feerate` (for an unconfirmed `parent` too), signed, not
    /// broadcast, paying at most `max_fee`; its inputs are reserved until
    /// it is broadcast. The transaction it `replaces` is forgotten first, so that
    /// its coins can pay again.
    #[allow(clippy::too_many_arguments)]
    pub fn fund_claim(
        &self,
        tx: bitcoin::Transaction,
        prevouts: &[bitcoin::TxOut],
        feerate: FeeratePerKw,
        parent: Option<(u64, Amount)>,
        max_fee: Amount,
        replaces: Option<Txid>,
    ) -> Result<bitcoin::Transaction, WalletError> {
        self.sync()?;
        let mut w = self.wallet();
        if let Some(old) = replaces {
            // Its coins pay for the replacement (BIP 125 takes either).
            w.forget(old, unix_now());
        }
        let tx = w.add_fee_inputs(tx, prevouts, feerate, parent, max_fee)?;
        w.reserve(&tx);
        Ok(tx)
    }

    /// Our unconfirmed funding transaction `tx` double-spent back to the
    /// wallet (at least `feerate`, and outbidding `descendants_fee`),
    /// signed, not broadcast.
    pub fn double_spend(
        &self,
        tx: &bitcoin::Transaction,
        feerate: FeeratePerKw,
        descendants_fee: Amount,
    ) -> Result<bitcoin::Transaction, WalletError> {
        self.sync()?;
        let mut w = self.wallet();
        let spend = w.double_spend(tx, feerate, descendants_fee, unix_now())?;
        w.reserve(&spend);
        Ok(spend)
    }

    /// Forgets a transaction of ours that can never confirm (replaced, or
    /// conflicting with one that did): its inputs are spendable again.
    pub fn forget(&self, txid: Txid) {
        self.wallet().forget(txid, unix_now());
    }

    /// Broadcasts our commitment and the child paying for it, as a package.
    pub fn broadcast_package(
        &self,
        parent: &bitcoin::Transaction,
        child: &bitcoin::Transaction,
    ) -> Result<Txid, ChainError> {
        let txid = self.chain.broadcast_package(parent, child)?;
        {
            let mut w = self.wallet();
            w.note_broadcast(parent.clone(), unix_now());
            w.note_broadcast(child.clone(), unix_now());
        }
        if let Some(f) = &self.after_broadcast {
            f();
        }
        Ok(txid)
    }

    /// Broadcasts a transaction of the node's (funding, closing, commitment).
    pub fn broadcast(&self, tx: &bitcoin::Transaction) -> Result<Txid, ChainError> {
        let txid = self.chain.broadcast(tx)?;
        self.wallet().note_broadcast(tx.clone(), unix_now());
        if let Some(f) = &self.after_broadcast {
            f();
        }
        Ok(txid)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
