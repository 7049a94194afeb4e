//! How requests are sent: the transport options, one `reqwest::Client` per
//! configured service, and the executor that runs every generated operation
//! through the SDK's [`TransportPolicy`].

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::pin::pin;
use std::sync::Once;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result, Service, VendorDetail};
use crate::middleware::TransportPolicy;
pub(crate) use crate::middleware::policy::CallFacts;
use crate::middleware::policy::unobserved;

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
/// (such as `Duration::MAX`) means no deadline; a `Retry-After` longer than
/// 5 minutes is never waited for, deadline or not (such as
/// `Retry-After: 18446744073709551615`): the error carries it. A
/// `Retry-After` date counts from the response's `Date`, so a server whose
/// clock differs from ours still gets the wait it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) deadline: Duration,
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

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
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
    /// `None` until set, here or by the environment (`from_env`): a later
    /// [`VcfConfig::transport`](crate::VcfConfig::transport) keeps what the
    /// environment said unless these options say otherwise.
    pub(crate) allow_unverified_tls: Option<bool>,
    pub(crate) allow_insecure_http: Option<bool>,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            connect_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            retry: RetryPolicy::default(),
            ca_bundle_pem: None,
            allow_unverified_tls: None,
            allow_insecure_http: None,
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
            .field(
                "allow_unverified_tls",
                &self.allow_unverified_tls.unwrap_or(false),
            )
            .field(
                "allow_insecure_http",
                &self.allow_insecure_http.unwrap_or(false),
            )
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
        self.allow_unverified_tls = Some(allow);
        self
    }

    /// Allow plain `http://` to a host that is not loopback. Without it a
    /// client refuses such an address before sending anything: an API token
    /// or a password would cross the network in clear text. Loopback
    /// (`localhost`, `127.0.0.0/8`, `::1`: sandboxes and tests) needs no
    /// opt-in. Warned about once.
    ///
    /// ```
    /// use refresh_sdk::{TransportOptions, VcfClient, VcfConfig};
    ///
    /// let config = VcfConfig::new("http://sddc-manager.lab.example")?;
    /// assert!(VcfClient::new(config.clone()).is_err());
    /// let config = config.transport(TransportOptions::default().allow_insecure_http(true));
    /// assert!(VcfClient::new(config).is_ok());
    /// # Ok::<(), refresh_sdk::Error>(())
    /// ```
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = Some(allow);
        self
    }

    /// These options, with the settings they leave unset (the TLS and
    /// plain-HTTP permissions, the CA bundle) taken from `base`: how a
    /// configuration read from the environment takes new options without
    /// losing what the environment said.
    pub(crate) fn over(self, base: &TransportOptions) -> TransportOptions {
        TransportOptions {
            ca_bundle_pem: self.ca_bundle_pem.or_else(|| base.ca_bundle_pem.clone()),
            allow_unverified_tls: self.allow_unverified_tls.or(base.allow_unverified_tls),
            allow_insecure_http: self.allow_insecure_http.or(base.allow_insecure_http),
            ..self
        }
    }
}

static INSECURE_HTTP_WARNING: Once = Once::new();

/// Refuses plain `http://` to a host other than loopback unless `options`
/// allow it; checked when a client is built, so nothing is ever sent.
pub(crate) fn check_scheme(
    service: Service,
    base_url: &str,
    options: &TransportOptions,
) -> Result<()> {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return Err(Error::config("the address is not a valid URL").for_service(service));
    };
    if url.scheme() != "http" || is_loopback(&url) {
        return Ok(());
    }
    if options.allow_insecure_http == Some(true) {
        INSECURE_HTTP_WARNING.call_once(|| {
            tracing::warn!(
                service = service.name(),
                "plain http:// to a host that is not loopback (allow_insecure_http): \
                 credentials and tokens cross the network in clear text"
            );
        });
        return Ok(());
    }
    let variable = match service {
        Service::Vcf => "VCF_ALLOW_INSECURE_HTTP",
        Service::F5Xc => "VOLT_ALLOW_INSECURE_HTTP",
    };
    Err(Error::config(format!(
        "the address uses plain http:// for a host that is not loopback, which would send \
         credentials in clear text; use https://, or set {variable}=true to allow it"
    ))
    .for_service(service))
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // The URL parser has already turned `127.1` and the like into dotted
    // quads, and writes IPv6 hosts in brackets.
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    if options.allow_unverified_tls == Some(true) {
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

/// The side channel's state on this thread: whether a facade operation is
/// being polled here, and whether its executor has handed over its facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// No facade operation is being polled on this thread: facts published
    /// now (a caller of the generated client's `raw()`) have no reader.
    Closed,
    /// A facade operation is being polled; its executor has not finished.
    Open,
    /// Its executor finished in this poll, and its facts are in `FACTS`.
    Published,
}

thread_local! {
    // Plain thread-locals, not a task-local scope: the executor's future is
    // polled only inside the facade operation's poll, so the facts it
    // publishes as it completes are taken back in that same poll, on the
    // same thread, before any other task runs here. Opening the channel for
    // a poll is two writes of a byte, where a task-local scope moves its
    // value in and out on every poll.
    static CHANNEL: Cell<Channel> = const { Cell::new(Channel::Closed) };
    static FACTS: Cell<Option<CallFacts>> = const { Cell::new(None) };
}

/// The channel, open for one poll of a facade operation; closing it takes
/// the facts its executor published in that poll.
struct Listening<'a> {
    /// The state before this poll, restored after it.
    outer: Channel,
    /// Facts another operation published and has not taken yet: only when
    /// this poll runs inside that one's (a subscriber blocking on an SDK
    /// call from within a span's callback), kept aside for it.
    stash: Option<CallFacts>,
    facts: &'a mut Option<CallFacts>,
}

impl<'a> Listening<'a> {
    fn open(facts: &'a mut Option<CallFacts>) -> Listening<'a> {
        let outer = CHANNEL.replace(Channel::Open);
        let stash = if outer == Channel::Published {
            take_facts()
        } else {
            None
        };
        Listening {
            outer,
            stash,
            facts,
        }
    }
}

impl Drop for Listening<'_> {
    // Also when the poll panics: the channel is never left open, and
    // published facts never stay behind for another operation to read.
    fn drop(&mut self) {
        if CHANNEL.replace(self.outer) == Channel::Published
            && let Some(facts) = take_facts()
        {
            *self.facts = Some(facts);
        }
        if let Some(stash) = self.stash.take() {
            let _ = FACTS.try_with(|slot| slot.set(Some(stash)));
        }
    }
}

fn take_facts() -> Option<CallFacts> {
    // Fails only while the thread's locals are being destroyed.
    FACTS.try_with(Cell::take).ok().flatten()
}

/// Runs one facade operation with the side channel open for each of its
/// polls, and returns the facts its executor published, if any.
pub(crate) async fn observe<F: Future>(operation: F) -> (F::Output, CallFacts) {
    let mut operation = pin!(operation);
    let mut facts = None;
    let output = std::future::poll_fn(|cx| {
        let _listening = Listening::open(&mut facts);
        operation.as_mut().poll(cx)
    })
    .await;
    (output, facts.unwrap_or_default())
}

/// Hands the facts to the facade operation being polled on this thread, if
/// any: the executor's future is polled only inside its operation's poll,
/// so that is the operation this request belongs to. A caller of the
/// generated client's `raw()` has none, and the facts are dropped.
fn publish(facts: CallFacts) {
    if CHANNEL.get() == Channel::Open && FACTS.try_with(|slot| slot.set(Some(facts))).is_ok() {
        CHANNEL.set(Channel::Published);
    }
}

/// The executor given to both generated clients: the SDK's
/// [`TransportPolicy`] with the client as its next hop, its facts handed to
/// the facade operation through the thread-local side channel (the `Exec`
/// signature returns only a `reqwest` result).
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    policy: TransportPolicy,
}

impl Transport {
    /// The executor for a client built by [`build_http_client`] with the
    /// same `options`.
    pub(crate) fn new(service: Service, options: &TransportOptions) -> Transport {
        Transport {
            policy: TransportPolicy::for_service(service, options),
        }
    }

    /// The policy, for other requests to the same service (VCF's API client).
    #[cfg(feature = "vcf")]
    pub(crate) fn policy(&self) -> &TransportPolicy {
        &self.policy
    }

    fn start<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation: &'static str,
    ) -> ExecFuture<'a> {
        // The policy's future, boxed as it is (the `Exec` signature asks for
        // a box): the span is made here, and the facts go to the side
        // channel when the operation is done.
        let operation = Some(operation);
        let span = self.policy.span(operation, &request);
        if unobserved(&span) {
            Box::pin(
                self.policy
                    .attempts(request, client, operation, None, span, publish),
            )
        } else {
            Box::pin(
                self.policy
                    .attempts(request, client, operation, None, span.clone(), publish)
                    .instrument(span),
            )
        }
    }
}

/// The `reqwest::Client`'s own timeout: the attempt timeout, unless it is too
/// large to represent (then none, as the policy reads it).
pub(crate) fn client_timeout(attempt_timeout: Duration) -> Option<Duration> {
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
    let mut tls_rejected = false;
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
                let certificate = crate::middleware::policy::certificate_rejection(&err);
                let message = if let Some(problem) = certificate {
                    tls_rejected = true;
                    problem.to_owned()
                } else if facts.deadline_exceeded {
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
    let hint = if tls_rejected {
        TLS_HINT
    } else {
        hint(service, operation, kind)
    };
    error
        .with_status(status)
        .with_retry_after(facts.retry_after)
        .with_attempts(facts.attempts)
        .at(service, operation)
        .with_hint(hint)
}

/// What to do about a server certificate the client rejected.
pub(crate) const TLS_HINT: &str = "Trust the CA that signed the server's certificate \
     (TransportOptions::ca_bundle_file); for a lab only, allow_unverified_tls";

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
            "Check VCF_SDDC_MANAGER_USERNAME and VCF_SDDC_MANAGER_PASSWORD (or its _FILE); SDDC Manager locks an account after 3 failed logins"
        }
        (Service::Vcf, "create_token", ErrorKind::NotFound) => {
            "No token API at this address: check that VCF_SDDC_MANAGER_HOST names the SDDC Manager itself, without a path"
        }
        (
            Service::Vcf,
            "refresh_access_token" | "invalidate_refresh_token",
            ErrorKind::NotFound,
        ) => "Create a new token pair (log in again)",
        (Service::Vcf, _, ErrorKind::NotFound) => "Check VCF_SDDC_MANAGER_HOST and the path",
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

    /// Polls `future` once, outside any runtime.
    fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> std::task::Poll<F::Output> {
        future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    /// Pending once, then ready: another poll of the operation.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|_| {
            if std::mem::replace(&mut yielded, true) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    fn facts(attempts: u32) -> CallFacts {
        CallFacts {
            attempts,
            ..CallFacts::default()
        }
    }

    /// A generated operation as the side channel sees it: `polls` polls,
    /// its executor finishing in the first, the rest reading the body.
    async fn operation(attempts: Option<u32>, polls: u32) -> Option<u32> {
        if let Some(attempts) = attempts {
            publish(facts(attempts));
        }
        for _ in 1..polls {
            yield_once().await;
        }
        attempts
    }

    fn channel_is_closed_and_empty() -> bool {
        CHANNEL.get() == Channel::Closed && take_facts().is_none()
    }

    #[test]
    fn facts_published_outside_a_facade_operation_are_never_read() {
        // A `raw()` call: nobody listens, and the facts are dropped at once.
        publish(facts(7));
        assert!(channel_is_closed_and_empty());
        let mut observed = pin!(observe(operation(None, 2)));
        assert!(poll_once(observed.as_mut()).is_pending());
        // Another `raw()` call, between two polls of a facade operation.
        publish(facts(8));
        let std::task::Poll::Ready((output, facts)) = poll_once(observed.as_mut()) else {
            panic!("the operation finishes in its second poll");
        };
        assert_eq!(output, None);
        assert_eq!(facts.attempts, 0, "no facts of this operation's own");
        assert!(channel_is_closed_and_empty());
    }

    #[test]
    fn interleaved_operations_on_one_thread_each_get_their_own_facts() {
        let mut first = pin!(observe(operation(Some(1), 3)));
        let mut second = pin!(observe(async {
            yield_once().await;
            operation(Some(2), 1).await
        }));
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert!(poll_once(first.as_mut()).is_pending());
        let std::task::Poll::Ready((Some(2), facts)) = poll_once(second.as_mut()) else {
            panic!("the second operation finishes in its second poll");
        };
        assert_eq!(facts.attempts, 2);
        let std::task::Poll::Ready((Some(1), facts)) = poll_once(first.as_mut()) else {
            panic!("the first operation finishes in its third poll");
        };
        assert_eq!(facts.attempts, 1);
        assert!(channel_is_closed_and_empty());
    }

    #[test]
    fn an_operation_polled_inside_another_leaves_it_its_facts() {
        // As when a subscriber's callback blocks on an SDK call after the
        // outer operation's executor published, and before it is taken.
        let mut outer = pin!(observe(async {
            publish(facts(1));
            let mut inner = pin!(observe(operation(Some(2), 2)));
            assert!(poll_once(inner.as_mut()).is_pending());
            let std::task::Poll::Ready((_, facts)) = poll_once(inner.as_mut()) else {
                panic!("the inner operation finishes in its second poll");
            };
            assert_eq!(facts.attempts, 2);
            // A `raw()` call in the same place does not replace them.
            let mut raw = pin!(operation(Some(3), 1));
            assert!(poll_once(raw.as_mut()).is_ready());
        }));
        let std::task::Poll::Ready(((), facts)) = poll_once(outer.as_mut()) else {
            panic!("the outer operation finishes in one poll");
        };
        assert_eq!(facts.attempts, 1);
        assert!(channel_is_closed_and_empty());
    }

    #[test]
    fn a_poll_that_panics_closes_the_channel_and_drops_the_facts() {
        let panicked = std::panic::catch_unwind(|| {
            let mut observed = pin!(observe(async {
                publish(facts(1));
                panic!("a panicking operation");
            }));
            let _ = poll_once(observed.as_mut());
        });
        assert!(panicked.is_err());
        assert!(channel_is_closed_and_empty());
        let mut observed = pin!(observe(operation(None, 1)));
        let std::task::Poll::Ready((_, facts)) = poll_once(observed.as_mut()) else {
            panic!("the operation finishes in one poll");
        };
        assert_eq!(facts.attempts, 0);
    }

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        let options = TransportOptions::default();
        for local in [
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://127.0.0.1",
            "http://127.8.9.10:1",
            "http://[::1]:9000",
            "https://sddc.example.com",
        ] {
            assert!(
                check_scheme(Service::Vcf, local, &options).is_ok(),
                "{local}"
            );
        }
        for remote in [
            "http://sddc.example.com",
            "http://10.0.0.5",
            "http://localhost.example.com",
            "http://[::2]",
            "http://128.0.0.1",
        ] {
            let err = check_scheme(Service::Vcf, remote, &options).expect_err(remote);
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("VCF_ALLOW_INSECURE_HTTP"), "{err}");
            let err = check_scheme(Service::F5Xc, remote, &options).expect_err(remote);
            assert!(
                err.to_string().contains("VOLT_ALLOW_INSECURE_HTTP"),
                "{err}"
            );
            let allowed = options.clone().allow_insecure_http(true);
            assert!(
                check_scheme(Service::Vcf, remote, &allowed).is_ok(),
                "{remote}"
            );
        }
    }

    #[test]
    fn options_keep_the_settings_they_leave_unset_from_the_base() {
        let from_env = TransportOptions::default()
            .allow_unverified_tls(true)
            .allow_insecure_http(true)
            .ca_bundle_pem("pem");
        let merged = TransportOptions::default()
            .attempt_timeout(Duration::from_secs(5))
            .over(&from_env);
        assert_eq!(merged.allow_unverified_tls, Some(true));
        assert_eq!(merged.allow_insecure_http, Some(true));
        assert_eq!(merged.ca_bundle_pem.as_deref(), Some(&b"pem"[..]));
        assert_eq!(merged.attempt_timeout, Duration::from_secs(5));
        let overridden = TransportOptions::default()
            .allow_unverified_tls(false)
            .over(&from_env);
        assert_eq!(overridden.allow_unverified_tls, Some(false));
    }

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
}
