//! BOLT 4 §"Failure Messages", final node requirements: whether an HTLC
//! that ends here pays what we asked for, and the failure to return when it
//! does not.

use beongae_wire::{Msat, PaymentHash};

use crate::failure::FailureMessage;
use crate::payload::FinalPayload;

/// A payment we expect (from the invoice we issued).
#[derive(Clone, PartialEq, Eq)]
pub struct ExpectedPayment {
    /// The invoice's `payment_secret` (`s`).
    pub payment_secret: [u8; 32],
    /// The invoice's amount, if it had one.
    pub amount: Option<Msat>,
    /// The invoice's `min_final_cltv_expiry_delta` (`c`).
    pub min_final_cltv_expiry_delta: u32,
}

impl std::fmt::Debug for ExpectedPayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectedPayment")
            .field("amount", &self.amount)
            .field(
                "min_final_cltv_expiry_delta",
                &self.min_final_cltv_expiry_delta,
            )
            .finish_non_exhaustive()
    }
}

/// The HTLC as it arrived on the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingHtlc {
    /// `amount_msat`
    pub amount: Msat,
    /// `cltv_expiry`
    pub cltv_expiry: u32,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
}

/// An acceptable final HTLC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalOutcome {
    /// It pays the whole payment: fulfil it.
    Complete,
    /// One part of a multi-part payment of `total`: hold it until the parts
    /// add up (BOLT 4 "Basic Multi-Part Payments").
    Part {
        /// `total_msat`
        total: Msat,
    },
}

/// BOLT 4, final node: the HTLC must match what its own onion says, and
/// then any other refusal is `incorrect_or_unknown_payment_details` (the
/// failure returned).
fn matches_onion(
    htlc: &IncomingHtlc,
    payload: &FinalPayload,
    height: u32,
) -> Result<FailureMessage, FailureMessage> {
    // "if `amount_msat` from the final node's HTLC is below `amt_to_forward`:
    // MUST return a `final_incorrect_htlc_amount` error."
    if htlc.amount < payload.amt_to_forward {
        return Err(FailureMessage::FinalIncorrectHtlcAmount {
            incoming_htlc_amt: htlc.amount,
        });
    }
    // "if the `cltv_expiry` from the final node's HTLC is below
    // `outgoing_cltv_value`: MUST return `final_incorrect_cltv_expiry` error."
    if htlc.cltv_expiry < payload.outgoing_cltv_value {
        return Err(FailureMessage::FinalIncorrectCltvExpiry {
            cltv_expiry: htlc.cltv_expiry,
        });
    }
    Ok(FailureMessage::IncorrectOrUnknownPaymentDetails {
        htlc_msat: htlc.amount,
        height,
    })
}

/// The final node's checks, in the order that reveals least: first what
/// the HTLC must match in its own onion, then the invoice. `expected` is
/// `None` for an unknown payment hash (or one already paid, which BOLT 4
/// lets us treat as unknown); `height` is our best block height.
pub fn check_final_htlc(
    htlc: &IncomingHtlc,
    payload: &FinalPayload,
    expected: Option<&ExpectedPayment>,
    height: u32,
) -> Result<FinalOutcome, FailureMessage> {
    let unknown = matches_onion(htlc, payload, height)?;
    // "if the payment hash is unknown: MUST fail ... incorrect_or_unknown_payment_details".
    let Some(expected) = expected else {
        return Err(unknown);
    };
    // "if the `payment_secret` doesn't match the expected value ..., or the
    // `payment_secret` is required and is not present" (we always require it).
    let Some(data) = payload.payment_data else {
        return Err(unknown);
    };
    if data.payment_secret != expected.payment_secret {
        return Err(unknown);
    }
    let total = payload.total_msat();
    if let Some(asked) = expected.amount {
        // "if the amount paid is less than the amount expected: MUST fail";
        // "more than twice the amount expected: SHOULD fail".
        let twice = Msat::from_msat(asked.to_msat().saturating_mul(2));
        if total < asked || total > twice {
            return Err(unknown);
        }
    }
    // "if the `cltv_expiry` value is unreasonably near the present: MUST fail".
    if u64::from(htlc.cltv_expiry)
        < u64::from(height) + u64::from(expected.min_final_cltv_expiry_delta)
    {
        return Err(unknown);
    }
    if total > htlc.amount {
        Ok(FinalOutcome::Part { total })
    } else {
        Ok(FinalOutcome::Complete)
    }
}

/// The final node's checks of a payment without an invoice (bLIP 3
/// keysend): the HTLC matches its onion (as [`check_final_htlc`]), the
/// preimage hashes to the HTLC's `payment_hash`, the expiry leaves
/// `min_final_cltv_expiry_delta` blocks, and it is the whole payment (no
/// `total_msat` above the amount: we take no multi-part keysend). Returns
/// the preimage to fulfil with.
pub fn check_keysend_htlc(
    htlc: &IncomingHtlc,
    payload: &FinalPayload,
    min_final_cltv_expiry_delta: u32,
    height: u32,
) -> Result<beongae_wire::Preimage, FailureMessage> {
    let unknown = matches_onion(htlc, payload, height)?;
    let Some(preimage) = payload.keysend_preimage.map(beongae_wire::Preimage) else {
        return Err(unknown);
    };
    if preimage.payment_hash() != htlc.payment_hash
        || payload.total_msat() > htlc.amount
        || u64::from(htlc.cltv_expiry) < u64::from(height) + u64::from(min_final_cltv_expiry_delta)
    {
        return Err(unknown);
    }
    Ok(preimage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PaymentData;

    const HEIGHT: u32 = 800_000;

    fn htlc(amount: u64, cltv_expiry: u32) -> IncomingHtlc {
        IncomingHtlc {
            amount: Msat::from_msat(amount),
            cltv_expiry,
            payment_hash: PaymentHash([1; 32]),
        }
    }

    fn payload(amt: u64, cltv: u32, total: u64, secret: u8) -> FinalPayload {
        FinalPayload {
            amt_to_forward: Msat::from_msat(amt),
            outgoing_cltv_value: cltv,
            payment_data: Some(PaymentData {
                payment_secret: [secret; 32],
                total_msat: Msat::from_msat(total),
            }),
            payment_metadata: None,
            keysend_preimage: None,
        }
    }

    fn invoice(amount: Option<u64>) -> ExpectedPayment {
        ExpectedPayment {
            payment_secret: [7; 32],
            amount: amount.map(Msat::from_msat),
            min_final_cltv_expiry_delta: 18,
        }
    }

    fn unknown(amount: u64) -> Result<FinalOutcome, FailureMessage> {
        Err(FailureMessage::IncorrectOrUnknownPaymentDetails {
            htlc_msat: Msat::from_msat(amount),
            height: HEIGHT,
        })
    }

    #[test]
    fn every_final_rule() {
        let inv = invoice(Some(10_000));
        let ok_cltv = HEIGHT + 18;
        let check = |h: IncomingHtlc, p: FinalPayload, e: Option<&ExpectedPayment>| {
            check_final_htlc(&h, &p, e, HEIGHT)
        };
        assert_eq!(
            check(
                htlc(10_000, ok_cltv),
                payload(10_000, ok_cltv, 10_000, 7),
                Some(&inv)
            ),
            Ok(FinalOutcome::Complete)
        );
        // Paying up to twice is fine; more is refused.
        assert_eq!(
            check(
                htlc(20_000, ok_cltv),
                payload(20_000, ok_cltv, 20_000, 7),
                Some(&inv)
            ),
            Ok(FinalOutcome::Complete)
        );
        assert_eq!(
            check(
                htlc(20_001, ok_cltv),
                payload(20_001, ok_cltv, 20_001, 7),
                Some(&inv)
            ),
            unknown(20_001)
        );
        // Less than the onion says.
        assert_eq!(
            check(
                htlc(9_999, ok_cltv),
                payload(10_000, ok_cltv, 10_000, 7),
                Some(&inv)
            ),
            Err(FailureMessage::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: Msat::from_msat(9_999)
            })
        );
        // An earlier expiry than the onion says.
        assert_eq!(
            check(
                htlc(10_000, ok_cltv - 1),
                payload(10_000, ok_cltv, 10_000, 7),
                Some(&inv)
            ),
            Err(FailureMessage::FinalIncorrectCltvExpiry {
                cltv_expiry: ok_cltv - 1
            })
        );
        // Unknown hash, wrong or missing secret, underpayment, expiry too near.
        assert_eq!(
            check(
                htlc(10_000, ok_cltv),
                payload(10_000, ok_cltv, 10_000, 7),
                None
            ),
            unknown(10_000)
        );
        assert_eq!(
            check(
                htlc(10_000, ok_cltv),
                payload(10_000, ok_cltv, 10_000, 8),
                Some(&inv)
            ),
            unknown(10_000)
        );
        let mut no_secret = payload(10_000, ok_cltv, 10_000, 7);
        no_secret.payment_data = None;
        assert_eq!(
            check(htlc(10_000, ok_cltv), no_secret, Some(&inv)),
            unknown(10_000)
        );
        assert_eq!(
            check(
                htlc(9_999, ok_cltv),
                payload(9_999, ok_cltv, 9_999, 7),
                Some(&inv)
            ),
            unknown(9_999)
        );
        assert_eq!(
            check(
                htlc(10_000, ok_cltv - 1),
                payload(10_000, ok_cltv - 1, 10_000, 7),
                Some(&inv)
            ),
            unknown(10_000)
        );
        // One part of 4_000 towards 10_000; any amount for an open invoice.
        assert_eq!(
            check(
                htlc(4_000, ok_cltv),
                payload(4_000, ok_cltv, 10_000, 7),
                Some(&inv)
            ),
            Ok(FinalOutcome::Part {
                total: Msat::from_msat(10_000)
            })
        );
        assert_eq!(
            check(
                htlc(123, ok_cltv),
                payload(123, ok_cltv, 123, 7),
                Some(&invoice(None))
            ),
            Ok(FinalOutcome::Complete)
        );
    }
}

#[cfg(test)]
mod keysend_tests {
    use super::*;

    #[test]
    fn keysend_checks_the_preimage_the_amount_and_the_expiry() {
        let preimage = beongae_wire::Preimage([5; 32]);
        let htlc = IncomingHtlc {
            amount: Msat::from_msat(10_000),
            cltv_expiry: 800_043,
            payment_hash: preimage.payment_hash(),
        };
        let payload = FinalPayload {
            amt_to_forward: Msat::from_msat(10_000),
            outgoing_cltv_value: 800_043,
            payment_data: None,
            payment_metadata: None,
            keysend_preimage: Some([5; 32]),
        };
        assert_eq!(
            check_keysend_htlc(&htlc, &payload, 40, 800_000),
            Ok(preimage)
        );
        let unknown = FailureMessage::IncorrectOrUnknownPaymentDetails {
            htlc_msat: Msat::from_msat(10_000),
            height: 800_000,
        };
        // Another preimage, none, too near an expiry.
        let wrong = FinalPayload {
            keysend_preimage: Some([6; 32]),
            ..payload.clone()
        };
        assert_eq!(
            check_keysend_htlc(&htlc, &wrong, 40, 800_000),
            Err(unknown.clone())
        );
        let none = FinalPayload {
            keysend_preimage: None,
            ..payload.clone()
        };
        assert_eq!(
            check_keysend_htlc(&htlc, &none, 40, 800_000),
            Err(unknown.clone())
        );
        assert!(check_keysend_htlc(&htlc, &payload, 44, 800_000).is_err());
        // Less than the onion says.
        let more = FinalPayload {
            amt_to_forward: Msat::from_msat(10_001),
            ..payload
        };
        assert_eq!(
            check_keysend_htlc(&htlc, &more, 40, 800_000),
            Err(FailureMessage::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: Msat::from_msat(10_000)
            })
        );
    }
}
