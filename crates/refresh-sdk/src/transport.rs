//! How requests are sent: one `reqwest::Client` per configured service, and
//! one executor that adds retries, timeouts, the response-size cap and tracing
//! to every generated operation.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::pin::pin;
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tracing::Instrument;

use crate::error::{BodySnippet, Error, ErrorKind, Result, Service, VendorDetail};

/// When and how often a request is retried.
///
/// A request is sent again only when the server cannot have acted on it, or
/// when acting on it twice does no harm:
///
/// - a connection that failed before anything was sent (refused, TLS
///   handshake failure, connect timeout): every request;
/// - `429 Too Many Requests` and `503 Service Unavailable`, which say the
///   request was not processed: every request;
/// - `502 Bad Gateway` and `504 Gateway Timeout`, after which the request may
///   have been processed behind the gateway: only `GET`, `HEAD`, `PUT`,
///   `DELETE` and `OPTIONS` requests (VCF's `invalidate_refresh_token`) and
///   VCF's `refresh_access_token` (`PATCH /v1/tokens/access-token/refresh`,
///   which only mints another access token). VCF's `create_token` and F5's
///   `refresh_token` (both `POST`) are not sent again: a second login would
///   leave an orphaned refresh token, a second refresh another pipeline token.
///
/// Nothing else is retried: not a timeout or a connection lost after the
/// request was sent (the server may still be working on it), not any other
/// status.
///
/// Delays grow exponentially with full jitter (a random delay between zero
/// and `min(max_delay, base_delay * 2^n)`); a server's `Retry-After` replaces
/// the computed delay. Nothing waits past the overall deadline: when the next
/// wait would end after it, the last error is returned at once, carrying the
/// server's wait in [`Error::retry_after`]. A deadline too large to represent
/// (such as `Duration::MAX`) means no deadline; a wait too long to represent
/// (such as `Retry-After: 18446744073709551615`) is never taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that sends each request once.
    pub fn no_retries() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// How many attempts at most, the first included (default 3; 0 counts as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay the exponential backoff starts from (default 200 ms).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest computed backoff delay (default 10 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The time budget of one operation, retries and waits included (default
    /// 60 s). A budget too large to represent as an instant from now (such as
    /// `Duration::MAX`) means no deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// Connection, timeout, size and TLS settings of one service's client.
#[derive(Clone)]
pub struct TransportOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) ca_bundle_pem: Option<Vec<u8>>,
    pub(crate) allow_unverified_tls: bool,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            connect_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            retry: RetryPolicy::default(),
            ca_bundle_pem: None,
            allow_unverified_tls: false,
        }
    }
}

impl fmt::Debug for TransportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retry", &self.retry)
            .field("ca_bundle_pem", &self.ca_bundle_pem.as_ref().map(Vec::len))
            .field("allow_unverified_tls", &self.allow_unverified_tls)
            .finish()
    }
}

impl TransportOptions {
    /// The time to establish a connection, TLS included (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The time one attempt may take, from sending to the end of the body
    /// (default 30 s), cut to what is left of the retry policy's deadline. A
    /// timeout too large to represent (such as `Duration::MAX`) means none.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The largest response body read, in bytes (default 1 MiB); a larger one
    /// fails the operation instead of exhausting memory.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Trust these PEM certificates, in addition to the bundled web roots.
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Trust the PEM certificates in this file, in addition to the bundled roots.
    pub fn ca_bundle_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|err| {
            Error::config(format!("cannot read the CA bundle {}", path.display())).with_source(err)
        })?;
        Ok(self.ca_bundle_pem(pem))
    }

    /// Accept any server certificate, as the self-signed ones many SDDC
    /// Managers ship with. This disables server authentication: anyone on the
    /// path can read the credentials. Prefer [`ca_bundle_pem`](Self::ca_bundle_pem).
    pub fn allow_unverified_tls(mut self, allow: bool) -> Self {
        self.allow_unverified_tls = allow;
        self
    }
}

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

static UNVERIFIED_TLS_WARNING: Once = Once::new();

/// Builds the one `reqwest::Client` of a configured service.
pub(crate) fn build_http_client(
    service: Service,
    options: &TransportOptions,
    identity: Option<reqwest::Identity>,
    default_headers: HeaderMap,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(options.connect_timeout)
        .default_headers(default_headers)
        .redirect(same_origin_redirects());
    // The attempt timeout is the client's default, so the executor sets one
    // per request only when the deadline cuts it shorter (a request's own
    // timeout costs it an extensions map).
    if let Some(timeout) = client_timeout(options.attempt_timeout) {
        builder = builder.timeout(timeout);
    }
    if let Some(pem) = &options.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
            Error::config("the CA bundle is not valid PEM")
                .with_source(err)
                .for_service(service)
        })?;
        if certs.is_empty() {
            return Err(Error::config("the CA bundle holds no certificate").for_service(service));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if options.allow_unverified_tls {
        UNVERIFIED_TLS_WARNING.call_once(|| {
            tracing::warn!(
                service = service.name(),
                "TLS certificate verification is disabled (allow_unverified_tls): \
                 credentials can be intercepted; give a CA bundle instead"
            );
        });
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().map_err(|err| {
        Error::config("cannot build the HTTP client")
            .with_source(err)
            .for_service(service)
    })
}

/// Follows redirects only within the same origin, so credentials in headers
/// or the TLS identity never reach another host.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            let next = attempt.url();
            first.scheme() == next.scheme()
                && first.host_str() == next.host_str()
                && first.port_or_known_default() == next.port_or_known_default()
        });
        if !same_origin || attempt.previous().len() > 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// What the executor learned about one operation, handed back to the facade
/// because `Exec` can only return a `reqwest` result.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallFacts {
    pub(crate) status: Option<StatusCode>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) attempts: u32,
    /// Kept as the header value (a reference-counted copy) and turned into
    /// text only for an error's snippet.
    pub(crate) content_type: Option<HeaderValue>,
    /// The cap, when the body was larger than it.
    pub(crate) body_over_cap: Option<usize>,
    /// The whole (bounded) body, so error bodies can be decoded leniently.
    pub(crate) body: Option<Bytes>,
    pub(crate) deadline_exceeded: bool,
}

impl CallFacts {
    /// A bounded snippet of the body, for error responses only: success
    /// bodies carry tokens.
    pub(crate) fn snippet(&self) -> BodySnippet {
        BodySnippet::from_body(
            self.content_type
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            self.body.as_deref().unwrap_or_default(),
        )
    }
}

tokio::task_local! {
    // A `Cell`, not a lock: the slot belongs to one operation and is written
    // once, by the executor, when the operation's request is done.
    static CALL_FACTS: Cell<CallFacts>;
}

/// Runs one facade operation with a fresh side channel for the executor.
pub(crate) async fn observe<F: Future>(operation: F) -> (F::Output, CallFacts) {
    let mut scoped = pin!(CALL_FACTS.scope(Cell::new(CallFacts::default()), operation));
    let output = scoped.as_mut().await;
    // The scope hands its value back once the operation is done: no shared
    // ownership, no lock and no copy of the facts.
    let facts = scoped
        .take_value()
        .map(Cell::into_inner)
        .unwrap_or_default();
    (output, facts)
}

/// Hands the facts to the facade operation that runs this request, if any (a
/// caller of the generated client's `raw()` has none).
fn publish(facts: CallFacts) {
    // Only fails outside a scope, where nobody reads the facts.
    let _ = CALL_FACTS.try_with(|slot| slot.set(facts));
}

/// The executor given to both generated clients.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    service: Service,
    retry: RetryPolicy,
    attempt_timeout: Duration,
    /// The timeout [`build_http_client`] gave the `reqwest::Client` for the
    /// same options: a request needs its own only when the deadline cuts it
    /// shorter.
    client_timeout: Option<Duration>,
    max_response_bytes: usize,
}

impl Transport {
    /// The executor for a client built by [`build_http_client`] with the
    /// same `options`.
    pub(crate) fn new(service: Service, options: &TransportOptions) -> Transport {
        Transport {
            service,
            retry: options.retry.clone(),
            attempt_timeout: options.attempt_timeout,
            client_timeout: client_timeout(options.attempt_timeout),
            max_response_bytes: options.max_response_bytes,
        }
    }
}

/// The `reqwest::Client`'s own timeout: the attempt timeout, unless it is too
/// large to represent (then none, as [`Deadline::attempt_timeout`] reads it).
fn client_timeout(attempt_timeout: Duration) -> Option<Duration> {
    Instant::now()
        .checked_add(attempt_timeout)
        .map(|_| attempt_timeout)
}

type ExecFuture<'a> = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>>;

#[cfg(feature = "f5xc")]
impl f5xc_bfdp::Exec for Transport {
    fn exec<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &'a progenitor_client::OperationInfo,
    ) -> ExecFuture<'a> {
        self.start(client, request, info.operation_id)
    }
}

#[cfg(feature = "vcf")]
impl vcf_tokens::Exec for Transport {
    fn exec<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &'a progenitor_client::OperationInfo,
    ) -> ExecFuture<'a> {
        self.start(client, request, info.operation_id)
    }
}

/// Whether a response with `status` to this request is sent again (see
/// [`RetryPolicy`]): 429 and 503 say the request was not processed, so every
/// request is; 502 and 504 come from a gateway that may have passed it on, so
/// only a request that does no harm when repeated is.
fn retries_status(
    service: Service,
    operation: &str,
    method: &reqwest::Method,
    status: StatusCode,
) -> bool {
    match status.as_u16() {
        429 | 503 => true,
        502 | 504 => is_idempotent(method) || repeatable_operation(service, operation),
        _ => false,
    }
}

/// The methods RFC 9110 defines as idempotent, TRACE aside.
fn is_idempotent(method: &reqwest::Method) -> bool {
    use reqwest::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .contains(method)
}

/// Operations sent with a non-idempotent method that may still be repeated:
/// VCF's refresh (`PATCH /v1/tokens/access-token/refresh`) only mints another
/// access token for the same refresh token. The id is the generated client's
/// `OperationInfo::operation_id`.
fn repeatable_operation(service: Service, operation: &str) -> bool {
    matches!((service, operation), (Service::Vcf, "refresh_access_token"))
}

/// Whole milliseconds of `duration`, saturating, for traces.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The end of an operation's time budget. A budget too large to represent as
/// an [`Instant`] (such as `Duration::MAX`) is no deadline at all.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    started: Instant,
    at: Option<Instant>,
}

impl Deadline {
    fn starting_now(budget: Duration) -> Deadline {
        let started = Instant::now();
        Deadline {
            started,
            at: started.checked_add(budget),
        }
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn is_bounded(&self) -> bool {
        self.at.is_some()
    }

    fn has_passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// Whether a wait of `delay` starting now ends before the deadline. A
    /// wait whose end cannot be represented never does, deadline or not.
    fn allows_wait(&self, delay: Duration) -> bool {
        match Instant::now().checked_add(delay) {
            Some(end) => self.at.is_none_or(|at| end < at),
            None => false,
        }
    }

    /// The timeout of an attempt starting `now`: the configured one, cut to
    /// what is left of the budget, at least 1 ms (zero would fail before sending).
    /// `None`, no timeout, when neither bounds the attempt.
    fn attempt_timeout(&self, now: Instant, configured: Duration) -> Option<Duration> {
        let configured = now.checked_add(configured).map(|_| configured);
        let remaining = self.at.map(|at| at.saturating_duration_since(now));
        let timeout = match (configured, remaining) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        Some(timeout.max(Duration::from_millis(1)))
    }
}

/// `Retry-After` in either form: delay seconds or an HTTP date. Seconds too
/// many for a `u64` saturate; a date in the past is no wait; a negative,
/// empty, non-ASCII or otherwise malformed value is ignored.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Whether nothing can see `span` entered: no subscriber enabled it, and
/// tracing will not report it to `log` either (it does so, with its `log`
/// feature, only while no subscriber has ever been set). Entering it on every
/// poll would then only cost time.
fn unobserved(span: &tracing::Span) -> bool {
    span.is_disabled() && (span.is_none() || tracing::dispatcher::has_been_set())
}

impl Transport {
    /// The executor's future for one operation: in its span, entered while
    /// polled unless nothing can see it.
    fn start<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> ExecFuture<'a> {
        let span = tracing::info_span!(
            "refresh_sdk.operation",
            service = self.service.name(),
            operation,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        if unobserved(&span) {
            Box::pin(self.send(client, request, operation, span))
        } else {
            Box::pin(
                self.send(client, request, operation, span.clone())
                    .instrument(span),
            )
        }
    }

    /// Sends the request, again while the policy allows, records the outcome
    /// on `span` and hands what was learned on the way to the facade.
    async fn send(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
        operation: &'static str,
        span: tracing::Span,
    ) -> reqwest::Result<reqwest::Response> {
        let clock = Deadline::starting_now(self.retry.deadline);
        let mut facts = CallFacts::default();
        let method = request.method().clone();
        let mut attempt = 0u32;
        let result = loop {
            attempt = attempt.saturating_add(1);
            // A copy is kept for the next attempt while one may follow; a
            // streaming body cannot be copied, so it gets one attempt.
            let mut spare = if attempt < self.retry.max_attempts {
                request.try_clone()
            } else {
                None
            };
            let attempt_started = Instant::now();
            let timeout = clock.attempt_timeout(attempt_started, self.attempt_timeout);
            if timeout != self.client_timeout {
                *request.timeout_mut() = timeout;
            }
            facts.attempts = attempt;
            let result = client.execute(request).await;
            // Times for events are read inside the event macros, which
            // evaluate their fields only when something records the event.
            match result {
                Err(err) => {
                    tracing::debug!(
                        attempt,
                        elapsed_ms = millis(clock.elapsed()),
                        timeout = err.is_timeout(),
                        connect = err.is_connect(),
                        "attempt failed without a response"
                    );
                    if err.is_timeout() && clock.has_passed() {
                        facts.deadline_exceeded = true;
                    }
                    // Only a failed connection is retried: the request was
                    // not sent. A timeout or a reset after sending may have
                    // left the server working on it.
                    if let Some(again) = spare.take().filter(|_| err.is_connect()) {
                        let delay = self.retry.backoff(attempt);
                        if clock.allows_wait(delay) {
                            request = again;
                            tracing::info!(
                                attempt,
                                delay_ms = millis(delay),
                                "retrying after a connection failure"
                            );
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                    }
                    break Err(err);
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = parse_retry_after(response.headers());
                    tracing::debug!(
                        attempt,
                        status = status.as_u16(),
                        attempt_ms = millis(attempt_started.elapsed()),
                        "response"
                    );
                    facts.status = Some(status);
                    facts.retry_after = retry_after;
                    let retryable = retries_status(self.service, operation, &method, status);
                    if let Some(again) = spare.take().filter(|_| retryable) {
                        let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
                        if clock.allows_wait(delay) {
                            request = again;
                            tracing::info!(
                                attempt,
                                status = status.as_u16(),
                                delay_ms = millis(delay),
                                "retrying a transient failure"
                            );
                            drop(response);
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        if clock.is_bounded() {
                            facts.deadline_exceeded = true;
                        }
                    }
                    if passes_as_is(&response, self.max_response_bytes) {
                        break Ok(response);
                    }
                    break self.buffer(response, &mut facts).await;
                }
            }
        };
        // Recorded once, at the end: a formatter appends every recording,
        // so per-attempt values go on the attempts' events instead.
        let elapsed_ms = millis(clock.elapsed());
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        span.record("attempts", attempt);
        span.record("elapsed_ms", elapsed_ms);
        if let Some(status) = status {
            span.record("status", status);
        }
        // Inside the span: this future runs entered in it whenever anything
        // can see it (see `start`).
        tracing::debug!(attempts = attempt, status, elapsed_ms, "operation finished");
        publish(facts);
        result
    }

    /// Reads the body up to the cap into the facts, for lenient decoding of
    /// error bodies, and hands the generated code a response that holds it,
    /// so its decoding never reads an unbounded body.
    async fn buffer(
        &self,
        mut response: reqwest::Response,
        facts: &mut CallFacts,
    ) -> reqwest::Result<reqwest::Response> {
        let status = response.status();
        let cap = self.max_response_bytes;
        let version = response.version();
        // Moved, not copied: the rebuilt response gets them back.
        let headers = std::mem::take(response.headers_mut());
        let url = response.url().clone();
        facts.content_type = headers.get(CONTENT_TYPE).cloned();
        let body = match read_capped(&mut response, cap).await? {
            Some(body) => {
                facts.body = Some(body.clone());
                body
            }
            None => {
                tracing::warn!(
                    status = status.as_u16(),
                    cap,
                    "response body exceeds the size cap"
                );
                facts.body_over_cap = Some(cap);
                Bytes::new()
            }
        };
        Ok(rebuild(status, version, headers, url, body))
    }
}

/// The body, or `None` as soon as it is known to exceed `cap` bytes.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> reqwest::Result<Option<Bytes>> {
    if response
        .content_length()
        .is_some_and(|len| len > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Whether a response can go to the generated code unread: a success of
/// known length within the cap. The HTTP stack stops reading at the declared
/// length (and reqwest leaves the length unknown when it decompresses), so
/// the generated code's read stays under the cap; and only error bodies are
/// needed in the facts. This spares the common case a copy of the response.
fn passes_as_is(response: &reqwest::Response, cap: usize) -> bool {
    response.status().is_success()
        && response
            .content_length()
            .is_some_and(|len| len <= u64::try_from(cap).unwrap_or(u64::MAX))
}

fn rebuild(
    status: StatusCode,
    version: reqwest::Version,
    headers: HeaderMap,
    url: reqwest::Url,
    body: Bytes,
) -> reqwest::Response {
    use reqwest::ResponseBuilderExt as _;

    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    // reqwest reads a response's URL from an extension that only its builder
    // extension can set; without it, the conversion parses a placeholder
    // URL on every call.
    if let Some(extensions) = http::response::Builder::new().url(url).extensions_mut() {
        *response.extensions_mut() = std::mem::take(extensions);
    }
    reqwest::Response::from(response)
}

/// Turns a generated client's error into the crate's error, keeping the
/// status and kind whatever shape the body had.
pub(crate) fn map_error<E>(
    service: Service,
    operation: &'static str,
    error: progenitor_client::Error<E>,
    facts: &CallFacts,
    vendor_detail: impl Fn(&E) -> Option<VendorDetail>,
    vendor_from_body: impl Fn(&[u8]) -> Option<VendorDetail>,
) -> Error {
    use progenitor_client::Error as P;

    let status = facts.status.or_else(|| error.status());
    let error_status = status.filter(|s| s.is_client_error() || s.is_server_error());
    let vendor_or_snippet = || {
        facts
            .body
            .as_deref()
            .and_then(&vendor_from_body)
            .or_else(|| Some(VendorDetail::Unparsed(facts.snippet())))
    };
    let error = if let Some(cap) = facts.body_over_cap {
        let message = format!("the response body exceeded the {cap}-byte cap and was dropped");
        match error_status {
            Some(s) => Error::new(ErrorKind::from_status(s), message),
            None => Error::new(ErrorKind::InvalidResponse, message),
        }
    } else {
        match error {
            P::InvalidRequest(message) => Error::new(ErrorKind::InvalidInput, message),
            P::Custom(message) => Error::new(ErrorKind::Transport, message),
            P::CommunicationError(err) | P::InvalidUpgrade(err) | P::ResponseBodyError(err) => {
                let kind = if err.is_timeout() {
                    ErrorKind::Timeout
                } else if let Some(s) = error_status {
                    ErrorKind::from_status(s)
                } else if err.is_builder() {
                    ErrorKind::InvalidInput
                } else {
                    ErrorKind::Transport
                };
                let message = if facts.deadline_exceeded {
                    "the operation's deadline passed".to_owned()
                } else if err.is_timeout() {
                    "no answer within the per-attempt timeout".to_owned()
                } else if err.is_connect() {
                    "could not connect".to_owned()
                } else {
                    String::new()
                };
                Error::new(kind, message).with_source(err.without_url())
            }
            P::ErrorResponse(value) => {
                let kind = ErrorKind::from_status(value.status());
                let detail = vendor_detail(&value.into_inner()).or_else(vendor_or_snippet);
                Error::new(kind, "").with_vendor(detail)
            }
            P::InvalidResponsePayload(_, err) => match error_status {
                Some(s) => {
                    Error::new(ErrorKind::from_status(s), "").with_vendor(vendor_or_snippet())
                }
                None => Error::new(
                    ErrorKind::InvalidResponse,
                    // serde's message can quote values from a body that holds
                    // tokens; only its category and position are kept.
                    format!(
                        "the body is not the documented JSON ({:?} error at line {} column {})",
                        err.classify(),
                        err.line(),
                        err.column()
                    ),
                ),
            },
            P::UnexpectedResponse(response) => {
                let s = response.status();
                if s.is_client_error() || s.is_server_error() {
                    Error::new(ErrorKind::from_status(s), "").with_vendor(vendor_or_snippet())
                } else if s.is_redirection() {
                    let location = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| reqwest::Url::parse(v).ok())
                        .and_then(|url| url.host_str().map(str::to_owned))
                        .unwrap_or_else(|| "an unknown host".to_owned());
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!(
                            "a redirect to {location} was not followed, so credentials stay on this host"
                        ),
                    )
                } else {
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!("undocumented status {s}"),
                    )
                }
            }
        }
    };
    let kind = error.kind();
    error
        .with_status(status)
        .with_retry_after(facts.retry_after)
        .with_attempts(facts.attempts)
        .at(service, operation)
        .with_hint(hint(service, operation, kind))
}

/// What the caller can do about an error.
pub(crate) fn hint(service: Service, operation: &str, kind: ErrorKind) -> &'static str {
    match (service, operation, kind) {
        (Service::F5Xc, _, ErrorKind::Auth) => {
            "Check VOLT_API_TOKEN (or the API certificate) and its permission to refresh pipeline tokens"
        }
        (Service::F5Xc, _, ErrorKind::NotFound) => {
            "Check the product name and the tenant in VOLT_API_URL"
        }
        (Service::Vcf, "create_token", ErrorKind::Auth) => {
            "Check VCF_SDDC_MANAGER_USERNAME and VCF_SDDC_MANAGER_PASSWORD"
        }
        (Service::Vcf, _, ErrorKind::NotFound) => {
            "The refresh token is unknown, expired or invalidated; create a new token pair"
        }
        (_, _, ErrorKind::RateLimited) => "Wait for the time the server asked for, then retry",
        (_, _, ErrorKind::Server) => {
            "The server failed; retry later or quote the reference to support"
        }
        (_, _, ErrorKind::Timeout) => {
            "The server did not answer in time; retry later or raise the timeouts"
        }
        (_, _, ErrorKind::Transport) => {
            "Check the address, the network and the TLS settings (CA bundle, client certificate)"
        }
        (_, _, ErrorKind::InvalidResponse) => {
            "The server answered in a shape the SDK does not know; check the address points at the service"
        }
        _ => "Check the request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_the_exponential_ceiling() {
        let policy = RetryPolicy::default()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(350));
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(2) <= Duration::from_millis(200));
            assert!(policy.backoff(3) <= Duration::from_millis(350));
            assert!(policy.backoff(30) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().expect("header value"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(later)
                .parse()
                .expect("header value"),
        );
        let wait = parse_retry_after(&headers).expect("an HTTP date parses");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, "soon".parse().expect("header value"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn absurd_retry_after_values_parse_without_panicking() {
        let parse = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(
                RETRY_AFTER,
                http::HeaderValue::from_bytes(value).expect("a header value"),
            );
            parse_retry_after(&headers)
        };
        let max = Some(Duration::from_secs(u64::MAX));
        assert_eq!(parse(b"18446744073709551615"), max);
        // More seconds than a u64 holds is still "very long", not "no wait".
        assert_eq!(parse(b"99999999999999999999999999"), max);
        assert_eq!(parse(b" 5 "), Some(Duration::from_secs(5)));
        for ignored in [&b"-1"[..], b"+5", b"1.5", b"", b"5 s", b"\xff\xfe"] {
            assert_eq!(parse(ignored), None, "{ignored:?}");
        }
        // The last date HTTP can express, about 8,000 years ahead.
        let far = parse(b"Fri, 31 Dec 9999 23:59:59 GMT").expect("a valid date");
        assert!(far > Duration::from_secs(7_000 * 365 * 86_400), "{far:?}");
        assert_eq!(
            parse(b"Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_retry_rule_by_method_operation_and_status() {
        use reqwest::Method;
        let status = |code| StatusCode::from_u16(code).expect("a valid status");
        let vcf = |operation, method: Method, code| {
            retries_status(Service::Vcf, operation, &method, status(code))
        };
        // Statuses that say the request was not processed: everything.
        for code in [429, 503] {
            assert!(vcf("create_token", Method::POST, code), "{code}");
            assert!(
                retries_status(Service::F5Xc, "refresh_token", &Method::POST, status(code)),
                "{code}"
            );
        }
        for code in [502, 504] {
            // Idempotent methods.
            for method in [
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ] {
                assert!(vcf("any", method.clone(), code), "{method} {code}");
            }
            // VCF's refresh, a PATCH that only mints an access token.
            assert!(vcf("refresh_access_token", Method::PATCH, code), "{code}");
            // Requests that may have been processed.
            assert!(!vcf("create_token", Method::POST, code), "{code}");
            assert!(!vcf("other", Method::PATCH, code), "{code}");
            assert!(
                !retries_status(Service::F5Xc, "refresh_token", &Method::POST, status(code)),
                "{code}"
            );
            // The exception is VCF's operation, not any service's.
            assert!(
                !retries_status(
                    Service::F5Xc,
                    "refresh_access_token",
                    &Method::PATCH,
                    status(code)
                ),
                "{code}"
            );
        }
        for code in [200, 201, 400, 401, 404, 409, 500, 501, 505, 599] {
            assert!(!vcf("refresh_access_token", Method::GET, code), "{code}");
        }
    }

    #[test]
    fn an_unrepresentable_deadline_is_none_and_waits_stay_representable() {
        let unbounded = Deadline::starting_now(Duration::MAX);
        assert!(!unbounded.is_bounded());
        assert!(!unbounded.has_passed());
        assert!(unbounded.allows_wait(Duration::from_secs(1)));
        assert!(!unbounded.allows_wait(Duration::MAX));
        assert_eq!(
            unbounded.attempt_timeout(Instant::now(), Duration::MAX),
            None
        );
        assert_eq!(
            unbounded.attempt_timeout(Instant::now(), Duration::from_secs(30)),
            Some(Duration::from_secs(30))
        );

        let bounded = Deadline::starting_now(Duration::from_secs(60));
        assert!(bounded.is_bounded());
        assert!(bounded.allows_wait(Duration::from_secs(1)));
        assert!(!bounded.allows_wait(Duration::from_secs(61)));
        assert!(!bounded.allows_wait(Duration::MAX));
        let timeout = bounded
            .attempt_timeout(Instant::now(), Duration::MAX)
            .expect("the deadline bounds the attempt");
        assert!(timeout <= Duration::from_secs(60), "{timeout:?}");

        let passed = Deadline::starting_now(Duration::ZERO);
        assert!(passed.has_passed());
        assert!(!passed.allows_wait(Duration::ZERO));
        assert_eq!(
            passed.attempt_timeout(Instant::now(), Duration::from_secs(30)),
            Some(Duration::from_millis(1))
        );
    }
}
