//! [`TransportPolicy`]: retries, the deadline, `Retry-After`, the
//! response-size cap and tracing, as one `reqwest_middleware::Middleware`.
//!
//! The generated clients' executor runs the same policy with the bare
//! `reqwest::Client` as its next hop (it is their only layer, so there is no
//! stack to walk), and [`VcfSession::api_client`](crate::VcfSession::api_client)
//! puts it under [`BearerAuth`](super::BearerAuth): one retry loop for every
//! request the SDK sends.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::Extensions;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, DATE, HeaderMap, HeaderValue, RETRY_AFTER};
use tracing::Instrument;

use crate::error::{BodySnippet, Service};
use crate::transport::{RetryPolicy, TransportOptions};

/// The SDK's transport policy as a `reqwest_middleware` layer: what
/// [`RetryPolicy`] describes (which requests are sent again, and when), each
/// attempt's timeout cut to the deadline, error bodies read up to the size
/// cap, and a `refresh_sdk.operation` span with one `debug` event per
/// attempt (method, path without the query, status, attempt, elapsed).
///
/// Put it under authentication layers, so that a re-sent request keeps its
/// header, and above nothing that retries. Success bodies pass through
/// unread (stream them as you like); an error body larger than
/// [`TransportOptions::max_response_bytes`] is dropped, with a warning.
///
/// ```
/// use refresh_sdk::TransportOptions;
/// use refresh_sdk::middleware::TransportPolicy;
///
/// let options = TransportOptions::default();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(TransportPolicy::new(&options))
///     .build();
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct TransportPolicy {
    service: Option<Service>,
    retry: RetryPolicy,
    attempt_timeout: Duration,
    /// The timeout the `reqwest::Client` already applies to every request:
    /// a request needs its own only when it differs.
    client_timeout: Option<Duration>,
    max_response_bytes: usize,
    /// Whether successes of unknown length are read (up to the cap) too.
    cap_successes: bool,
}

impl TransportPolicy {
    /// The policy `options` describe, for a `reqwest::Client` of any
    /// settings: every attempt gets its own timeout.
    pub fn new(options: &TransportOptions) -> TransportPolicy {
        TransportPolicy {
            service: None,
            retry: options.retry.clone(),
            attempt_timeout: options.attempt_timeout,
            client_timeout: None,
            max_response_bytes: options.max_response_bytes,
            cap_successes: false,
        }
    }

    /// The policy of a generated client built by
    /// [`build_http_client`](crate::transport::build_http_client) with the
    /// same `options`: its client already times each attempt out, and its
    /// generated code reads every body, so every body is capped.
    pub(crate) fn for_service(service: Service, options: &TransportOptions) -> TransportPolicy {
        TransportPolicy {
            service: Some(service),
            client_timeout: crate::transport::client_timeout(options.attempt_timeout),
            cap_successes: true,
            ..TransportPolicy::new(options)
        }
    }

    /// The same policy for another request stream of `service` (the API
    /// client beside a generated one), which reads its own success bodies.
    #[cfg(feature = "vcf")]
    pub(crate) fn streaming_successes(mut self) -> TransportPolicy {
        self.cap_successes = false;
        self
    }
}

/// When the operation a request belongs to started, so that a layer above
/// the policy that sends it again (after a 401) shares its deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperationStarted(pub(crate) Instant);

/// Where an attempt goes next: the rest of a middleware stack with the
/// request's extensions ([`Stack`]), or the client itself (the executor's
/// hop, which needs no extensions).
pub(crate) trait Hop: Send {
    type Error: AttemptFailure + From<reqwest::Error> + Send;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, Self::Error>> + Send + '_;

    /// A copy of `request` for another attempt, or `None` when its body
    /// streams (it cannot be sent twice).
    fn spare(request: &reqwest::Request) -> Option<reqwest::Request> {
        request.try_clone()
    }
}

/// What the retry rule asks of a failed attempt.
pub(crate) trait AttemptFailure: std::error::Error + Sized + 'static {
    fn is_connect(&self) -> bool;
    fn is_timeout(&self) -> bool;
    /// A TLS handshake that failed on the server's certificate: sending
    /// again cannot change the answer.
    fn rejects_certificate(&self) -> bool {
        certificate_rejection(self).is_some()
    }
}

impl AttemptFailure for reqwest::Error {
    fn is_connect(&self) -> bool {
        reqwest::Error::is_connect(self)
    }
    fn is_timeout(&self) -> bool {
        reqwest::Error::is_timeout(self)
    }
}

impl AttemptFailure for reqwest_middleware::Error {
    fn is_connect(&self) -> bool {
        reqwest_middleware::Error::is_connect(self)
    }
    fn is_timeout(&self) -> bool {
        reqwest_middleware::Error::is_timeout(self)
    }
}

/// What was wrong with the server's certificate, when `error` is (or wraps)
/// a TLS handshake that rejected it.
pub(crate) fn certificate_rejection(
    error: &(dyn std::error::Error + 'static),
) -> Option<&'static str> {
    use rustls::CertificateError as C;

    let mut next = Some(error);
    while let Some(current) = next {
        // An `io::Error` hides the error it wraps from `source()` (and may
        // wrap another `io::Error`): unwrap them by hand.
        let mut unwrapped = current;
        while let Some(inner) = unwrapped
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            unwrapped = inner;
        }
        if let Some(rustls::Error::InvalidCertificate(problem)) =
            unwrapped.downcast_ref::<rustls::Error>()
        {
            return Some(match problem {
                C::UnknownIssuer => {
                    "the server's certificate is not trusted: unknown issuer (self-signed, or \
                     signed by a CA this client does not trust)"
                }
                C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired",
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet (check the clocks)"
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the server's certificate is not valid for this host name"
                }
                C::Revoked => "the server's certificate was revoked",
                C::BadSignature => "the server's certificate has a bad signature",
                _ => "the server's certificate was rejected",
            });
        }
        next = current.source();
    }
    None
}

impl Hop for &reqwest::Client {
    type Error = reqwest::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + '_ {
        self.execute(request)
    }

    /// The executor's requests are the generated operations', made by
    /// `reqwest`'s request builder: their extensions (crate-private, out of
    /// reach of a copy made here) hold at most a timeout, which
    /// [`spare_copy`] carries.
    fn spare(request: &reqwest::Request) -> Option<reqwest::Request> {
        spare_copy(request)
    }
}

/// The rest of a middleware stack, and the extensions every attempt of the
/// request carries down it.
struct Stack<'a> {
    next: reqwest_middleware::Next<'a>,
    extensions: &'a mut Extensions,
}

impl Hop for Stack<'_> {
    type Error = reqwest_middleware::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + '_ {
        self.next.clone().run(request, self.extensions)
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for TransportPolicy {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // A layer above that sends the request again shares its deadline.
        let started = extensions.get::<OperationStarted>().map(|s| s.0);
        // A request of the stack belongs to no generated operation, and
        // nobody reads its facts.
        let span = self.span(None, &request);
        let hop = Stack { next, extensions };
        if unobserved(&span) {
            self.attempts(request, hop, None, started, span, drop).await
        } else {
            self.attempts(request, hop, None, started, span.clone(), drop)
                .instrument(span)
                .await
        }
    }
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

impl TransportPolicy {
    /// The span of one operation: `operation` is the generated operation
    /// the request belongs to (its `operation_id`), or `None` for a request
    /// of no generated operation (named by its path). Whoever runs
    /// [`attempts`](Self::attempts) enters it while polling, unless
    /// [`unobserved`].
    pub(crate) fn span(
        &self,
        operation: Option<&'static str>,
        request: &reqwest::Request,
    ) -> tracing::Span {
        tracing::info_span!(
            "refresh_sdk.operation",
            service = self.service.map_or("http", Service::name),
            operation = operation.unwrap_or_else(|| request.url().path()),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        )
    }

    /// Sends `request` through `hop`, again while the policy allows, records
    /// the outcome on `span` and hands what was learned on the way to
    /// `finish`. `operation` (see [`span`](Self::span)) picks the retry rule;
    /// the deadline runs from `started`, or from now. One future, so that the
    /// executor boxes it as it is: the operation id, the deadline's start and
    /// the facts' destination are arguments, not an extensions map or an
    /// outer future.
    pub(crate) async fn attempts<H: Hop>(
        &self,
        mut request: reqwest::Request,
        mut hop: H,
        operation: Option<&'static str>,
        started: Option<Instant>,
        span: tracing::Span,
        finish: impl FnOnce(CallFacts) + Send,
    ) -> Result<reqwest::Response, H::Error> {
        let clock = match started {
            Some(started) => Deadline::starting_at(started, self.retry.deadline),
            None => Deadline::starting_now(self.retry.deadline),
        };
        let mut facts = CallFacts::default();
        let method = request.method().clone();
        let mut attempt = 0u32;
        let result = loop {
            attempt = attempt.saturating_add(1);
            // A copy is kept for the next attempt while one may follow; a
            // streaming body cannot be copied, so it gets one attempt.
            let mut spare = if attempt < self.retry.max_attempts {
                H::spare(&request)
            } else {
                None
            };
            let attempt_started = Instant::now();
            let timeout = clock.attempt_timeout(attempt_started, self.attempt_timeout);
            if timeout != self.client_timeout {
                *request.timeout_mut() = timeout;
            }
            facts.attempts = attempt;
            // The path alone (a query may hold secrets), copied only when
            // an attempt event will be recorded.
            let request_path =
                tracing::enabled!(tracing::Level::DEBUG).then(|| request.url().path().to_owned());
            // Times and the path are read inside the event macros, which
            // evaluate their fields only when something records the event.
            macro_rules! attempt_event {
                ($($field:tt)*) => {
                    tracing::debug!(
                        method = %method,
                        path = request_path.as_deref(),
                        attempt,
                        elapsed_ms = millis(attempt_started.elapsed()),
                        $($field)*
                    )
                };
            }
            let result = hop.send(request).await;
            match result {
                Err(err) => {
                    attempt_event!(
                        timeout = err.is_timeout(),
                        connect = err.is_connect(),
                        "attempt failed without a response"
                    );
                    // What an earlier attempt answered does not describe
                    // this failure: the error must not read "HTTP 429" when
                    // the last attempt never reached the server.
                    facts.status = None;
                    facts.retry_after = None;
                    if err.is_timeout() && clock.has_passed() {
                        facts.deadline_exceeded = true;
                    }
                    // Only a failed connection is retried: the request was
                    // not sent. A timeout or a reset after sending may have
                    // left the server working on it.
                    let unchangeable = err.rejects_certificate();
                    if let Some(again) = spare.take().filter(|_| err.is_connect() && !unchangeable)
                    {
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
                    attempt_event!(status = status.as_u16(), "attempt answered");
                    facts.status = Some(status);
                    facts.retry_after = retry_after;
                    let retryable = retries_status(self.service, operation, &method, status);
                    if let Some(again) = spare.take().filter(|_| retryable) {
                        let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
                        let server_wait_ok =
                            retry_after.is_none_or(|wait| wait <= LONGEST_SERVER_WAIT);
                        if server_wait_ok && clock.allows_wait(delay) {
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
                        if clock.is_bounded() && !clock.allows_wait(delay) {
                            facts.deadline_exceeded = true;
                        }
                    }
                    if self.passes_as_is(&response) {
                        break Ok(response);
                    }
                    break self
                        .buffer(response, &mut facts)
                        .await
                        .map_err(H::Error::from);
                }
            }
        };
        // Recorded once, at the end: a formatter appends every recording,
        // so per-attempt values go on the attempts' events instead.
        let elapsed_ms = millis(clock.elapsed());
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        if !unobserved(&span) {
            span.record("attempts", attempt);
            span.record("elapsed_ms", elapsed_ms);
            if let Some(status) = status {
                span.record("status", status);
            }
        }
        // Inside the span: this future runs entered in it whenever anything
        // can see it (see `span`).
        tracing::trace!(attempts = attempt, status, elapsed_ms, "operation finished");
        finish(facts);
        result
    }

    /// Whether a response can go on unread: a success of known length within
    /// the cap (the HTTP stack stops reading at the declared length, and
    /// reqwest leaves the length unknown when it decompresses, so a reader
    /// stays under the cap), or any success when successes are not capped.
    /// Only error bodies are needed in the facts; this spares the common
    /// case a copy of the response.
    fn passes_as_is(&self, response: &reqwest::Response) -> bool {
        let cap = self.max_response_bytes;
        response.status().is_success()
            && (!self.cap_successes
                || response
                    .content_length()
                    .is_some_and(|len| len <= u64::try_from(cap).unwrap_or(u64::MAX)))
    }

    /// Reads the body up to the cap into the facts, for lenient decoding of
    /// error bodies, and hands on a response that holds it, so that nothing
    /// after this reads an unbounded body.
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

/// A copy of `request` for another attempt, or `None` when its body streams
/// (it cannot be sent twice): what `reqwest::Request::try_clone` makes of a
/// request whose extensions hold nothing but a timeout, without the
/// extensions map `try_clone` allocates for the copy's timeout and then
/// replaces by a copy of the request's own (0.5k–0.7k instructions of the
/// copy's 2.1k per call, by callgrind).
fn spare_copy(request: &reqwest::Request) -> Option<reqwest::Request> {
    let body = match request.body() {
        Some(body) => Some(reqwest::Body::from(Bytes::copy_from_slice(
            body.as_bytes()?,
        ))),
        None => None,
    };
    let mut copy = reqwest::Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    *copy.body_mut() = body;
    Some(copy)
}

/// The longest a server's `Retry-After` is waited for inside one operation,
/// whatever its deadline: a longer wait (a deadline of `Duration::MAX` and an
/// answer of `Retry-After: 9999999999`) would stall the caller, and every
/// caller waiting on the same token renewal, for as long as the server says.
/// The error carries the wait instead.
pub(crate) const LONGEST_SERVER_WAIT: Duration = Duration::from_secs(5 * 60);

/// Whether a response with `status` to this request is sent again (see
/// [`RetryPolicy`]): 429 and 503 say the request was not processed, so every
/// request is; 502 and 504 come from a gateway that may have passed it on, so
/// only a request that does no harm when repeated is.
fn retries_status(
    service: Option<Service>,
    operation: Option<&str>,
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
fn repeatable_operation(service: Option<Service>, operation: Option<&str>) -> bool {
    matches!(
        (service, operation),
        (Some(Service::Vcf), Some("refresh_access_token"))
    )
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
        Deadline::starting_at(Instant::now(), budget)
    }

    fn starting_at(started: Instant, budget: Duration) -> Deadline {
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
/// many for a `u64` saturate; a date counts from the response's `Date` (from
/// our clock when it has none or an unreadable one), and one in the past is
/// no wait; a negative, empty, non-ASCII or otherwise malformed value is
/// ignored.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    // The date is on the server's clock, not ours: measured from the
    // response's own `Date` when it has one, a server whose clock is off by
    // an hour still gets the wait it asked for.
    let now = headers
        .get(DATE)
        .and_then(|date| date.to_str().ok())
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .unwrap_or_else(SystemTime::now);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether nothing can see `span`: no subscriber enabled it, and tracing's
/// `log` bridge will not report it either. The bridge (tracing's `log`
/// feature) reports a span only while no subscriber has ever been set, and
/// only when `log`'s maximum level admits the span's level, which it checks
/// on every creation, record, entry and exit: when it does not admit it now,
/// the span's creation went unreported too. Entering it on every poll and
/// recording its fields would then only cost time.
pub(crate) fn unobserved(span: &tracing::Span) -> bool {
    span.is_disabled()
        && (span.is_none() || tracing::dispatcher::has_been_set() || !log_admits(span.metadata()))
}

/// Whether `log`'s maximum level admits a span of this metadata's level.
fn log_admits(metadata: Option<&'static tracing::Metadata<'static>>) -> bool {
    let Some(metadata) = metadata else {
        return false;
    };
    let level = match *metadata.level() {
        tracing::Level::ERROR => log::LevelFilter::Error,
        tracing::Level::WARN => log::LevelFilter::Warn,
        tracing::Level::INFO => log::LevelFilter::Info,
        tracing::Level::DEBUG => log::LevelFilter::Debug,
        tracing::Level::TRACE => log::LevelFilter::Trace,
    };
    level <= log::max_level()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spare_copy_is_the_request_and_a_streaming_body_has_none() {
        let url = reqwest::Url::parse("https://example.com/v1/tokens?x=1").expect("a URL");
        let mut request = reqwest::Request::new(reqwest::Method::PATCH, url);
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *request.version_mut() = reqwest::Version::HTTP_2;
        *request.timeout_mut() = Some(Duration::from_secs(3));
        *request.body_mut() = Some(reqwest::Body::from(r#"{"a":1}"#));
        let copy = spare_copy(&request).expect("a body of bytes is copied");
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.url(), request.url());
        assert_eq!(copy.headers(), request.headers());
        assert_eq!(copy.version(), reqwest::Version::HTTP_2);
        assert_eq!(copy.timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(
            copy.body().and_then(reqwest::Body::as_bytes),
            Some(&br#"{"a":1}"#[..])
        );

        *request.body_mut() = None;
        *request.timeout_mut() = None;
        let copy = spare_copy(&request).expect("no body is copied");
        assert!(copy.body().is_none());
        assert_eq!(copy.timeout(), None);

        *request.body_mut() = Some(reqwest::Body::wrap(String::from("streamed")));
        assert!(spare_copy(&request).is_none());
        assert!(request.try_clone().is_none(), "as reqwest's own copy");
    }

    #[test]
    fn the_span_is_observed_while_the_log_bridge_could_report_it() {
        let span = tracing::info_span!("refresh_sdk.operation");
        if tracing::dispatcher::has_been_set() {
            // Another test of this process set a subscriber: tracing's
            // bridge to `log` is off for good, and a disabled span unseen.
            assert!(span.is_disabled() == unobserved(&span));
            return;
        }
        assert!(span.is_disabled(), "no subscriber");
        log::set_max_level(log::LevelFilter::Off);
        assert!(unobserved(&span));
        log::set_max_level(log::LevelFilter::Warn);
        assert!(unobserved(&span), "an info span is below warn");
        log::set_max_level(log::LevelFilter::Info);
        assert!(!unobserved(&span), "the bridge could report it");
        log::set_max_level(log::LevelFilter::Trace);
        assert!(!unobserved(&span));
        log::set_max_level(log::LevelFilter::Off);
        assert!(unobserved(&tracing::Span::none()));
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
    fn a_retry_after_date_counts_from_the_servers_date_not_our_clock() {
        let header = |value: &str| HeaderValue::from_str(value).expect("header value");
        // A server whose clock is 31 years behind ours asks for 90 s.
        let mut headers = HeaderMap::new();
        headers.insert(DATE, header("Sun, 06 Nov 1994 08:49:37 GMT"));
        headers.insert(RETRY_AFTER, header("Sun, 06 Nov 1994 08:51:07 GMT"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(90)));
        // One far ahead of ours asks for no wait at all.
        headers.insert(DATE, header("Fri, 31 Dec 9999 23:59:59 GMT"));
        headers.insert(RETRY_AFTER, header("Fri, 31 Dec 9999 23:59:59 GMT"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        // An unreadable `Date` is as none: our clock, so the 1994 date is past.
        headers.insert(DATE, header("yesterday"));
        headers.insert(RETRY_AFTER, header("Sun, 06 Nov 1994 08:51:07 GMT"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
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
            retries_status(Some(Service::Vcf), Some(operation), &method, status(code))
        };
        // Statuses that say the request was not processed: everything.
        for code in [429, 503] {
            assert!(vcf("create_token", Method::POST, code), "{code}");
            assert!(
                retries_status(
                    Some(Service::F5Xc),
                    Some("refresh_token"),
                    &Method::POST,
                    status(code)
                ),
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
                !retries_status(
                    Some(Service::F5Xc),
                    Some("refresh_token"),
                    &Method::POST,
                    status(code)
                ),
                "{code}"
            );
            // The exception is VCF's operation, not any service's.
            assert!(
                !retries_status(
                    Some(Service::F5Xc),
                    Some("refresh_access_token"),
                    &Method::PATCH,
                    status(code)
                ),
                "{code}"
            );
        }
        // Requests of no generated operation (the API client's): by method.
        for service in [Some(Service::Vcf), None] {
            assert!(retries_status(service, None, &Method::GET, status(502)));
            assert!(retries_status(service, None, &Method::POST, status(503)));
            assert!(!retries_status(service, None, &Method::POST, status(504)));
            assert!(!retries_status(service, None, &Method::PATCH, status(502)));
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
