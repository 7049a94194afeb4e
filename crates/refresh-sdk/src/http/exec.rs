//! The attempt loop every request of the SDK goes through: the
//! [`TransportPolicy`] (retries, the deadline, `Retry-After`, the size cap and
//! tracing) over a next hop, and the executors that run the generated
//! clients' operations through it.
//!
//! A generated operation returns only its own result, so what the loop
//! learned about a call (attempts, the last status, `Retry-After`, the error
//! body) reaches the facade's error mapping through the executor: each
//! facade operation builds its generated client around a [`Call`] of its own,
//! and reads the facts from it when the operation is done.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tracing::Instrument;

use super::body::{self, Buffered};
use super::cause::cause_of;
use super::client::client_timeout;
use super::options::{RetryPolicy, TransportOptions};
use super::retry::{Deadline, LONGEST_SERVER_WAIT, millis, parse_retry_after, retries_status};
use crate::error::Service;

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
    /// [`build_http_client`](super::client::build_http_client) with the
    /// same `options`: its client already times each attempt out, and its
    /// generated code reads every body, so every body is capped.
    pub(crate) fn for_service(service: Service, options: &TransportOptions) -> TransportPolicy {
        TransportPolicy {
            service: Some(service),
            client_timeout: client_timeout(options.attempt_timeout),
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

/// What the sender of a request knows that the attempt loop cannot tell.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plan {
    /// The request is harmless to repeat whatever its method (see
    /// [`retries_status`]).
    pub(crate) idempotent: bool,
    /// Keep a copy of the request through the last attempt and hand it to
    /// `finish` unused: for a layer above that may send the request once
    /// more ([`BearerAuth`](crate::middleware::BearerAuth), after a 401),
    /// so that it needs no copy of its own.
    pub(crate) keep_spare: bool,
    /// When the operation started, if before this request: its deadline
    /// counts from then.
    pub(crate) started: Option<Instant>,
}

/// Where an attempt goes next: the rest of a middleware stack with the
/// request's extensions (the middleware adapter's), or the client itself
/// (the executors' hop, which needs no extensions).
pub(crate) trait Hop: Send {
    type Error: AttemptFailure + From<reqwest::Error> + Send;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, Self::Error>> + Send + '_;
}

/// What the retry rule asks of a failed attempt.
pub(crate) trait AttemptFailure: std::error::Error + Sized + 'static {
    fn is_connect(&self) -> bool;
    fn is_timeout(&self) -> bool;
    /// A failure that sending again cannot change (a TLS handshake that
    /// failed on the server's certificate, say).
    fn is_permanent(&self) -> bool {
        cause_of(self).is_some_and(|cause| cause.is_permanent())
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

impl Hop for &reqwest::Client {
    type Error = reqwest::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + '_ {
        self.execute(request)
    }
}

/// What the attempt loop learned about one operation, for its error.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallFacts {
    pub(crate) status: Option<StatusCode>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) attempts: u32,
    /// The body of a response that was read here (every error response).
    pub(crate) buffered: Buffered,
    pub(crate) deadline_exceeded: bool,
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

    /// [`attempts`](Self::attempts) for a request of no generated operation
    /// (a middleware stack's, an [`ApiClient`](crate::ApiClient)'s), in its
    /// span when that is observed.
    pub(crate) async fn send_through<H: Hop>(
        &self,
        request: reqwest::Request,
        hop: H,
        plan: Plan,
        finish: impl FnOnce(CallFacts, Option<reqwest::Request>) + Send,
    ) -> Result<reqwest::Response, H::Error> {
        use tracing::Instrument as _;

        let span = self.span(None, &request);
        if unobserved(&span) {
            self.attempts(request, hop, plan, span, finish).await
        } else {
            self.attempts(request, hop, plan, span.clone(), finish)
                .instrument(span)
                .await
        }
    }

    /// Sends `request` through `hop`, again while the policy allows, records
    /// the outcome on `span` and hands what was learned on the way to
    /// `finish`, with the unused copy of the request when `plan` keeps one.
    /// One future, so that the executor boxes it as it is: the plan and the
    /// facts' destination are arguments, not an extensions map or an outer
    /// future.
    pub(crate) async fn attempts<H: Hop>(
        &self,
        mut request: reqwest::Request,
        mut hop: H,
        plan: Plan,
        span: tracing::Span,
        finish: impl FnOnce(CallFacts, Option<reqwest::Request>) + Send,
    ) -> Result<reqwest::Response, H::Error> {
        let clock = match plan.started {
            Some(started) => Deadline::starting_at(started, self.retry.deadline),
            None => Deadline::starting_now(self.retry.deadline),
        };
        let mut facts = CallFacts::default();
        let method = request.method().clone();
        let mut attempt = 0u32;
        let mut spare;
        let result = loop {
            attempt = attempt.saturating_add(1);
            // A copy is kept for the next attempt while one may follow (or
            // for the caller, when the plan says so); a streaming body
            // cannot be copied, so it gets one attempt.
            let may_retry = attempt < self.retry.max_attempts;
            spare = if may_retry || plan.keep_spare {
                body::spare_copy(&request)
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
                    let unchangeable = err.is_permanent();
                    let retry = may_retry && err.is_connect() && !unchangeable;
                    if let Some(again) = spare.take_if(|_| retry) {
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
                        spare = Some(again);
                    }
                    break Err(err);
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = parse_retry_after(response.headers());
                    attempt_event!(status = status.as_u16(), "attempt answered");
                    facts.status = Some(status);
                    facts.retry_after = retry_after;
                    let retry = may_retry && retries_status(&method, plan.idempotent, status);
                    if let Some(again) = spare.take_if(|_| retry) {
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
                        spare = Some(again);
                    }
                    if self.passes_as_is(&response) {
                        break Ok(response);
                    }
                    break match body::buffer(response, self.max_response_bytes).await {
                        Ok((response, buffered)) => {
                            facts.buffered = buffered;
                            Ok(response)
                        }
                        Err(err) => Err(H::Error::from(err)),
                    };
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
        finish(facts, spare.filter(|_| plan.keep_spare));
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

/// The future a generated client's `Exec` hook returns.
pub(crate) type ExecFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>>;

impl TransportPolicy {
    /// The policy's future for one request of a generated operation, boxed
    /// as it is (the `Exec` signature asks for a box), with its span entered
    /// while anything can see it.
    fn exec<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation: &'static str,
        idempotent: bool,
        finish: impl FnOnce(CallFacts, Option<reqwest::Request>) + Send + 'a,
    ) -> ExecFuture<'a> {
        let span = self.span(Some(operation), &request);
        let plan = Plan {
            idempotent,
            ..Plan::default()
        };
        let attempts = self.attempts(request, client, plan, span.clone(), finish);
        if unobserved(&span) {
            Box::pin(attempts)
        } else {
            Box::pin(attempts.instrument(span))
        }
    }
}

/// The executor of a service's long-lived generated client (the one its
/// facade hands out as `raw()`): every request through the policy, by the
/// retry rule of its method; what was learned is dropped, as nobody asks.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    policy: TransportPolicy,
}

impl Transport {
    /// The executor for a client built by
    /// [`build_http_client`](super::client::build_http_client) with the same
    /// `options`.
    pub(crate) fn new(service: Service, options: &TransportOptions) -> Transport {
        Transport {
            policy: TransportPolicy::for_service(service, options),
        }
    }

    /// The policy, for the facade's own operations and other requests to
    /// the same service.
    pub(crate) fn policy(&self) -> &TransportPolicy {
        &self.policy
    }

    /// Sends one request of the operation `info` names.
    pub(crate) fn send<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &progenitor_client::OperationInfo,
    ) -> ExecFuture<'a> {
        self.policy
            .exec(client, request, info.operation_id, false, |_, _| ())
    }
}

/// The executor of one facade operation: its generated client is built
/// around a `Call` of its own, which keeps what the attempt loop learned
/// for the operation's error mapping.
#[derive(Debug)]
pub(crate) struct Call {
    policy: TransportPolicy,
    idempotent: bool,
    facts: Mutex<CallFacts>,
}

impl Call {
    /// A call under `policy`; `idempotent` when the operation is harmless to
    /// repeat whatever its method (the vendor module knows which are).
    pub(crate) fn new(policy: &TransportPolicy, idempotent: bool) -> Arc<Call> {
        Arc::new(Call {
            policy: policy.clone(),
            idempotent,
            facts: Mutex::default(),
        })
    }

    /// What the attempt loop learned, once the operation is done.
    pub(crate) fn facts(&self) -> CallFacts {
        std::mem::take(&mut *self.facts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sends one request of the operation `info` names.
    pub(crate) fn send<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        info: &progenitor_client::OperationInfo,
    ) -> ExecFuture<'a> {
        self.policy.exec(
            client,
            request,
            info.operation_id,
            self.idempotent,
            |facts, _| *self.facts.lock().unwrap_or_else(PoisonError::into_inner) = facts,
        )
    }
}

/// Implements a generated client crate's `Exec` trait (each crate has its
/// own, of the same shape) for the executors above.
#[cfg(any(feature = "f5xc", feature = "vcf"))]
macro_rules! generated_exec {
    ($exec:path) => {
        $crate::http::exec::generated_exec!($exec: $crate::http::exec::Transport, $crate::http::exec::Call);
    };
    ($exec:path: $($executor:ty),+) => {
        $(
            impl $exec for $executor {
                fn exec<'a>(
                    &'a self,
                    client: &'a reqwest::Client,
                    request: reqwest::Request,
                    info: &'a progenitor_client::OperationInfo,
                ) -> $crate::http::exec::ExecFuture<'a> {
                    self.send(client, request, info)
                }
            }
        )+
    };
}
#[cfg(any(feature = "f5xc", feature = "vcf"))]
pub(crate) use generated_exec;

#[cfg(test)]
mod tests {
    use super::*;

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
}
