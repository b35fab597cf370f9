//! `--isolation process`: one OS process per instance, as the reference system does.
//!
//! When an instance starts, the host re-executes its own binary (on Linux `/proc/self/exe`, so
//! the same build even if the file was replaced since) with the same arguments and three
//! environment variables: the path of a Unix socket in a fresh private directory (mode 0700),
//! a random token, and nothing else of the host's state. The plugin's `main` runs as usual until
//! `PluginHost::run` (or `spawn`), which sees the variables and, instead of connecting to the
//! relay, connects to the socket, presents the token, and runs the one instance it is given with
//! the same plugin factory and the same in-process panic catching as `--isolation task`.
//!
//! Host and instance process exchange length-prefixed messages ([`crate::framing`], at most
//! [`PIPE_MAX_MESSAGE`] bytes) on the socket:
//!
//! | direction | tag | message | fields |
//! |---|---|---|---|
//! | host → instance | 1 | `Start` | local: varint, instance: varint, plugin: varint, room: name, presenter: varint |
//! | host → instance | 2 | `Input` | from: varint, body: bytes (a `ToPlugin`) |
//! | host → instance | 3 | `Presenter` | user: varint |
//! | host → instance | 4 | `Keyframe` | channel: varint |
//! | host → instance | 5 | `Stop` | — |
//! | instance → host | 1 | `Hello` | token: str(64) |
//! | instance → host | 2 | `Peer` | msg: bytes (a `PeerMsg`: `ToRoom`, `ToPresenter` or `ToUser` of this instance only) |
//! | instance → host | 3 | `OpenFrames` | stream: varint, channel: varint |
//! | instance → host | 4 | `FrameData` | stream: varint, data: bytes (≤ 512 KiB) |
//! | instance → host | 5 | `FinishFrames` | stream: varint |
//! | instance → host | 6 | `Ended` | error: option<str(4096)> |
//!
//! The host forwards `Peer` messages to the relay and each frame stream on its own QUIC stream.
//! When the instance process ends without `Ended` (an abort, a signal, `kill -9`), its room is
//! told `Crashed{"instance process killed by signal 9 (SIGKILL)"}` (or the exit status), and
//! every other instance goes on. An instance process whose host goes away stops its instance
//! and exits.

use bytes::Bytes;

use super::SessionError;
use crate::proto::wire::{DecodeError, Reader, Writer};
use crate::proto::{MAX_CONTROL_MESSAGE, MAX_NAME, MAX_TEXT};

/// Where an instance process runs its instance: in the host's process or in its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Isolation {
    /// One tokio task per instance in the host process; panics are caught.
    #[default]
    Task,
    /// One OS process per instance; crashes of any kind (abort, signal) are caught.
    Process,
}

/// Environment variable naming the socket of an instance process.
pub const SOCKET_ENV: &str = "MOLSTREAM_INSTANCE_SOCKET";
/// Environment variable holding the token an instance process presents.
pub const TOKEN_ENV: &str = "MOLSTREAM_INSTANCE_TOKEN";
/// Largest message on the host–instance socket.
pub const PIPE_MAX_MESSAGE: usize = MAX_CONTROL_MESSAGE + 64;
/// Largest chunk of frame bytes in one `FrameData`.
const FRAME_CHUNK: usize = 512 << 10;

/// Whether this process is an instance process started by a plugin host.
#[must_use]
pub fn is_instance_process() -> bool {
    std::env::var_os(SOCKET_ENV).is_some()
}

/// Host → instance process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ToChild {
    Start { local: u32, instance: u32, plugin: u32, room: String, presenter: u32 },
    Input { from: u32, body: Bytes },
    Presenter(u32),
    Keyframe(u32),
    Stop,
}

/// Instance process → host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FromChild {
    Hello { token: String },
    Peer(Bytes),
    OpenFrames { stream: u32, channel: u32 },
    FrameData { stream: u32, data: Bytes },
    FinishFrames { stream: u32 },
    Ended { error: Option<String> },
}

impl ToChild {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::Start { local, instance, plugin, room, presenter } => {
                w.u8(1);
                w.u32(*local);
                w.u32(*instance);
                w.u32(*plugin);
                w.str(room);
                w.u32(*presenter);
            }
            Self::Input { from, body } => {
                w.u8(2);
                w.u32(*from);
                w.bytes(body);
            }
            Self::Presenter(u) => {
                w.u8(3);
                w.u32(*u);
            }
            Self::Keyframe(c) => {
                w.u8(4);
                w.u32(*c);
            }
            Self::Stop => w.u8(5),
        }
        w.buf
    }

    fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("pipe tag")? {
            1 => Self::Start {
                local: r.u32("local")?,
                instance: r.u32("instance")?,
                plugin: r.u32("plugin")?,
                room: r.name("room", MAX_NAME)?,
                presenter: r.u32("presenter")?,
            },
            2 => Self::Input { from: r.u32("from")?, body: r.bytes("body", MAX_CONTROL_MESSAGE)? },
            3 => Self::Presenter(r.u32("presenter")?),
            4 => Self::Keyframe(r.u32("channel")?),
            5 => Self::Stop,
            tag => return Err(DecodeError::UnknownTag { what: "host pipe message", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

impl FromChild {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::Hello { token } => {
                w.u8(1);
                w.str(token);
            }
            Self::Peer(b) => {
                w.u8(2);
                w.bytes(b);
            }
            Self::OpenFrames { stream, channel } => {
                w.u8(3);
                w.u32(*stream);
                w.u32(*channel);
            }
            Self::FrameData { stream, data } => {
                w.u8(4);
                w.u32(*stream);
                w.bytes(data);
            }
            Self::FinishFrames { stream } => {
                w.u8(5);
                w.u32(*stream);
            }
            Self::Ended { error } => {
                w.u8(6);
                match error {
                    None => w.u8(0),
                    Some(e) => {
                        w.u8(1);
                        w.str(truncate(e, MAX_TEXT));
                    }
                }
            }
        }
        w.buf
    }

    fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("pipe tag")? {
            1 => Self::Hello { token: r.str("token", 64)? },
            2 => Self::Peer(r.bytes("peer message", MAX_CONTROL_MESSAGE)?),
            3 => Self::OpenFrames { stream: r.u32("stream")?, channel: r.u32("channel")? },
            4 => Self::FrameData { stream: r.u32("stream")?, data: r.bytes("frame data", FRAME_CHUNK)? },
            5 => Self::FinishFrames { stream: r.u32("stream")? },
            6 => Self::Ended {
                error: match r.u8("error flag")? {
                    0 => None,
                    1 => Some(r.str("error", MAX_TEXT)?),
                    tag => return Err(DecodeError::UnknownTag { what: "error flag", tag }),
                },
            },
            tag => return Err(DecodeError::UnknownTag { what: "instance pipe message", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The instance process's side of its frame channels: frames go to the host over the socket.
#[derive(Debug)]
pub(crate) struct PipeLink {
    tx: tokio::sync::mpsc::Sender<FromChild>,
    next: std::sync::atomic::AtomicU32,
}

impl PipeLink {
    pub(crate) async fn open(&self, channel: u32) -> Result<PipeFrames, SessionError> {
        let stream = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tx.send(FromChild::OpenFrames { stream, channel }).await.map_err(|_| SessionError::Disconnected)?;
        Ok(PipeFrames { stream, tx: self.tx.clone() })
    }
}

/// One frame channel of an instance process.
#[derive(Debug)]
pub(crate) struct PipeFrames {
    stream: u32,
    tx: tokio::sync::mpsc::Sender<FromChild>,
}

impl PipeFrames {
    pub(crate) async fn send(&mut self, frames: &[u8]) -> Result<(), SessionError> {
        for chunk in frames.chunks(FRAME_CHUNK) {
            let m = FromChild::FrameData { stream: self.stream, data: Bytes::copy_from_slice(chunk) };
            self.tx.send(m).await.map_err(|_| SessionError::Disconnected)?;
        }
        Ok(())
    }

    pub(crate) fn finish(self) {
        let (tx, stream) = (self.tx, self.stream);
        tokio::spawn(async move {
            let _ = tx.send(FromChild::FinishFrames { stream }).await;
        });
    }
}

#[cfg(unix)]
pub(super) use imp::{run_instance_process, spawn_instance};

#[cfg(not(unix))]
pub(super) fn spawn_instance(
    _local: usize,
    _session: super::Session,
    _requests: tokio::sync::mpsc::Receiver<super::Request>,
) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::spawn(async { Err("process isolation needs a Unix system".to_owned()) })
}

#[cfg(not(unix))]
pub(super) async fn run_instance_process(_plugins: &[super::Registration]) -> Result<(), super::HostError> {
    Err(super::HostError::Config("process isolation needs a Unix system".into()))
}

#[cfg(unix)]
mod imp {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::ExitStatus;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{UnixListener, UnixStream};
    use tokio::process::{Child, Command};
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use super::super::{
        HostError, INSTANCE_QUEUE, Link, Registration, Request, STOP_GRACE, Session, SessionInner, panic_message,
    };
    use super::{FromChild, PIPE_MAX_MESSAGE, PipeLink, SOCKET_ENV, TOKEN_ENV, ToChild};
    use crate::api::ToPlugin;
    use crate::conn;
    use crate::framing::{self, FrameDecoder};
    use crate::proto::{InstanceId, PeerMsg, PluginId, StreamHead, UserId};

    /// How long a new instance process may take to connect.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

    #[derive(Debug, thiserror::Error)]
    enum PipeError {
        #[error("{0}")]
        Io(#[from] std::io::Error),
        #[error(transparent)]
        Frame(#[from] framing::FrameError),
        #[error(transparent)]
        Decode(#[from] crate::proto::DecodeError),
    }

    struct PipeReader {
        rd: OwnedReadHalf,
        decoder: FrameDecoder,
        buf: Vec<u8>,
    }

    impl PipeReader {
        fn new(rd: OwnedReadHalf) -> Self {
            Self { rd, decoder: FrameDecoder::new(PIPE_MAX_MESSAGE), buf: vec![0; 64 << 10] }
        }

        /// The next message, `None` at the end of the stream.
        async fn next(&mut self) -> Result<Option<Bytes>, PipeError> {
            loop {
                if let Some(m) = self.decoder.try_next()? {
                    return Ok(Some(Bytes::from(m)));
                }
                let n = self.rd.read(&mut self.buf).await?;
                if n == 0 {
                    self.decoder.finish()?;
                    return Ok(None);
                }
                self.decoder.push_bytes(&self.buf[..n]);
            }
        }
    }

    async fn write_msg(wr: &mut OwnedWriteHalf, payload: &[u8]) -> Result<(), PipeError> {
        let mut out = Vec::with_capacity(payload.len() + 4);
        framing::encode(payload, &mut out)?;
        wr.write_all(&out).await?;
        Ok(())
    }

    /// A private directory for the socket, removed when dropped.
    struct PrivateDir(PathBuf);

    impl PrivateDir {
        fn create(tag: &str) -> std::io::Result<Self> {
            use std::os::unix::fs::DirBuilderExt;
            let path = std::env::temp_dir().join(format!("molstream-{}-{tag}", std::process::id()));
            std::fs::DirBuilder::new().mode(0o700).create(&path)?;
            Ok(Self(path))
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for PrivateDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn random_hex(n: usize) -> Result<String, String> {
        use ring::rand::SecureRandom;
        let mut b = vec![0u8; n];
        ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| "no random numbers".to_owned())?;
        Ok(crate::tls::hex(&b))
    }

    /// The command that runs this binary again with the same arguments.
    fn self_command() -> std::io::Result<Command> {
        let mut args = std::env::args_os();
        let arg0 = args.next();
        #[cfg(target_os = "linux")]
        let mut cmd = {
            // The running image, even if the file was rebuilt or removed since.
            let mut c = Command::new("/proc/self/exe");
            if let Some(a) = &arg0 {
                c.arg0(a);
            }
            c
        };
        #[cfg(not(target_os = "linux"))]
        let mut cmd = {
            let _ = &arg0;
            Command::new(std::env::current_exe()?)
        };
        cmd.args(args);
        Ok(cmd)
    }

    /// Describes how a process ended.
    pub(crate) fn describe(status: ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                8 => " (SIGFPE)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                13 => " (SIGPIPE)",
                15 => " (SIGTERM)",
                _ => "",
            };
            let core = if status.core_dumped() { ", core dumped" } else { "" };
            format!("killed by signal {sig}{name}{core}")
        } else {
            match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "ended".to_owned(),
            }
        }
    }

    /// Waits for the child to exit, killing it after `grace`.
    async fn reap(child: &mut Child, grace: Duration) -> String {
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(s)) => describe(s),
            Ok(Err(e)) => format!("could not be waited for: {e}"),
            Err(_) => {
                let _ = child.kill().await;
                "did not exit and was killed".to_owned()
            }
        }
    }

    /// Starts the instance in a process of its own; the task ends when the process does, with
    /// its error (the instance's, or how the process died).
    pub(in super::super) fn spawn_instance(
        local: usize,
        session: Session,
        requests: mpsc::Receiver<Request>,
    ) -> JoinHandle<Result<(), String>> {
        tokio::spawn(async move { host_side(local, session, requests).await })
    }

    fn to_child(r: Request) -> ToChild {
        match r {
            Request::Api { from, request } => ToChild::Input { from: from.0, body: request.encode() },
            Request::Presenter(u) => ToChild::Presenter(u.0),
            Request::Keyframe(c) => ToChild::Keyframe(c),
        }
    }

    enum End {
        Ended(Option<String>),
        Eof,
        Broken(String),
    }

    async fn host_side(local: usize, session: Session, mut requests: mpsc::Receiver<Request>) -> Result<(), String> {
        let Link::Quic(conn) = &session.inner.link else {
            return Err("an instance process cannot start instance processes".into());
        };
        let token = random_hex(16)?;
        let dir = PrivateDir::create(&format!("{}-{}", session.instance().0, &token[..8]))
            .map_err(|e| format!("cannot create the instance socket directory: {e}"))?;
        let sock = dir.path().join("i.sock");
        let listener = UnixListener::bind(&sock).map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?;
        let mut cmd = self_command().map_err(|e| format!("cannot find this program: {e}"))?;
        cmd.env(SOCKET_ENV, &sock).env(TOKEN_ENV, &token).stdin(std::process::Stdio::null()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start the instance process: {e}"))?;
        let stream: UnixStream = tokio::select! {
            a = listener.accept() => a.map_err(|e| format!("instance process did not connect: {e}"))?.0,
            s = child.wait() => {
                let how = s.map_or_else(|e| e.to_string(), describe);
                return Err(format!("instance process {how} before connecting"));
            }
            () = tokio::time::sleep(CONNECT_TIMEOUT) => return Err("instance process did not connect in time".into()),
        };
        drop(listener);
        drop(dir);
        let (rd, mut wr) = stream.into_split();
        let mut reader = PipeReader::new(rd);
        let hello = reader.next().await.map_err(|e| format!("instance process: {e}"))?;
        match hello.as_ref().map(FromChild::decode) {
            Some(Ok(FromChild::Hello { token: t })) if t == token => {}
            _ => return Err("instance process did not present its token".into()),
        }
        tracing::info!(instance = %session.instance(), pid = child.id(), "instance process started");
        let start = ToChild::Start {
            local: u32::try_from(local).unwrap_or(u32::MAX),
            instance: session.instance().0,
            plugin: session.plugin().0,
            room: session.room().to_owned(),
            presenter: session.presenter().0,
        };
        write_msg(&mut wr, &start.encode()).await.map_err(|e| format!("instance process: {e}"))?;
        let mut streams: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
        let mut open = true;
        let end = loop {
            tokio::select! {
                r = requests.recv(), if open => {
                    let m = match r {
                        Some(r) => to_child(r),
                        None => {
                            open = false;
                            ToChild::Stop
                        }
                    };
                    if let Err(e) = write_msg(&mut wr, &m.encode()).await {
                        tracing::debug!(error = %e, "instance process socket closed");
                        open = false;
                    }
                }
                m = reader.next() => match m {
                    Ok(Some(b)) => match FromChild::decode(&b) {
                        Ok(FromChild::Ended { error }) => break End::Ended(error),
                        Ok(m) => {
                            if let Err(why) = relay_child_message(&session, conn, &mut streams, m).await {
                                break End::Broken(why);
                            }
                        }
                        Err(e) => break End::Broken(format!("instance process sent a malformed message: {e}")),
                    },
                    Ok(None) => break End::Eof,
                    Err(e) => break End::Broken(format!("instance process: {e}")),
                },
            }
        };
        drop(streams);
        match end {
            End::Ended(error) => {
                let how = reap(&mut child, STOP_GRACE).await;
                tracing::info!(instance = %session.instance(), %how, "instance process ended");
                error.map_or(Ok(()), Err)
            }
            End::Eof => Err(format!("instance process {}", reap(&mut child, STOP_GRACE).await)),
            End::Broken(why) => {
                let _ = child.kill().await;
                Err(why)
            }
        }
    }

    /// Forwards one message of the instance process; `Err` for a message it may not send.
    async fn relay_child_message(
        session: &Session,
        conn: &quinn::Connection,
        streams: &mut HashMap<u32, mpsc::Sender<Bytes>>,
        m: FromChild,
    ) -> Result<(), String> {
        let instance = session.instance();
        match m {
            FromChild::Peer(b) => {
                let msg = PeerMsg::decode(&b).map_err(|e| format!("instance process sent a malformed message: {e}"))?;
                match &msg {
                    PeerMsg::ToRoom { instance: i, .. }
                    | PeerMsg::ToPresenter { instance: i, .. }
                    | PeerMsg::ToUser { instance: i, .. }
                        if *i == instance => {}
                    _ => return Err("instance process sent a message it may not send".into()),
                }
                // The host loop is gone when the connection was lost: the instance ends.
                session.inner.out.send(msg).await.map_err(|_| "the host lost its connection".to_owned())?;
            }
            FromChild::OpenFrames { stream, channel } => {
                if streams.len() >= 1024 {
                    return Err("instance process opened more than 1024 frame channels".into());
                }
                let (tx, mut rx) = mpsc::channel::<Bytes>(16);
                let conn = conn.clone();
                tokio::spawn(async move {
                    let Ok(mut send) = conn.open_uni().await else { return };
                    if conn::write_head(&mut send, &StreamHead::Frames { instance, channel }).await.is_err() {
                        return;
                    }
                    while let Some(b) = rx.recv().await {
                        if send.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    let _ = send.finish();
                });
                streams.insert(stream, tx);
            }
            FromChild::FrameData { stream, data } => {
                if let Some(tx) = streams.get(&stream)
                    && tx.send(data).await.is_err()
                {
                    streams.remove(&stream);
                }
            }
            FromChild::FinishFrames { stream } => {
                streams.remove(&stream);
            }
            FromChild::Hello { .. } | FromChild::Ended { .. } => {
                return Err("instance process sent an unexpected message".into());
            }
        }
        Ok(())
    }

    /// Runs in an instance process: serves the one instance the host gives, then exits the
    /// process. Returns only if the host cannot be reached.
    pub(in super::super) async fn run_instance_process(plugins: &[Registration]) -> Result<(), HostError> {
        let fail = |why: String| HostError::Config(format!("instance process: {why}"));
        let sock = std::env::var_os(SOCKET_ENV).ok_or_else(|| fail("no socket".into()))?;
        let token = std::env::var(TOKEN_ENV).map_err(|_| fail("no token".into()))?;
        let stream = UnixStream::connect(&sock).await.map_err(|e| fail(e.to_string()))?;
        let (rd, mut wr) = stream.into_split();
        let mut reader = PipeReader::new(rd);
        write_msg(&mut wr, &FromChild::Hello { token }.encode()).await.map_err(|e| fail(e.to_string()))?;
        let start = reader.next().await.map_err(|e| fail(e.to_string()))?.ok_or_else(|| fail("host left".into()))?;
        let ToChild::Start { local, instance, plugin, room, presenter } =
            ToChild::decode(&start).map_err(|e| fail(e.to_string()))?
        else {
            return Err(fail("the host did not start an instance".into()));
        };
        let reg = plugins.get(local as usize).ok_or_else(|| fail(format!("no plugin number {local}")))?;
        tracing::debug!(instance, plugin = %reg.meta.name, "instance process serving");

        // Everything for the host goes through one queue, written in order by one task, which
        // stops after `Ended`.
        let (to_host, mut to_host_rx) = mpsc::channel::<FromChild>(64);
        let writer = tokio::spawn(async move {
            while let Some(m) = to_host_rx.recv().await {
                let last = matches!(m, FromChild::Ended { .. });
                if write_msg(&mut wr, &m.encode()).await.is_err() {
                    return;
                }
                if last {
                    let _ = wr.flush().await;
                    return;
                }
            }
        });
        let (out, mut out_rx) = mpsc::channel::<PeerMsg>(super::super::OUT_QUEUE);
        let session = Session {
            inner: Arc::new(SessionInner {
                instance: InstanceId(instance),
                plugin: PluginId(plugin),
                room,
                presenter: AtomicU32::new(presenter),
                out,
                link: Link::Pipe(PipeLink { tx: to_host.clone(), next: AtomicU32::new(0) }),
                menus: tokio::sync::Mutex::default(),
                api: crate::host::sdk::InstanceApi::default(),
            }),
        };
        let (req_tx, req_rx) = mpsc::channel(INSTANCE_QUEUE);
        let mut req_tx = Some(req_tx);
        let mut handle = (reg.spawn)(session.clone(), req_rx);
        let mut host_gone: Option<tokio::time::Instant> = None;
        let error = loop {
            let deadline = host_gone.map(|t| t + STOP_GRACE);
            tokio::select! {
                r = &mut handle => break match r {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(e) => Some(panic_message(e).unwrap_or_else(|| "aborted".into())),
                },
                Some(m) = out_rx.recv() => {
                    if to_host.send(FromChild::Peer(Bytes::from(m.encode()))).await.is_err() {
                        host_gone.get_or_insert_with(tokio::time::Instant::now);
                    }
                }
                m = reader.next(), if host_gone.is_none() => {
                    let m = match m {
                        Ok(Some(b)) => ToChild::decode(&b).ok(),
                        Ok(None) | Err(_) => None,
                    };
                    let request = match m {
                        Some(ToChild::Input { from, body }) => match ToPlugin::decode(&body) {
                            Ok(request) => Some(Request::Api { from: UserId(from), request }),
                            Err(e) => {
                                tracing::warn!(error = %e, "undecodable request dropped");
                                None
                            }
                        },
                        Some(ToChild::Presenter(u)) => Some(Request::Presenter(UserId(u))),
                        Some(ToChild::Keyframe(c)) => Some(Request::Keyframe(c)),
                        Some(ToChild::Stop) => {
                            req_tx = None;
                            None
                        }
                        Some(ToChild::Start { .. }) | None => {
                            // The host went away (or spoke nonsense): stop the instance.
                            req_tx = None;
                            host_gone = Some(tokio::time::Instant::now());
                            None
                        }
                    };
                    if let (Some(r), Some(tx)) = (request, &req_tx)
                        && let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(r)
                    {
                        handle.abort();
                        break Some(format!("more than {INSTANCE_QUEUE} requests pending: instance not responding"));
                    }
                }
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => break Some("the host went away".into()),
            }
        };
        // What the instance sent before it ended goes first.
        while let Ok(m) = out_rx.try_recv() {
            let _ = to_host.send(FromChild::Peer(Bytes::from(m.encode()))).await;
        }
        let code = i32::from(error.is_some());
        let _ = to_host.send(FromChild::Ended { error }).await;
        let _ = tokio::time::timeout(STOP_GRACE, writer).await;
        std::process::exit(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_messages_round_trip_and_refuse_garbage() {
        let to = [
            ToChild::Start { local: 1, instance: 9, plugin: 3, room: "lab".into(), presenter: 4 },
            ToChild::Input { from: 2, body: Bytes::from_static(b"\x01") },
            ToChild::Presenter(7),
            ToChild::Keyframe(0),
            ToChild::Stop,
        ];
        for m in to {
            let b = Bytes::from(m.encode());
            assert_eq!(ToChild::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToChild::decode(&b.slice(..cut)).is_err());
            }
        }
        let long = "é".repeat(3000);
        let from = [
            FromChild::Hello { token: "ab".repeat(16) },
            FromChild::Peer(Bytes::from_static(b"xyz")),
            FromChild::OpenFrames { stream: 1, channel: 2 },
            FromChild::FrameData { stream: 1, data: Bytes::from(vec![7; 1000]) },
            FromChild::FinishFrames { stream: 1 },
            FromChild::Ended { error: None },
            FromChild::Ended { error: Some("panicked: boom".into()) },
        ];
        for m in from {
            let b = Bytes::from(m.encode());
            assert_eq!(FromChild::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(FromChild::decode(&b.slice(..cut)).is_err());
            }
        }
        // A long error is cut on a character boundary to the field's limit.
        let b = Bytes::from(FromChild::Ended { error: Some(long) }.encode());
        let Ok(FromChild::Ended { error: Some(e) }) = FromChild::decode(&b) else { panic!("decodes") };
        assert!(e.len() <= MAX_TEXT && e.chars().all(|c| c == 'é'));
        assert!(FromChild::decode(&Bytes::from_static(&[9])).is_err());
        assert!(ToChild::decode(&Bytes::from_static(&[5, 0])).is_err());
    }
}
