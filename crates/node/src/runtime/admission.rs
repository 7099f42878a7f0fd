//! Which inbound connections may run a BOLT 8 handshake (SAFETY.md "Peers
//! that attack": pending handshakes bounded per peer and overall, and a good
//! peer still served).
//!
//! A handshake costs an ECDH and holds a socket until it completes or times
//! out, and the remote's identity is known only at its end. So admission
//! goes by source (an IPv4 address, or an IPv6 /64, which one holder gets
//! whole), and a new connection is never refused; room is made by dropping
//! the oldest pending handshakes instead:
//! - from one source, beyond [`PER_ADDRESS`] pending, the oldest of that
//!   source once it has had [`GRACE`] to complete (a good handshake takes
//!   milliseconds), or whatever its age beyond [`PER_ADDRESS_BURST`];
//! - beyond [`TOTAL`] pending in all, the oldest of the source with the
//!   most pending, so that a flood from one source displaces itself.
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
    /// Ticket (in admission order) -> source and admission time.
    pending: BTreeMap<Ticket, (Source, Instant)>,
}

/// Where connections come from, as one holder controls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    V4([u8; 4]),
    /// The /64 prefix.
    V6([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(a) => Source::V4(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut p = [0; 8];
                    p.copy_from_slice(&a.octets()[..8]);
                    Source::V6(p)
                }
            },
        }
    }
}

impl Admission {
    /// Admits a connection from `ip` at `now`. Returns its ticket and the
    /// tickets of the handshakes to drop to make room (oldest first).
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> (Ticket, Vec<Ticket>) {
        let source = Source::from(ip);
        let mut evicted = Vec::new();
        let from_ip: Vec<(Ticket, Instant)> = self
            .pending
            .iter()
            .filter(|(_, (a, _))| *a == source)
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
            let mut counts: BTreeMap<Source, usize> = BTreeMap::new();
            for (s, _) in self.pending.values() {
                *counts.entry(*s).or_default() += 1;
            }
            // The source with the most pending (the first such in
            // admission order on a tie), its oldest handshake.
            let most = counts.values().copied().max().unwrap_or(0);
            let Some((&oldest, _)) = self
                .pending
                .iter()
                .find(|(_, (s, _))| counts.get(s) == Some(&most))
            else {
                break;
            };
            self.pending.remove(&oldest);
            evicted.push(oldest);
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        self.pending.insert(ticket, (source, now));
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
    fn an_ipv6_slash_64_is_one_source_and_a_flood_displaces_itself() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        // A good peer's handshake, then a flood from one /64 (every
        // address different) fills the rest and keeps coming.
        let (good, _) = a.admit(IpAddr::from([192, 0, 2, 1]), t0);
        for i in 0..200u16 {
            let mut v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
            v6[14..].copy_from_slice(&i.to_be_bytes());
            let (_, evicted) = a.admit(IpAddr::from(v6), t0);
            assert!(!evicted.contains(&good), "flood {i} evicted the good peer");
        }
        assert!(a.pending() <= PER_ADDRESS_BURST + 1);
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
