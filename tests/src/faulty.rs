//! A fault-injecting HTTP/1.1 server on 127.0.0.1 for the reliability suite,
//! the property tests and the soak.
//!
//! It speaks HTTP over a raw `TcpListener` rather than through axum because
//! most faults live below what a well-behaved server lets you send: a reset
//! before the status line, a body cut off half-way, a body that trickles, a
//! connection that is accepted and never answered, a 10 MiB body with or
//! without `Content-Length`, invalid UTF-8. Every response closes its
//! connection, so one request is one connection and the request count is the
//! number of attempts a client made.
//!
//! ```no_run
//! # async fn run() {
//! use workspace_tests::faulty::{FaultyServer, Reply, Step};
//! // Two 503s, then a success: request n gets step n, the last step repeats.
//! let server = FaultyServer::script(vec![
//!     Step::Respond(Reply::json(503, serde_json::json!("busy"))),
//!     Step::Respond(Reply::json(503, serde_json::json!("busy"))),
//!     Step::Respond(Reply::json(200, serde_json::json!({"result": "{}"}))),
//! ])
//! .await;
//! // ... point a client at server.url(), then:
//! assert_eq!(server.requests(), 3);
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method, such as `POST`.
    pub method: String,
    /// The path (and query) of the request line.
    pub path: String,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (read by `Content-Length`).
    pub body: Vec<u8>,
    /// 0 for the first request this server read.
    pub index: usize,
}

impl Request {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers besides `Content-Length` and `Connection`, which the server
    /// adds.
    pub headers: Vec<(String, String)>,
    /// Headers sent byte for byte after `headers`, for values that are not
    /// UTF-8 (obs-text) or names no typed API accepts.
    pub raw_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body, any bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A status with no body and no `Content-Type`.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            raw_headers: Vec::new(),
            body: Vec::new(),
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

    fn head(&self, content_length: Option<usize>) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut head = head.into_bytes();
        for (name, value) in &self.raw_headers {
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        if let Some(len) = content_length {
            head.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
        }
        head.extend_from_slice(b"connection: close\r\n\r\n");
        head
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Step {
    /// Sends the reply with its `Content-Length`, then closes.
    Respond(Reply),
    /// Reads the request, then resets the connection (TCP RST) before any
    /// response byte.
    ResetBeforeHeaders,
    /// Sends the reply's head with its full `Content-Length` and only the
    /// first `sent` bytes of its body, then resets the connection.
    ResetMidBody {
        /// The response, whose body is cut.
        reply: Reply,
        /// How many body bytes go out before the reset.
        sent: usize,
    },
    /// Reads the request and never answers; the connection stays open until
    /// the server stops.
    Silent,
    /// Sends the head at once, then the body `chunk` bytes at a time with
    /// `every` between chunks.
    Trickle {
        /// The response to trickle.
        reply: Reply,
        /// Bytes per write.
        chunk: usize,
        /// The pause between writes.
        every: Duration,
    },
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

type Handler = dyn Fn(&Request) -> Step + Send + Sync;

struct State {
    handler: Arc<Handler>,
    received: Mutex<Vec<Request>>,
    body_bytes_sent: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Test data only; a panicking connection task cannot corrupt it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fault-injecting server. Stops (and drops every open connection) when
/// dropped.
pub struct FaultyServer {
    addr: SocketAddr,
    state: Arc<State>,
}

impl FaultyServer {
    /// Answers request `n` with `steps[n]`; once the steps run out the last
    /// one repeats. Panics when `steps` is empty.
    pub async fn script(steps: Vec<Step>) -> FaultyServer {
        assert!(!steps.is_empty(), "a script needs at least one step");
        FaultyServer::start(move |request| steps[request.index.min(steps.len() - 1)].clone()).await
    }

    /// Answers every request with what `handler` returns for it.
    pub async fn start(handler: impl Fn(&Request) -> Step + Send + Sync + 'static) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the listener has an address");
        let state = Arc::new(State {
            handler: Arc::new(handler),
            received: Mutex::new(Vec::new()),
            body_bytes_sent: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let server = FaultyServer { addr, state };
        server.accept_on(listener);
        server
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

    /// Every request read so far.
    pub fn received(&self) -> Vec<Request> {
        lock(&self.state.received).clone()
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
                Err(err) if tries < 100 => {
                    tries += 1;
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => panic!("cannot listen on {} again: {err}", self.addr),
            }
        };
        self.accept_on(listener);
    }
}

impl Drop for FaultyServer {
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

async fn read_request(
    stream: &mut TcpStream,
) -> Option<(String, String, Vec<(String, String)>, Vec<u8>)> {
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
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
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
    Some((method, path, headers, body))
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let Some((method, path, headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let request = {
        let mut received = lock(&state.received);
        let request = Request {
            method,
            path,
            headers,
            body,
            index: received.len(),
        };
        received.push(request.clone());
        request
    };
    let step = (state.handler)(&request);
    let sent = |n: usize| {
        state.body_bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
    };
    match step {
        Step::Respond(reply) => {
            let mut bytes = reply.head(Some(reply.body.len()));
            bytes.extend_from_slice(&reply.body);
            if stream.write_all(&bytes).await.is_ok() {
                sent(reply.body.len());
            }
            let _ = stream.shutdown().await;
        }
        Step::ResetBeforeHeaders => reset(stream),
        Step::ResetMidBody { reply, sent: cut } => {
            let mut bytes = reply.head(Some(reply.body.len()));
            let cut = cut.min(reply.body.len());
            bytes.extend_from_slice(&reply.body[..cut]);
            if stream.write_all(&bytes).await.is_ok() {
                sent(cut);
            }
            let _ = stream.flush().await;
            // Let the bytes leave before the reset discards the send buffer.
            tokio::time::sleep(Duration::from_millis(50)).await;
            reset(stream);
        }
        Step::Silent => {
            std::future::pending::<()>().await;
            drop(stream);
        }
        Step::Trickle {
            reply,
            chunk,
            every,
        } => {
            if stream
                .write_all(&reply.head(Some(reply.body.len())))
                .await
                .is_err()
            {
                return;
            }
            for piece in reply.body.chunks(chunk.max(1)) {
                if stream.write_all(piece).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
                sent(piece.len());
                tokio::time::sleep(every).await;
            }
        }
        Step::Stream {
            status,
            len,
            content_length,
        } => {
            let reply = Reply::new(status, "application/json", Vec::new());
            if stream
                .write_all(&reply.head(content_length.then_some(len)))
                .await
                .is_err()
            {
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
                sent(piece.len());
            }
            let _ = stream.shutdown().await;
        }
    }
}

fn reset(stream: TcpStream) {
    // A zero linger turns the close into an RST instead of a FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// An unsigned JWT (`alg: none`) whose `exp` is `lifetime` from now, with
/// sub-second precision, so session tests can use lifetimes below the
/// one-second granularity of integer `exp` claims.
pub fn jwt_expiring_in(lifetime: Duration, subject: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = (SystemTime::now() + lifetime)
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64();
    let payload = serde_json::json!({ "sub": subject, "exp": exp });
    format!(
        "{}.{}.unsigned",
        engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(payload.to_string())
    )
}

/// The process's resident set size in bytes (`VmRSS` in
/// `/proc/self/status`); `None` where that file does not exist.
pub fn resident_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// The process's peak resident set size in bytes (`VmHWM`).
pub fn peak_resident_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The refresh-token id [`vcf_tokens()`] issues.
pub const VCF_REFRESH_ID: &str = "refresh-token-id-1";

/// A minimal SDDC Manager for session tests, for a server built with
/// [`FaultyServer::start`]: `POST /v1/tokens` answers `201` with an access
/// token living `login_lifetime` and the refresh token [`VCF_REFRESH_ID`];
/// `PATCH /v1/tokens/access-token/refresh` with that id answers `200` with an
/// access token living `refresh_lifetime`, any other id `404`. Unlike the
/// sandbox, whose JWTs carry whole-second `exp` claims, the lifetimes here
/// may be fractions of a second.
pub fn vcf_tokens(
    login_lifetime: Duration,
    refresh_lifetime: Duration,
) -> impl Fn(&Request) -> Step + Send + Sync + 'static {
    move |request| match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/tokens") => Step::Respond(Reply::json(
            201,
            serde_json::json!({
                "accessToken": jwt_expiring_in(login_lifetime, "login"),
                "refreshToken": { "id": VCF_REFRESH_ID },
            }),
        )),
        ("PATCH", "/v1/tokens/access-token/refresh") => {
            if serde_json::from_slice::<String>(&request.body)
                .ok()
                .as_deref()
                == Some(VCF_REFRESH_ID)
            {
                let token = jwt_expiring_in(refresh_lifetime, "refresh");
                Step::Respond(Reply::json(200, serde_json::json!(token)))
            } else {
                Step::Respond(Reply::json(
                    404,
                    serde_json::json!({ "message": "unknown refresh token" }),
                ))
            }
        }
        _ => Step::Respond(Reply::empty(404)),
    }
}
