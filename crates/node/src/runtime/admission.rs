//! Which inbound connections may run a BOLT 8 handshake (SAFETY.md "Peers
//! that attack": pending handshakes bounded per peer and overall, and a good
//! peer still served).
//!
//! A handshake costs an ECDH and holds a socket until it completes or times
//! out, and the remote's identity is known only at its end. So admission
//! goes by source address, and a new connection is never refused; room is
//! made by dropping the oldest pending handshakes instead:
//! - from one address, beyond [`PER_ADDRESS`] pending, the oldest of that
//!   address once it has had [`GRACE`] to complete (a good handshake takes
//!   milliseconds), or whatever its age beyond [`PER_ADDRESS_BURST`];
//! - beyond [`TOTAL`] pending in all, the oldest of all.
//!
//! An attacker's silent sockets thus hold at most [`PER_ADDRESS`] places per
//! address for long, and cannot keep a good peer out: the good peer's
//! connection, being the newest, is admitted and completes long before
//! [`TOTAL`] newer ones push it out. Peers we have channels with are also
//! dialled by us, which this gate does not limit.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Handshakes pending from one source address for longer than [`GRACE`].
pub const PER_ADDRESS: usize = 4;
/// Handshakes pending from one source address at all (a burst of peers
/// behind one address, or a test on loopback).
pub const PER_ADDRESS_BURST: usize = 32;
/// Handshakes pending at once in all.
pub const TOTAL: usize = 64;
/// How long a handshake may take before newer ones from its address may
/// take its place.
pub const GRACE: Duration = Duration::from_secs(1);

/// One admitted handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// The pending inbound handshakes.
#[derive(Debug, Default)]
pub struct Admission {
    next: u64,
    /// Ticket (in admission order) -> source address and admission time.
    pending: BTreeMap<Ticket, (IpAddr, Instant)>,
}

impl Admission {
    /// Admits a connection from `ip` at `now`. Returns its ticket and the
    /// tickets of the handshakes to drop to make room (oldest first).
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> (Ticket, Vec<Ticket>) {
        let mut evicted = Vec::new();
        let from_ip: Vec<(Ticket, Instant)> = self
            .pending
            .iter()
            .filter(|(_, (a, _))| *a == ip)
            .map(|(t, (_, at))| (*t, *at))
            .collect();
        let mut count = from_ip.len();
        for (t, at) in from_ip {
            let stale = now.saturating_duration_since(at) >= GRACE;
            if count >= PER_ADDRESS_BURST || (count >= PER_ADDRESS && stale) {
                evicted.push(t);
                count -= 1;
            }
        }
        for t in &evicted {
            self.pending.remove(t);
        }
        while self.pending.len() >= TOTAL {
            let Some((&oldest, _)) = self.pending.iter().next() else {
                break;
            };
            self.pending.remove(&oldest);
            evicted.push(oldest);
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        self.pending.insert(ticket, (ip, now));
        (ticket, evicted)
    }

    /// The handshake ended (done, failed or dropped).
    pub fn done(&mut self, ticket: Ticket) {
        self.pending.remove(&ticket);
    }

    /// Handshakes pending now.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn an_address_keeps_four_stale_handshakes_and_a_burst_of_young_ones() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        let old: Vec<Ticket> = (0..6).map(|_| a.admit(ip(2), t0).0).collect();
        // Young: a burst from one address is let in whole.
        assert_eq!(a.pending(), 6);
        // Once they had their grace, a new one from that address drops the
        // oldest beyond four.
        let later = t0 + GRACE;
        let (new, evicted) = a.admit(ip(2), later);
        assert_eq!(evicted, old[..3].to_vec());
        assert_eq!(a.pending(), 4);
        // Another address is not affected.
        let (other, evicted) = a.admit(ip(1), later);
        assert!(evicted.is_empty());
        a.done(other);
        a.done(new);
        assert_eq!(a.pending(), 3);
    }

    #[test]
    fn a_burst_from_one_address_is_bounded() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        let first = a.admit(ip(2), t0).0;
        for _ in 1..PER_ADDRESS_BURST {
            assert!(a.admit(ip(2), t0).1.is_empty());
        }
        let (_, evicted) = a.admit(ip(2), t0);
        assert_eq!(evicted, vec![first]);
        assert_eq!(a.pending(), PER_ADDRESS_BURST);
    }

    #[test]
    fn the_total_is_bounded_by_dropping_the_oldest() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        let mut first = None;
        for i in 0..TOTAL {
            let (t, evicted) = a.admit(IpAddr::from([10, 0, 0, i as u8]), t0);
            assert!(evicted.is_empty(), "{i}");
            first.get_or_insert(t);
        }
        assert_eq!(a.pending(), TOTAL);
        let (_, evicted) = a.admit(ip(1), t0);
        assert_eq!(evicted, vec![first.unwrap()]);
        assert_eq!(a.pending(), TOTAL);
    }
}
