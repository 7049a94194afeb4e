//! The sandbox's listener and server: plain TCP or TLS, a per-connection
//! kill switch so that a handler can drop its connection without sending a
//! response, a deadline for each request's headers (and TLS handshake), and
//! a shutdown that waits a bounded time for the requests in flight.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A handle on one accepted connection, given to handlers as an extension.
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

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS, with its kill switch.
pub(crate) struct SandboxIo {
    stream: Stream,
    pub(crate) connection: Connection,
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
/// [`serve`]. Dropping it closes the socket and abandons the handshakes
/// under way.
pub(crate) struct SandboxListener {
    accepted: mpsc::Receiver<SandboxIo>,
    local_addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl SandboxListener {
    /// Accepts on `tcp`; a TLS client gets `handshake_timeout` to finish
    /// its handshake.
    pub(crate) fn new(
        tcp: TcpListener,
        tls: Option<TlsAcceptor>,
        handshake_timeout: Duration,
    ) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (sender, accepted) = mpsc::channel(64);
        let accept_task = tokio::spawn(accept_loop(tcp, tls, handshake_timeout, sender));
        Ok(SandboxListener {
            accepted,
            local_addr,
            accept_task,
        })
    }

    /// The address the socket is bound to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next connection, ready for HTTP.
    async fn accept(&mut self) -> SandboxIo {
        match self.accepted.recv().await {
            Some(io) => io,
            // The accept loop only ends when this listener is dropped, so
            // this is unreachable in practice: no more connections.
            None => std::future::pending().await,
        }
    }
}

impl Drop for SandboxListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    sender: mpsc::Sender<SandboxIo>,
) {
    // Owned here, so that aborting this task (the listener dropped) drops
    // every handshake still under way too.
    let mut handshakes = JoinSet::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE on a loaded machine: back off instead
                    // of spinning, as axum's own TCP listener does.
                    tracing::debug!(%error, "sandbox accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
        };
        // Small request/response exchanges: Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                let io = SandboxIo {
                    stream: Stream::Plain(stream),
                    connection: Connection::default(),
                };
                if sender.send(io).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                handshakes.spawn(async move {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let io = SandboxIo {
                                stream: Stream::Tls(Box::new(stream)),
                                connection: Connection::default(),
                            };
                            let _ = sender.send(io).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, "sandbox TLS handshake failed"),
                        Err(_) => tracing::debug!("sandbox TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// How long [`serve`] lets requests in flight finish once asked to stop.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Serves `app` on every connection `listener` accepts, until `stop` fires
/// (or its sender is dropped). A client gets `header_timeout` for each
/// request's headers, counted from when the connection is ready for one
/// (so an idle keep-alive connection is closed after it too). Then: no new
/// connections, idle ones closed, requests in flight given
/// [`SHUTDOWN_GRACE`] to finish, and whatever is left (a client stuck
/// mid-request) dropped.
pub(crate) async fn serve(
    mut listener: SandboxListener,
    app: Router,
    stop: oneshot::Receiver<()>,
    header_timeout: Duration,
) {
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            io = listener.accept() => {
                let app = app.clone().layer(Extension(io.connection.clone()));
                connections.spawn(serve_connection(io, app, header_timeout, closing_rx.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            open = connections.len(),
            "sandbox: closing the connections still busy after the grace period"
        );
    }
    connections.shutdown().await;
}

async fn serve_connection(
    io: SandboxIo,
    app: Router,
    header_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(error) = served {
                tracing::debug!(%error, "sandbox connection ended with an error");
            }
            return;
        }
        // Closing, or the server gone: either way, finish up.
        _ = closing.wait_for(|closing| *closing) => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "sandbox connection ended with an error");
    }
}

/// Whether `ip` reaches this machine only (`127.0.0.0/8`, `::1`, and
/// `::ffff:127.0.0.1` alike).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The addresses other machines reach the sandbox at when it listens on
/// `bound`: `bound` itself when it is one address beyond loopback; for a
/// wildcard (`0.0.0.0`, `::`), this machine's address on its default route,
/// IPv4 (and IPv6 for `::`), where it has one. None for loopback.
pub(crate) fn reachable_addresses(bound: IpAddr) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return match is_loopback(bound) {
            true => Vec::new(),
            false => vec![bound],
        };
    }
    // Documentation addresses (RFC 5737, RFC 3849): never contacted, as
    // connecting a UDP socket sends nothing; it only picks the route.
    let v6 = SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9));
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9));
    let probes = match bound {
        IpAddr::V4(_) => vec![v4],
        IpAddr::V6(_) => vec![v6, v4],
    };
    probes
        .into_iter()
        .filter_map(default_route_address)
        .collect()
}

/// This machine's address on the route to `probe`, if it has one.
fn default_route_address(probe: SocketAddr) -> Option<IpAddr> {
    let any = match probe {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !is_loopback(ip)).then_some(ip)
}

/// A self-signed certificate for `localhost`, `127.0.0.1`, `::1` and
/// `addresses`, generated now, and the acceptor that serves it. Returns the
/// certificate's PEM, which is also the CA a client must trust.
pub(crate) fn self_signed_tls(addresses: &[IpAddr]) -> Result<(TlsAcceptor, String), crate::Error> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for address in addresses {
        let name = address.to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
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
