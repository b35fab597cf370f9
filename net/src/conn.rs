//! Connection helpers shared by the relay driver, plugin hosts and session clients: connecting
//! with a pinned relay certificate, the framed control stream ([`Control`]), and reading
//! stream preambles and codec frames from unidirectional streams.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use molstream_engine::codec::{self, FrameHeader, HEADER_LEN, Limits};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use thiserror::Error;

use crate::framing::{self, FrameDecoder, FrameError};
use crate::proto::{
    DecodeError, MAX_CONTROL_MESSAGE, MAX_STREAM_HEAD, PROTOCOL_VERSION, PeerMsg, RelayMsg, Role, StreamHead, UserId,
};
use crate::tls::{self, TlsError, TransportSettings, Trust};

/// Errors of a peer's connection to the relay.
#[derive(Debug, Error)]
pub enum ConnError {
    /// TLS configuration or trust.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local UDP socket.
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
    /// The connection could not be started.
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was closed (the handshake, a wrong certificate, a timeout).
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The relay closed the connection with this reason.
    #[error("closed by the relay: {0}")]
    ClosedByRelay(String),
    /// The relay refused the handshake.
    #[error("refused by the relay: {0}")]
    Refused(String),
    /// Writing a stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading a stream failed.
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// A stream ended inside a message or frame.
    #[error("stream ended early")]
    FinishedEarly,
    /// The stream ended between messages.
    #[error("stream ended")]
    Finished,
    /// Framing error (a length above the limit, a truncated message).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A message that does not decode.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// A codec frame header that does not parse.
    #[error("bad frame: {0}")]
    Codec(#[from] codec::CodecError),
    /// The relay answered the handshake with something else than `Welcome` or `Refused`.
    #[error("unexpected {0} during the handshake")]
    Unexpected(&'static str),
}

impl ConnError {
    /// The reason if the relay closed the connection on purpose (application close).
    #[must_use]
    pub fn relay_reason(&self) -> Option<&str> {
        match self {
            Self::ClosedByRelay(r) | Self::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Maps a connection error to [`ConnError::ClosedByRelay`] when the relay closed on purpose.
fn closed(e: quinn::ConnectionError) -> ConnError {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            ConnError::ClosedByRelay(String::from_utf8_lossy(&c.reason).into_owned())
        }
        other => ConnError::Connection(other),
    }
}

fn read_err(e: quinn::ReadError) -> ConnError {
    match e {
        quinn::ReadError::ConnectionLost(c) => closed(c),
        other => ConnError::Read(other),
    }
}

fn write_err(e: quinn::WriteError) -> ConnError {
    match e {
        quinn::WriteError::ConnectionLost(c) => closed(c),
        other => ConnError::Write(other),
    }
}

/// A client endpoint bound to an ephemeral port of the address family of `relay`.
///
/// # Errors
/// [`ConnError::Socket`].
pub fn client_endpoint(relay: SocketAddr) -> Result<Endpoint, ConnError> {
    let bind: SocketAddr = if relay.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .map_err(|_| ConnError::Socket(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bind address")))?;
    Endpoint::client(bind).map_err(ConnError::Socket)
}

/// Connects to the relay at `addr`, trusting its certificate as `trust` says.
///
/// # Errors
/// [`TlsError::InsecureNotLoopback`] for `--insecure-local` to a non-loopback address, and any
/// connection error (a certificate that does not match the pin fails the handshake).
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    trust: Trust,
    transport: &TransportSettings,
) -> Result<Connection, ConnError> {
    trust.check_addr(addr)?;
    let cfg = tls::client_config(trust, transport)?;
    let conn = endpoint.connect_with(cfg, addr, tls::SERVER_NAME)?.await.map_err(closed)?;
    Ok(conn)
}

/// The framed control stream of a peer: typed messages both ways. [`Control::split`] gives
/// the two halves to separate tasks.
#[derive(Debug)]
pub struct Control {
    tx: ControlSender,
    rx: ControlReceiver,
}

/// The sending half of a [`Control`] stream.
#[derive(Debug)]
pub struct ControlSender {
    send: SendStream,
}

/// The receiving half of a [`Control`] stream.
#[derive(Debug)]
pub struct ControlReceiver {
    conn: Connection,
    recv: RecvStream,
    decoder: FrameDecoder,
    buf: Vec<u8>,
}

impl Control {
    /// Opens the control stream on `conn` (the peer's side).
    ///
    /// # Errors
    /// A connection error.
    pub async fn open(conn: &Connection) -> Result<Self, ConnError> {
        let (send, recv) = conn.open_bi().await.map_err(closed)?;
        Ok(Self {
            tx: ControlSender { send },
            rx: ControlReceiver {
                conn: conn.clone(),
                recv,
                decoder: FrameDecoder::new(MAX_CONTROL_MESSAGE),
                buf: vec![0; 64 * 1024],
            },
        })
    }

    /// The two halves, for a writer task and a reader task.
    #[must_use]
    pub fn split(self) -> (ControlSender, ControlReceiver) {
        (self.tx, self.rx)
    }

    /// Sends one message.
    ///
    /// # Errors
    /// A write error (the relay's close reason when it closed the connection).
    pub async fn send(&mut self, msg: &PeerMsg) -> Result<(), ConnError> {
        self.tx.send(msg).await
    }

    /// Writes raw bytes on the control stream (tests use it to send malformed messages).
    ///
    /// # Errors
    /// A write error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.tx.send_raw(bytes).await
    }

    /// Receives the next message.
    ///
    /// # Errors
    /// See [`ControlReceiver::recv`].
    pub async fn recv(&mut self) -> Result<RelayMsg, ConnError> {
        self.rx.recv().await
    }

    /// Sends `Hello` with `role` and waits for `Welcome`. Returns the user id given to a
    /// session client (`None` for a plugin host).
    ///
    /// # Errors
    /// [`ConnError::Refused`] with the relay's reason (e.g. `wrong plugin key`).
    pub async fn handshake(&mut self, role: Role) -> Result<Option<UserId>, ConnError> {
        self.send(&PeerMsg::Hello { version: PROTOCOL_VERSION, role }).await?;
        match self.recv().await {
            Ok(RelayMsg::Welcome { user, .. }) => Ok(user),
            Ok(RelayMsg::Refused { reason }) => Err(ConnError::Refused(reason)),
            Ok(_) => Err(ConnError::Unexpected("message")),
            Err(ConnError::ClosedByRelay(reason)) => Err(ConnError::Refused(reason)),
            Err(e) => Err(e),
        }
    }
}

impl ControlSender {
    /// Sends one message.
    ///
    /// # Errors
    /// A write error (the relay's close reason when it closed the connection).
    pub async fn send(&mut self, msg: &PeerMsg) -> Result<(), ConnError> {
        let mut out = Vec::new();
        framing::encode(&msg.encode(), &mut out)?;
        self.send_raw(&out).await
    }

    /// Writes raw bytes.
    ///
    /// # Errors
    /// A write error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.send.write_all(bytes).await.map_err(write_err)
    }
}

impl ControlReceiver {
    /// Receives the next message.
    ///
    /// # Errors
    /// [`ConnError::ClosedByRelay`] with the relay's reason when it closed the connection,
    /// [`ConnError::Finished`] at the end of the stream, framing and decoding errors.
    pub async fn recv(&mut self) -> Result<RelayMsg, ConnError> {
        loop {
            if let Some(m) = self.decoder.try_next()? {
                return Ok(RelayMsg::decode(&Bytes::from(m))?);
            }
            match self.recv.read(&mut self.buf).await.map_err(read_err)? {
                Some(n) => self.decoder.push_bytes(&self.buf[..n]),
                None => {
                    self.decoder.finish()?;
                    // The relay finishes the control stream just before it closes the
                    // connection: wait briefly for the close to report its reason.
                    return match tokio::time::timeout(Duration::from_secs(2), self.conn.closed()).await {
                        Ok(e) => Err(closed(e)),
                        Err(_) => Err(ConnError::Finished),
                    };
                }
            }
        }
    }
}

/// Writes a stream preamble (framed [`StreamHead`]).
///
/// # Errors
/// A write error.
pub async fn write_head(send: &mut SendStream, head: &StreamHead) -> Result<(), ConnError> {
    let mut out = Vec::new();
    framing::encode(&head.encode(), &mut out)?;
    send.write_all(&out).await.map_err(write_err)
}

/// Reads a stream preamble (at most [`MAX_STREAM_HEAD`] bytes).
///
/// # Errors
/// Read, framing or decoding errors.
pub async fn read_head(recv: &mut RecvStream) -> Result<StreamHead, ConnError> {
    let mut len = [0u8; framing::HEADER_LEN];
    read_exact(recv, &mut len).await?;
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_STREAM_HEAD {
        return Err(FrameError::TooLarge { len: n as u64, max: MAX_STREAM_HEAD }.into());
    }
    let mut body = vec![0u8; n];
    read_exact(recv, &mut body).await?;
    Ok(StreamHead::decode(&Bytes::from(body))?)
}

async fn read_exact(recv: &mut RecvStream, buf: &mut [u8]) -> Result<(), ConnError> {
    recv.read_exact(buf).await.map_err(|e| match e {
        quinn::ReadExactError::FinishedEarly(_) => ConnError::FinishedEarly,
        quinn::ReadExactError::ReadError(e) => read_err(e),
    })
}

/// Reads the next codec frame (header and payload, as sent) from a frame stream, checking the
/// header against `limits` before the payload is buffered. `Ok(None)` at the end of the
/// stream between frames.
///
/// # Errors
/// [`ConnError::Codec`] for a header that does not parse, [`ConnError::FinishedEarly`] for a
/// stream that ends inside a frame, read errors.
pub async fn read_frame(recv: &mut RecvStream, limits: &Limits) -> Result<Option<(FrameHeader, Bytes)>, ConnError> {
    let mut head = [0u8; HEADER_LEN];
    match recv.read_exact(&mut head).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(ConnError::FinishedEarly),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(read_err(e)),
    }
    let header = FrameHeader::parse(&head, limits)?;
    let mut frame = vec![0u8; header.frame_len()];
    frame[..HEADER_LEN].copy_from_slice(&head);
    read_exact(recv, &mut frame[HEADER_LEN..]).await?;
    Ok(Some((header, Bytes::from(frame))))
}
