//! The on-chain wallet: BDK with BIP 84 (P2WPKH) descriptors from the seed,
//! fed blocks from a [`ChainSource`].

use std::str::FromStr;

use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use bitcoin::bip32::Xpriv;
use bitcoin::{Address, Amount, BlockHash, FeeRate, Network, ScriptBuf, Transaction};

use beongae_chain::{ChainError, ChainSource};
use beongae_script::FeeratePerKw;

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

/// The node's on-chain wallet.
pub struct OnchainWallet {
    wallet: Wallet,
    master: Xpriv,
    descriptors: (String, String),
    network: Network,
    /// Last block applied.
    synced: (u32, BlockHash),
}

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
    /// A wallet for `network` with BIP 84 keys under `master`.
    pub fn new(master: &Xpriv, network: Network) -> Result<Self, WalletError> {
        let coin = if network == Network::Bitcoin { 0 } else { 1 };
        let descriptors = (
            format!("wpkh({master}/84'/{coin}'/0'/0/*)"),
            format!("wpkh({master}/84'/{coin}'/0'/1/*)"),
        );
        let wallet = Self::empty(&descriptors, network)?;
        let genesis = bitcoin::constants::genesis_block(network).block_hash();
        Ok(OnchainWallet {
            wallet,
            master: *master,
            descriptors,
            network,
            synced: (0, genesis),
        })
    }

    fn empty(descriptors: &(String, String), network: Network) -> Result<Wallet, WalletError> {
        Wallet::create(descriptors.0.clone(), descriptors.1.clone())
            .network(network)
            .create_wallet_no_persist()
            .map_err(internal)
    }

    /// Applies every block from the last synced one to the tip. After a reorg
    /// (the synced block left the chain) it rescans from genesis.
    pub fn sync(&mut self, chain: &dyn ChainSource) -> Result<(), WalletError> {
        let (tip, _) = chain.tip()?;
        if chain.block_hash(self.synced.0)? != Some(self.synced.1) {
            self.wallet = Self::empty(&self.descriptors, self.network)?;
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
            self.wallet.apply_block(&block, height).map_err(internal)?;
            self.synced = (height, hash);
        }
        Ok(())
    }

    /// The height the wallet has seen.
    pub fn synced_height(&self) -> u32 {
        self.synced.0
    }

    /// A new receiving address.
    pub fn new_address(&mut self) -> Address {
        self.wallet
            .reveal_next_address(KeychainKind::External)
            .address
    }

    /// Balances.
    pub fn balance(&self) -> OnchainBalance {
        let b = self.wallet.balance();
        OnchainBalance {
            confirmed: b.confirmed,
            unconfirmed: b.trusted_pending + b.untrusted_pending,
            immature: b.immature,
        }
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
    pub fn pay_to(
        &mut self,
        script_pubkey: ScriptBuf,
        amount: Amount,
        feerate: FeeratePerKw,
    ) -> Result<Transaction, WalletError> {
        if amount < script_pubkey.minimal_non_dust() {
            return Err(WalletError::Dust(amount));
        }
        let mut builder = self.wallet.build_tx();
        builder
            .add_recipient(script_pubkey, amount)
            .fee_rate(FeeRate::from_sat_per_kwu(u64::from(feerate.0)))
            .current_height(self.synced.0);
        let mut psbt = builder.finish().map_err(|e| match e {
            bdk_wallet::error::CreateTxError::CoinSelection(c) => WalletError::InsufficientFunds {
                needed: c.needed,
                available: c.available,
            },
            other => internal(other),
        })?;
        psbt.sign(&self.master, self.wallet.secp_ctx())
            .map_err(|(_, errors)| internal(format!("{errors:?}")))?;
        let finalized = self
            .wallet
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(internal)?;
        if !finalized {
            return Err(internal("could not sign every input"));
        }
        psbt.extract_tx().map_err(internal)
    }

    /// Records a transaction we broadcast, so its change counts as unconfirmed
    /// and its inputs are not spent twice.
    pub fn note_broadcast(&mut self, tx: Transaction, now: u64) {
        self.wallet.apply_unconfirmed_txs([(tx, now)]);
    }
}
