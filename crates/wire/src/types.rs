//! Identifiers shared by every layer: node ids, channel ids, short channel
//! ids, chain hashes and network address descriptors.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use bitcoin::secp256k1::PublicKey;

use crate::codec::{DecodeError, Reader, Writer};

pub use bitcoin::constants::ChainHash;

/// A node's identity: its 33-byte compressed public key (BOLT 7 `node_id`,
/// BOLT 8 static key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(PublicKey);

impl NodeId {
    /// The node id of a public key.
    pub fn from_pubkey(pk: PublicKey) -> Self {
        NodeId(pk)
    }

    /// The public key.
    pub fn pubkey(&self) -> PublicKey {
        self.0
    }

    /// The 33-byte compressed encoding.
    pub fn serialize(&self) -> [u8; 33] {
        self.0.serialize()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// Why a node id string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseNodeIdError {
    /// Not 66 hex characters.
    #[error(
        "a node id is 66 hex characters (a 33-byte compressed public key), got {0} characters"
    )]
    Length(usize),
    /// Hex of the right length that is not a point on the curve.
    #[error("not a valid compressed secp256k1 public key")]
    InvalidKey,
}

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 66 {
            return Err(ParseNodeIdError::Length(s.len()));
        }
        PublicKey::from_str(s)
            .map(NodeId)
            .map_err(|_| ParseNodeIdError::InvalidKey)
    }
}

/// BOLT 2 §"Definition of `channel_id`": 32 bytes; all zeros means "all channels"
/// in `error` and `warning`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChannelId(pub [u8; 32]);

impl ChannelId {
    /// The all-zero id: refers to every channel with the peer (BOLT 1).
    pub const ALL: ChannelId = ChannelId([0; 32]);

    /// Whether this is the all-zero id.
    pub fn is_all(&self) -> bool {
        self.0 == [0; 32]
    }

    /// BOLT 2 §"Definition of `channel_id`" (v1): `funding_txid` (internal
    /// byte order, as in `funding_created`) exclusive-ORed with
    /// `funding_output_index` big-endian in its last two bytes.
    pub fn from_funding(funding_txid: [u8; 32], funding_output_index: u16) -> ChannelId {
        let mut id = funding_txid;
        let [hi, lo] = funding_output_index.to_be_bytes();
        id[30] ^= hi;
        id[31] ^= lo;
        ChannelId(id)
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({self})")
    }
}

/// BOLT 7 §"Definition of `short_channel_id`": block height (3 bytes),
/// transaction index (3 bytes), output index (2 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortChannelId(u64);

impl ShortChannelId {
    /// From the 8-byte wire value.
    pub fn from_u64(v: u64) -> Self {
        ShortChannelId(v)
    }

    /// The 8-byte wire value.
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// From its parts; `None` if a part is out of range (24, 24, 16 bits).
    pub fn new(block: u32, tx_index: u32, output: u16) -> Option<Self> {
        if block >= 1 << 24 || tx_index >= 1 << 24 {
            return None;
        }
        Some(ShortChannelId(
            (u64::from(block) << 40) | (u64::from(tx_index) << 16) | u64::from(output),
        ))
    }

    /// Block height of the funding transaction.
    pub fn block(self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// Index of the funding transaction in its block.
    pub fn tx_index(self) -> u32 {
        ((self.0 >> 16) & 0xff_ffff) as u32
    }

    /// Funding output index.
    pub fn output(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for ShortChannelId {
    /// The human-readable form `BLOCKxTXxOUTPUT` (BOLT 7).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.block(), self.tx_index(), self.output())
    }
}

impl fmt::Debug for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortChannelId({self})")
    }
}

/// A BOLT 7 §"The `node_announcement` Message" address descriptor, as also used
/// by `init`'s `remote_addr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetAddress {
    /// Type 1: IPv4 address and port.
    Ipv4 {
        /// Address.
        addr: Ipv4Addr,
        /// Port.
        port: u16,
    },
    /// Type 2: IPv6 address and port.
    Ipv6 {
        /// Address.
        addr: Ipv6Addr,
        /// Port.
        port: u16,
    },
    /// Type 4: Tor v3 onion service (35 bytes: ed25519 key, checksum, version).
    TorV3 {
        /// The 35-byte onion address.
        onion: [u8; 35],
        /// Port.
        port: u16,
    },
    /// Type 5: DNS hostname (ASCII, up to 255 bytes) and port.
    Hostname {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
    },
    /// A descriptor type we do not know (including the deprecated Tor v2, type 3);
    /// its data runs to the end of its container.
    Unknown {
        /// Descriptor type.
        typ: u8,
        /// Raw data.
        data: Vec<u8>,
    },
}

impl NetAddress {
    /// Descriptor type byte.
    pub fn typ(&self) -> u8 {
        match self {
            NetAddress::Ipv4 { .. } => 1,
            NetAddress::Ipv6 { .. } => 2,
            NetAddress::TorV3 { .. } => 4,
            NetAddress::Hostname { .. } => 5,
            NetAddress::Unknown { typ, .. } => *typ,
        }
    }

    /// Writes type byte and data.
    pub fn write(&self, w: &mut Writer) {
        w.write_u8(self.typ());
        match self {
            NetAddress::Ipv4 { addr, port } => {
                w.write_bytes(&addr.octets());
                w.write_u16(*port);
            }
            NetAddress::Ipv6 { addr, port } => {
                w.write_bytes(&addr.octets());
                w.write_u16(*port);
            }
            NetAddress::TorV3 { onion, port } => {
                w.write_bytes(onion);
                w.write_u16(*port);
            }
            NetAddress::Hostname { host, port } => {
                // Constructed only from <= 255 bytes (see `read`), or by our own code.
                let len = host.len().min(255);
                w.write_u8(len as u8);
                w.write_bytes(&host.as_bytes()[..len]);
                w.write_u16(*port);
            }
            NetAddress::Unknown { data, .. } => w.write_bytes(data),
        }
    }

    /// Reads one descriptor. An unknown type takes the rest of the input, since
    /// its length cannot be known (BOLT 7: stop parsing at an unknown type).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.read_u8()? {
            1 => NetAddress::Ipv4 {
                addr: Ipv4Addr::from(r.read_array::<4>()?),
                port: r.read_u16()?,
            },
            2 => NetAddress::Ipv6 {
                addr: Ipv6Addr::from(r.read_array::<16>()?),
                port: r.read_u16()?,
            },
            4 => NetAddress::TorV3 {
                onion: r.read_array()?,
                port: r.read_u16()?,
            },
            5 => {
                let len = r.read_u8()?;
                let host = r.read_bytes(usize::from(len))?;
                if !host.is_ascii() {
                    return Err(DecodeError::InvalidValue {
                        field: "hostname",
                        reason: "not ASCII",
                    });
                }
                let host = String::from_utf8(host.to_vec()).expect("ASCII is UTF-8");
                NetAddress::Hostname {
                    host,
                    port: r.read_u16()?,
                }
            }
            typ => NetAddress::Unknown {
                typ,
                data: r.read_rest().to_vec(),
            },
        })
    }

    /// Whether this is an IP address that is not publicly routable (loopback,
    /// private, link-local): BOLT 1 says `remote_addr` SHOULD NOT be one.
    pub fn is_private_ip(&self) -> bool {
        match self {
            NetAddress::Ipv4 { addr, .. } => {
                let [a, b, ..] = addr.octets();
                let shared = a == 100 && (b & 0xc0) == 64; // 100.64.0.0/10
                addr.is_private()
                    || addr.is_loopback()
                    || addr.is_link_local()
                    || addr.is_unspecified()
                    || shared
            }
            NetAddress::Ipv6 { addr, .. } => {
                let first = addr.segments()[0];
                addr.is_loopback()
                    || addr.is_unspecified()
                    || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                    || (first & 0xffc0) == 0xfe80 // link local fe80::/10
            }
            _ => false,
        }
    }
}

impl From<SocketAddr> for NetAddress {
    fn from(sa: SocketAddr) -> Self {
        match sa {
            SocketAddr::V4(v4) => NetAddress::Ipv4 {
                addr: *v4.ip(),
                port: v4.port(),
            },
            SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                Some(addr) => NetAddress::Ipv4 {
                    addr,
                    port: v6.port(),
                },
                None => NetAddress::Ipv6 {
                    addr: *v6.ip(),
                    port: v6.port(),
                },
            },
        }
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetAddress::Ipv4 { addr, port } => write!(f, "{addr}:{port}"),
            NetAddress::Ipv6 { addr, port } => write!(f, "[{addr}]:{port}"),
            NetAddress::TorV3 { onion, port } => {
                write!(f, "torv3:")?;
                onion.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
                write!(f, ":{port}")
            }
            NetAddress::Hostname { host, port } => write!(f, "{host}:{port}"),
            NetAddress::Unknown { typ, data } => {
                write!(f, "unknown-address-type-{typ}({} bytes)", data.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_channel_id_parts() {
        // BOLT 1 Appendix B: scid 0x0000000000000226 is block 0, tx 0, output 550.
        let scid = ShortChannelId::from_u64(0x226);
        assert_eq!(scid.to_string(), "0x0x550");
        let scid = ShortChannelId::new(539_268, 845, 1).unwrap();
        assert_eq!(scid.to_string(), "539268x845x1");
        assert_eq!(scid.to_u64(), 0x083a_8400_034d_0001);
        assert_eq!(ShortChannelId::new(1 << 24, 0, 0), None);
    }

    #[test]
    fn net_address_round_trip() {
        let addrs = [
            NetAddress::Ipv4 {
                addr: Ipv4Addr::new(203, 0, 113, 7),
                port: 9735,
            },
            NetAddress::Ipv6 {
                addr: Ipv6Addr::LOCALHOST,
                port: 1,
            },
            NetAddress::TorV3 {
                onion: [7; 35],
                port: 9735,
            },
            NetAddress::Hostname {
                host: "node.example.com".into(),
                port: 9735,
            },
            NetAddress::Unknown {
                typ: 9,
                data: vec![1, 2, 3],
            },
        ];
        for a in addrs {
            let mut w = Writer::new();
            a.write(&mut w);
            let mut r = Reader::new(w.as_slice());
            assert_eq!(NetAddress::read(&mut r).unwrap(), a);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn private_addresses() {
        let private = [
            "10.1.2.3:1",
            "192.168.0.1:1",
            "172.16.5.5:1",
            "127.0.0.1:1",
            "100.64.0.1:1",
            "169.254.1.1:1",
            "[::1]:1",
            "[fd00::1]:1",
            "[fe80::1]:1",
        ];
        for a in private {
            assert!(
                NetAddress::from(a.parse::<SocketAddr>().unwrap()).is_private_ip(),
                "{a}"
            );
        }
        for a in ["203.0.113.9:1", "100.128.0.1:1", "[2001:db8::1]:1"] {
            assert!(
                !NetAddress::from(a.parse::<SocketAddr>().unwrap()).is_private_ip(),
                "{a}"
            );
        }
    }

    #[test]
    fn node_id_parse_errors_say_what_is_wrong() {
        assert_eq!("02ab".parse::<NodeId>(), Err(ParseNodeIdError::Length(4)));
        let not_on_curve = format!("02{}", "00".repeat(32));
        assert_eq!(
            not_on_curve.parse::<NodeId>(),
            Err(ParseNodeIdError::InvalidKey)
        );
    }
}
