//! BOLT 11 §"Human-Readable Part": `ln` + currency prefix + optional amount.

use std::fmt;

use beongae_wire::Msat;

use crate::error::InvoiceError;

/// The chain an invoice asks to be paid on (BOLT 11 §"Human-Readable Part":
/// `ln` + the BIP-0173 currency prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Currency {
    /// `lnbc`: Bitcoin mainnet.
    Bitcoin,
    /// `lntb`: Bitcoin testnet.
    BitcoinTestnet,
    /// `lntbs`: Bitcoin signet.
    Signet,
    /// `lnbcrt`: Bitcoin regtest.
    Regtest,
    /// `lnsb`: Bitcoin simnet.
    Simnet,
}

impl Currency {
    /// Every currency we understand.
    pub const ALL: [Currency; 5] = [
        Currency::Bitcoin,
        Currency::BitcoinTestnet,
        Currency::Signet,
        Currency::Regtest,
        Currency::Simnet,
    ];

    /// The BIP-0173 prefix, without `ln`.
    pub fn prefix(self) -> &'static str {
        match self {
            Currency::Bitcoin => "bc",
            Currency::BitcoinTestnet => "tb",
            Currency::Signet => "tbs",
            Currency::Regtest => "bcrt",
            Currency::Simnet => "sb",
        }
    }

    /// The currency with BIP-0173 prefix `prefix` (without `ln`).
    pub fn from_prefix(prefix: &str) -> Option<Currency> {
        Currency::ALL.into_iter().find(|c| c.prefix() == prefix)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ln{}", self.prefix())
    }
}

/// An amount `multiplier` letter (BOLT 11 §"Human-Readable Part").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Multiplier {
    /// `m`: 0.001 BTC = 100_000_000 msat.
    Milli,
    /// `u`: 0.000001 BTC = 100_000 msat.
    Micro,
    /// `n`: 0.000000001 BTC = 100 msat.
    Nano,
    /// `p`: 0.000000000001 BTC = 0.1 msat.
    Pico,
}

impl Multiplier {
    /// The letter.
    pub fn letter(self) -> char {
        match self {
            Multiplier::Milli => 'm',
            Multiplier::Micro => 'u',
            Multiplier::Nano => 'n',
            Multiplier::Pico => 'p',
        }
    }

    fn from_letter(c: char) -> Option<Multiplier> {
        match c {
            'm' => Some(Multiplier::Milli),
            'u' => Some(Multiplier::Micro),
            'n' => Some(Multiplier::Nano),
            'p' => Some(Multiplier::Pico),
            _ => None,
        }
    }
}

/// Millisatoshi in one bitcoin: the unit of an amount with no multiplier
/// (BOLT 11: "the unit is 'bitcoin' NOT satoshis").
const MSAT_PER_BTC: u64 = 100_000_000_000;

/// The amount exactly as written in the human-readable part: the digits and
/// the multiplier. Kept as written (not only as msat) because "non-largest
/// multipliers have been encountered in the wild, and as such invoice parsers
/// should handle them" (BOLT 11), and the signature covers the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HrpAmount {
    value: u64,
    multiplier: Option<Multiplier>,
}

impl HrpAmount {
    /// The amount in millisatoshi, checking the reader rules.
    fn to_msat(self) -> Result<Msat, InvoiceError> {
        let msat = match self.multiplier {
            None => self.value.checked_mul(MSAT_PER_BTC),
            Some(Multiplier::Milli) => self.value.checked_mul(100_000_000),
            Some(Multiplier::Micro) => self.value.checked_mul(100_000),
            Some(Multiplier::Nano) => self.value.checked_mul(100),
            Some(Multiplier::Pico) => {
                // BOLT 11: "if multiplier is `p` and the last decimal of
                // `amount` is not 0: MUST fail the payment."
                if !self.value.is_multiple_of(10) {
                    return Err(InvoiceError::SubMillisatoshiAmount);
                }
                Some(self.value / 10)
            }
        };
        msat.map(Msat::from_msat)
            .ok_or(InvoiceError::AmountOverflow)
    }

    /// The amount in millisatoshi.
    pub fn msat(self) -> Msat {
        // Every HrpAmount is built through `parse` or `shortest`, which both
        // check the conversion.
        self.to_msat().unwrap_or(Msat::ZERO)
    }

    /// The multiplier letter as written, if any.
    pub fn multiplier(self) -> Option<Multiplier> {
        self.multiplier
    }

    /// The shortest representation of `amount` (BOLT 11 writer: "SHOULD use
    /// the shortest representation possible, by using the largest multiplier
    /// or omitting the multiplier"). `None` for zero (the amount "MUST" be
    /// positive) or if it cannot be written in pico-bitcoin without overflow.
    pub fn shortest(amount: Msat) -> Option<HrpAmount> {
        let msat = amount.to_msat();
        if msat == 0 {
            return None;
        }
        let (value, multiplier) = if msat.is_multiple_of(MSAT_PER_BTC) {
            (msat / MSAT_PER_BTC, None)
        } else if msat.is_multiple_of(100_000_000) {
            (msat / 100_000_000, Some(Multiplier::Milli))
        } else if msat.is_multiple_of(100_000) {
            (msat / 100_000, Some(Multiplier::Micro))
        } else if msat.is_multiple_of(100) {
            (msat / 100, Some(Multiplier::Nano))
        } else {
            (msat.checked_mul(10)?, Some(Multiplier::Pico))
        };
        Some(HrpAmount { value, multiplier })
    }
}

impl fmt::Display for HrpAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        if let Some(m) = self.multiplier {
            write!(f, "{}", m.letter())?;
        }
        Ok(())
    }
}

/// Parses a lowercase human-readable part into currency and amount.
///
/// BOLT 11 §"Human-Readable Part", reader: "if it does NOT understand the
/// `prefix`: MUST fail the payment"; "if `amount` contains a non-digit OR is
/// followed by anything except a `multiplier`: MUST fail the payment".
pub(crate) fn parse_hrp(hrp: &str) -> Result<(Currency, Option<HrpAmount>), InvoiceError> {
    let rest = hrp
        .strip_prefix("ln")
        .ok_or_else(|| InvoiceError::InvalidPrefix(hrp.to_owned()))?;
    let split = rest
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(rest.len());
    let (prefix, amount) = rest.split_at(split);
    let currency = Currency::from_prefix(prefix)
        .ok_or_else(|| InvoiceError::UnknownCurrency(prefix.to_owned()))?;
    if amount.is_empty() {
        return Ok((currency, None));
    }
    let digits_end = amount
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(amount.len());
    let (digits, tail) = amount.split_at(digits_end);
    let mut tail_chars = tail.chars();
    let multiplier = match (tail_chars.next(), tail_chars.next()) {
        (None, _) => None,
        (Some(c), None) => {
            Some(Multiplier::from_letter(c).ok_or(InvoiceError::UnknownMultiplier(c))?)
        }
        (Some(_), Some(_)) => return Err(InvoiceError::InvalidAmount(amount.to_owned())),
    };
    // BOLT 11 writer: "MUST encode `amount` as a positive decimal integer with
    // no leading 0s". We refuse other forms too: a zero amount is meaningless,
    // and a canonical text keeps decode/encode exact.
    if digits.is_empty() || digits.starts_with('0') {
        return Err(InvoiceError::InvalidAmount(amount.to_owned()));
    }
    let value: u64 = digits.parse().map_err(|_| InvoiceError::AmountOverflow)?;
    let parsed = HrpAmount { value, multiplier };
    parsed.to_msat()?;
    Ok((currency, Some(parsed)))
}

/// The human-readable part for `currency` and `amount`.
pub(crate) fn format_hrp(currency: Currency, amount: Option<HrpAmount>) -> String {
    match amount {
        Some(a) => format!("{currency}{a}"),
        None => currency.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_follow_the_multiplier_table() {
        let (c, a) = parse_hrp("lnbc2500u").unwrap();
        assert_eq!(c, Currency::Bitcoin);
        assert_eq!(a.unwrap().msat(), Msat::from_msat(250_000_000));
        let (c, a) = parse_hrp("lnbcrt1").unwrap();
        assert_eq!(c, Currency::Regtest);
        assert_eq!(a.unwrap().msat(), Msat::from_msat(MSAT_PER_BTC));
        assert_eq!(parse_hrp("lntbs").unwrap(), (Currency::Signet, None));
        assert_eq!(
            parse_hrp("lnbc9678785340p").unwrap().1.unwrap().msat(),
            Msat::from_msat(967_878_534)
        );
        assert_eq!(
            parse_hrp("lnbc2500000001p"),
            Err(InvoiceError::SubMillisatoshiAmount)
        );
        assert_eq!(
            parse_hrp("lnbc2500x"),
            Err(InvoiceError::UnknownMultiplier('x'))
        );
        assert_eq!(
            parse_hrp("lnxy1"),
            Err(InvoiceError::UnknownCurrency("xy".into()))
        );
        assert_eq!(
            parse_hrp("bc1"),
            Err(InvoiceError::InvalidPrefix("bc1".into()))
        );
        assert_eq!(
            parse_hrp("lnbc01m"),
            Err(InvoiceError::InvalidAmount("01m".into()))
        );
        assert_eq!(
            parse_hrp("lnbc1mm"),
            Err(InvoiceError::InvalidAmount("1mm".into()))
        );
        assert_eq!(
            parse_hrp("lnbc99999999999999999999"),
            Err(InvoiceError::AmountOverflow)
        );
        assert_eq!(
            parse_hrp("lnbc999999999999"),
            Err(InvoiceError::AmountOverflow)
        );
    }

    #[test]
    fn shortest_uses_the_largest_multiplier() {
        let s = |m| HrpAmount::shortest(Msat::from_msat(m)).map(|a| a.to_string());
        assert_eq!(s(250_000_000).as_deref(), Some("2500u"));
        assert_eq!(s(2_000_000_000).as_deref(), Some("20m"));
        assert_eq!(s(MSAT_PER_BTC * 3).as_deref(), Some("3"));
        assert_eq!(s(967_878_534).as_deref(), Some("9678785340p"));
        assert_eq!(s(1_500).as_deref(), Some("15n"));
        assert_eq!(s(0), None);
        assert_eq!(s(u64::MAX), None);
    }
}
