//! The sandbox's listener: plain TCP or TLS, and a per-connection kill switch
//! so that a handler can drop its connection without sending a response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client gets to finish the TLS handshake; a stuck client must
/// not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A handle on one accepted connection, given to handlers as `ConnectInfo`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connection {
    killed: Arc<AtomicBool>,
}

impl Connection {
    /// From now on the connection reads end-of-stream and writes fail, so
    /// hyper closes it without writing the response it is handed.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, SandboxListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, SandboxListener>) -> Self {
        stream.io().connection.clone()
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS, with its kill switch.
pub(crate) struct SandboxIo {
    stream: Stream,
    connection: Connection,
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the sandbox dropped this connection (injected fault)",
    )
}

impl AsyncRead for SandboxIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.connection.is_killed() {
            return Poll::Ready(Ok(()));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SandboxIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.connection.is_killed() {
            return Poll::Ready(Err(aborted()));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.connection.is_killed() {
            return Poll::Ready(Err(aborted()));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A killed connection sends nothing more, not even a TLS close_notify:
        // dropping the socket is the whole point.
        if this.connection.is_killed() {
            return Poll::Ready(Ok(()));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections in a background task (TLS handshakes each in their
/// own task, so a slow client does not hold up others) and hands them to
/// axum.
pub(crate) struct SandboxListener {
    accepted: mpsc::Receiver<(SandboxIo, SocketAddr)>,
    local_addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl SandboxListener {
    pub(crate) fn new(tcp: TcpListener, tls: Option<TlsAcceptor>) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (sender, accepted) = mpsc::channel(64);
        let accept_task = tokio::spawn(accept_loop(tcp, tls, sender));
        Ok(SandboxListener {
            accepted,
            local_addr,
            accept_task,
        })
    }
}

impl Drop for SandboxListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl Listener for SandboxListener {
    type Io = SandboxIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is dropped, so
            // this is unreachable in practice; waiting forever is the
            // listener contract's way of having no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    sender: mpsc::Sender<(SandboxIo, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically EMFILE on a loaded machine: back off instead of
                // spinning, as axum's own TCP listener does.
                tracing::debug!(%error, "sandbox accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small request/response exchanges: Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                let io = SandboxIo {
                    stream: Stream::Plain(stream),
                    connection: Connection::default(),
                };
                if sender.send((io, peer)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let io = SandboxIo {
                                stream: Stream::Tls(Box::new(stream)),
                                connection: Connection::default(),
                            };
                            let _ = sender.send((io, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, "sandbox TLS handshake failed"),
                        Err(_) => tracing::debug!("sandbox TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, generated now,
/// and the acceptor that serves it. Returns the certificate's PEM, which is
/// also the CA a client must trust.
pub(crate) fn self_signed_tls() -> Result<(TlsAcceptor, String), crate::Error> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| crate::Error::Tls(format!("cannot generate a certificate: {e}")))?;
    let pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::Tls(format!("cannot configure TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| crate::Error::Tls(format!("cannot use the certificate: {e}")))?;
    // The server speaks HTTP/1.1 only (axum's `http1`); advertising h2 would
    // make clients pick a protocol it cannot serve.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), pem))
}
