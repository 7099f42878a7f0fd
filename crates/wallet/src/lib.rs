//! Keys and coins: the BIP39 seed every key derives from ([`seed`]), the
//! BIP32 key families of the node and its channels ([`keys`]), and the
//! on-chain wallet on BDK ([`onchain`]).

pub mod keys;
pub mod onchain;
pub mod seed;

pub use keys::{ChannelSecrets, KeyManager};
pub use onchain::{AddressKind, OnchainBalance, OnchainWallet, WalletError};
pub use seed::{Seed, SeedError};
