//! Millisatoshi amounts and payment hashes: the newtypes every layer shares.

use std::fmt;

/// An amount in millisatoshi (BOLT 1: milli-satoshi amounts MUST be at most
/// `0x1d24b2dfac520000`, 21 million BTC). Arithmetic is checked: a sum or
/// difference that leaves `0..=u64::MAX` is `None`, never a wrap.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Msat(u64);

impl Msat {
    /// Zero.
    pub const ZERO: Msat = Msat(0);
    /// 21 million BTC, the most any amount can be (BOLT 1 §"Fundamental Types").
    pub const MAX_MONEY: Msat = Msat(0x1d24_b2df_ac52_0000);

    /// From millisatoshi.
    pub const fn from_msat(msat: u64) -> Self {
        Msat(msat)
    }

    /// From whole satoshi; `None` on overflow.
    pub const fn from_sat(sat: u64) -> Option<Self> {
        match sat.checked_mul(1000) {
            Some(v) => Some(Msat(v)),
            None => None,
        }
    }

    /// The value in millisatoshi.
    pub const fn to_msat(self) -> u64 {
        self.0
    }

    /// Whole satoshi, rounded down (BOLT 3: "amounts ... MUST be rounded
    /// down to whole satoshis").
    pub const fn to_sat_floor(self) -> u64 {
        self.0 / 1000
    }

    /// The on-chain amount, rounded down to whole satoshi.
    pub fn to_amount_floor(self) -> bitcoin::Amount {
        bitcoin::Amount::from_sat(self.to_sat_floor())
    }

    /// `self + rhs`, `None` on overflow.
    pub const fn checked_add(self, rhs: Msat) -> Option<Msat> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Msat(v)),
            None => None,
        }
    }

    /// `self - rhs`, `None` if `rhs > self`.
    pub const fn checked_sub(self, rhs: Msat) -> Option<Msat> {
        match self.0.checked_sub(rhs.0) {
            Some(v) => Some(Msat(v)),
            None => None,
        }
    }

    /// `self - rhs`, or zero if `rhs > self`.
    pub const fn saturating_sub(self, rhs: Msat) -> Msat {
        Msat(self.0.saturating_sub(rhs.0))
    }

    /// Whether the amount is within 21 million BTC.
    pub const fn is_valid_money(self) -> bool {
        self.0 <= Self::MAX_MONEY.0
    }
}

impl fmt::Display for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} msat", self.0)
    }
}

impl fmt::Debug for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msat({})", self.0)
    }
}

impl Msat {
    /// The sum of `amounts`, `None` on overflow.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Msat>) -> Option<Msat> {
        amounts.into_iter().try_fold(Msat::ZERO, Msat::checked_add)
    }
}

/// SHA256 of a payment preimage (BOLT 2 `payment_hash`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PaymentHash(pub [u8; 32]);

impl fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentHash({self})")
    }
}

/// A payment preimage: secret until the HTLC settles, so it never prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Preimage(pub [u8; 32]);

impl Preimage {
    /// `SHA256(preimage)`.
    pub fn payment_hash(&self) -> PaymentHash {
        use bitcoin::hashes::{sha256, Hash};
        PaymentHash(sha256::Hash::hash(&self.0).to_byte_array())
    }
}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preimage(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msat_arithmetic_is_checked() {
        let a = Msat::from_msat(1_999);
        assert_eq!(a.to_sat_floor(), 1);
        assert_eq!(a.checked_sub(Msat::from_msat(2_000)), None);
        assert_eq!(a.saturating_sub(Msat::from_msat(2_000)), Msat::ZERO);
        assert_eq!(
            Msat::from_msat(u64::MAX).checked_add(Msat::from_msat(1)),
            None
        );
        assert_eq!(Msat::from_sat(u64::MAX / 999), None);
        assert_eq!(Msat::from_sat(5), Some(Msat::from_msat(5_000)));
        assert!(Msat::MAX_MONEY.is_valid_money());
        assert!(!Msat::from_msat(Msat::MAX_MONEY.to_msat() + 1).is_valid_money());
        assert_eq!(
            Msat::checked_sum([Msat::from_msat(1), Msat::from_msat(2)]),
            Some(Msat::from_msat(3))
        );
        assert_eq!(
            Msat::checked_sum([Msat::from_msat(u64::MAX), Msat::from_msat(1)]),
            None
        );
    }

    #[test]
    fn preimage_hashes_and_hides() {
        // SHA256 of 32 zero bytes.
        let h = Preimage([0; 32]).payment_hash();
        assert_eq!(
            h.to_string(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert_eq!(format!("{:?}", Preimage([7; 32])), "Preimage(..)");
    }
}
