//! [`VcfSession`]: one valid VCF access token for a whole service, kept by
//! the SDK's token cache with SDDC Manager as its loader.
//!
//! What is VCF's here: the options, how long a token lives (from its JWT
//! claims and the response's `Date`), what counts as refused (a login
//! answered 400, 401 or 403; a refresh token answered any 4xx but 408 and
//! 429), the refresh-token bookkeeping and `logout`. The cache's rules are in
//! [`crate::cache::policy`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{Login, VcfClient, VcfConfig, VcfCredentials};
use crate::cache::policy::LONGEST_LIFETIME;
use crate::cache::{Backoff, Cache, Class, Counters, Kind, Life, Loader, Rules, Step};
use crate::error::{ErrorKind, Result, Service};
use crate::jwt;
use crate::middleware::BearerAuth;
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    skew: Duration,
    refresh_ahead: Option<Duration>,
    assumed_access_lifetime: Duration,
    min_lifetime: Duration,
    refresh_token_lifetime: Duration,
    max_wait: Duration,
    refused_logins: (u32, Duration),
    refused_login_backoff: Duration,
    wall_clock: WallClock,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            skew: Duration::from_secs(60),
            refresh_ahead: None,
            assumed_access_lifetime: Duration::from_secs(60 * 60),
            min_lifetime: Duration::from_secs(10),
            refresh_token_lifetime: Duration::from_secs(24 * 60 * 60),
            max_wait: Duration::from_secs(1),
            refused_logins: (2, Duration::from_secs(15 * 60)),
            refused_login_backoff: Duration::from_secs(5 * 60),
            wall_clock: WallClock(None),
        }
    }
}

/// `SystemTime::now`, or the clock a test gives.
#[derive(Clone)]
struct WallClock(Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>);

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "custom" } else { "system" })
    }
}

impl PartialEq for WallClock {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for WallClock {}

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

    /// The longest a caller that finds a still-valid token waits for a
    /// renewal that is due (default 1 s); it never waits past the token's
    /// expiry, and once a renewal has run this long, later callers get the
    /// cached token at once.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// At most `max` refused logins in any `window` (default 2 in 15
    /// minutes). SDDC Manager locks a local account for 24 hours after 3
    /// failed logins; the count is kept per session, so per process.
    pub fn refused_logins(mut self, max: u32, window: Duration) -> Self {
        self.refused_logins = (max, window);
        self
    }

    /// How long after a refused login the same credentials are tried again
    /// (default 5 minutes). Credentials that changed (a rotated
    /// `VCF_SDDC_MANAGER_PASSWORD_FILE`) are tried at once if
    /// [`refused_logins`](Self::refused_logins) leaves an attempt.
    pub fn refused_login_backoff(mut self, backoff: Duration) -> Self {
        self.refused_login_backoff = backoff;
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
        self.wall_clock = WallClock(Some(Arc::new(now)));
        self
    }

    fn now(&self) -> SystemTime {
        match &self.wall_clock.0 {
            Some(clock) => clock(),
            None => SystemTime::now(),
        }
    }
    /// The cache's rules for these options.
    fn rules(&self) -> Rules {
        Rules {
            service: Service::Vcf,
            skew: self.skew,
            refresh_ahead: self.refresh_ahead,
            max_wait: self.max_wait,
            refused: Backoff {
                base: self.refused_login_backoff,
                cap: self.refused_login_backoff,
            },
            refused_limit: Some(self.refused_logins),
            grant_lifetime: self.refresh_token_lifetime,
            min_lifetime: self.min_lifetime,
        }
    }

    /// How long a token whose renewal was sent at `sent` and received at
    /// `received` lives, and from when, on the monotonic clock.
    ///
    /// With `exp` and `iat`, the lifetime is `exp − iat`, which needs no
    /// agreement between the server's clock and ours, counted from `sent`:
    /// the token cannot be older than the request. When the response has a
    /// `Date` (the server's clock as it answered), what `exp` leaves by it
    /// caps that, so an old token handed back is not served for a lifetime
    /// it no longer has. `iat` and `Date` are in whole seconds, so a second
    /// is not counted. Without either, what `exp` leaves by our wall clock
    /// counts from `received`; without `exp`, the assumed lifetime counts
    /// from `sent`. A token left no time at all is kept for the minimum
    /// lifetime (the cache's rule).
    fn life(
        &self,
        token: &str,
        sent: Instant,
        received: Instant,
        date: Option<&HeaderValue>,
    ) -> Life {
        let second = Duration::from_secs(1);
        let Some(jwt::TimeClaims {
            exp: Some(exp),
            iat,
            iat_rounded,
        }) = jwt::claims(token)
        else {
            return Life::Lasts {
                from: sent,
                lifetime: self.assumed_access_lifetime,
            };
        };
        let issued = iat
            .and_then(|iat| exp.duration_since(iat).ok())
            .filter(|lifetime| !lifetime.is_zero())
            .map(|lifetime| {
                if iat_rounded {
                    lifetime.saturating_sub(second)
                } else {
                    lifetime
                }
            });
        let left_by_date = date
            .and_then(|date| date.to_str().ok())
            .and_then(|date| httpdate::parse_http_date(date).ok())
            .map(|server_now| {
                exp.duration_since(server_now)
                    .unwrap_or(Duration::ZERO)
                    .saturating_sub(second)
            });
        let (from, lifetime) = match (issued, left_by_date) {
            (Some(issued), Some(left)) => (sent, issued.min(left)),
            (Some(lifetime), None) | (None, Some(lifetime)) => (sent, lifetime),
            (None, None) => (
                received,
                exp.duration_since(self.now()).unwrap_or(Duration::ZERO),
            ),
        };
        Life::Lasts {
            from,
            lifetime: lifetime.min(LONGEST_LIFETIME),
        }
    }
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

/// SDDC Manager as the cache's loader.
#[derive(Clone)]
struct Sddc {
    client: VcfClient,
    credentials: VcfCredentials,
    options: SessionOptions,
    /// The credentials last presented, and their generation.
    presented: Arc<Mutex<Option<(Login, u64)>>>,
}

impl Sddc {
    /// The generation of `login`: the last one's, or the next if they differ.
    fn generation(&self, login: &Login) -> u64 {
        let mut presented = self
            .presented
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let generation = match presented.as_ref() {
            Some((last, generation)) if last.same_as(login) => return *generation,
            Some((_, generation)) => generation.saturating_add(1),
            None => 0,
        };
        *presented = Some((login.clone(), generation));
        generation
    }

    fn generation_now(&self) -> u64 {
        self.presented
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map_or(0, |(_, generation)| *generation)
    }

    async fn login(&self) -> Step {
        let login = match self.credentials.login() {
            Ok(login) => login,
            Err(error) => {
                return Step {
                    result: Err((error, Class::Transient)),
                    grant: None,
                    credentials: self.generation_now(),
                };
            }
        };
        let credentials = self.generation(&login);
        let sent = Instant::now();
        match self.client.create_token_login(&login, true).await {
            Ok((pair, date)) => {
                tracing::debug!("VCF token pair created");
                let access = AccessToken::from(pair.access_token);
                let life =
                    self.options
                        .life(access.expose_secret(), sent, Instant::now(), date.as_ref());
                Step {
                    result: Ok((access, life)),
                    grant: Some(pair.refresh_token),
                    credentials,
                }
            }
            Err(error) => {
                // SDDC Manager answers wrong credentials with 400
                // TOKEN_CREATION_FAILED, and may answer 401 or 403; three
                // in a row lock a local account for 24 hours.
                let refused = error.kind() == ErrorKind::Auth
                    && error
                        .status()
                        .is_some_and(|s| matches!(s.as_u16(), 400 | 401 | 403));
                let class = if refused {
                    Class::Refused
                } else {
                    Class::Transient
                };
                Step {
                    result: Err((error, class)),
                    grant: None,
                    credentials,
                }
            }
        }
    }

    async fn refresh(&self, grant: SecretString) -> Step {
        let sent = Instant::now();
        let result = match self.client.refresh_access_token_dated(&grant, true).await {
            Ok((access, date)) => {
                tracing::debug!("VCF access token refreshed");
                let access = AccessToken::from(access);
                let life =
                    self.options
                        .life(access.expose_secret(), sent, Instant::now(), date.as_ref());
                Ok((access, life))
            }
            // 404 is VCF's answer for a refresh token it no longer knows;
            // any other refusal of the request itself (400, 401, 403, 409)
            // will not change either. Only a transient failure (429, 5xx,
            // transport) keeps it.
            Err(error) if error.is_refusal() => {
                tracing::info!(
                    status = error.status().map(|s| s.as_u16()),
                    "VCF refresh token expired, invalidated or refused; logging in again"
                );
                Err((error, Class::GrantRefused))
            }
            Err(error) => Err((error, Class::Transient)),
        };
        Step {
            result,
            grant: None,
            credentials: self.generation_now(),
        }
    }
}

impl Loader for Sddc {
    async fn load(&self, kind: Kind, grant: Option<SecretString>) -> Step {
        match (kind, grant) {
            (Kind::Refresh, Some(grant)) => self.refresh(grant).await,
            _ => self.login().await,
        }
    }

    async fn retire(&self, grant: SecretString) {
        if let Err(error) = self.client.invalidate_refresh_token(&grant).await {
            tracing::debug!(error = %error, "could not invalidate a superseded VCF refresh token");
        }
    }

    fn recheck(&self) -> Option<u64> {
        if !self.credentials.is_file_backed() {
            return None;
        }
        let before = self.generation_now();
        let login = self.credentials.login().ok()?;
        let after = self.generation(&login);
        (after != before).then_some(after)
    }
}

/// Keeps a valid VCF access token for a whole service: cached, renewed in
/// the background before it expires, shared by every caller.
///
/// - A read of a fresh token takes no lock and allocates nothing.
/// - Renewal starts in the background when a quarter of the token's life is
///   left (15 minutes of VCF's hour), so callers do not wait at rollover. A
///   caller that finds its token due and a renewal running waits for it at
///   most [`max_wait`](SessionOptions::max_wait) (1 s), never past the
///   token's expiry; only a caller that finds no valid token waits for the
///   renewal, and all such callers share one, run by the session: a
///   caller's timeout cancels only its own wait.
/// - **SDDC Manager slow or down**: callers keep getting the cached token
///   until it expires; errors reach them only when no unexpired token is
///   left. Failed renewals are retried with backoff (250 ms doubling to
///   4 s, or a server's `Retry-After` up to a minute) as reads come in: a
///   session nobody reads sends nothing. A refresh token whose refreshes
///   keep failing is not waited on once the access token has expired: the
///   next renewal logs in, and the old refresh token is invalidated.
/// - **A wrong password cannot lock the account.** SDDC Manager locks a
///   local account for 24 hours after 3 failed logins. After a refused
///   login the same credentials are tried again only after 5 minutes, and
///   at most 2 logins are refused in any 15 minutes
///   ([`SessionOptions::refused_logins`]); meanwhile callers get the
///   [`ErrorKind::Auth`] error, with SDDC Manager's message, at once. The
///   count is per session, so per process: run one session per account.
///   Credentials read from a file (`VCF_SDDC_MANAGER_PASSWORD_FILE`) are
///   read again before each login and, while logins wait, once a second:
///   a rotated password is tried at once if the limit leaves an attempt.
/// - **A server that rejects every token**: a token reported with
///   [`invalidate`](Self::invalidate) is renewed at once; when the server
///   also rejects its successor within 5 s, reports are not acted on for
///   5 s (doubling to a minute), so a misbehaving endpoint cannot make
///   every call cost a renewal.
/// - A token that is empty or not a valid header value is never served;
///   the renewal counts as failed and the refresh token that came with it
///   is kept.
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
    cache: Cache<Sddc>,
}

impl fmt::Debug for VcfSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sddc = self.cache.loader();
        f.debug_struct("VcfSession")
            .field("client", &sddc.client)
            .field("credentials", &sddc.credentials)
            .field("options", &sddc.options)
            .field("has_token", &self.cache.has_token())
            .field("stats", &self.stats())
            .finish()
    }
}

impl VcfSession {
    /// A session for `credentials` on the SDDC Manager `client` talks to.
    /// Nothing is sent until the first read.
    pub fn new(client: VcfClient, credentials: VcfCredentials) -> Self {
        VcfSession::build(client, credentials, SessionOptions::default())
    }

    fn build(client: VcfClient, credentials: VcfCredentials, options: SessionOptions) -> Self {
        let rules = options.rules();
        let sddc = Sddc {
            client,
            credentials,
            options,
            presented: Arc::default(),
        };
        VcfSession {
            cache: Cache::new(sddc, rules),
        }
    }

    /// Replaces the renewal timing; meant for a session not used yet (the
    /// session is rebuilt, without its tokens, and clones made before keep
    /// the old one).
    pub fn with_options(self, options: SessionOptions) -> Self {
        let sddc = self.cache.loader();
        VcfSession::build(sddc.client.clone(), sddc.credentials.clone(), options)
    }

    /// Builds a session from `VCF_SDDC_MANAGER_HOST`, the credentials'
    /// variables (see [`VcfCredentials::from_lookup`]) and
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
        &self.cache.loader().client
    }

    /// The SDDC Manager's base URL (`https://host`), to build the URLs of
    /// other calls on.
    pub fn base_url(&self) -> &str {
        self.client().base_url()
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
        let client = self.client();
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
        let c = self.cache.counters();
        SessionStats {
            logins: Counters::get(&c.logins),
            refreshes: Counters::get(&c.refreshes),
            failed_renewals: Counters::get(&c.failed),
            waited: Counters::get(&c.waited),
            invalidations: Counters::get(&c.invalidations),
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
        self.cache.token().await
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
        self.cache.with_token(f).await
    }

    /// Reports that SDDC Manager rejected `rejected` (a 401 on another
    /// endpoint): if it is the token being served, it is served no more and
    /// one renewal starts (a refresh, or a login when the refresh token is
    /// gone). A report of any other token, or of one already reported, does
    /// nothing, so every request that failed with the same token can report
    /// it. When SDDC Manager rejects a token within 5 s of issuing it, right
    /// after rejecting the one before, reports are not acted on for a while
    /// (5 s, doubling to a minute): the token is kept, and a 401 reaches
    /// its caller instead of costing a renewal per call.
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
        self.cache.invalidate(rejected);
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
        self.cache.close().await;
        let Some(id) = self.cache.grant() else {
            return Ok(());
        };
        match self.client().invalidate_refresh_token(&id).await {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        self.cache.forget_grant(&id);
        Ok(())
    }
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
    fn a_lifetime_comes_from_the_claims_and_the_servers_date_not_our_clock() {
        let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let options = SessionOptions::default().wall_clock(move || now);
        let sent = Instant::now();
        let received = sent + Duration::from_millis(300);
        let date = |at: u64| {
            HeaderValue::from_str(&httpdate::fmt_http_date(
                UNIX_EPOCH + Duration::from_secs(at),
            ))
            .expect("an HTTP date")
        };
        let life = |claims: &str, date: Option<HeaderValue>| match options.life(
            &jwt(claims),
            sent,
            received,
            date.as_ref(),
        ) {
            Life::Lasts { from, lifetime } => (from == sent, lifetime.as_secs_f64()),
            Life::Once => panic!("a VCF token always has a lifetime"),
        };
        // Server two hours behind: exp is in our past, exp - iat is an hour,
        // less the second a whole-second iat may hide, counted from sending.
        let behind = 1_900_000_000 - 7200;
        let claims = format!(r#"{{"iat":{behind},"exp":{}}}"#, behind + 3600);
        assert_eq!(life(&claims, None), (true, 3599.0));
        // ... and its Date agrees with its iat: the same.
        assert_eq!(life(&claims, Some(date(behind))), (true, 3599.0));
        // An old token handed back (issued an hour and 50 s ago by the
        // server's own Date): what exp leaves by that Date, not exp - iat.
        assert_eq!(life(&claims, Some(date(behind + 3590))), (true, 9.0));
        // ... and one already past its exp by the Date: nothing left (the
        // cache then keeps it the minimum lifetime).
        assert_eq!(life(&claims, Some(date(behind + 4000))), (true, 0.0));
        // A fractional iat is exact.
        assert_eq!(
            life(r#"{"iat":1899999999.5,"exp":1900000009.5}"#, None),
            (true, 10.0)
        );
        // No iat: what exp leaves by our clock, from receipt.
        assert_eq!(life(r#"{"exp":1900000100}"#, None), (false, 100.0));
        // No iat but the response's Date (a server a day ahead): what exp
        // leaves by the server's clock, less the Date's rounding, from sending.
        assert_eq!(
            life(r#"{"exp":1900086460}"#, Some(date(1_900_086_400))),
            (true, 59.0)
        );
        // An unreadable Date is as none.
        assert_eq!(
            life(
                r#"{"exp":1900000100}"#,
                Some(HeaderValue::from_static("tomorrow"))
            ),
            (false, 100.0)
        );
        // No exp, or not a JWT: the assumed hour; a far exp is capped.
        assert_eq!(life(r#"{"iat":1}"#, None), (true, 3600.0));
        assert_eq!(life(r#"{"iat":0,"exp":1e300}"#, None), (true, 3600.0));
        assert_eq!(
            life(r#"{"iat":0,"exp":1e18}"#, None).1,
            LONGEST_LIFETIME.as_secs_f64()
        );
    }
}
