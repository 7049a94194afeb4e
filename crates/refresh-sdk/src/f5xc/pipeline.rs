//! [`PipelineTokenSource`]: one F5 XC pipeline's tokens for a whole service,
//! with at most one `refresh_token` POST at a time.
//!
//! How it behaves, in the order a reader meets it:
//!
//! - **Coalescing**: every caller that needs a token while a POST is in
//!   flight waits for that POST and gets its outcome. The POST runs on a task
//!   the source spawns, never on a caller's future: a caller cancelled by its
//!   own timeout cancels only its wait, and the POST it started goes on for
//!   the callers after it. A token no caller received (every one waiting
//!   gave up) goes to the next caller, so a POST the server may have acted on
//!   is not sent again because its callers gave up.
//! - **Reuse** is opt-in, since F5 XC does not say how long a token lives: by
//!   default a token goes only to the callers that waited for its POST.
//!   [`reuse_for`](PipelineTokenSource::reuse_for) serves it from the cache
//!   for that long after it arrived, and from the last quarter of that on the
//!   first read also starts a POST in the background while every read keeps
//!   getting the cached token.
//! - **Failures** reach the callers waiting for the POST that failed. Then
//!   the source backs off, with jitter: a refused request (401, 403, 404,
//!   409: any 4xx but 408 and 429) from 1 s doubling to 60 s, anything else
//!   from 250 ms doubling to 4 s, a server's `Retry-After` (up to 60 s) as a
//!   floor. While it backs off,
//!   callers get the cached token if it is within its reuse period, else the
//!   last error at once, and nothing is sent. A failed background renewal
//!   leaves the cached token served until its reuse period ends.
//! - **Time** is tokio's monotonic clock, from the moment a token arrived.
//! - **[`invalidate`](AccessTokenSource::invalidate)** stops serving the
//!   cached token if it is the one the server rejected; the next read POSTs.
//! - **Ownership**: the task holds the source only weakly, and dropping the
//!   last clone aborts a POST in flight.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{F5Client, SERVICE};
use crate::error::{Error, ErrorKind, Result};
use crate::renewal::{Failure, Flight, LONGEST_LIFETIME, Outcome, bump, later, lock, refused};
use crate::source::{AccessToken, AccessTokenSource, TokenFuture};

/// How long a token no caller received is kept for the next caller when
/// reuse is off. Long enough for a caller that timed out to come back, short
/// enough that a token of unknown lifetime is not handed out stale.
const UNCLAIMED_HOLD: Duration = Duration::from_secs(30);

/// What a [`PipelineTokenSource`] has done, for dashboards and tests.
///
/// ```no_run
/// # async fn run(f5: refresh_sdk::F5Client) -> refresh_sdk::Result<()> {
/// use refresh_sdk::{AccessTokenSource, PipelineStats};
///
/// let source = f5.pipeline("my-pipeline");
/// source.access_token().await?;
/// let stats: PipelineStats = source.stats();
/// assert_eq!((stats.requests, stats.waited), (1, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// `refresh_token` POSTs the source started (transport retries inside
    /// one count once).
    pub requests: u64,
    /// POSTs that ended in an error.
    pub failed: u64,
    /// Reads that waited for a POST, cancelled ones included.
    pub waited: u64,
    /// [`invalidate`](AccessTokenSource::invalidate) calls that took effect.
    pub invalidations: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    failed: AtomicU64,
    waited: AtomicU64,
    invalidations: AtomicU64,
}

/// Why a token is kept after its POST.
enum Kept {
    /// Reuse is on: served to every read, renewed in the background from
    /// `renew_at`.
    Reused { renew_at: Instant },
    /// Reuse is off and no caller received it: for the next caller only.
    Unclaimed,
}

struct Cached {
    token: AccessToken,
    /// Served until then, not after.
    serve_until: Instant,
    kept: Kept,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    flight: Option<Flight>,
    failure: Option<Failure>,
    flights: u64,
}

impl State {
    fn in_flight(&self) -> bool {
        self.flight.as_ref().is_some_and(|f| !f.is_dead())
    }
}

struct Inner {
    client: F5Client,
    product_name: String,
    /// Zero: no reuse.
    reuse: Duration,
    state: Mutex<State>,
    counters: Counters,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No POST outlives the last clone of its source.
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = state.flight.take() {
            flight.task.abort();
        }
    }
}

/// One pipeline's tokens for a whole service, as an [`AccessTokenSource`]
/// (made by [`F5Client::pipeline`]).
///
/// - At most one `refresh_token` POST is in flight per source (clones
///   included); concurrent callers share its outcome, so 50 callers at once
///   send one POST.
/// - The POST runs on a task the source owns: a caller's timeout cancels
///   only its own wait, and a later caller gets the token of the POST
///   already sent (one that no caller received is kept 30 s for the next
///   caller) instead of sending another.
/// - By default a token is not reused once its POST has answered its
///   callers: F5 XC does not document how long a token lives. Opt in with
///   [`reuse_for`](Self::reuse_for); the token is then renewed in the
///   background before that period ends, and still served while a renewal
///   fails.
/// - After a failed POST the source backs off (250 ms doubling to 4 s; for
///   a refused request, any 4xx but 408 and 429, 1 s doubling to 60 s; at
///   least a 429's `Retry-After`, up to 60 s) and callers get the last error
///   at once meanwhile.
/// - [`invalidate`](AccessTokenSource::invalidate) with a token the server
///   rejected stops serving it.
///
/// Cloning is cheap and clones share everything. The source needs a tokio
/// runtime; dropping its last clone aborts a POST in flight.
///
/// ```no_run
/// # async fn run() -> refresh_sdk::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use refresh_sdk::{AccessTokenSource, ExposeSecret, F5Client};
///
/// let f5 = F5Client::from_env()?;
/// // Each token is served for 10 minutes, renewed in the background after 7.5.
/// let source = f5.pipeline("my-pipeline").reuse_for(Duration::from_secs(600));
/// let token = source.access_token().await?;
/// let bearer = format!("Bearer {}", token.expose_secret());
/// // The pipeline rejected it: the next read sends a POST.
/// source.invalidate(&token);
/// let shared: Arc<dyn AccessTokenSource> = Arc::new(source.clone());
/// # let _ = (bearer, shared);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PipelineTokenSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for PipelineTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (has_token, in_flight) = {
            let state = self.state();
            (state.cached.is_some(), state.in_flight())
        };
        f.debug_struct("PipelineTokenSource")
            .field("client", &self.inner.client)
            .field("product_name", &self.inner.product_name)
            .field("reuse", &self.inner.reuse)
            .field("has_token", &has_token)
            .field("in_flight", &in_flight)
            .field("stats", &self.stats())
            .finish()
    }
}

impl PipelineTokenSource {
    pub(super) fn new(client: F5Client, product_name: String) -> Self {
        PipelineTokenSource::build(client, product_name, Duration::ZERO)
    }

    fn build(client: F5Client, product_name: String, reuse: Duration) -> Self {
        PipelineTokenSource {
            inner: Arc::new(Inner {
                client,
                product_name,
                reuse,
                state: Mutex::new(State::default()),
                counters: Counters::default(),
            }),
        }
    }

    /// Serves each token for `reuse` after it arrived, instead of only to
    /// the callers that waited for it: pick a period shorter than the
    /// pipeline tokens' lifetime. Once a quarter of it is left, the first
    /// read starts a POST in the background and reads keep getting the
    /// cached token meanwhile (and, if that POST fails, until the period
    /// ends). `Duration::ZERO` is the default: no reuse.
    ///
    /// Meant for a source not used yet: one already shared with clones is
    /// rebuilt, without its token.
    ///
    /// ```
    /// # fn run(f5: refresh_sdk::F5Client) {
    /// use std::time::Duration;
    /// let source = f5.pipeline("my-pipeline").reuse_for(Duration::from_secs(5 * 60));
    /// # let _ = source;
    /// # }
    /// ```
    pub fn reuse_for(mut self, reuse: Duration) -> Self {
        let reuse = reuse.min(LONGEST_LIFETIME);
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.reuse = reuse;
                self
            }
            None => PipelineTokenSource::build(
                self.inner.client.clone(),
                self.inner.product_name.clone(),
                reuse,
            ),
        }
    }

    /// What the source has done so far.
    ///
    /// ```
    /// # fn run(f5: refresh_sdk::F5Client) {
    /// let source = f5.pipeline("my-pipeline");
    /// assert_eq!(source.stats(), refresh_sdk::PipelineStats::default());
    /// # }
    /// ```
    pub fn stats(&self) -> PipelineStats {
        let c = &self.inner.counters;
        PipelineStats {
            requests: c.requests.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            waited: c.waited.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// A token: the cached one, else the outcome of the POST in flight (or
    /// of a new one), else the last error while backing off.
    async fn token(&self) -> Result<AccessToken> {
        let (id, mut done) = {
            let mut state = self.state();
            let now = Instant::now();
            if let Some(token) = self.serve(&mut state, now) {
                return Ok(token);
            }
            match &state.flight {
                Some(flight) if !flight.is_dead() => (flight.id, flight.done.clone()),
                _ => {
                    if let Some(failure) = &state.failure
                        && failure.holds(now)
                    {
                        return Err(failure.error.clone());
                    }
                    self.start(&mut state)?
                }
            }
        };
        bump(&self.inner.counters.waited);
        let outcome = match done.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match outcome {
            Some(result) => result,
            None => {
                // The task ended without an outcome (its runtime shut down):
                // forget it, and count it as a failure so the next read
                // starts another after a backoff, not in a loop.
                let error = Error::new(
                    ErrorKind::Transport,
                    "the pipeline token request was abandoned (its tokio runtime shut down)",
                )
                .for_service(SERVICE);
                let mut state = self.state();
                if state.flight.as_ref().is_some_and(|f| f.id == id) {
                    state.flight = None;
                    self.failed(&mut state, &error);
                }
                Err(error)
            }
        }
    }

    /// The cached token if it may be served at `now`; starts a background
    /// renewal when one is due.
    fn serve(&self, state: &mut State, now: Instant) -> Option<AccessToken> {
        let cached = state.cached.as_ref()?;
        if now >= cached.serve_until {
            // Let the secret go now rather than at the next POST.
            state.cached = None;
            return None;
        }
        match cached.kept {
            Kept::Unclaimed => state.cached.take().map(|c| c.token),
            Kept::Reused { renew_at } => {
                let token = cached.token.clone();
                if now >= renew_at
                    && !state.in_flight()
                    && !state.failure.as_ref().is_some_and(|f| f.holds(now))
                {
                    // Nobody waits for it: a failure shows in the next
                    // reads' backoff, not here.
                    let _ = self.start(state);
                }
                Some(token)
            }
        }
    }

    /// Spawns a POST; the caller holds the state lock.
    fn start(&self, state: &mut State) -> Result<(u64, watch::Receiver<Outcome>)> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config(
                "PipelineTokenSource sends its requests on a tokio runtime, and none is running",
            )
            .for_service(SERVICE)
        })?;
        state.flights += 1;
        let id = state.flights;
        let (tx, done) = watch::channel(None);
        let task = runtime.spawn(post(Arc::downgrade(&self.inner), id, tx));
        state.flight = Some(Flight {
            id,
            done: done.clone(),
            task: task.abort_handle(),
        });
        Ok((id, done))
    }

    /// Files what POST `id` ended with, before `done` tells its waiters.
    fn finish(
        &self,
        id: u64,
        result: &Result<AccessToken>,
        received: Instant,
        done: &watch::Sender<Outcome>,
    ) {
        let mut state = self.state();
        if state.flight.as_ref().is_some_and(|f| f.id == id) {
            // Drops the flight's own receiver: those left are callers'.
            state.flight = None;
        }
        match result {
            Ok(token) => {
                state.failure = None;
                let reuse = self.inner.reuse;
                state.cached = if !reuse.is_zero() {
                    Some(Cached {
                        token: token.clone(),
                        serve_until: later(received, reuse),
                        kept: Kept::Reused {
                            renew_at: later(received, reuse - reuse / 4),
                        },
                    })
                } else if done.receiver_count() == 0 {
                    tracing::debug!(
                        "F5 XC pipeline token received after its callers gave up; kept for the next caller"
                    );
                    Some(Cached {
                        token: token.clone(),
                        serve_until: later(received, UNCLAIMED_HOLD),
                        kept: Kept::Unclaimed,
                    })
                } else {
                    None
                };
            }
            Err(error) => self.failed(&mut state, error),
        }
    }

    /// Counts a failed POST and starts its backoff.
    fn failed(&self, state: &mut State, error: &Error) {
        bump(&self.inner.counters.failed);
        // Refused credentials, an unknown pipeline (404), a conflict (409):
        // sent again as it is, the request gets the same answer, so the
        // source asks again on the longer scale, not every few seconds.
        let (failure, wait) = Failure::after(
            state.failure.as_ref(),
            error.clone(),
            refused(error),
            Instant::now(),
        );
        tracing::warn!(
            error = %error,
            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "F5 XC pipeline token request failed"
        );
        state.failure = Some(failure);
    }

    fn invalidate_token(&self, rejected: &AccessToken) {
        let mut state = self.state();
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == rejected.expose_secret())
        {
            state.cached = None;
            bump(&self.inner.counters.invalidations);
            tracing::info!(
                "F5 XC pipeline token rejected by the server; the next read requests another"
            );
        }
    }
}

/// The POST task. It holds the source only weakly, so that dropping the last
/// clone drops the source (and aborts this task).
async fn post(source: Weak<Inner>, id: u64, done: watch::Sender<Outcome>) {
    let (client, product_name) = {
        let Some(inner) = source.upgrade() else {
            return;
        };
        bump(&inner.counters.requests);
        (inner.client.clone(), inner.product_name.clone())
    };
    let result = client
        .refresh_token(&product_name)
        .await
        .map(|token| AccessToken::from(token.into_secret()));
    let received = Instant::now();
    let Some(inner) = source.upgrade() else {
        return;
    };
    PipelineTokenSource { inner }.finish(id, &result, received, &done);
    done.send_replace(Some(result));
}

impl AccessTokenSource for PipelineTokenSource {
    /// A pipeline token: the cached one while reuse allows, else the outcome
    /// of the one POST in flight (started if none is). Cancelling the future
    /// cancels only this caller's wait.
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(self.token())
    }

    /// If `rejected` is the cached token, it is served no more and the next
    /// read sends a POST; a report of any other token does nothing.
    fn invalidate(&self, rejected: &AccessToken) {
        self.invalidate_token(rejected);
    }
}
