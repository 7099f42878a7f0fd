//! One peer connection: the BOLT 8 handshake over TCP, then a reader loop
//! feeding the core and a writer task draining its queue. No protocol rules
//! live here beyond BOLT 8 framing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beongae_noise::{
    Encryptor, Initiator, MessageDecoder, Responder, Transport, ACT_ONE_LEN, ACT_THREE_LEN,
    ACT_TWO_LEN,
};
use beongae_wire::NodeId;
use bitcoin::secp256k1::{rand, PublicKey, Secp256k1, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use super::CoreMsg;
use crate::core::{Direction, Input, PeerId};

/// Messages queued per peer before we consider it too slow and drop it.
pub(super) const WRITE_QUEUE: usize = 4096;
/// Bytes queued per peer before we consider it too slow and drop it.
pub(super) const MAX_QUEUED_BYTES: usize = 4 << 20;
/// How long a closing connection may take to flush what was queued.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the writer task is told.
pub(crate) enum WriterCmd {
    /// An encoded Lightning message to frame and send.
    Send(Vec<u8>),
    /// Flush what came before and close.
    Close,
    /// Answer once what came before is written to the socket.
    Notify(oneshot::Sender<()>),
}

/// The runtime's handle on one connection's reader and writer tasks.
pub(crate) struct PeerLink {
    writer: mpsc::Sender<WriterCmd>,
    queued: Arc<AtomicUsize>,
    kill: Arc<watch::Sender<bool>>,
}

/// The peer is not reading what we send.
#[derive(Debug)]
pub(crate) struct PeerStalled;

impl PeerLink {
    /// Queues an encoded message. Fails (and the caller must drop the peer)
    /// when the peer lets too much pile up.
    pub(crate) fn send(&self, bytes: Vec<u8>) -> Result<(), PeerStalled> {
        let len = bytes.len();
        if self.queued.load(Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            return Err(PeerStalled);
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.writer
            .try_send(WriterCmd::Send(bytes))
            .map_err(|_| PeerStalled)
    }

    /// `done` fires once everything queued before is written (the peer
    /// took it); dropped if the connection ends first.
    pub(crate) fn notify_written(&self, done: oneshot::Sender<()>) {
        let _ = self.writer.try_send(WriterCmd::Notify(done));
    }

    /// Flushes what is queued and closes; a peer that does not take the
    /// bytes within the grace period is cut off.
    pub(crate) fn close(self) {
        if self.writer.try_send(WriterCmd::Close).is_err() {
            return self.kill();
        }
        tokio::spawn(async move {
            tokio::time::sleep(CLOSE_GRACE).await;
            self.kill();
        });
    }

    /// Closes at once, dropping anything queued.
    pub(crate) fn kill(self) {
        let _ = self.kill.send(true);
    }
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error("handshake i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake failed: {0}")]
    Noise(#[from] beongae_noise::NoiseError),
}

/// Runs the BOLT 8 handshake as initiator (we know `their_id`) or responder.
pub(super) async fn handshake(
    stream: &mut TcpStream,
    local_key: SecretKey,
    their_id: Option<NodeId>,
    timeout: Duration,
) -> Result<(NodeId, Transport), HandshakeError> {
    let secp = Secp256k1::new();
    // Fresh ephemeral key per connection from the OS RNG (BOLT 8: `generateKey()`).
    let ephemeral = SecretKey::new(&mut rand::thread_rng());
    let run = async {
        match their_id {
            Some(rs) => {
                let (initiator, act_one) = Initiator::new(&secp, local_key, rs.pubkey(), ephemeral);
                stream.write_all(&act_one).await?;
                let mut act_two = [0u8; ACT_TWO_LEN];
                stream.read_exact(&mut act_two).await?;
                let (act_three, transport) = initiator.process_act_two(&secp, &act_two)?;
                stream.write_all(&act_three).await?;
                Ok((rs, transport))
            }
            None => {
                let responder = Responder::new(&secp, local_key, ephemeral);
                let mut act_one = [0u8; ACT_ONE_LEN];
                stream.read_exact(&mut act_one).await?;
                let (waiting, act_two) = responder.process_act_one(&secp, &act_one)?;
                stream.write_all(&act_two).await?;
                let mut act_three = [0u8; ACT_THREE_LEN];
                stream.read_exact(&mut act_three).await?;
                let (remote, transport): (PublicKey, Transport) =
                    waiting.process_act_three(&secp, &act_three)?;
                Ok((NodeId::from_pubkey(remote), transport))
            }
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| HandshakeError::Timeout(timeout))?
}

/// After the handshake: registers the connection with the core and runs it
/// until either side closes it. Sends [`Input::PeerDisconnected`] exactly once.
pub(super) async fn run(
    stream: TcpStream,
    transport: Transport,
    peer: PeerId,
    node_id: NodeId,
    direction: Direction,
    remote_addr: Option<SocketAddr>,
    core: mpsc::Sender<CoreMsg>,
) {
    let (read, write) = stream.into_split();
    let (encryptor, decryptor) = transport.split();
    let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE);
    let (closed_tx, closed_rx) = oneshot::channel();
    let (kill_tx, kill_rx) = watch::channel(false);
    let queued = Arc::new(AtomicUsize::new(0));
    let link = PeerLink {
        writer: writer_tx,
        queued: queued.clone(),
        kill: Arc::new(kill_tx),
    };
    let input = Input::PeerConnected {
        peer,
        node_id,
        direction,
        remote_addr,
    };
    if core
        .send(CoreMsg::Connected { peer, link, input })
        .await
        .is_err()
    {
        return; // the node is shutting down
    }
    tokio::spawn(write_loop(
        write,
        encryptor,
        writer_rx,
        queued,
        kill_rx.clone(),
        closed_tx,
    ));
    read_loop(
        read,
        MessageDecoder::new(decryptor),
        peer,
        &core,
        closed_rx,
        kill_rx,
    )
    .await;
    let _ = core
        .send(CoreMsg::Input(Input::PeerDisconnected { peer }))
        .await;
}

async fn read_loop(
    mut read: OwnedReadHalf,
    mut decoder: MessageDecoder,
    peer: PeerId,
    core: &mpsc::Sender<CoreMsg>,
    mut closed: oneshot::Receiver<()>,
    mut kill: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = read.read(&mut buf) => match r {
                Ok(0) => { debug!(?peer, "peer closed the connection"); return; }
                Ok(n) => n,
                Err(e) => { debug!(?peer, error = %e, "read failed"); return; }
            },
            _ = &mut closed => return,
            _ = kill.changed() => return,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_message() {
                Ok(Some(bytes)) => {
                    if core
                        .send(CoreMsg::Input(Input::PeerMessage { peer, bytes }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A frame that fails authentication cannot be skipped (the
                    // nonces would desynchronise), so the connection ends here.
                    warn!(?peer, error = %e, "closing connection: transport decryption failed");
                    return;
                }
            }
        }
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut encryptor: Encryptor,
    mut rx: mpsc::Receiver<WriterCmd>,
    queued: Arc<AtomicUsize>,
    mut kill: watch::Receiver<bool>,
    closed: oneshot::Sender<()>,
) {
    let mut frame = Vec::with_capacity(64 * 1024);
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = kill.changed() => None,
        };
        let Some(cmd) = cmd else { break };
        frame.clear();
        let mut close = false;
        let mut notify = Vec::new();
        let mut next = Some(cmd);
        // Batch whatever is already queued into one write.
        while let Some(cmd) = next {
            match cmd {
                WriterCmd::Send(msg) => {
                    queued.fetch_sub(msg.len(), Ordering::Relaxed);
                    if let Err(e) = encryptor.encrypt_message_into(&msg, &mut frame) {
                        warn!(error = %e, "dropping a message that cannot be framed");
                    }
                }
                WriterCmd::Close => {
                    close = true;
                    break;
                }
                WriterCmd::Notify(done) => {
                    notify.push(done);
                    break;
                }
            }
            if frame.len() > 256 * 1024 {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !frame.is_empty() {
            let written = tokio::select! {
                r = write.write_all(&frame) => r.is_ok(),
                _ = kill.changed() => false,
            };
            if !written {
                break;
            }
        }
        for done in notify {
            let _ = done.send(());
        }
        if close {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(100), write.shutdown()).await;
    let _ = closed.send(());
}
