//! Bitcoin Core's JSON-RPC, the subset the node uses: a client
//! ([`Bitcoind`]) and a server over a [`Devnet`](crate::devnet::Devnet)
//! ([`serve_devnet`]), so several processes can share one devnet and the
//! client is tested against a real HTTP server.

mod client;
mod server;

pub use client::{Bitcoind, DevnetError, RpcFailure};
pub(crate) use server::call_in_process;
pub use server::{serve_devnet, OnChange, RpcServer};

use std::path::{Path, PathBuf};

/// How RPC requests authenticate (HTTP Basic, as bitcoind).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `rpcuser`/`rpcpassword`.
    UserPass(String, String),
    /// A cookie file holding `user:password` (bitcoind's `.cookie`).
    Cookie(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::UserPass(u, _) => write!(f, "UserPass({u}, ..)"),
            Auth::Cookie(p) => write!(f, "Cookie({})", p.display()),
        }
    }
}

impl Auth {
    /// The `user:password` pair.
    pub fn credentials(&self) -> Result<String, std::io::Error> {
        match self {
            Auth::UserPass(u, p) => Ok(format!("{u}:{p}")),
            Auth::Cookie(path) => Ok(std::fs::read_to_string(path)?.trim().to_owned()),
        }
    }

    /// The `Authorization` header value.
    pub fn header(&self) -> Result<String, std::io::Error> {
        Ok(format!("Basic {}", base64(self.credentials()?.as_bytes())))
    }
}

/// Writes a fresh random cookie (`__cookie__:<hex>`, mode 0600) to `path`.
pub fn write_cookie(path: &Path) -> Result<Auth, std::io::Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret: [u8; 32] = bitcoin::secp256k1::rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(format!("__cookie__:{hex}").as_bytes())?;
    Ok(Auth::Cookie(path.to_owned()))
}

/// Standard base64 with padding (RFC 4648), for the Basic auth header.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors.
    #[test]
    fn base64_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
