//! [`VcfSession`], the token lifecycle engine: one valid access token for a
//! whole service, renewed ahead of expiry by a task the session owns.
//!
//! How it behaves, in the order a reader meets it:
//!
//! - **Reads** load the served token without a lock or an allocation. Until
//!   `exp − s` (`s = min(skew, L/4)` for a token of lifetime `L`) it is served
//!   as is; from `exp − ahead` (a quarter of `L` by default, at least `2s`
//!   and at most `L/2`) the first read
//!   also starts a renewal in the background, and every read keeps getting
//!   the cached token meanwhile.
//! - **Renewals** run on a spawned task, never on a caller's future: a caller
//!   cancelled by its own timeout cancels only its wait, and one renewal
//!   serves every caller. A renewal refreshes with the refresh token and logs
//!   in again only when the server refuses that token (404 unknown, or any
//!   other 4xx but 408 and 429) or it is near its end.
//! - **Failures** reach a caller only when no unexpired token exists (static
//!   stability). After a failure the session backs off, with jitter: refused
//!   credentials from 1 s doubling to 60 s, anything else from 250 ms doubling
//!   to 4 s, however many callers ask; while backing off, callers get the
//!   cached token or the last error at once.
//! - **Time**: expiry is tracked on tokio's monotonic clock from the moment a
//!   token is received; the token's lifetime is its `exp − iat` (without
//!   `iat`, `exp` less the response's `Date`), so a server clock that
//!   disagrees with ours does not matter.
//! - **[`invalidate`](VcfSession::invalidate)** stops serving a token the
//!   server rejected and starts one renewal; **[`logout`](VcfSession::logout)**
//!   closes the session for good.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{VcfClient, VcfConfig, VcfCredentials};
use crate::error::{Error, ErrorKind, Result, Service};
use crate::jwt;
use crate::middleware::BearerAuth;
use crate::renewal::{Failure, Flight, LONGEST_LIFETIME, Outcome, bump, later, lock, refused};
use crate::source::{AccessToken, AccessTokenSource, TokenFuture};

/// When [`VcfSession`] renews, and the clock it reads JWT times against.
///
/// ```
/// use std::time::Duration;
/// use refresh_sdk::vcf::SessionOptions;
///
/// let options = SessionOptions::default()
///     .skew(Duration::from_secs(30))
///     .refresh_ahead(Duration::from_secs(10 * 60));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct SessionOptions {
    skew: Duration,
    refresh_ahead: Option<Duration>,
    assumed_access_lifetime: Duration,
    min_lifetime: Duration,
    refresh_token_lifetime: Duration,
    wall_clock: Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            skew: Duration::from_secs(60),
            refresh_ahead: None,
            assumed_access_lifetime: Duration::from_secs(60 * 60),
            min_lifetime: Duration::from_secs(10),
            refresh_token_lifetime: Duration::from_secs(24 * 60 * 60),
            wall_clock: None,
        }
    }
}

impl fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOptions")
            .field("skew", &self.skew)
            .field("refresh_ahead", &self.refresh_ahead)
            .field("assumed_access_lifetime", &self.assumed_access_lifetime)
            .field("min_lifetime", &self.min_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("wall_clock", &self.wall_clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl PartialEq for SessionOptions {
    fn eq(&self, other: &Self) -> bool {
        let same_clock = match (&self.wall_clock, &other.wall_clock) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_clock
            && self.skew == other.skew
            && self.refresh_ahead == other.refresh_ahead
            && self.assumed_access_lifetime == other.assumed_access_lifetime
            && self.min_lifetime == other.min_lifetime
            && self.refresh_token_lifetime == other.refresh_token_lifetime
    }
}

impl Eq for SessionOptions {}

impl SessionOptions {
    /// How long before its expiry a token stops being served without waiting
    /// for a renewal (default 60 s; at most a quarter of the token's
    /// lifetime, so a short-lived token is still served most of its life).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// How long before its expiry a token is renewed in the background while
    /// callers keep being served (default: a quarter of the token's lifetime,
    /// 15 minutes of VCF's 60, and at least twice the skew, so that a short
    /// token is renewed before readers would have to wait). Kept between the
    /// skew and half the lifetime.
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.refresh_ahead = Some(ahead);
        self
    }

    /// The lifetime assumed for an access token that is not a JWT with `exp`
    /// (default 1 hour, as VCF documents).
    pub fn assumed_access_lifetime(mut self, lifetime: Duration) -> Self {
        self.assumed_access_lifetime = lifetime;
        self
    }

    /// How long a token is kept when its claims give it no time left at all,
    /// such as an `exp` already past and no `iat` (default 10 s).
    /// Renewing such a token on every call would only load the server; a
    /// token the server does reject is reported with
    /// [`VcfSession::invalidate`].
    pub fn min_lifetime(mut self, lifetime: Duration) -> Self {
        self.min_lifetime = lifetime;
        self
    }

    /// The lifetime of a refresh token (default 24 hours, as VCF documents);
    /// near its end the session logs in again instead of refreshing.
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// The wall clock a token's `exp` is compared with when it has no `iat`
    /// and its response no readable `Date` (default `SystemTime::now`).
    /// Tests that run on tokio's paused clock give one that moves with it.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use refresh_sdk::vcf::SessionOptions;
    ///
    /// let started = SystemTime::now();
    /// let origin = tokio::time::Instant::now();
    /// let options = SessionOptions::default().wall_clock(move || started + origin.elapsed());
    /// # let _ = options;
    /// ```
    pub fn wall_clock(mut self, now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.wall_clock = Some(Arc::new(now));
        self
    }

    fn now(&self) -> SystemTime {
        match &self.wall_clock {
            Some(clock) => clock(),
            None => SystemTime::now(),
        }
    }

    /// When a token whose renewal was sent at `sent` and received at
    /// `received` expires, on the monotonic clock, and its lifetime.
    ///
    /// With `exp` and `iat`, the lifetime is `exp − iat`, which needs no
    /// agreement between the server's clock and ours, counted from `sent`:
    /// the token cannot be older than the request. An `iat` in whole seconds
    /// (as JWTs have) may be up to a second early, so that second is not
    /// counted. Without `iat`, what `exp` leaves by the server's clock (the
    /// response's `Date`, also in whole seconds, so a second less) counts
    /// from `sent`; without a readable `Date`, what it leaves by our wall
    /// clock counts from `received`. Without `exp`, the assumed lifetime
    /// counts from `sent`. A token left no time at all is kept for the
    /// minimum lifetime.
    fn expiry(
        &self,
        token: &str,
        sent: Instant,
        received: Instant,
        date: Option<&HeaderValue>,
    ) -> (Instant, Duration) {
        let (from, lifetime) = match jwt::claims(token) {
            Some(jwt::TimeClaims {
                exp: Some(exp),
                iat,
                iat_rounded,
            }) => match iat.and_then(|iat| exp.duration_since(iat).ok()) {
                Some(lifetime) if !lifetime.is_zero() => {
                    let second = Duration::from_secs(1);
                    if iat_rounded && lifetime > second {
                        (sent, lifetime - second)
                    } else {
                        (sent, lifetime)
                    }
                }
                _ => match date
                    .and_then(|date| date.to_str().ok())
                    .and_then(|date| httpdate::parse_http_date(date).ok())
                {
                    Some(server_now) => (
                        sent,
                        exp.duration_since(server_now)
                            .unwrap_or(Duration::ZERO)
                            .saturating_sub(Duration::from_secs(1)),
                    ),
                    None => (
                        received,
                        exp.duration_since(self.now()).unwrap_or(Duration::ZERO),
                    ),
                },
            },
            _ => (sent, self.assumed_access_lifetime),
        };
        let (from, lifetime) = if lifetime.is_zero() {
            (received, self.min_lifetime)
        } else {
            (from, lifetime)
        };
        let lifetime = lifetime.min(LONGEST_LIFETIME);
        (later(from, lifetime), lifetime)
    }

    /// When a token is served, renewed and expired.
    fn plan(
        &self,
        access: AccessToken,
        sent: Instant,
        received: Instant,
        date: Option<HeaderValue>,
    ) -> Served {
        let (expires, lifetime) =
            self.expiry(access.expose_secret(), sent, received, date.as_ref());
        let skew = self.skew.min(lifetime / 4);
        // By default a quarter of the lifetime, but at least twice the skew:
        // for a token shorter than four skews both are `L/4`, and a renewal
        // that started only when serving stops would make every reader at
        // the rollover wait for it.
        let ahead = self
            .refresh_ahead
            .unwrap_or_else(|| (lifetime / 4).max(skew.saturating_mul(2)))
            .min(lifetime / 2)
            .max(skew);
        Served {
            access,
            expires,
            serve_until: earlier(expires, skew, received),
            renew_at: earlier(expires, ahead, received),
        }
    }
}

fn earlier(at: Instant, by: Duration, floor: Instant) -> Instant {
    at.checked_sub(by).unwrap_or(floor).max(floor)
}

/// What a [`VcfSession`] has done, for dashboards, tests and benchmarks.
///
/// ```no_run
/// # async fn run(vcf: refresh_sdk::VcfSession) -> refresh_sdk::Result<()> {
/// let before = vcf.stats();
/// vcf.access_token().await?;
/// let after = vcf.stats();
/// assert_eq!(after.logins + after.refreshes, before.logins + before.refreshes);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// `createToken` operations the session started (its retries count once).
    pub logins: u64,
    /// `refreshAccessToken` operations the session started.
    pub refreshes: u64,
    /// Renewals that ended in an error.
    pub failed_renewals: u64,
    /// `access_token`/`with_access_token` calls that waited for a renewal,
    /// cancelled ones included.
    pub waited: u64,
    /// [`invalidate`](VcfSession::invalidate) calls that took effect.
    pub invalidations: u64,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    refreshes: AtomicU64,
    failed_renewals: AtomicU64,
    waited: AtomicU64,
    invalidations: AtomicU64,
}

/// The token readers see, with its schedule. Replaced whole, never edited.
struct Served {
    access: AccessToken,
    /// The token's end: served as a last resort until then.
    expires: Instant,
    /// Served without waiting until then (`exp − s`).
    serve_until: Instant,
    /// A read from then on starts a background renewal.
    renew_at: Instant,
}

struct RefreshToken {
    id: SecretString,
    expires: Instant,
}

#[derive(Default)]
struct State {
    closed: bool,
    refresh: Option<RefreshToken>,
    flight: Option<Flight>,
    failure: Option<Failure>,
    flights: u64,
}

struct Inner {
    client: VcfClient,
    credentials: VcfCredentials,
    options: SessionOptions,
    /// Written only with `state` locked; read without any lock.
    served: ArcSwapOption<Served>,
    /// Nanoseconds after `epoch` from which a read in the refresh-ahead
    /// window starts a renewal: `u64::MAX` while one runs, the end of the
    /// backoff after one failed. Lets those reads stay lock-free too.
    ahead_gate: AtomicU64,
    epoch: Instant,
    state: Mutex<State>,
    counters: Counters,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No renewal outlives the last handle of its session.
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = state.flight.take() {
            flight.task.abort();
        }
    }
}

/// Keeps a valid VCF access token for a whole service: cached, renewed in
/// the background before it expires, shared by every caller.
///
/// - A read of a fresh token takes no lock and allocates nothing.
/// - Renewal starts in the background when a quarter of the token's life is
///   left (15 minutes of VCF's hour), so callers do not wait at rollover;
///   only a caller that finds no usable token waits, and all such callers
///   share one renewal, run by the session: a caller's timeout cancels only
///   its own wait.
/// - When SDDC Manager is down or slow, callers keep getting the cached token
///   until it expires; errors reach them only when no unexpired token is
///   left. Renewals are retried with backoff (refused credentials from 1 s up
///   to 60 s, so a wrong password cannot lock the account; other failures up
///   to 4 s), as reads come in: a session nobody reads sends nothing.
/// - A token SDDC Manager rejects anyway (a 401 on another endpoint) is
///   reported with [`invalidate`](Self::invalidate).
/// - [`logout`](Self::logout) invalidates the refresh token and closes the
///   session.
///
/// Cloning is cheap and clones share everything. The session needs a tokio
/// runtime.
///
/// ```no_run
/// use std::sync::Arc;
/// use refresh_sdk::{AccessTokenSource, ExposeSecret, vcf::VcfSession};
///
/// # async fn run() -> refresh_sdk::Result<()> {
/// // VCF_SDDC_MANAGER_HOST, VCF_SDDC_MANAGER_USERNAME, VCF_SDDC_MANAGER_PASSWORD
/// let vcf = VcfSession::from_env()?;
/// let token = vcf.access_token().await?;
/// let bearer = format!("Bearer {}", token.expose_secret());
/// // SDDC Manager answered 401 with this token: stop using it.
/// vcf.invalidate(&token);
/// // Hand it to the parts of the service that only need tokens:
/// let source: Arc<dyn AccessTokenSource> = Arc::new(vcf.clone());
/// # let _ = (bearer, source);
/// vcf.logout().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct VcfSession {
    inner: Arc<Inner>,
}

impl fmt::Debug for VcfSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VcfSession")
            .field("client", &self.inner.client)
            .field("credentials", &self.inner.credentials)
            .field("options", &self.inner.options)
            .field("has_token", &self.inner.served.load().is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

fn closed() -> Error {
    Error::new(
        ErrorKind::Closed,
        "the session was logged out; build a new VcfSession to log in again",
    )
    .for_service(Service::Vcf)
}

impl VcfSession {
    /// A session for `credentials` on the SDDC Manager `client` talks to.
    /// Nothing is sent until the first read.
    pub fn new(client: VcfClient, credentials: VcfCredentials) -> Self {
        VcfSession::build(client, credentials, SessionOptions::default())
    }

    fn build(client: VcfClient, credentials: VcfCredentials, options: SessionOptions) -> Self {
        VcfSession {
            inner: Arc::new(Inner {
                client,
                credentials,
                options,
                served: ArcSwapOption::empty(),
                ahead_gate: AtomicU64::new(u64::MAX),
                epoch: Instant::now(),
                state: Mutex::new(State::default()),
                counters: Counters::default(),
            }),
        }
    }

    /// Replaces the renewal timing; meant for a session not used yet (one
    /// already shared with clones is rebuilt, without its tokens).
    pub fn with_options(mut self, options: SessionOptions) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.options = options;
                self
            }
            None => VcfSession::build(
                self.inner.client.clone(),
                self.inner.credentials.clone(),
                options,
            ),
        }
    }

    /// Builds a session from `VCF_SDDC_MANAGER_HOST`,
    /// `VCF_SDDC_MANAGER_USERNAME`, `VCF_SDDC_MANAGER_PASSWORD` and
    /// `VCF_ALLOW_UNVERIFIED_TLS`. Nothing is sent until the first
    /// [`access_token`](Self::access_token).
    pub fn from_env() -> Result<Self> {
        VcfSession::from_lookup(crate::env::process(Service::Vcf, &VcfConfig::VARIABLES)?)
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let client = VcfClient::new(VcfConfig::from_lookup(&lookup)?)?;
        Ok(VcfSession::new(
            client,
            VcfCredentials::from_lookup(&lookup)?,
        ))
    }

    /// The client the session uses.
    pub fn client(&self) -> &VcfClient {
        &self.inner.client
    }

    /// The SDDC Manager's base URL (`https://host`), to build the URLs of
    /// other calls on.
    pub fn base_url(&self) -> &str {
        self.inner.client.base_url()
    }

    /// A client for the rest of the SDDC Manager API: the session's own
    /// connection pool and TLS settings, the SDK's
    /// [`TransportPolicy`](crate::middleware::TransportPolicy) (retries,
    /// deadline, tracing) and [`BearerAuth`] on this session, which puts the
    /// access token on every request to this SDDC Manager and, on a 401,
    /// renews it and sends the request once more. Requests to other hosts get
    /// no token. Cheap: build one per task or keep one.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let vcf = refresh_sdk::VcfSession::from_env()?;
    /// let api = vcf.api_client();
    /// let domains: serde_json::Value =
    ///     api.get(format!("{}/v1/domains", vcf.base_url())).send().await?.json().await?;
    /// # let _ = domains;
    /// # Ok(())
    /// # }
    /// ```
    pub fn api_client(&self) -> reqwest_middleware::ClientWithMiddleware {
        let client = &self.inner.client;
        let layers: Vec<Arc<dyn reqwest_middleware::Middleware>> = vec![
            Arc::new(BearerAuth::new(Arc::new(self.clone()))),
            Arc::new(client.policy()),
        ];
        use vcf_tokens::ClientInfo as _;
        reqwest_middleware::ClientWithMiddleware::new(client.raw().client().clone(), layers)
    }

    /// `Bearer <access token>` as a header value marked sensitive (never
    /// shown by `Debug`), for callers that build requests themselves; after a
    /// 401, report the token with [`invalidate`](Self::invalidate).
    ///
    /// ```no_run
    /// # async fn run(vcf: refresh_sdk::VcfSession) -> refresh_sdk::Result<()> {
    /// let value = vcf.authorization().await?;
    /// assert!(value.is_sensitive());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn authorization(&self) -> Result<reqwest::header::HeaderValue> {
        let token = self.access_token().await?;
        crate::middleware::bearer_header(&token).map_err(|err| err.for_service(Service::Vcf))
    }

    /// What the session has done so far.
    pub fn stats(&self) -> SessionStats {
        let c = &self.inner.counters;
        SessionStats {
            logins: c.logins.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            failed_renewals: c.failed_renewals.load(Ordering::Relaxed),
            waited: c.waited.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
        }
    }

    /// A valid access token: the cached one while it is fresh, else the
    /// result of a renewal (shared with every other caller).
    ///
    /// Fails only when no unexpired token is left: with the renewal's error,
    /// the last one while the session backs off, or
    /// [`ErrorKind::Closed`] after [`logout`](Self::logout). Cancelling the
    /// returned future (a timeout) cancels only this caller's wait.
    ///
    /// A fresh read shares the cached token (one reference-count increment,
    /// no copy); [`with_access_token`](Self::with_access_token) avoids even
    /// that.
    ///
    /// ```no_run
    /// use refresh_sdk::{ExposeSecret, vcf::VcfSession};
    ///
    /// # async fn run(vcf: &VcfSession) -> refresh_sdk::Result<()> {
    /// let token = vcf.access_token().await?;
    /// let bearer = format!("Bearer {}", token.expose_secret());
    /// # let _ = bearer;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn access_token(&self) -> Result<AccessToken> {
        {
            // `load` borrows through arc-swap's per-thread slot; `load_full`
            // would write the shared reference count on every read.
            let served = self.inner.served.load();
            if let Some(served) = served.as_deref()
                && self.servable(served)
            {
                return Ok(served.access.clone());
            }
        }
        self.renewed().await
    }

    /// Calls `f` with a valid access token's text and returns what it
    /// returns. On a fresh token, `f` runs on the cached token in place:
    /// nothing is cloned or allocated and no memory shared with other threads
    /// is written, so concurrent readers do not slow each other down. Keep
    /// `f` short (format a header, sign a request); for a token to keep, use
    /// [`access_token`](Self::access_token).
    ///
    /// ```no_run
    /// use refresh_sdk::vcf::VcfSession;
    ///
    /// # async fn run(vcf: &VcfSession) -> refresh_sdk::Result<()> {
    /// let bearer = vcf.with_access_token(|token| format!("Bearer {token}")).await?;
    /// # let _ = bearer;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn with_access_token<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        {
            let served = self.inner.served.load();
            if let Some(served) = served.as_deref()
                && self.servable(served)
            {
                return Ok(f(served.access.expose_secret()));
            }
        }
        Ok(f(self.renewed().await?.expose_secret()))
    }

    /// Whether `served` can be handed out without waiting; starts a
    /// background renewal when it is due.
    #[inline]
    fn servable(&self, served: &Served) -> bool {
        let now = Instant::now();
        if now >= served.serve_until {
            return false;
        }
        if now >= served.renew_at
            && self.nanos(now) >= self.inner.ahead_gate.load(Ordering::Relaxed)
        {
            self.renew_ahead();
        }
        true
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.inner.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// Starts a renewal in the background if none runs and no backoff holds.
    fn renew_ahead(&self) {
        let mut state = self.state();
        let now = Instant::now();
        if state.closed || state.flight.as_ref().is_some_and(|f| !f.is_dead()) {
            return;
        }
        if let Some(failure) = &state.failure
            && failure.holds(now)
        {
            self.inner
                .ahead_gate
                .store(self.nanos(failure.retry_at), Ordering::Relaxed);
            return;
        }
        // A background renewal has no caller to report to; it fails quietly
        // and the next due read tries again.
        let _ = self.start(&mut state);
    }

    /// The slow path: wait for a renewal (joining the one in flight), or get
    /// the cached token or the last error while the session backs off.
    async fn renewed(&self) -> Result<AccessToken> {
        let (id, mut done) = {
            let mut state = self.state();
            if state.closed {
                return Err(closed());
            }
            let now = Instant::now();
            let served = self.inner.served.load_full();
            if let Some(served) = &served
                && now < served.serve_until
            {
                // A renewal landed between the lock-free read and here.
                return Ok(served.access.clone());
            }
            match &state.flight {
                Some(flight) if !flight.is_dead() => (flight.id, flight.done.clone()),
                _ => {
                    if let Some(failure) = &state.failure
                        && failure.holds(now)
                    {
                        return match served {
                            Some(served) if now < served.expires => Ok(served.access.clone()),
                            _ => Err(failure.error.clone()),
                        };
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
            Some(Ok(token)) => Ok(token),
            Some(Err(error)) => self.fallback(error),
            None => {
                // The renewal's task ended without an outcome (its runtime
                // shut down): forget it, and count it as a failure so the next
                // read starts another after a backoff, not in a loop.
                let error = Error::new(
                    ErrorKind::Transport,
                    "the token renewal was abandoned (its tokio runtime shut down)",
                )
                .for_service(Service::Vcf);
                if self.state().flight.as_ref().is_some_and(|f| f.id == id) {
                    let _ = self.finish(id, Err(error.clone()));
                }
                self.fallback(error)
            }
        }
    }

    /// After a failed renewal: the cached token while it has not expired.
    fn fallback(&self, error: Error) -> Result<AccessToken> {
        if error.kind() != ErrorKind::Closed
            && let Some(served) = self.inner.served.load_full()
            && Instant::now() < served.expires
        {
            return Ok(served.access.clone());
        }
        Err(error)
    }

    /// Spawns a renewal; the caller holds the state lock.
    fn start(&self, state: &mut State) -> Result<(u64, watch::Receiver<Outcome>)> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config("VcfSession renews tokens on a tokio runtime, and none is running")
                .for_service(Service::Vcf)
        })?;
        let now = Instant::now();
        let refresh = state
            .refresh
            .as_ref()
            .filter(|r| {
                now.checked_add(self.inner.options.skew)
                    .is_some_and(|soon| soon < r.expires)
            })
            .map(|r| r.id.clone());
        state.flights += 1;
        let id = state.flights;
        let (tx, done) = watch::channel(None);
        let task = runtime.spawn(renew(Arc::downgrade(&self.inner), id, refresh, tx));
        state.flight = Some(Flight {
            id,
            done: done.clone(),
            task: task.abort_handle(),
        });
        self.inner.ahead_gate.store(u64::MAX, Ordering::Relaxed);
        Ok((id, done))
    }

    /// Reports that SDDC Manager rejected `rejected` (a 401 on another
    /// endpoint): if it is the token being served, it is served no more and
    /// one renewal starts (a refresh, or a login when the refresh token is
    /// gone). A report of any other token, or of one already reported, does
    /// nothing, so every request that failed with the same token can report
    /// it.
    ///
    /// ```no_run
    /// # async fn run(vcf: refresh_sdk::VcfSession, status: u16) -> refresh_sdk::Result<()> {
    /// let token = vcf.access_token().await?;
    /// // ... a request with `token` came back 401:
    /// if status == 401 {
    ///     vcf.invalidate(&token);
    ///     let renewed = vcf.access_token().await?; // a new token
    ///     # let _ = renewed;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn invalidate(&self, rejected: &AccessToken) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        let Some(served) = self.inner.served.load_full() else {
            return;
        };
        if served.access.expose_secret() != rejected.expose_secret() {
            return;
        }
        self.inner.served.store(None);
        bump(&self.inner.counters.invalidations);
        tracing::info!("VCF access token rejected by the server; renewing");
        if state.flight.as_ref().is_none_or(Flight::is_dead) {
            // Without a runtime the next read starts the renewal instead.
            let _ = self.start(&mut state);
        }
    }

    /// Closes the session and invalidates its refresh token.
    ///
    /// From the first poll on, reads fail with [`ErrorKind::Closed`] and send
    /// nothing. A login already sent is waited for, so that its refresh token
    /// is the one invalidated; `logout` itself never logs in. A refresh token
    /// the server no longer knows counts as invalidated. If the invalidation
    /// fails (or this future is cancelled), the refresh token is kept and
    /// `logout` can be called again.
    pub async fn logout(&self) -> Result<()> {
        let in_flight = {
            let mut state = self.state();
            state.closed = true;
            self.inner.served.store(None);
            self.inner.ahead_gate.store(u64::MAX, Ordering::Relaxed);
            state
                .flight
                .as_ref()
                .filter(|f| !f.is_dead())
                .map(|f| f.done.clone())
        };
        if let Some(mut done) = in_flight {
            // Ends with the renewal, which files any new refresh token first.
            let _ = done.wait_for(Option::is_some).await;
        }
        let Some(id) = self.state().refresh.as_ref().map(|r| r.id.clone()) else {
            return Ok(());
        };
        match self.inner.client.invalidate_refresh_token(&id).await {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let mut state = self.state();
        if state
            .refresh
            .as_ref()
            .is_some_and(|r| r.id.expose_secret() == id.expose_secret())
        {
            state.refresh = None;
        }
        Ok(())
    }

    /// Files what a renewal ended with and tells its waiters.
    fn finish(&self, id: u64, renewal: Result<Renewed>) -> Result<AccessToken> {
        let mut state = self.state();
        if state.flight.as_ref().is_some_and(|f| f.id == id) {
            state.flight = None;
        }
        let now = Instant::now();
        match renewal {
            Ok(renewed) => {
                if let Some(refresh) = renewed.refresh {
                    // Filed even when closed: logout invalidates it.
                    state.refresh = Some(RefreshToken {
                        id: refresh,
                        expires: later(renewed.sent, self.inner.options.refresh_token_lifetime),
                    });
                }
                state.failure = None;
                if state.closed {
                    return Err(closed());
                }
                let served = self.inner.options.plan(
                    renewed.access,
                    renewed.sent,
                    renewed.received,
                    renewed.date,
                );
                self.inner
                    .ahead_gate
                    .store(self.nanos(served.renew_at), Ordering::Relaxed);
                let token = served.access.clone();
                self.inner.served.store(Some(Arc::new(served)));
                Ok(token)
            }
            Err(error) => {
                bump(&self.inner.counters.failed_renewals);
                let credentials =
                    error.kind() == ErrorKind::Auth && error.operation() == Some("create_token");
                let (failure, wait) =
                    Failure::after(state.failure.as_ref(), error.clone(), credentials, now);
                let retry_at = failure.retry_at;
                tracing::warn!(
                    error = %error,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "VCF token renewal failed"
                );
                state.failure = Some(failure);
                if !state.closed {
                    self.inner
                        .ahead_gate
                        .store(self.nanos(retry_at), Ordering::Relaxed);
                }
                Err(error)
            }
        }
    }
}

/// A renewal's new tokens.
struct Renewed {
    access: AccessToken,
    /// A new refresh token, when the renewal logged in.
    refresh: Option<SecretString>,
    /// When the request that got it was sent: the token is no older.
    sent: Instant,
    received: Instant,
    /// The response's `Date`: the server's clock when it answered.
    date: Option<HeaderValue>,
}

/// The renewal task. It holds the session only weakly, so that dropping the
/// last handle drops the session (and aborts this task).
async fn renew(
    session: Weak<Inner>,
    id: u64,
    refresh: Option<SecretString>,
    done: watch::Sender<Outcome>,
) {
    let Some(inner) = session.upgrade() else {
        return;
    };
    let client = inner.client.clone();
    drop(inner);
    let renewal = async {
        if let Some(refresh) = refresh {
            if let Some(inner) = session.upgrade() {
                bump(&inner.counters.refreshes);
            }
            let sent = Instant::now();
            match client.refresh_access_token_dated(&refresh, true).await {
                Ok((access, date)) => {
                    tracing::debug!("VCF access token refreshed");
                    return Ok(Renewed {
                        access: AccessToken::from(access),
                        refresh: None,
                        sent,
                        received: Instant::now(),
                        date,
                    });
                }
                // 404 is VCF's answer for a refresh token it no longer
                // knows. Any other refusal of the request itself (400, 401,
                // 403, 409) will not change either: retrying that refresh
                // token would wedge the session until its 24 h run out.
                // Only a transient failure (429, 5xx, transport) keeps it.
                Err(err) if refused(&err) => {
                    tracing::info!(
                        status = err.status().map(|s| s.as_u16()),
                        "VCF refresh token expired, invalidated or refused; logging in again"
                    );
                    if let Some(inner) = session.upgrade() {
                        let mut state = lock(&inner.state);
                        if state
                            .refresh
                            .as_ref()
                            .is_some_and(|r| r.id.expose_secret() == refresh.expose_secret())
                        {
                            state.refresh = None;
                        }
                    }
                }
                Err(err) => return Err(err),
            }
        }
        let credentials = {
            let inner = session.upgrade().ok_or_else(closed)?;
            // A session closed since this renewal started (a refresh that
            // found its token gone, a login not sent yet) logs in no more:
            // logout never logs in.
            if lock(&inner.state).closed {
                return Err(closed());
            }
            bump(&inner.counters.logins);
            inner.credentials.clone()
        };
        let sent = Instant::now();
        let (pair, date) = client.create_token_dated(&credentials, true).await?;
        tracing::debug!("VCF token pair created");
        Ok(Renewed {
            access: AccessToken::from(pair.access_token),
            refresh: Some(pair.refresh_token),
            sent,
            received: Instant::now(),
            date,
        })
    };
    let renewal = renewal.await;
    let Some(inner) = session.upgrade() else {
        return;
    };
    let outcome = VcfSession { inner }.finish(id, renewal);
    done.send_replace(Some(outcome));
}

impl AccessTokenSource for VcfSession {
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(VcfSession::access_token(self))
    }

    fn invalidate(&self, rejected: &AccessToken) {
        VcfSession::invalidate(self, rejected);
    }

    fn origin(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.base_url()).ok()?;
        let origin = url.origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("e30.{}.sig", b64.encode(claims))
    }

    #[test]
    fn expiry_comes_from_the_claims_not_from_clock_agreement() {
        let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let options = SessionOptions::default().wall_clock(move || now);
        let sent = Instant::now();
        let received = sent + Duration::from_millis(300);
        let expiry = |claims: &str| options.expiry(&jwt(claims), sent, received, None);
        // Server two hours behind: exp is in our past, exp - iat is an hour,
        // less the second a whole-second iat may hide, counted from sending.
        let behind = 1_900_000_000 - 7200;
        let (at, life) = expiry(&format!(r#"{{"iat":{behind},"exp":{}}}"#, behind + 3600));
        assert_eq!(
            (at - sent, life),
            (Duration::from_secs(3599), Duration::from_secs(3599))
        );
        // A fractional iat is exact.
        let (at, _) = expiry(r#"{"iat":1899999999.5,"exp":1900000009.5}"#);
        assert_eq!(at - sent, Duration::from_secs(10));
        // No iat: what exp leaves by our clock, from receipt.
        let (at, _) = expiry(r#"{"exp":1900000100}"#);
        assert_eq!(at - received, Duration::from_secs(100));
        // No iat but the response's Date (a server a day ahead): what exp
        // leaves by the server's clock, less the Date's rounding, from sending.
        let day_ahead = HeaderValue::from_static("Mon, 18 Mar 2030 17:46:40 GMT");
        assert_eq!(
            httpdate::parse_http_date("Mon, 18 Mar 2030 17:46:40 GMT").ok(),
            Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000 + 86_400))
        );
        let (at, life) = options.expiry(
            &jwt(r#"{"exp":1900086460}"#),
            sent,
            received,
            Some(&day_ahead),
        );
        assert_eq!(
            (at - sent, life),
            (Duration::from_secs(59), Duration::from_secs(59))
        );
        // An unreadable Date is as none.
        let (at, _) = options.expiry(
            &jwt(r#"{"exp":1900000100}"#),
            sent,
            received,
            Some(&HeaderValue::from_static("tomorrow")),
        );
        assert_eq!(at - received, Duration::from_secs(100));
        // No time left at all: the minimum.
        let (at, life) = expiry(r#"{"exp":1800000000}"#);
        assert_eq!(
            (at - received, life),
            (Duration::from_secs(10), Duration::from_secs(10))
        );
        // No exp: the assumed hour; a far exp is capped, never overflows.
        assert_eq!(expiry(r#"{"iat":1}"#).1, Duration::from_secs(3600));
        assert_eq!(
            expiry(r#"{"iat":0,"exp":1e300}"#).1,
            Duration::from_secs(3600)
        );
        assert_eq!(expiry(r#"{"iat":0,"exp":1e18}"#).1, LONGEST_LIFETIME);
    }

    #[test]
    fn the_plan_follows_the_lifetime() {
        let options = SessionOptions::default();
        let at = Instant::now();
        let hour = Duration::from_secs(3600);
        let plan = options.plan(AccessToken::new("opaque"), at, at, None);
        assert_eq!(plan.expires - at, hour);
        assert_eq!(plan.expires - plan.serve_until, Duration::from_secs(60));
        assert_eq!(plan.expires - plan.renew_at, hour / 4);
        // A 3 s token: the skew shrinks to a quarter of it.
        let short = options
            .clone()
            .assumed_access_lifetime(Duration::from_secs(3));
        let plan = short.plan(AccessToken::new("opaque"), at, at, None);
        assert_eq!(plan.expires - plan.serve_until, Duration::from_millis(750));
        // ...and the renewal starts before serving stops (twice the skew,
        // capped at half the lifetime), so readers at the rollover need not
        // wait.
        assert_eq!(plan.expires - plan.renew_at, Duration::from_millis(1500));
        // A 4 min token: the skew is the whole 60 s, the renewal starts 2 min
        // before expiry rather than at the same moment serving stops.
        let plan = options
            .clone()
            .assumed_access_lifetime(Duration::from_secs(240))
            .plan(AccessToken::new("opaque"), at, at, None);
        assert_eq!(plan.expires - plan.serve_until, Duration::from_secs(60));
        assert_eq!(plan.expires - plan.renew_at, Duration::from_secs(120));
        assert!(plan.renew_at < plan.serve_until);
        // refresh_ahead is kept between the skew and half the lifetime.
        let plan = options
            .clone()
            .refresh_ahead(Duration::from_secs(24 * 3600))
            .plan(AccessToken::new("opaque"), at, at, None);
        assert_eq!(plan.expires - plan.renew_at, hour / 2);
        let plan =
            options
                .refresh_ahead(Duration::ZERO)
                .plan(AccessToken::new("opaque"), at, at, None);
        assert_eq!(plan.expires - plan.renew_at, Duration::from_secs(60));
    }
}
