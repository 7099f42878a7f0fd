//! The asymmetric commitment protocol of BOLT 2 §"Normal Operation", at the
//! level of balances and HTLCs (signatures and transactions come from
//! `beongae-script` on top of these specs).
//!
//! Each side's updates pass through three stages:
//! - **proposed**: sent (or received) but not yet covered by a `commitment_signed`;
//! - **signed**: our updates covered by a `commitment_signed` we sent, awaiting
//!   the peer's `revoke_and_ack`;
//! - **acked**: in the peer's commitment (ours) / in our commitment (theirs),
//!   to be included in the next commitment of the other side.
//!
//! A commitment's content is the previous one "reduced" by the updates of its
//! owner that the other side acknowledged and the updates of the other side
//! being signed now. Both nodes compute the same specs, which is what makes
//! the signatures agree; the property tests drive two instances through
//! random interleavings and check exactly that.

use beongae_script::FeeratePerKw;
use beongae_wire::{Msat, PaymentHash, Preimage};

use crate::limits::{check_add, check_fee, exceeds_dust_exposure, ChannelParams, Checker};

/// One update message, as it affects commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `update_add_htlc`
    Add {
        /// `id`
        id: u64,
        /// `amount_msat`
        amount: Msat,
        /// `payment_hash`
        payment_hash: PaymentHash,
        /// `cltv_expiry`
        cltv_expiry: u32,
    },
    /// `update_fulfill_htlc` of an HTLC the other side offered.
    Fulfill {
        /// `id` (the offerer's numbering)
        id: u64,
        /// `payment_preimage`
        preimage: Preimage,
    },
    /// `update_fail_htlc` / `update_fail_malformed_htlc` of an HTLC the other side offered.
    Fail {
        /// `id` (the offerer's numbering)
        id: u64,
    },
    /// `update_fee` (only from the funder).
    Fee {
        /// `feerate_per_kw`
        feerate: FeeratePerKw,
    },
}

/// An HTLC in a commitment, from the commitment owner's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecHtlc {
    /// Offered by the owner (else received by it).
    pub offered: bool,
    /// The offerer's `id`.
    pub id: u64,
    /// `amount_msat`
    pub amount: Msat,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// `cltv_expiry`
    pub cltv_expiry: u32,
}

/// The content of one commitment transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSpec {
    /// HTLCs, in the order they were added.
    pub htlcs: Vec<SpecHtlc>,
    /// The owner's balance.
    pub to_local: Msat,
    /// The other side's balance.
    pub to_remote: Msat,
    /// `feerate_per_kw`
    pub feerate: FeeratePerKw,
}

/// Why an update cannot be applied; each means the peer (or we) broke
/// BOLT 2, and the channel must fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Fulfill or fail of an HTLC that is not there.
    #[error("no htlc with id {0} to remove")]
    UnknownHtlc(u64),
    /// A second fulfill or fail of the same HTLC.
    #[error("htlc {0} is already being removed")]
    AlreadyRemoved(u64),
    /// A preimage that does not match the payment hash.
    #[error("preimage does not match the payment hash of htlc {0}")]
    WrongPreimage(u64),
    /// An HTLC the offerer cannot pay for.
    #[error("htlc of {amount} exceeds the offerer's balance {balance}")]
    CannotAfford {
        /// The HTLC.
        amount: Msat,
        /// The balance.
        balance: Msat,
    },
    /// `update_add_htlc` with an `id` out of sequence.
    #[error("htlc id {got} out of sequence, expected {expected}")]
    IdOutOfSequence {
        /// Received.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// `amount_msat` of zero.
    #[error("htlc amount is zero")]
    ZeroAmount,
    /// `commitment_signed` with nothing to sign.
    #[error("commitment_signed without any update to sign")]
    NothingToSign,
    /// A second `commitment_signed` before the previous was revoked.
    #[error("commitment_signed sent while the previous one awaits revoke_and_ack")]
    AwaitingRevocation,
    /// `revoke_and_ack` without an outstanding `commitment_signed`.
    #[error("revoke_and_ack without a pending commitment_signed")]
    UnexpectedRevocation,
    /// `update_fee` from the side that does not pay the fee.
    #[error("update_fee from the non-funder")]
    FeeFromNonFunder,
    /// An HTLC below the receiver's `htlc_minimum_msat`.
    #[error("htlc of {amount} is below the htlc_minimum_msat of {minimum}")]
    BelowHtlcMinimum {
        /// The HTLC.
        amount: Msat,
        /// The receiver's minimum.
        minimum: Msat,
    },
    /// `cltv_expiry` of 500000000 or more.
    #[error("cltv_expiry {0} is not below 500000000")]
    CltvExpiryTooFar(u32),
    /// More offered HTLCs than the receiver's `max_accepted_htlcs`.
    #[error("more than max_accepted_htlcs ({max}) htlcs offered")]
    TooManyHtlcs {
        /// The receiver's limit.
        max: u16,
    },
    /// More offered value than the receiver's `max_htlc_value_in_flight_msat`.
    #[error("{in_flight} offered in flight exceeds max_htlc_value_in_flight_msat {max}")]
    InFlightExceeded {
        /// Total offered.
        in_flight: Msat,
        /// The receiver's limit.
        max: Msat,
    },
    /// The offerer would go below its channel reserve (after its fee, if funder).
    #[error("offerer balance {balance} is below the {needed} it must keep (reserve and fee)")]
    ReserveBreached {
        /// The offerer's balance after the HTLC.
        balance: Msat,
        /// Reserve plus the fee it pays.
        needed: Msat,
    },
    /// The funder would not keep BOLT 2's fee spike buffer (we do not send).
    #[error("the funder would not keep a buffer for twice the feerate and one more htlc")]
    FeeSpikeBuffer,
    /// The funder cannot pay the commitment fee (and anchors).
    #[error("funder balance {balance} cannot pay the commitment fee {fee} and its reserve")]
    FunderCannotPayFee {
        /// The funder's balance.
        balance: Msat,
        /// The fee and anchors.
        fee: Msat,
    },
    /// A trimmed HTLC that would bring a commitment's dust balance above our
    /// `max_dust_htlc_exposure_msat` (we do not send it).
    #[error("trimmed htlcs would hold {exposure}, above max_dust_htlc_exposure_msat {max}")]
    DustExposure {
        /// The dust balance with the HTLC.
        exposure: Msat,
        /// Our limit.
        max: Msat,
    },
    /// `update_fee` below 253 sat/kw.
    #[error("feerate {} sat/kw is below the 253 minimum", .0 .0)]
    FeerateTooLow(FeeratePerKw),
}

impl CommitSpec {
    /// A commitment with no HTLCs.
    pub fn new(to_local: Msat, to_remote: Msat, feerate: FeeratePerKw) -> Self {
        CommitSpec {
            htlcs: Vec::new(),
            to_local,
            to_remote,
            feerate,
        }
    }

    /// The next commitment: `owner_changes` are updates sent by the owner,
    /// `other_changes` those sent by the other side. Removals apply first
    /// (they only name HTLCs already in `self`: BOLT 2 lets a node remove an
    /// HTLC only once it is irrevocably committed), so the funds they return
    /// are available to adds signed in the same commitment; then adds, then
    /// the last fee update.
    pub fn reduce(
        &self,
        owner_changes: &[Update],
        other_changes: &[Update],
    ) -> Result<CommitSpec, UpdateError> {
        let mut spec = self.clone();
        for (changes, owner) in [(owner_changes, true), (other_changes, false)] {
            for u in changes {
                let (id, fulfilled) = match u {
                    Update::Fulfill { id, .. } => (*id, true),
                    Update::Fail { id } => (*id, false),
                    _ => continue,
                };
                // A removal by one side concerns an HTLC the other side offered.
                let pos = spec
                    .htlcs
                    .iter()
                    .position(|h| h.id == id && h.offered != owner)
                    .ok_or(UpdateError::UnknownHtlc(id))?;
                let htlc = spec.htlcs.remove(pos);
                // Fulfilled: to the remover; failed: back to the offerer.
                let to_owner = fulfilled == owner;
                let balance = if to_owner {
                    &mut spec.to_local
                } else {
                    &mut spec.to_remote
                };
                *balance = balance
                    .checked_add(htlc.amount)
                    .expect("bounded by the channel capacity");
            }
        }
        for (changes, owner) in [(owner_changes, true), (other_changes, false)] {
            for u in changes {
                if let Update::Add {
                    id,
                    amount,
                    payment_hash,
                    cltv_expiry,
                } = u
                {
                    let balance = if owner {
                        &mut spec.to_local
                    } else {
                        &mut spec.to_remote
                    };
                    *balance = balance
                        .checked_sub(*amount)
                        .ok_or(UpdateError::CannotAfford {
                            amount: *amount,
                            balance: *balance,
                        })?;
                    spec.htlcs.push(SpecHtlc {
                        offered: owner,
                        id: *id,
                        amount: *amount,
                        payment_hash: *payment_hash,
                        cltv_expiry: *cltv_expiry,
                    });
                }
            }
        }
        if let Some(f) = owner_changes
            .iter()
            .chain(other_changes)
            .rev()
            .find_map(|u| match u {
                Update::Fee { feerate } => Some(*feerate),
                _ => None,
            })
        {
            spec.feerate = f;
        }
        Ok(spec)
    }

    /// The same commitment as the other side describes it.
    pub fn mirror(&self) -> CommitSpec {
        CommitSpec {
            htlcs: self
                .htlcs
                .iter()
                .map(|h| SpecHtlc {
                    offered: !h.offered,
                    ..h.clone()
                })
                .collect(),
            to_local: self.to_remote,
            to_remote: self.to_local,
            feerate: self.feerate,
        }
    }

    /// Balances plus HTLCs: constant over a channel's life.
    pub fn total(&self) -> Option<Msat> {
        Msat::checked_sum(
            [self.to_local, self.to_remote]
                .into_iter()
                .chain(self.htlcs.iter().map(|h| h.amount)),
        )
    }
}

/// One side's updates by stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Changes {
    proposed: Vec<Update>,
    signed: Vec<Update>,
    acked: Vec<Update>,
}

/// Both commitments of a channel and the updates in flight, from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments {
    /// Our current commitment.
    pub local: CommitSpec,
    /// The peer's current (unrevoked) commitment.
    pub remote: CommitSpec,
    /// The peer's next commitment, signed by us, awaiting its revocation of `remote`.
    pub remote_next: Option<CommitSpec>,
    local_changes: Changes,
    remote_changes: Changes,
    next_local_id: u64,
    next_remote_id: u64,
    /// Channel type, funder and both sides' limits.
    pub params: ChannelParams,
}

impl Commitments {
    /// A fresh channel: our and their balances, the initial feerate.
    pub fn new(ours: Msat, theirs: Msat, feerate: FeeratePerKw, params: ChannelParams) -> Self {
        Commitments {
            local: CommitSpec::new(ours, theirs, feerate),
            remote: CommitSpec::new(theirs, ours, feerate),
            remote_next: None,
            local_changes: Changes::default(),
            remote_changes: Changes::default(),
            next_local_id: 0,
            next_remote_id: 0,
            params,
        }
    }

    /// The peer's commitment as it would be if we signed now.
    fn remote_pending(&self) -> Result<CommitSpec, UpdateError> {
        let base = self.remote_next.as_ref().unwrap_or(&self.remote);
        base.reduce(&self.remote_changes.acked, &self.local_changes.proposed)
    }

    /// Our next commitment as the peer would sign it now.
    fn local_pending(&self) -> Result<CommitSpec, UpdateError> {
        self.local
            .reduce(&self.local_changes.acked, &self.remote_changes.proposed)
    }

    /// Offers an HTLC (`update_add_htlc`); returns the update to send.
    pub fn send_add(
        &mut self,
        amount: Msat,
        payment_hash: PaymentHash,
        cltv_expiry: u32,
    ) -> Result<Update, UpdateError> {
        if amount == Msat::ZERO {
            return Err(UpdateError::ZeroAmount);
        }
        let add = Update::Add {
            id: self.next_local_id,
            amount,
            payment_hash,
            cltv_expiry,
        };
        self.local_changes.proposed.push(add.clone());
        // BOLT 2: it must be payable, within the peer's limits, in the peer's
        // next commitment.
        let p = self.params;
        let checked = self.remote_pending().and_then(|spec| {
            check_add(
                &spec,
                amount,
                cltv_expiry,
                p.channel_type,
                &p.remote,
                p.local.channel_reserve,
                p.we_are_funder,
                Checker::Sender,
            )
        });
        // BOLT 2: the funder must also pay the fee of our own commitment
        // once the HTLC is in it (its untrimmed HTLCs differ with our dust
        // limit), keeping its reserve.
        let checked = checked
            .and_then(|()| self.check_funder_on_local())
            .and_then(|()| self.check_dust_on_send(self.next_local_id));
        if let Err(e) = checked {
            self.local_changes.proposed.pop();
            return Err(e);
        }
        self.next_local_id += 1;
        Ok(add)
    }

    /// Our commitment with every update we have in flight applied: the
    /// funder (us or the peer) pays its fee and anchors and keeps the
    /// reserve the other side asked of it.
    fn check_funder_on_local(&self) -> Result<(), UpdateError> {
        let ours: Vec<Update> = [
            &self.local_changes.acked,
            &self.local_changes.signed,
            &self.local_changes.proposed,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        let future = self.local.reduce(&ours, &self.remote_changes.proposed)?;
        let p = self.params;
        let cost = future.funder_cost(p.channel_type, p.local.dust_limit, future.feerate, 0);
        let (balance, reserve) = if p.we_are_funder {
            (future.to_local, p.remote.channel_reserve)
        } else {
            (future.to_remote, p.local.channel_reserve)
        };
        let need = cost.checked_add(Msat::from_msat(reserve.to_sat() * 1000));
        if need.is_none_or(|need| balance < need) {
            return Err(UpdateError::FunderCannotPayFee { balance, fee: cost });
        }
        Ok(())
    }

    /// BOLT 2: "when offering an HTLC ... if the `amount_msat` plus the dust
    /// balance of the remote (local) transaction is greater than
    /// `max_dust_htlc_exposure_msat`: SHOULD NOT send this HTLC".
    fn check_dust_on_send(&self, id: u64) -> Result<(), UpdateError> {
        let p = self.params;
        let remote = self.remote_pending()?;
        let exceeded = exceeds_dust_exposure(
            &remote,
            (false, id),
            p.channel_type,
            p.remote.dust_limit,
            p.max_dust_htlc_exposure,
        )
        .or(exceeds_dust_exposure(
            &self.local_future()?,
            (true, id),
            p.channel_type,
            p.local.dust_limit,
            p.max_dust_htlc_exposure,
        ));
        match exceeded {
            Some(exposure) => Err(UpdateError::DustExposure {
                exposure,
                max: p.max_dust_htlc_exposure,
            }),
            None => Ok(()),
        }
    }

    /// Our commitment with every update in flight applied.
    fn local_future(&self) -> Result<CommitSpec, UpdateError> {
        let ours: Vec<Update> = [
            &self.local_changes.acked,
            &self.local_changes.signed,
            &self.local_changes.proposed,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        self.local.reduce(&ours, &self.remote_changes.proposed)
    }

    /// Receives `update_add_htlc`. Returns whether the HTLC, once
    /// committed, must be failed rather than accepted because it is trimmed
    /// and brings a commitment's dust balance above our
    /// `max_dust_htlc_exposure_msat` (BOLT 2: "SHOULD fail this HTLC once
    /// it's committed", "SHOULD NOT reveal a preimage for this HTLC").
    pub fn receive_add(&mut self, add: Update) -> Result<bool, UpdateError> {
        let Update::Add {
            id,
            amount,
            payment_hash,
            cltv_expiry,
        } = add
        else {
            return Err(UpdateError::UnknownHtlc(u64::MAX));
        };
        if id != self.next_remote_id {
            return Err(UpdateError::IdOutOfSequence {
                got: id,
                expected: self.next_remote_id,
            });
        }
        self.remote_changes.proposed.push(add);
        // BOLT 2: the sender must afford it, within our limits, in our next commitment.
        let p = self.params;
        let local = self.local_pending().and_then(|spec| {
            check_add(
                &spec,
                amount,
                cltv_expiry,
                p.channel_type,
                &p.local,
                p.remote.channel_reserve,
                !p.we_are_funder,
                Checker::Receiver,
            )
            .map(|()| spec)
        });
        let local = match local {
            Ok(spec) => spec,
            Err(e) => {
                self.remote_changes.proposed.pop();
                return Err(e);
            }
        };
        self.next_remote_id += 1;
        let over = |spec: &CommitSpec, offered, dust| {
            exceeds_dust_exposure(
                spec,
                (offered, id),
                p.channel_type,
                dust,
                p.max_dust_htlc_exposure,
            )
            .is_some()
        };
        // The peer's HTLC as its own commitment will hold it.
        let remote_over = self.remote_pending().is_ok_and(|mut spec| {
            spec.htlcs.push(SpecHtlc {
                offered: true,
                id,
                amount,
                payment_hash,
                cltv_expiry,
            });
            over(&spec, true, p.remote.dust_limit)
        });
        Ok(over(&local, false, p.local.dust_limit) || remote_over)
    }

    /// The HTLC the peer offered with `id`, if it is irrevocably committed:
    /// in our current commitment and in the peer's (BOLT 2: a node MUST NOT
    /// fulfill or fail an HTLC until it is irrevocably committed in both).
    fn received_htlc(&self, id: u64) -> Option<&SpecHtlc> {
        let in_remote = self.remote.htlcs.iter().any(|h| h.offered && h.id == id)
            && self
                .remote_next
                .as_ref()
                .is_none_or(|n| n.htlcs.iter().any(|h| h.offered && h.id == id));
        self.local
            .htlcs
            .iter()
            .find(|h| !h.offered && h.id == id)
            .filter(|_| in_remote)
    }

    pub(crate) fn removal_pending(&self, id: u64) -> bool {
        let ours = |u: &Update| matches!(u, Update::Fulfill { id: i, .. } | Update::Fail { id: i } if *i == id);
        [
            &self.local_changes.proposed,
            &self.local_changes.signed,
            &self.local_changes.acked,
        ]
        .iter()
        .any(|l| l.iter().any(ours))
    }

    /// Fulfills an HTLC the peer offered (it must be committed on our side).
    pub fn send_fulfill(&mut self, id: u64, preimage: Preimage) -> Result<Update, UpdateError> {
        let htlc = self.received_htlc(id).ok_or(UpdateError::UnknownHtlc(id))?;
        if htlc.payment_hash != preimage.payment_hash() {
            return Err(UpdateError::WrongPreimage(id));
        }
        if self.removal_pending(id) {
            return Err(UpdateError::UnknownHtlc(id));
        }
        let u = Update::Fulfill { id, preimage };
        self.local_changes.proposed.push(u.clone());
        Ok(u)
    }

    /// Fails an HTLC the peer offered.
    pub fn send_fail(&mut self, id: u64) -> Result<Update, UpdateError> {
        if self.received_htlc(id).is_none() || self.removal_pending(id) {
            return Err(UpdateError::UnknownHtlc(id));
        }
        let u = Update::Fail { id };
        self.local_changes.proposed.push(u.clone());
        Ok(u)
    }

    /// Receives a fulfill or fail of an HTLC we offered. BOLT 2: "if the
    /// `id` does not correspond to an HTLC in its current commitment
    /// transaction: MUST fail the channel", and the sender "MUST NOT send an
    /// `update_fulfill_htlc`, `update_fail_htlc`, or
    /// `update_fail_malformed_htlc` until the corresponding HTLC is
    /// irrevocably committed in both sides' commitment transactions": the
    /// HTLC must be in our current commitment and in the peer's, and not
    /// already removed by the peer at any stage (proposed, signed or acked),
    /// so a bad removal is refused when it arrives, not at the next
    /// `commitment_signed`.
    pub fn receive_remove(&mut self, u: Update) -> Result<(), UpdateError> {
        let id = match &u {
            Update::Fulfill { id, .. } | Update::Fail { id } => *id,
            _ => return Err(UpdateError::UnknownHtlc(u64::MAX)),
        };
        let in_local = self.local.htlcs.iter().any(|h| h.offered && h.id == id);
        let htlc = self
            .remote
            .htlcs
            .iter()
            .find(|h| !h.offered && h.id == id)
            .filter(|_| in_local)
            .ok_or(UpdateError::UnknownHtlc(id))?;
        if let Update::Fulfill { preimage, .. } = &u {
            if htlc.payment_hash != preimage.payment_hash() {
                return Err(UpdateError::WrongPreimage(id));
            }
        }
        if self.peer_removes(id) {
            return Err(UpdateError::AlreadyRemoved(id));
        }
        self.remote_changes.proposed.push(u);
        Ok(())
    }

    /// `update_fee` from us (we must be the funder).
    pub fn send_fee(&mut self, feerate: FeeratePerKw) -> Result<Update, UpdateError> {
        if !self.params.we_are_funder {
            return Err(UpdateError::FeeFromNonFunder);
        }
        let u = Update::Fee { feerate };
        self.local_changes.proposed.push(u.clone());
        // BOLT 2: the funder must afford the new fee on the peer's commitment.
        let p = self.params;
        let checked = self
            .remote_pending()
            .and_then(|spec| check_fee(&spec, p.channel_type, &p.remote, Checker::Sender));
        if let Err(e) = checked {
            self.local_changes.proposed.pop();
            return Err(e);
        }
        Ok(u)
    }

    /// `update_fee` from the peer (it must be the funder).
    pub fn receive_fee(&mut self, feerate: FeeratePerKw) -> Result<(), UpdateError> {
        if self.params.we_are_funder {
            return Err(UpdateError::FeeFromNonFunder);
        }
        self.remote_changes.proposed.push(Update::Fee { feerate });
        // BOLT 2: the funder must afford it on our current commitment.
        let p = self.params;
        let checked = self
            .local_pending()
            .and_then(|spec| check_fee(&spec, p.channel_type, &p.local, Checker::Receiver));
        if let Err(e) = checked {
            self.remote_changes.proposed.pop();
            return Err(e);
        }
        Ok(())
    }

    /// The largest HTLC we could offer now: found by bisection with
    /// [`Commitments::send_add`] itself on a copy (every BOLT 2 limit, the
    /// reserve and fee on both commitments, the funder's fee spike buffer,
    /// dust exposure), so a payment of this much passes the same checks.
    /// Zero if not even the peer's `htlc_minimum_msat` fits.
    pub fn max_sendable(&self) -> Msat {
        let fits = |amount: u64| {
            self.clone()
                .send_add(Msat::from_msat(amount), PaymentHash([0; 32]), 0)
                .is_ok()
        };
        let low = self.params.remote.htlc_minimum.to_msat().max(1);
        let high = self.local_pending().map_or(0, |s| s.to_local.to_msat());
        Msat::from_msat(bisect(low, high, fits))
    }

    /// The largest HTLC the peer could offer us now that we would accept
    /// (what we must refuse: our limits, the reserve we asked of it, the
    /// fee if it is the funder; its own fee spike buffer is its business),
    /// by bisection with [`Commitments::receive_add`] on a copy.
    pub fn max_receivable(&self) -> Msat {
        let id = self.next_remote_id;
        let fits = |amount: u64| {
            self.clone()
                .receive_add(Update::Add {
                    id,
                    amount: Msat::from_msat(amount),
                    payment_hash: PaymentHash([0; 32]),
                    cltv_expiry: 0,
                })
                .is_ok()
        };
        let low = self.params.local.htlc_minimum.to_msat().max(1);
        let high = self.local_pending().map_or(0, |s| s.to_remote.to_msat());
        Msat::from_msat(bisect(low, high, fits))
    }

    /// Whether a `commitment_signed` would sign anything new.
    pub fn can_send_commit(&self) -> bool {
        self.remote_next.is_none()
            && (!self.local_changes.proposed.is_empty() || !self.remote_changes.acked.is_empty())
    }

    /// Sends `commitment_signed`: returns the peer's new commitment to sign.
    pub fn send_commit(&mut self) -> Result<CommitSpec, UpdateError> {
        if self.remote_next.is_some() {
            return Err(UpdateError::AwaitingRevocation);
        }
        if self.local_changes.proposed.is_empty() && self.remote_changes.acked.is_empty() {
            return Err(UpdateError::NothingToSign);
        }
        let next = self
            .remote
            .reduce(&self.remote_changes.acked, &self.local_changes.proposed)?;
        self.local_changes.signed = std::mem::take(&mut self.local_changes.proposed);
        self.remote_changes.signed = std::mem::take(&mut self.remote_changes.acked);
        self.remote_next = Some(next.clone());
        Ok(next)
    }

    /// Receives `commitment_signed`: returns our new commitment (which the
    /// caller checks the signatures against) and moves to it. The caller
    /// then sends `revoke_and_ack` for the previous one.
    pub fn receive_commit(&mut self) -> Result<CommitSpec, UpdateError> {
        if self.remote_changes.proposed.is_empty() && self.local_changes.acked.is_empty() {
            return Err(UpdateError::NothingToSign);
        }
        let next = self
            .local
            .reduce(&self.local_changes.acked, &self.remote_changes.proposed)?;
        self.local_changes.acked.clear();
        let proposed = std::mem::take(&mut self.remote_changes.proposed);
        self.remote_changes.acked.extend(proposed);
        self.local = next.clone();
        Ok(next)
    }

    /// On disconnection (BOLT 2 §"Message Retransmission": a node "MUST
    /// reverse any uncommitted updates sent by the other side"): drops the
    /// peer's updates not yet covered by a `commitment_signed` and ours not
    /// yet covered by one (the peer drops those), restoring the HTLC ids.
    /// Returns our dropped updates, to be proposed again or failed back.
    pub fn drop_uncommitted(&mut self) -> Vec<Update> {
        let first_add = |updates: &[Update]| {
            updates.iter().find_map(|u| match u {
                Update::Add { id, .. } => Some(*id),
                _ => None,
            })
        };
        if let Some(id) = first_add(&self.remote_changes.proposed) {
            self.next_remote_id = id;
        }
        self.remote_changes.proposed.clear();
        if let Some(id) = first_add(&self.local_changes.proposed) {
            self.next_local_id = id;
        }
        std::mem::take(&mut self.local_changes.proposed)
    }

    /// No update in flight in either direction and no signature awaiting
    /// revocation: both commitments hold exactly the same.
    pub fn is_quiescent(&self) -> bool {
        let empty =
            |c: &Changes| c.proposed.is_empty() && c.signed.is_empty() && c.acked.is_empty();
        self.remote_next.is_none() && empty(&self.local_changes) && empty(&self.remote_changes)
    }

    /// The id the peer's next `update_add_htlc` must carry.
    pub fn next_remote_id(&self) -> u64 {
        self.next_remote_id
    }

    /// Whether we sent (or are about to send) `update_fulfill_htlc` for the
    /// HTLC the peer offered with `id`, at any stage: its preimage is out,
    /// so BOLT 2's fulfillment deadline applies to it.
    pub fn we_fulfill(&self, id: u64) -> bool {
        let c = &self.local_changes;
        [&c.proposed, &c.signed, &c.acked].iter().any(|l| {
            l.iter()
                .any(|u| matches!(u, Update::Fulfill { id: i, .. } if *i == id))
        })
    }

    /// Whether the peer has sent a fulfill or fail of our HTLC `id` that is
    /// still in flight.
    pub fn peer_removes(&self, id: u64) -> bool {
        let c = &self.remote_changes;
        [&c.proposed, &c.signed, &c.acked].iter().any(|l| {
            l.iter().any(
                |u| matches!(u, Update::Fulfill { id: i, .. } | Update::Fail { id: i } if *i == id),
            )
        })
    }

    /// Receives `revoke_and_ack` for the peer's previous commitment.
    pub fn receive_revoke(&mut self) -> Result<(), UpdateError> {
        let next = self
            .remote_next
            .take()
            .ok_or(UpdateError::UnexpectedRevocation)?;
        self.remote = next;
        let signed = std::mem::take(&mut self.local_changes.signed);
        self.local_changes.acked.extend(signed);
        self.remote_changes.signed.clear();
        Ok(())
    }
}

impl Commitments {
    /// Writes the whole state (see [`crate::persist`]).
    pub(crate) fn write(
        &self,
        w: &mut beongae_wire::Writer,
    ) -> Result<(), crate::persist::PersistError> {
        use crate::persist::{put_params, put_spec, put_updates};
        put_params(w, &self.params);
        put_spec(w, &self.local)?;
        put_spec(w, &self.remote)?;
        crate::persist::put_bool(w, self.remote_next.is_some());
        if let Some(next) = &self.remote_next {
            put_spec(w, next)?;
        }
        for c in [&self.local_changes, &self.remote_changes] {
            put_updates(w, &c.proposed)?;
            put_updates(w, &c.signed)?;
            put_updates(w, &c.acked)?;
        }
        w.write_u64(self.next_local_id);
        w.write_u64(self.next_remote_id);
        Ok(())
    }

    /// Reads what [`Commitments::write`] wrote.
    pub(crate) fn read(
        r: &mut beongae_wire::Reader<'_>,
    ) -> Result<Self, crate::persist::PersistError> {
        use crate::persist::{get_bool, get_params, get_spec, get_updates};
        let params = get_params(r)?;
        let local = get_spec(r)?;
        let remote = get_spec(r)?;
        let remote_next = if get_bool(r)? {
            Some(get_spec(r)?)
        } else {
            None
        };
        let mut changes = || -> Result<Changes, crate::persist::PersistError> {
            Ok(Changes {
                proposed: get_updates(r)?,
                signed: get_updates(r)?,
                acked: get_updates(r)?,
            })
        };
        let local_changes = changes()?;
        let remote_changes = changes()?;
        Ok(Commitments {
            local,
            remote,
            remote_next,
            local_changes,
            remote_changes,
            next_local_id: r.read_u64()?,
            next_remote_id: r.read_u64()?,
            params,
        })
    }
}

/// The largest `x` in `low..=high` with `fits(x)`, assuming what fits is a
/// range from `low` (an HTLC just above the dust limit costs the funder
/// more fee than one just below, so the top of the range is found by
/// bisection and then checked); 0 if `low` does not fit.
fn bisect(low: u64, high: u64, fits: impl Fn(u64) -> bool) -> u64 {
    if high < low || !fits(low) {
        return 0;
    }
    let (mut lo, mut hi) = (low, high);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}
