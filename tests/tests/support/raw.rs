//! A hand-driven BOLT 8 peer over real TCP, for the tests that send what a
//! well-behaved node never would.

#![allow(dead_code)]

use std::time::Duration;

use beongae_node::runtime::Node;
use beongae_noise::{Initiator, Transport, ACT_TWO_LEN, LENGTH_HEADER_LEN};
use beongae_wire::{ChainHash, Init, Message, NodeId};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a peer waits for the node.
pub const T: Duration = Duration::from_secs(10);

/// A secret key of all-`b` bytes.
pub fn key(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

/// A hand-driven BOLT 8 peer, to send what a well-behaved node never would.
pub struct RawPeer {
    /// The socket (to write what no framing allows).
    pub stream: TcpStream,
    /// The BOLT 8 transport (to frame by hand).
    pub transport: Transport,
    decoder_buf: Vec<u8>,
}

impl RawPeer {
    pub async fn connect(node: &Node, seed: u8) -> RawPeer {
        Self::try_connect(node.listen_addr().unwrap(), node.node_id(), seed)
            .await
            .unwrap()
    }

    /// Dials `addr` and runs the BOLT 8 handshake as `key(seed)`.
    pub async fn try_connect(
        addr: std::net::SocketAddr,
        node_id: NodeId,
        seed: u8,
    ) -> std::io::Result<RawPeer> {
        let secp = Secp256k1::new();
        let mut stream = TcpStream::connect(addr).await?;
        let (init, act_one) = Initiator::new(
            &secp,
            key(seed),
            node_id.pubkey(),
            key(seed.wrapping_add(100)),
        );
        stream.write_all(&act_one).await?;
        let mut act_two = [0u8; ACT_TWO_LEN];
        tokio::time::timeout(T, stream.read_exact(&mut act_two)).await??;
        let (act_three, transport) = init
            .process_act_two(&secp, &act_two)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        stream.write_all(&act_three).await?;
        Ok(RawPeer {
            stream,
            transport,
            decoder_buf: Vec::new(),
        })
    }

    pub fn node_id(seed: u8) -> NodeId {
        NodeId::from_pubkey(PublicKey::from_secret_key(&Secp256k1::new(), &key(seed)))
    }

    pub async fn send_raw_message(&mut self, bytes: &[u8]) {
        let frame = self.transport.encrypt_message(bytes).unwrap();
        self.stream.write_all(&frame).await.unwrap();
    }

    pub async fn send(&mut self, msg: impl Into<Message>) {
        self.send_raw_message(&msg.into().encode().unwrap()).await;
    }

    /// The next message, or `None` once the node closed the connection.
    pub async fn recv(&mut self) -> Option<Message> {
        let mut header = [0u8; LENGTH_HEADER_LEN];
        tokio::time::timeout(T, self.stream.read_exact(&mut header))
            .await
            .ok()?
            .ok()?;
        let len = self.transport.decrypt_length(&header).unwrap() as usize;
        self.decoder_buf.resize(len + 16, 0);
        tokio::time::timeout(T, self.stream.read_exact(&mut self.decoder_buf))
            .await
            .ok()?
            .ok()?;
        Some(Message::decode(&self.transport.decrypt_body(&self.decoder_buf).unwrap()).unwrap())
    }

    /// Completes the `init` exchange.
    pub async fn init(&mut self) {
        let Some(Message::Init(theirs)) = self.recv().await else {
            panic!("expected init first")
        };
        assert_eq!(theirs.networks, Some(vec![ChainHash::REGTEST]));
        self.send(Init {
            features: theirs.features,
            ..Init::default()
        })
        .await;
    }

    /// Waits for the node to close the connection, skipping pings.
    pub async fn expect_closed(&mut self) -> Vec<Message> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv().await {
            seen.push(m);
        }
        seen
    }
}
