//! Two `Commitments` driven through random interleavings of updates,
//! `commitment_signed` and `revoke_and_ack` (messages in each direction
//! delivered in order, the two directions interleaved arbitrarily): every
//! commitment one side signs is exactly the one the other side computes, and
//! money is conserved throughout.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};

use beongae_channel::commitments::{CommitSpec, Commitments, Update, UpdateError};
use beongae_channel::limits::{ChannelParams, CommitLimits};
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::{Msat, Preimage};
use bitcoin::Amount;
use proptest::prelude::*;

/// Limits both sides announce in these tests.
fn limits(max_accepted_htlcs: u16) -> CommitLimits {
    CommitLimits {
        dust_limit: Amount::from_sat(354),
        channel_reserve: Amount::from_sat(10_000),
        htlc_minimum: Msat::from_msat(1_000),
        max_htlc_value_in_flight: Msat::from_msat(300_000_000),
        max_accepted_htlcs,
    }
}

fn params(we_are_funder: bool, max_accepted_htlcs: u16) -> ChannelParams {
    ChannelParams {
        channel_type: ChannelType::Anchors,
        we_are_funder,
        local: limits(max_accepted_htlcs),
        remote: limits(max_accepted_htlcs),
        max_dust_htlc_exposure: Msat::from_msat(u64::MAX),
    }
}

/// A funder with `a` and a fundee with `b` satoshi.
fn pair(a: u64, b: u64, max_accepted_htlcs: u16) -> (Commitments, Commitments) {
    let (a, b) = (Msat::from_msat(a * 1000), Msat::from_msat(b * 1000));
    let f = FeeratePerKw(253);
    (
        Commitments::new(a, b, f, params(true, max_accepted_htlcs)),
        Commitments::new(b, a, f, params(false, max_accepted_htlcs)),
    )
}

fn add(id: u64, msat: u64) -> Update {
    Update::Add {
        id,
        amount: Msat::from_msat(msat),
        payment_hash: Preimage([id as u8; 32]).payment_hash(),
        cltv_expiry: 500,
    }
}

#[derive(Debug, Clone)]
enum Msg {
    Add(Update),
    Remove(Update),
    Fee(FeeratePerKw),
    Commit(CommitSpec),
    Revoke,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Add {
        from_a: bool,
        amount: u64,
    },
    Settle {
        from_a: bool,
        pick: usize,
        fulfill: bool,
    },
    Commit {
        from_a: bool,
    },
    Deliver {
        to_a: bool,
    },
    Fee {
        rate: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 1u64..50_000_000).prop_map(|(from_a, amount)| Op::Add { from_a, amount }),
        2 => (any::<bool>(), any::<usize>(), any::<bool>()).prop_map(|(from_a, pick, fulfill)| Op::Settle { from_a, pick, fulfill }),
        3 => any::<bool>().prop_map(|from_a| Op::Commit { from_a }),
        6 => any::<bool>().prop_map(|to_a| Op::Deliver { to_a }),
        1 => (253u32..20_000).prop_map(|rate| Op::Fee { rate }),
    ]
}

struct Sim {
    a: Commitments,
    b: Commitments,
    to_a: VecDeque<Msg>,
    to_b: VecDeque<Msg>,
    preimages: HashMap<[u8; 32], Preimage>,
    counter: u64,
    total: Msat,
}

impl Sim {
    fn new() -> Sim {
        let f = FeeratePerKw(2500);
        let (a_bal, b_bal) = (Msat::from_msat(600_000_000), Msat::from_msat(400_000_000));
        Sim {
            a: Commitments::new(a_bal, b_bal, f, params(true, 30)),
            b: Commitments::new(b_bal, a_bal, f, params(false, 30)),
            to_a: VecDeque::new(),
            to_b: VecDeque::new(),
            preimages: HashMap::new(),
            counter: 0,
            total: Msat::from_msat(1_000_000_000),
        }
    }

    fn side(&mut self, a: bool) -> (&mut Commitments, &mut VecDeque<Msg>) {
        if a {
            (&mut self.a, &mut self.to_b)
        } else {
            (&mut self.b, &mut self.to_a)
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Add { from_a, amount } => {
                self.counter += 1;
                let preimage = Preimage([(self.counter % 251) as u8; 32]).0;
                let mut p = preimage;
                p[..8].copy_from_slice(&self.counter.to_be_bytes());
                let preimage = Preimage(p);
                self.preimages.insert(preimage.payment_hash().0, preimage);
                let (c, out) = self.side(from_a);
                // Refused adds (the offerer cannot pay) send nothing.
                if let Ok(u) = c.send_add(Msat::from_msat(amount), preimage.payment_hash(), 500) {
                    out.push_back(Msg::Add(u));
                }
            }
            Op::Settle {
                from_a,
                pick,
                fulfill,
            } => {
                let preimages = self.preimages.clone();
                let (c, out) = self.side(from_a);
                let received: Vec<_> = c
                    .local
                    .htlcs
                    .iter()
                    .filter(|h| !h.offered)
                    .cloned()
                    .collect();
                if received.is_empty() {
                    return;
                }
                let h = &received[pick % received.len()];
                let result = if fulfill {
                    c.send_fulfill(h.id, preimages[&h.payment_hash.0])
                } else {
                    c.send_fail(h.id)
                };
                // Not yet irrevocably committed, or already being removed: refused, nothing sent.
                if let Ok(u) = result {
                    out.push_back(Msg::Remove(u));
                }
            }
            Op::Commit { from_a } => {
                let (c, out) = self.side(from_a);
                if c.can_send_commit() {
                    let spec = c.send_commit().unwrap();
                    out.push_back(Msg::Commit(spec));
                }
            }
            Op::Fee { rate } => {
                // Refused (the funder cannot afford it): nothing sent.
                if let Ok(Update::Fee { feerate }) = self.a.send_fee(FeeratePerKw(rate)) {
                    self.to_b.push_back(Msg::Fee(feerate));
                }
            }
            Op::Deliver { to_a } => {
                let queue = if to_a { &mut self.to_a } else { &mut self.to_b };
                let Some(msg) = queue.pop_front() else { return };
                let (c, reply) = if to_a {
                    (&mut self.a, &mut self.to_b)
                } else {
                    (&mut self.b, &mut self.to_a)
                };
                match msg {
                    Msg::Add(u) => {
                        c.receive_add(u).unwrap();
                    }
                    Msg::Remove(u) => c.receive_remove(u).unwrap(),
                    Msg::Fee(f) => c.receive_fee(f).unwrap(),
                    Msg::Commit(signed) => {
                        // The commitment we compute is the one the peer signed.
                        let ours = c.receive_commit().unwrap();
                        assert_eq!(ours, signed.mirror().mirror(), "signed commitment differs");
                        assert_eq!(ours, signed);
                        reply.push_back(Msg::Revoke);
                    }
                    Msg::Revoke => c.receive_revoke().unwrap(),
                }
            }
        }
        for spec in [&self.a.local, &self.a.remote, &self.b.local, &self.b.remote] {
            assert_eq!(spec.total(), Some(self.total), "money not conserved");
            // Whatever was accepted stays within the receiver's limits.
            let received = spec.htlcs.iter().filter(|h| !h.offered);
            assert!(received.clone().count() <= 30);
            let in_flight = Msat::checked_sum(received.map(|h| h.amount)).unwrap();
            assert!(in_flight <= Msat::from_msat(300_000_000));
        }
    }

    /// Delivers everything and commits until neither side has anything left.
    fn settle(&mut self) {
        for _ in 0..100 {
            while !self.to_a.is_empty() || !self.to_b.is_empty() {
                self.step(Op::Deliver { to_a: true });
                self.step(Op::Deliver { to_a: false });
            }
            let before = (self.a.clone(), self.b.clone());
            self.step(Op::Commit { from_a: true });
            self.step(Op::Commit { from_a: false });
            if self.to_a.is_empty()
                && self.to_b.is_empty()
                && (self.a.clone(), self.b.clone()) == before
            {
                return;
            }
        }
        panic!("did not quiesce");
    }
}

/// The same commitment whatever order its HTLCs were added in (the
/// transaction sorts outputs anyway).
fn norm(spec: &CommitSpec) -> CommitSpec {
    let mut s = spec.clone();
    s.htlcs.sort_by_key(|h| (h.offered, h.id));
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn both_sides_sign_what_the_other_computes(ops in proptest::collection::vec(op(), 1..300)) {
        let mut sim = Sim::new();
        for op in ops {
            sim.step(op);
        }
        sim.settle();
        // Quiescent: each side's view of the other's commitment is exactly it.
        prop_assert_eq!(sim.a.remote.clone(), sim.b.local.clone());
        prop_assert_eq!(sim.b.remote.clone(), sim.a.local.clone());
        prop_assert_eq!(norm(&sim.a.local), norm(&sim.b.local.mirror()));
    }
}

#[test]
fn one_payment_end_to_end() {
    let mut sim = Sim::new();
    sim.step(Op::Add {
        from_a: true,
        amount: 1_000_000,
    });
    sim.settle();
    assert_eq!(sim.a.local.htlcs.len(), 1);
    assert_eq!(sim.a.local.to_local, Msat::from_msat(599_000_000));
    sim.step(Op::Settle {
        from_a: false,
        pick: 0,
        fulfill: true,
    });
    sim.settle();
    assert!(sim.a.local.htlcs.is_empty());
    assert_eq!(sim.a.local.to_local, Msat::from_msat(599_000_000));
    assert_eq!(sim.b.local.to_local, Msat::from_msat(401_000_000));
    // A failed one goes back.
    sim.step(Op::Add {
        from_a: false,
        amount: 5_000_000,
    });
    sim.settle();
    sim.step(Op::Settle {
        from_a: true,
        pick: 0,
        fulfill: false,
    });
    sim.settle();
    assert_eq!(sim.b.local.to_local, Msat::from_msat(401_000_000));
}

#[test]
fn protocol_violations_are_refused() {
    let mut a = Commitments::new(
        Msat::from_msat(1000),
        Msat::ZERO,
        FeeratePerKw(253),
        params(true, 30),
    );
    assert_eq!(
        a.send_add(Msat::from_msat(1001), Preimage([1; 32]).payment_hash(), 500)
            .unwrap_err(),
        UpdateError::CannotAfford {
            amount: Msat::from_msat(1001),
            balance: Msat::from_msat(1000)
        }
    );
    assert_eq!(
        a.send_add(Msat::ZERO, Preimage([1; 32]).payment_hash(), 500)
            .unwrap_err(),
        UpdateError::ZeroAmount
    );
    assert_eq!(a.send_commit().unwrap_err(), UpdateError::NothingToSign);
    assert_eq!(
        a.receive_revoke().unwrap_err(),
        UpdateError::UnexpectedRevocation
    );
    assert_eq!(
        a.receive_fee(FeeratePerKw(1000)).unwrap_err(),
        UpdateError::FeeFromNonFunder,
        "the fundee cannot send update_fee"
    );
    let mut b = Commitments::new(
        Msat::ZERO,
        Msat::from_msat(1000),
        FeeratePerKw(253),
        params(false, 30),
    );
    let add = Update::Add {
        id: 1,
        amount: Msat::from_msat(10),
        payment_hash: Preimage([1; 32]).payment_hash(),
        cltv_expiry: 500,
    };
    assert_eq!(
        b.receive_add(add).unwrap_err(),
        UpdateError::IdOutOfSequence {
            got: 1,
            expected: 0
        }
    );
    assert_eq!(
        b.receive_remove(Update::Fail { id: 0 }).unwrap_err(),
        UpdateError::UnknownHtlc(0)
    );
    assert_eq!(
        b.send_fee(FeeratePerKw(300)).unwrap_err(),
        UpdateError::FeeFromNonFunder
    );
}

/// Funds an HTLC removal returns are usable by an add signed in the same
/// commitment: A fulfills B's HTLC, then offers more than its balance had
/// before the fulfill. B's next signature covers A's commitment with both the
/// fulfill and the add (a regression the random test found). B is the
/// funder and pays the fee.
#[test]
fn an_add_may_spend_what_a_fulfill_in_the_same_commitment_returns() {
    let fee = FeeratePerKw(253);
    let mut a = Commitments::new(
        Msat::from_msat(1_000),
        Msat::from_msat(9_000_000),
        fee,
        unlimited(false),
    );
    let mut b = Commitments::new(
        Msat::from_msat(9_000_000),
        Msat::from_msat(1_000),
        fee,
        unlimited(true),
    );
    let preimage = Preimage([7; 32]);
    // B offers 500 msat; both commitments get it irrevocably.
    let add = b
        .send_add(Msat::from_msat(500), preimage.payment_hash(), 100)
        .unwrap();
    a.receive_add(add).unwrap();
    let spec = b.send_commit().unwrap();
    assert_eq!(a.receive_commit().unwrap(), spec);
    b.receive_revoke().unwrap();
    let spec = a.send_commit().unwrap();
    assert_eq!(b.receive_commit().unwrap(), spec);
    a.receive_revoke().unwrap();
    // A fulfills and signs it into B's commitment.
    let f = a.send_fulfill(0, preimage).unwrap();
    b.receive_remove(f).unwrap();
    let spec = a.send_commit().unwrap();
    assert_eq!(b.receive_commit().unwrap(), spec);
    a.receive_revoke().unwrap();
    // In B's commitment A now has 1_500; in A's own still 1_000.
    assert_eq!(a.remote.to_remote, Msat::from_msat(1_500));
    assert_eq!(a.local.to_local, Msat::from_msat(1_000));
    let add = a
        .send_add(
            Msat::from_msat(1_400),
            Preimage([8; 32]).payment_hash(),
            100,
        )
        .unwrap();
    b.receive_add(add).unwrap();
    let spec = a.send_commit().unwrap();
    assert_eq!(b.receive_commit().unwrap(), spec);
    a.receive_revoke().unwrap();
    // B signs A's commitment holding the fulfill and the add together.
    let spec = b.send_commit().unwrap();
    assert_eq!(spec.to_local, Msat::from_msat(100));
    assert_eq!(spec.to_remote, Msat::from_msat(8_999_500));
    assert_eq!(a.receive_commit().unwrap(), spec);
    b.receive_revoke().unwrap();
}

/// No reserve, no minimum, static_remotekey with a high dust limit (every
/// HTLC trimmed) and a zero feerate: only balances matter.
fn unlimited(we_are_funder: bool) -> ChannelParams {
    let l = CommitLimits {
        dust_limit: Amount::from_sat(1_000_000),
        channel_reserve: Amount::ZERO,
        htlc_minimum: Msat::from_msat(1),
        max_htlc_value_in_flight: Msat::from_msat(u64::MAX),
        max_accepted_htlcs: 483,
    };
    ChannelParams {
        channel_type: ChannelType::StaticRemoteKey,
        we_are_funder,
        local: l,
        remote: l,
        max_dust_htlc_exposure: Msat::from_msat(u64::MAX),
    }
}

/// BOLT 2 `update_add_htlc` limits, from the sender's side (it does not
/// send) and the receiver's (it fails the channel): minimum, CLTV, count,
/// value in flight.
#[test]
fn htlc_limits_hold_on_both_sides() {
    let (mut a, mut b) = pair(100_000, 100_000, 2);
    let h = Preimage([1; 32]).payment_hash();
    assert_eq!(
        a.send_add(Msat::from_msat(999), h, 500),
        Err(UpdateError::BelowHtlcMinimum {
            amount: Msat::from_msat(999),
            minimum: Msat::from_msat(1_000)
        })
    );
    assert_eq!(
        b.receive_add(add(0, 999)),
        Err(UpdateError::BelowHtlcMinimum {
            amount: Msat::from_msat(999),
            minimum: Msat::from_msat(1_000)
        })
    );
    assert_eq!(
        a.send_add(Msat::from_msat(1_000), h, 500_000_000),
        Err(UpdateError::CltvExpiryTooFar(500_000_000))
    );
    let mut far = add(0, 1_000);
    if let Update::Add { cltv_expiry, .. } = &mut far {
        *cltv_expiry = 500_000_000;
    }
    assert_eq!(
        b.receive_add(far),
        Err(UpdateError::CltvExpiryTooFar(500_000_000))
    );
    // Two HTLCs fit, a third does not.
    for id in 0..2 {
        let u = a.send_add(Msat::from_msat(1_000), h, 500).unwrap();
        assert_eq!(
            u,
            Update::Add {
                id,
                amount: Msat::from_msat(1_000),
                payment_hash: h,
                cltv_expiry: 500
            }
        );
        b.receive_add(u).unwrap();
    }
    assert_eq!(
        a.send_add(Msat::from_msat(1_000), h, 500),
        Err(UpdateError::TooManyHtlcs { max: 2 })
    );
    assert_eq!(
        b.receive_add(add(2, 1_000)),
        Err(UpdateError::TooManyHtlcs { max: 2 })
    );

    // In flight: 300_000_000 msat at most.
    let (mut a, mut b) = pair(1_000_000, 0, 30);
    let u = a.send_add(Msat::from_msat(299_999_000), h, 500).unwrap();
    b.receive_add(u).unwrap();
    assert_eq!(
        a.send_add(Msat::from_msat(1_001), h, 500),
        Err(UpdateError::InFlightExceeded {
            in_flight: Msat::from_msat(300_000_001),
            max: Msat::from_msat(300_000_000)
        })
    );
    assert_eq!(
        b.receive_add(add(1, 1_001)),
        Err(UpdateError::InFlightExceeded {
            in_flight: Msat::from_msat(300_000_001),
            max: Msat::from_msat(300_000_000)
        })
    );
    a.send_add(Msat::from_msat(1_000), h, 500).unwrap();
    b.receive_add(add(1, 1_000)).unwrap();
}

/// The funder (100_000 sat, reserve 10_000, anchors at 253 sat/kw) pays
/// 327 sat of fee for one HTLC plus 660 sat of anchors: it may offer up to
/// 89_013_000 msat, and keeps the fee spike buffer (twice the feerate, one
/// more HTLC: 742 + 660 sat) when it sends, so it sends at most 88_598_000.
#[test]
fn the_funder_keeps_its_reserve_and_pays_the_fee() {
    let (a, mut b) = pair(100_000, 100_000, 30);
    let h = Preimage([1; 32]).payment_hash();
    assert_eq!(
        a.clone().send_add(Msat::from_msat(88_598_001), h, 500),
        Err(UpdateError::FeeSpikeBuffer)
    );
    assert_eq!(
        a.clone().send_add(Msat::from_msat(89_013_001), h, 500),
        Err(UpdateError::ReserveBreached {
            balance: Msat::from_msat(10_986_999),
            needed: Msat::from_msat(10_987_000)
        })
    );
    a.clone()
        .send_add(Msat::from_msat(88_598_000), h, 500)
        .unwrap();
    assert_eq!(
        b.receive_add(add(0, 89_013_001)),
        Err(UpdateError::ReserveBreached {
            balance: Msat::from_msat(10_986_999),
            needed: Msat::from_msat(10_987_000)
        })
    );
    b.receive_add(add(0, 89_013_000)).unwrap();

    // update_fee: the sender keeps its reserve (79_484 sat/kw at most:
    // 89_340 + 660 <= 90_000), the receiver only needs the fee paid
    // (88_381 at most); and nothing below 253.
    let (mut a, mut b) = pair(100_000, 100_000, 30);
    assert!(matches!(
        a.clone().send_fee(FeeratePerKw(79_485)),
        Err(UpdateError::FunderCannotPayFee { .. })
    ));
    a.send_fee(FeeratePerKw(79_484)).unwrap();
    assert_eq!(
        b.clone().receive_fee(FeeratePerKw(88_382)),
        Err(UpdateError::FunderCannotPayFee {
            balance: Msat::from_msat(100_000_000),
            fee: Msat::from_msat(100_001_000)
        })
    );
    assert_eq!(
        b.clone().receive_fee(FeeratePerKw(252)),
        Err(UpdateError::FeerateTooLow(FeeratePerKw(252)))
    );
    b.receive_fee(FeeratePerKw(88_381)).unwrap();
}

/// The fundee's HTLCs raise the funder's fee: with 11_000 sat the funder
/// pays 327 + 660 sat for one HTLC and keeps its 10_000 reserve, but not
/// 371 + 660 for two. A trimmed HTLC (below the 354 sat dust limit) adds no
/// fee. The receiving funder only refuses what it cannot pay at all.
#[test]
fn the_fundee_does_not_push_the_funder_below_its_reserve() {
    let (mut a, mut b) = pair(11_000, 89_000, 30);
    let h = Preimage([2; 32]).payment_hash();
    let u = b.send_add(Msat::from_msat(1_000_000), h, 500).unwrap();
    a.receive_add(u).unwrap();
    assert_eq!(
        b.clone().send_add(Msat::from_msat(1_000_000), h, 500),
        Err(UpdateError::FunderCannotPayFee {
            balance: Msat::from_msat(11_000_000),
            fee: Msat::from_msat(1_031_000)
        })
    );
    a.clone().receive_add(add(1, 1_000_000)).unwrap();
    // Trimmed: no output, no fee.
    let u = b.send_add(Msat::from_msat(353_999), h, 500).unwrap();
    a.receive_add(u).unwrap();
}

/// BOLT 2: a sender not paying the fee "SHOULD NOT offer `amount_msat` if,
/// once the remote node adds that HTLC to its commitment transaction, it
/// cannot pay the fee for the updated local or remote transaction". With
/// static_remotekey at 1000 sat/kw, B's 1100-sat HTLC is trimmed on A's
/// commitment (dust 546, success fee 703) but not on B's own (dust 354,
/// timeout fee 663), where funder A would pay 896 sat instead of 724 and
/// fall below its 10_000-sat reserve with 10_824 sat.
#[test]
fn the_fundee_checks_the_funder_on_its_own_commitment_too() {
    let limits = |dust| CommitLimits {
        dust_limit: Amount::from_sat(dust),
        channel_reserve: Amount::from_sat(10_000),
        htlc_minimum: Msat::from_msat(1),
        max_htlc_value_in_flight: Msat::from_msat(u64::MAX),
        max_accepted_htlcs: 483,
    };
    let params = |we_are_funder: bool| ChannelParams {
        channel_type: ChannelType::StaticRemoteKey,
        we_are_funder,
        local: limits(if we_are_funder { 546 } else { 354 }),
        remote: limits(if we_are_funder { 354 } else { 546 }),
        max_dust_htlc_exposure: Msat::from_msat(u64::MAX),
    };
    let (fa, fb) = (Msat::from_msat(10_824_000), Msat::from_msat(89_176_000));
    let f = FeeratePerKw(1000);
    let mut a = Commitments::new(fa, fb, f, params(true));
    let mut b = Commitments::new(fb, fa, f, params(false));
    let h = Preimage([3; 32]).payment_hash();
    assert_eq!(
        b.send_add(Msat::from_msat(1_100_000), h, 500),
        Err(UpdateError::FunderCannotPayFee {
            balance: Msat::from_msat(10_824_000),
            fee: Msat::from_msat(896_000)
        })
    );
    // A, checking only its own commitment (where it is trimmed), would accept.
    a.receive_add(add(0, 1_100_000)).unwrap();
    // Trimmed on both commitments: fine.
    b.send_add(Msat::from_msat(1_000_000), h, 500).unwrap();
}

/// BOLT 2 §"Bounding exposure to trimmed in-flight HTLCs": with a
/// 1_000_000-msat limit and 354-sat dust limits, three 300-sat HTLCs fit;
/// a fourth trimmed one is not sent, and when received it is flagged to be
/// failed once committed. Untrimmed HTLCs are not affected.
#[test]
fn dust_exposure_is_bounded() {
    let with_max = |we_are_funder| {
        let mut p = params(we_are_funder, 30);
        p.max_dust_htlc_exposure = Msat::from_msat(1_000_000);
        p
    };
    let (a_bal, b_bal) = (Msat::from_msat(600_000_000), Msat::from_msat(400_000_000));
    let f = FeeratePerKw(253);
    let mut a = Commitments::new(a_bal, b_bal, f, with_max(true));
    let mut b = Commitments::new(b_bal, a_bal, f, with_max(false));
    let h = Preimage([5; 32]).payment_hash();
    for _ in 0..3 {
        let u = a.send_add(Msat::from_msat(300_000), h, 500).unwrap();
        assert!(!b.receive_add(u).unwrap(), "within the limit");
    }
    assert_eq!(
        a.send_add(Msat::from_msat(300_000), h, 500),
        Err(UpdateError::DustExposure {
            exposure: Msat::from_msat(1_200_000),
            max: Msat::from_msat(1_000_000)
        })
    );
    // A peer that sends it anyway: accepted, flagged to fail.
    assert!(b.receive_add(add(3, 300_000)).unwrap());
    // An untrimmed HTLC still goes through.
    let u = a.send_add(Msat::from_msat(5_000_000), h, 500).unwrap();
    let Update::Add { id, .. } = u else { panic!() };
    assert_eq!(id, 3);
}

/// `max_sendable` is exactly the largest HTLC `send_add` takes (one msat
/// more is refused), the peer accepts it, and `max_receivable` on the
/// peer's side is at least that (the sender keeps a fee spike buffer on
/// top of what the receiver must refuse).
#[test]
fn max_sendable_and_receivable_are_the_checks_limits() {
    for (funder_sat, fundee_sat) in [(1_000_000u64, 0u64), (600_000, 400_000), (20_000, 980_000)] {
        let (a, b) = pair(funder_sat, fundee_sat, 483);
        for (from, to) in [(&a, &b), (&b, &a)] {
            let max = from.max_sendable();
            if max == Msat::ZERO {
                // Nothing fits: not even the minimum.
                assert!(from
                    .clone()
                    .send_add(
                        Msat::from_msat(1_000),
                        Preimage([1; 32]).payment_hash(),
                        500
                    )
                    .is_err());
                continue;
            }
            let hash = Preimage([1; 32]).payment_hash();
            assert!(from.clone().send_add(max, hash, 500).is_ok(), "{max}");
            let over = Msat::from_msat(max.to_msat() + 1);
            assert!(from.clone().send_add(over, hash, 500).is_err(), "{over}");
            assert!(to.clone().receive_add(add(0, max.to_msat())).is_ok());
            assert!(
                to.max_receivable() >= max,
                "{} < {max}",
                to.max_receivable()
            );
            let over = Msat::from_msat(to.max_receivable().to_msat() + 1);
            assert!(to.clone().receive_add(add(0, over.to_msat())).is_err());
        }
    }
    // A funder of 1,000,000 sat is held to the peer's 300,000 sat in flight.
    let (a, _) = pair(1_000_000, 0, 483);
    assert_eq!(a.max_sendable(), Msat::from_msat(300_000_000));
    // A funder of 20,000 sat keeps the fundee's 10,000 sat reserve, the
    // anchors (660 sat) and the fee, at twice the feerate, of a commitment
    // with this HTLC and one more (506 sat/kW x (1124 + 2 x 172) weight =
    // 742 sat): BOLT 2's fee spike buffer.
    let (a, _) = pair(20_000, 980_000, 483);
    assert_eq!(
        a.max_sendable(),
        Msat::from_msat((20_000 - 10_000 - 660 - 742) * 1000)
    );
    // The fundee has nothing to send.
    let (_, b) = pair(1_000_000, 0, 483);
    assert_eq!(b.max_sendable(), Msat::ZERO);
}
