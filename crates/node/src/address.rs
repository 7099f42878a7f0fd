//! `NODE_ID@HOST:PORT` peer addresses as users type them.

use std::fmt;
use std::str::FromStr;

use beongae_wire::NodeId;

/// A peer to dial: its node id and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// The node we expect there (the BOLT 8 handshake proves it).
    pub node_id: NodeId,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a peer address was rejected; each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerAddressError {
    /// No `@`.
    #[error("expected NODE_ID@HOST:PORT (e.g. 02ab…@127.0.0.1:9735), got `{0}`")]
    Format(String),
    /// The node id part is wrong.
    #[error("bad node id `{id}`: {reason}")]
    NodeId {
        /// What was given.
        id: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The host:port part is wrong.
    #[error(
        "bad address `{0}`: expected HOST:PORT with a port from 1 to 65535 (IPv6 as [::1]:9735)"
    )]
    HostPort(String),
}

impl FromStr for PeerAddress {
    type Err = PeerAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, hostport) = s
            .split_once('@')
            .ok_or_else(|| PeerAddressError::Format(s.to_owned()))?;
        let node_id = id.parse::<NodeId>().map_err(|e| PeerAddressError::NodeId {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        let bad = || PeerAddressError::HostPort(hostport.to_owned());
        let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(PeerAddress {
            node_id,
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.node_id, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.node_id, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619";

    #[test]
    fn parses_ipv4_host_and_ipv6() {
        let a: PeerAddress = format!("{ID}@127.0.0.1:9735").parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 9735));
        assert_eq!(a.to_string(), format!("{ID}@127.0.0.1:9735"));
        let b: PeerAddress = format!("{ID}@node.example:1").parse().unwrap();
        assert_eq!(b.host, "node.example");
        let c: PeerAddress = format!("{ID}@[::1]:9735").parse().unwrap();
        assert_eq!(c.host, "::1");
        assert_eq!(c.to_string(), format!("{ID}@[::1]:9735"));
    }

    #[test]
    fn errors_say_what_to_change() {
        assert_eq!(
            "127.0.0.1:9735".parse::<PeerAddress>(),
            Err(PeerAddressError::Format("127.0.0.1:9735".into()))
        );
        let e = "02ab@127.0.0.1:9735".parse::<PeerAddress>().unwrap_err();
        assert_eq!(e.to_string(), "bad node id `02ab`: a node id is 66 hex characters (a 33-byte compressed public key), got 4 characters");
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            ":9735",
            "::1:9735",
            "[::1:9735",
        ] {
            assert_eq!(
                format!("{ID}@{bad}").parse::<PeerAddress>(),
                Err(PeerAddressError::HostPort(bad.into())),
                "{bad}"
            );
        }
    }
}

/// An address to announce in our `node_announcement` (BOLT 7), from
/// `HOST:PORT`: an IPv4 or IPv6 address (`[::1]:9735`), or a DNS host name
/// (type 5: ASCII, at most 255 bytes). BOLT 7: "MUST NOT create a `type 1`,
/// `type 2` or `type 5` address descriptor with `port` equal to 0".
pub fn announce_address(s: &str) -> Result<beongae_wire::NetAddress, String> {
    let bad = || {
        format!("bad address `{s}`: expected HOST:PORT with a port from 1 to 65535 (IPv6 as [::1]:9735)")
    };
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        if sa.port() == 0 {
            return Err(bad());
        }
        return Ok(sa.into());
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(bad)?;
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return Err(format!(
            "bad host name `{host}`: ASCII letters, digits, `-` and `.` only, at most 255 bytes (BOLT 7; punycode for other names)"
        ));
    }
    Ok(beongae_wire::NetAddress::Hostname {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod announce_tests {
    use super::announce_address;
    use beongae_wire::NetAddress;

    #[test]
    fn announce_addresses_parse_and_refuse_port_zero() {
        assert_eq!(
            announce_address("203.0.113.5:9735").unwrap(),
            NetAddress::Ipv4 {
                addr: [203, 0, 113, 5].into(),
                port: 9735
            }
        );
        assert!(matches!(
            announce_address("[2001:db8::1]:9736").unwrap(),
            NetAddress::Ipv6 { port: 9736, .. }
        ));
        assert_eq!(
            announce_address("node.example.com:9735").unwrap(),
            NetAddress::Hostname {
                host: "node.example.com".into(),
                port: 9735
            }
        );
        assert!(announce_address("203.0.113.5:0")
            .unwrap_err()
            .contains("port from 1"));
        assert!(announce_address("exa mple.com:9735")
            .unwrap_err()
            .contains("bad host name"));
        assert!(announce_address("nohost").is_err());
    }
}
