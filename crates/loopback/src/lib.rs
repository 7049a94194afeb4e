//! The workspace's loopback HTTP fake: a server on 127.0.0.1 that answers
//! each request with what a test's handler returns for it and records every
//! request it read.
//!
//! It speaks HTTP/1.1 over a raw `TcpListener` rather than through a
//! framework because many of the answers a test needs are ones a
//! well-behaved server will not send: a reset before the status line, a body
//! cut off half-way, a body that trickles, a connection accepted and never
//! answered, a 10 MiB body with or without `Content-Length`, a header value
//! that is not UTF-8, or any bytes at all ([`Step::Raw`]). Every answer closes
//! its connection, so one request is one connection and
//! [`requests`](Loopback::requests) counts the attempts a client made.
//!
//! Delays ([`Reply::after`], [`Reply::trickle`]) are slept with
//! `tokio::time::sleep` and requests are timed with `tokio::time::Instant`,
//! so both follow a paused clock (`#[tokio::test(start_paused = true)]`).
//!
//! ```no_run
//! # async fn run() {
//! use refresh_loopback::{Loopback, Reply, Step};
//! // A 503, a reset, then a success: request n gets step n, the last step
//! // repeats.
//! let server = Loopback::script(vec![
//!     Reply::json(503, serde_json::json!("busy")).into(),
//!     Step::ResetBeforeHeaders,
//!     Reply::json(200, serde_json::json!({"result": "{}"})).into(),
//! ])
//! .await;
//! // ... point a client at server.url(), then:
//! assert_eq!(server.requests(), 3);
//! assert_eq!(server.received()[0].method, "POST");
//! # }
//! ```

#![deny(missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method, such as `POST`.
    pub method: String,
    /// The path of the request line, without its query.
    pub path: String,
    /// The query of the request line (after `?`), if any.
    pub query: Option<String>,
    /// The headers; a header `http` cannot hold (a malformed name) is left
    /// out.
    pub headers: HeaderMap,
    /// The body, read by `Content-Length` (none without one).
    pub body: Vec<u8>,
    /// When the server had read the whole request, on tokio's clock.
    pub at: Instant,
    /// 0 for the first request this server read.
    pub index: usize,
}

impl Request {
    /// The first value of the header `name` (any case), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body parsed as JSON; panics when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "the request body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// An HTTP response, and how fast it goes out.
///
/// The server adds `Content-Length` (except to a 1xx, 204 or 304),
/// `Connection: close` and, unless the reply has one or the server was
/// started [`without_date`](Loopback::without_date), a `Date`.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers, written `name: value` in order.
    pub headers: Vec<(String, String)>,
    /// Headers written byte for byte after `headers`, for values that are
    /// not UTF-8 (obs-text) or names no typed API accepts.
    pub raw_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body, any bytes.
    pub body: Vec<u8>,
    /// How long the server waits before sending anything; it gives up on
    /// the request when the client closes the connection meanwhile.
    pub delay: Duration,
    /// Sends the body this many bytes at a time with this pause after each
    /// write, instead of at once.
    pub trickle: Option<(usize, Duration)>,
}

impl Reply {
    /// A status with no body and no `Content-Type`.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            raw_headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            trickle: None,
        }
    }

    /// A body with a `Content-Type` (none when `content_type` is empty).
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        let reply = Reply {
            body: body.into(),
            ..Reply::empty(status)
        };
        if content_type.is_empty() {
            reply
        } else {
            reply.header("content-type", content_type)
        }
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header as raw bytes, written as `name: value` with nothing
    /// checked or escaped: a CR or LF in either breaks the response.
    pub fn header_bytes(mut self, name: &[u8], value: &[u8]) -> Reply {
        self.raw_headers.push((name.to_vec(), value.to_vec()));
        self
    }

    /// Waits `delay` before sending anything (unless the client hangs up).
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Sends the head at once, then the body `chunk` bytes at a time with
    /// `every` after each write.
    pub fn trickle(mut self, chunk: usize, every: Duration) -> Reply {
        self.trickle = Some((chunk.max(1), every));
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
            || self
                .raw_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The status line and headers, the blank line included.
    fn head(&self, content_length: Option<usize>, dated: bool) -> Vec<u8> {
        let reason = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Unknown");
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", self.status).into_bytes();
        let mut line = |name: &[u8], value: &[u8]| {
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        };
        for (name, value) in &self.headers {
            line(name.as_bytes(), value.as_bytes());
        }
        for (name, value) in &self.raw_headers {
            line(name, value);
        }
        if dated && !self.has_header("date") {
            line(
                b"date",
                httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
            );
        }
        if let Some(length) = content_length {
            line(b"content-length", length.to_string().as_bytes());
        }
        line(b"connection", b"close");
        head.extend_from_slice(b"\r\n");
        head
    }

    /// The `Content-Length` to announce: the body's, unless the status has
    /// no body.
    fn content_length(&self) -> Option<usize> {
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        (!bodiless).then_some(self.body.len())
    }
}

/// What the server does with one request. Every step ends by closing the
/// connection (gracefully, or with a reset).
#[derive(Clone, Debug)]
pub enum Step {
    /// Sends the reply.
    Respond(Reply),
    /// Writes these bytes as they are, then closes: a response no
    /// well-behaved server sends (a body without `Content-Length`, a broken
    /// chunked encoding, not HTTP at all).
    Raw(Vec<u8>),
    /// Resets the connection (TCP RST) before any response byte.
    ResetBeforeHeaders,
    /// Sends the reply's head with its full `Content-Length` and only the
    /// first `sent` bytes of its body, then resets the connection.
    ResetMidBody {
        /// The response, whose body is cut.
        reply: Reply,
        /// How many body bytes go out before the reset.
        sent: usize,
    },
    /// Never answers; the connection stays open until the server stops.
    Silent,
    /// A body of `len` bytes, an unterminated JSON string `"aaa…`, streamed
    /// in 64 KiB writes: with a `Content-Length`, or delimited by closing the
    /// connection.
    Stream {
        /// The status code.
        status: u16,
        /// The body's length.
        len: usize,
        /// Whether the length is announced up front.
        content_length: bool,
    },
}

impl From<Reply> for Step {
    fn from(reply: Reply) -> Step {
        Step::Respond(reply)
    }
}

type Handler = dyn Fn(&Request) -> Step + Send + Sync;

struct State {
    handler: Box<Handler>,
    received: Mutex<Vec<Request>>,
    body_bytes_sent: AtomicU64,
    dated: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Test data only; a panicking handler cannot leave it half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The loopback server. Stops (and drops every open connection) when
/// dropped.
pub struct Loopback {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Loopback {
    /// Starts a server on `127.0.0.1:0` answering every request with what
    /// `handler` returns for it: a [`Step`], or a [`Reply`] to send.
    pub async fn start<S: Into<Step>>(
        handler: impl Fn(&Request) -> S + Send + Sync + 'static,
    ) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the listener has an address");
        let state = Arc::new(State {
            handler: Box::new(move |request| handler(request).into()),
            received: Mutex::new(Vec::new()),
            body_bytes_sent: AtomicU64::new(0),
            dated: AtomicBool::new(true),
            tasks: Mutex::new(Vec::new()),
        });
        let server = Loopback { addr, state };
        server.accept_on(listener);
        server
    }

    /// Answers every request with `step` (or a [`Reply`]).
    pub async fn always(step: impl Into<Step>) -> Loopback {
        let step = step.into();
        Loopback::start(move |_| step.clone()).await
    }

    /// Answers request `n` with `steps[n]`; once the steps run out the last
    /// one repeats. Panics when `steps` is empty.
    pub async fn script(steps: Vec<Step>) -> Loopback {
        assert!(!steps.is_empty(), "a script needs at least one step");
        Loopback::start(move |request| steps[request.index.min(steps.len() - 1)].clone()).await
    }

    /// Sends replies without the `Date` the server otherwise adds to those
    /// that have none, for tests whose client would read times from it.
    pub fn without_date(self) -> Loopback {
        self.state.dated.store(false, Ordering::Relaxed);
        self
    }

    fn accept_on(&self, listener: TcpListener) {
        let state = Arc::clone(&self.state);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = tokio::spawn(serve(stream, Arc::clone(&state)));
                let mut tasks = lock(&state.tasks);
                tasks.retain(|task| !task.is_finished());
                tasks.push(connection);
            }
        });
        lock(&self.state.tasks).push(accept);
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests the server has read (one per connection).
    pub fn requests(&self) -> usize {
        lock(&self.state.received).len()
    }

    /// How many requests had this method and path.
    pub fn requests_to(&self, method: &str, path: &str) -> usize {
        lock(&self.state.received)
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// Every request read so far, in order.
    pub fn received(&self) -> Vec<Request> {
        lock(&self.state.received).clone()
    }

    /// The only request read so far; panics unless there was exactly one.
    pub fn single_request(&self) -> Request {
        let received = self.received();
        assert_eq!(
            received.len(),
            1,
            "expected exactly one request, got {received:?}"
        );
        received.into_iter().next().expect("one request")
    }

    /// Body bytes the server managed to write, over all responses.
    pub fn body_bytes_sent(&self) -> u64 {
        self.state.body_bytes_sent.load(Ordering::Relaxed)
    }

    /// Stops listening and drops every open connection: until
    /// [`restart`](Self::restart), connecting is refused.
    pub fn stop(&self) {
        for task in lock(&self.state.tasks).drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same address after [`stop`](Self::stop).
    pub async fn restart(&self) {
        // The aborted accept task drops its listener on its next poll; retry
        // the bind briefly rather than racing it.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => panic!("cannot listen on {} again: {err}", self.addr),
            }
        };
        self.accept_on(listener);
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A URL on 127.0.0.1 where nothing listens: connecting is refused.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port on 127.0.0.1");
    let addr = listener.local_addr().expect("the listener has an address");
    drop(listener);
    format!("http://{addr}")
}

/// A listener on 127.0.0.1 that accepts nothing and whose backlog is full:
/// a client's connect is neither accepted nor refused, as to a host behind a
/// firewall that drops packets, until the client's connect timeout. Stops
/// listening when dropped.
///
/// Linux drops the SYN of a connection to a listener whose accept queue is
/// full (the client retries it a second later, then later again), so the
/// connect hangs without any network; other systems may refuse it instead.
pub struct Unanswered {
    addr: SocketAddr,
    // Held, not read: the listener keeps the port, the connections fill its
    // accept queue.
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Unanswered {
    /// Listens with the smallest backlog and fills it.
    pub async fn start() -> Unanswered {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind a port on 127.0.0.1");
        let listener = socket.listen(1).expect("listen");
        let addr = listener.local_addr().expect("the listener has an address");
        // The queue holds a kernel-chosen few (2 for a backlog of 1 on
        // Linux): connect until one is left hanging. A connection the queue
        // takes completes at once on loopback, so 100 ms means "hanging".
        let mut queued = Vec::new();
        for _ in 0..64 {
            let connect = TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(100), connect).await {
                Ok(Ok(stream)) => queued.push(stream),
                Ok(Err(err)) => panic!("connecting to fill the backlog failed: {err}"),
                Err(_hanging) => break,
            }
        }
        Unanswered {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Reads one request: the head up to the blank line, then `Content-Length`
/// bytes of body. `None` when the client closes first or the head passes
/// 64 KiB.
/// The request's `index` is left 0 for the caller to set.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let mut lines = buffer[..head_end].split(|&b| b == b'\n');
    let request_line = String::from_utf8_lossy(lines.next()?.trim_ascii()).into_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    let length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
        at: Instant::now(),
        index: 0,
    })
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let Some(mut request) = read_request(&mut stream).await else {
        return;
    };
    {
        let mut received = lock(&state.received);
        request.index = received.len();
        received.push(request.clone());
    }
    match (state.handler)(&request) {
        Step::Respond(reply) => {
            if send(&mut stream, &state, &reply, reply.body.len()).await {
                let _ = stream.shutdown().await;
            }
        }
        Step::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Step::ResetBeforeHeaders => reset(stream),
        Step::ResetMidBody { reply, sent } => {
            send(&mut stream, &state, &reply, sent).await;
            let _ = stream.flush().await;
            // Let the bytes leave before the reset discards the send buffer.
            tokio::time::sleep(Duration::from_millis(50)).await;
            reset(stream);
        }
        Step::Silent => {
            std::future::pending::<()>().await;
        }
        Step::Stream {
            status,
            len,
            content_length,
        } => {
            let reply = Reply::new(status, "application/json", Vec::new());
            let dated = state.dated.load(Ordering::Relaxed);
            let head = reply.head(content_length.then_some(len), dated);
            if stream.write_all(&head).await.is_err() {
                return;
            }
            let mut written = 0;
            let block = vec![b'a'; 64 * 1024];
            while written < len {
                let mut piece = &block[..block.len().min(len - written)];
                if written == 0 {
                    piece = b"\"";
                }
                if stream.write_all(piece).await.is_err() {
                    return;
                }
                written += piece.len();
                state.count_sent(piece.len());
            }
            let _ = stream.shutdown().await;
        }
    }
}

impl State {
    fn count_sent(&self, bytes: usize) {
        self.body_bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Sends `reply` after its delay, with at most `cut` bytes of its body (the
/// announced length stays the whole body's). False when a write failed.
async fn send(stream: &mut TcpStream, state: &State, reply: &Reply, cut: usize) -> bool {
    if !reply.delay.is_zero() && !wait_unless_hung_up(stream, reply.delay).await {
        return false;
    }
    let head = reply.head(reply.content_length(), state.dated.load(Ordering::Relaxed));
    let body = &reply.body[..cut.min(reply.body.len())];
    let Some((chunk, every)) = reply.trickle else {
        let mut bytes = head;
        bytes.extend_from_slice(body);
        if stream.write_all(&bytes).await.is_err() {
            return false;
        }
        state.count_sent(body.len());
        return true;
    };
    if stream.write_all(&head).await.is_err() {
        return false;
    }
    for piece in body.chunks(chunk.max(1)) {
        if stream.write_all(piece).await.is_err() || stream.flush().await.is_err() {
            return false;
        }
        state.count_sent(piece.len());
        tokio::time::sleep(every).await;
    }
    true
}

/// Waits `delay` unless the client closes the connection first, as an HTTP
/// server drops a request its client gave up on; false when it did.
async fn wait_unless_hung_up(stream: &mut TcpStream, delay: Duration) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    let mut discard = [0u8; 1024];
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            read = stream.read(&mut discard) => {
                if !matches!(read, Ok(1..)) {
                    return false;
                }
            }
        }
    }
}

fn reset(stream: TcpStream) {
    // A zero linger turns the close into an RST instead of a FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `request` on a new connection and reads the answer to its end.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send the request");
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .expect("read the answer");
        String::from_utf8(answer).expect("a text answer")
    }

    #[tokio::test]
    async fn a_request_is_recorded_and_answered_with_length_date_and_close() {
        let server = Loopback::always(Reply::json(201, serde_json::json!({"a": 1}))).await;
        let request =
            b"POST /v1/x?q=1 HTTP/1.1\r\nHost: h\r\nX-Id: 7\r\nContent-Length: 4\r\n\r\n\"ab\"";
        let answer = exchange(server.addr(), request).await;
        assert!(answer.starts_with("HTTP/1.1 201 Created\r\n"), "{answer}");
        for line in [
            "content-type: application/json",
            "content-length: 7",
            "connection: close",
        ] {
            assert!(
                answer.contains(&format!("{line}\r\n")),
                "{line} in {answer}"
            );
        }
        assert!(answer.contains("\r\ndate: "), "{answer}");
        assert!(answer.ends_with("\r\n\r\n{\"a\":1}"), "{answer}");
        let seen = server.single_request();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/v1/x")
        );
        assert_eq!(seen.query.as_deref(), Some("q=1"));
        assert_eq!(seen.header("x-id"), Some("7"));
        assert_eq!(seen.json(), serde_json::json!("ab"));
        assert_eq!(server.requests_to("POST", "/v1/x"), 1);
        assert_eq!(server.body_bytes_sent(), 7);
    }

    #[tokio::test]
    async fn a_204_has_no_length_and_without_date_no_date() {
        let server = Loopback::always(Reply::empty(204)).await.without_date();
        let answer = exchange(server.addr(), b"DELETE / HTTP/1.1\r\n\r\n").await;
        assert_eq!(
            answer,
            "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_connect_to_an_unanswered_listener_hangs() {
        let unanswered = Unanswered::start().await;
        let connect = TcpStream::connect(unanswered.addr());
        let outcome = tokio::time::timeout(Duration::from_millis(300), connect).await;
        assert!(
            outcome.is_err(),
            "neither accepted nor refused: {outcome:?}"
        );
        assert!(unanswered.url().starts_with("http://127.0.0.1:"));
    }

    #[tokio::test]
    async fn a_script_repeats_its_last_step_and_a_restart_serves_again() {
        let server = Loopback::script(vec![
            Reply::empty(503).into(),
            Step::Raw(b"not http".to_vec()),
        ])
        .await;
        let get = b"GET / HTTP/1.1\r\n\r\n";
        assert!(
            exchange(server.addr(), get)
                .await
                .starts_with("HTTP/1.1 503 ")
        );
        assert_eq!(exchange(server.addr(), get).await, "not http");
        server.stop();
        // The aborted accept task drops its listener on its next poll.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(server.addr()).await.is_err(), "refused");
        server.restart().await;
        assert_eq!(exchange(server.addr(), get).await, "not http");
        assert_eq!(server.requests(), 3);
        let indexes: Vec<usize> = server.received().iter().map(|r| r.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }
}
