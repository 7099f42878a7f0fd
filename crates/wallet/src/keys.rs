//! BIP32 key families. Every key the node uses derives from the seed at
//! `m/1017'/coin'/family'/0/index` (the layout LND uses, so one seed backs
//! one node), with `coin` 0 on mainnet and 1 elsewhere.

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};

use beongae_script::keys::ChannelPublicKeys;

/// Key families (the third hardened level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum KeyFamily {
    /// Channel funding keys.
    Funding = 0,
    /// `revocation_basepoint`s.
    RevocationBase = 1,
    /// `htlc_basepoint`s.
    HtlcBase = 2,
    /// `payment_basepoint`s.
    PaymentBase = 3,
    /// `delayed_payment_basepoint`s.
    DelayBase = 4,
    /// Per-channel shachain seeds for per-commitment secrets.
    RevocationRoot = 5,
    /// The node identity key.
    NodeKey = 6,
}

/// One channel's secrets.
#[derive(Clone)]
pub struct ChannelSecrets {
    /// Funding key.
    pub funding: SecretKey,
    /// Revocation basepoint secret.
    pub revocation_base: SecretKey,
    /// Payment basepoint secret.
    pub payment_base: SecretKey,
    /// Delayed payment basepoint secret.
    pub delayed_payment_base: SecretKey,
    /// HTLC basepoint secret.
    pub htlc_base: SecretKey,
    /// Seed of this channel's per-commitment secrets (BOLT 3 `generate_from_seed`).
    pub commitment_seed: [u8; 32],
}

impl std::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSecrets(..)")
    }
}

impl ChannelSecrets {
    /// The public basepoints to announce in `open_channel`/`accept_channel`.
    pub fn public<C: Signing>(&self, secp: &Secp256k1<C>) -> ChannelPublicKeys {
        let p = |k: &SecretKey| PublicKey::from_secret_key(secp, k);
        ChannelPublicKeys {
            funding_pubkey: p(&self.funding),
            revocation_basepoint: p(&self.revocation_base),
            payment_basepoint: p(&self.payment_base),
            delayed_payment_basepoint: p(&self.delayed_payment_base),
            htlc_basepoint: p(&self.htlc_base),
        }
    }
}

/// Derives the node's keys from the master key.
pub struct KeyManager {
    master: Xpriv,
    coin: u32,
    secp: Secp256k1<bitcoin::secp256k1::All>,
    /// Per [`KeyFamily`] (its number as index): the extended key at
    /// `m/1017'/coin'/family'/0` and its public key, derived once. A key
    /// of the family is then one non-hardened step (BIP32 `CKDpriv`: an
    /// HMAC and a scalar addition, no point multiplication), so a node
    /// restores 10,000 channels' keys in milliseconds, not seconds.
    families: Vec<(Xpriv, [u8; 33])>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyManager(..)")
    }
}

impl KeyManager {
    /// Keys for `network` from `master`.
    pub fn new(master: Xpriv, network: bitcoin::Network) -> Self {
        let coin = if network == bitcoin::Network::Bitcoin {
            0
        } else {
            1
        };
        let secp = Secp256k1::new();
        let families = (0..=KeyFamily::NodeKey as u32)
            .map(|family| {
                let path: DerivationPath = [
                    ChildNumber::from_hardened_idx(1017),
                    ChildNumber::from_hardened_idx(coin),
                    ChildNumber::from_hardened_idx(family),
                    ChildNumber::from_normal_idx(0),
                ]
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .expect("indexes are below 2^31")
                .into();
                let parent = master
                    .derive_priv(&secp, &path)
                    .expect("BIP32 derivation from a valid key");
                let public = PublicKey::from_secret_key(&secp, &parent.private_key).serialize();
                (parent, public)
            })
            .collect();
        KeyManager {
            master,
            coin,
            secp,
            families,
        }
    }

    /// The key at `m/1017'/coin'/family'/0/index`: BIP32 `CKDpriv` of a
    /// non-hardened child from the family's key, `I = HMAC-SHA512(c_par,
    /// serP(K_par) || ser32(i))`, `k_i = parse256(I_L) + k_par`.
    fn derive(&self, family: KeyFamily, index: u32) -> SecretKey {
        use bitcoin::hashes::{hmac, sha512, HashEngine};
        if index > 0x7fff_ffff {
            // A hardened index: not a key of ours (refused there).
            return self.derive_slowly(family, index);
        }
        let (parent, public) = &self.families[family as usize];
        let mut engine = hmac::HmacEngine::<sha512::Hash>::new(parent.chain_code.as_bytes());
        engine.input(public);
        engine.input(&index.to_be_bytes());
        let i = hmac::Hmac::from_engine(engine).to_byte_array();
        let left: [u8; 32] = i[..32].try_into().expect("64 bytes");
        bitcoin::secp256k1::Scalar::from_be_bytes(left)
            .ok()
            .and_then(|tweak| parent.private_key.add_tweak(&tweak).ok())
            // I_L >= n or a zero key (probability below 2^-127): BIP32
            // says this index is invalid; the library's derivation answers
            // the same way for every caller.
            .unwrap_or_else(|| self.derive_slowly(family, index))
    }

    /// [`KeyManager::derive`] by the library's BIP32 from the master key.
    fn derive_slowly(&self, family: KeyFamily, index: u32) -> SecretKey {
        let path: DerivationPath = [
            ChildNumber::from_hardened_idx(1017),
            ChildNumber::from_hardened_idx(self.coin),
            ChildNumber::from_hardened_idx(family as u32),
            ChildNumber::from_normal_idx(0),
            ChildNumber::from_normal_idx(index),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("indexes are below 2^31")
        .into();
        self.master
            .derive_priv(&self.secp, &path)
            .expect("BIP32 derivation from a valid key")
            .private_key
    }

    /// The node identity key.
    pub fn node_secret(&self) -> SecretKey {
        self.derive(KeyFamily::NodeKey, 0)
    }

    /// The secrets of channel number `index` (each channel takes the next index).
    pub fn channel(&self, index: u32) -> ChannelSecrets {
        let root = self.derive(KeyFamily::RevocationRoot, index);
        ChannelSecrets {
            funding: self.derive(KeyFamily::Funding, index),
            revocation_base: self.derive(KeyFamily::RevocationBase, index),
            payment_base: self.derive(KeyFamily::PaymentBase, index),
            delayed_payment_base: self.derive(KeyFamily::DelayBase, index),
            htlc_base: self.derive(KeyFamily::HtlcBase, index),
            // Hash the root key so the seed is not itself a signing key.
            commitment_seed: sha256::Hash::hash(&root.secret_bytes()).to_byte_array(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Seed;

    /// The one-step derivation from each family's key gives the keys the
    /// library's BIP32 derives from the master key, on both coins.
    #[test]
    fn family_keys_match_full_derivation() {
        for network in [bitcoin::Network::Bitcoin, bitcoin::Network::Regtest] {
            let seed = Seed::from_entropy([5; 32]);
            let km = KeyManager::new(seed.master_key(network.into()), network);
            for family in [
                KeyFamily::Funding,
                KeyFamily::RevocationBase,
                KeyFamily::HtlcBase,
                KeyFamily::PaymentBase,
                KeyFamily::DelayBase,
                KeyFamily::RevocationRoot,
                KeyFamily::NodeKey,
            ] {
                for index in [0, 1, 2, 17, 1_000, 65_535, 0x7fff_ffff] {
                    assert_eq!(
                        km.derive(family, index),
                        km.derive_slowly(family, index),
                        "{family:?} {index}"
                    );
                }
            }
        }
    }

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let seed = Seed::from_entropy([3; 32]);
        let km = KeyManager::new(
            seed.master_key(bitcoin::NetworkKind::Test),
            bitcoin::Network::Regtest,
        );
        let again = KeyManager::new(
            seed.master_key(bitcoin::NetworkKind::Test),
            bitcoin::Network::Regtest,
        );
        assert_eq!(km.node_secret(), again.node_secret());
        let (c0, c1) = (km.channel(0), km.channel(1));
        let secp = Secp256k1::new();
        assert_eq!(c0.public(&secp), again.channel(0).public(&secp));
        assert_ne!(c0.public(&secp), c1.public(&secp));
        let all = [
            c0.funding,
            c0.revocation_base,
            c0.payment_base,
            c0.delayed_payment_base,
            c0.htlc_base,
            km.node_secret(),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Mainnet keys differ from test-network keys for the same seed.
        let main = KeyManager::new(
            seed.master_key(bitcoin::NetworkKind::Main),
            bitcoin::Network::Bitcoin,
        );
        assert_ne!(main.node_secret(), km.node_secret());
    }
}
