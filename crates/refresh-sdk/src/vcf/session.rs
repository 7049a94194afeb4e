//! [`VcfSession`]: one valid VCF access token for a whole service, kept by
//! the SDK's token cache with SDDC Manager as its loader.
//!
//! What is VCF's here: what counts as refused (a login
//! answered 400, 401 or 403; a refresh token answered any 4xx but 408 and
//! 429), the refresh-token bookkeeping and `logout`. The cache's rules are in
//! [`crate::cache::policy`].

use std::fmt;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{Login, SessionOptions, VcfClient, VcfConfig, VcfCredentials};
use crate::cache::{Cache, Class, Counters, Kind, Loader, Step};
use crate::error::{Error, ErrorKind, Result, Service};
use crate::source::{AccessToken, AccessTokenSource, TokenFuture};

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
    /// Shared by clones, so that [`VcfSession::with_options`] reaches them.
    options: Arc<Mutex<SessionOptions>>,
    presented: Arc<Mutex<Presented>>,
}

/// The credentials presented lately, each with its generation: credentials
/// that come back (a secret file rotated A, B, A) get their old generation,
/// and with it their refusal.
#[derive(Default)]
struct Presented {
    seen: Vec<(Login, u64)>,
    current: u64,
}

/// How many credentials a session remembers.
const REMEMBERED: usize = 8;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sddc {
    /// The generation of `login`, which becomes the current one.
    fn generation(&self, login: &Login) -> u64 {
        let mut presented = lock(&self.presented);
        let known = presented.seen.iter().find(|(seen, _)| seen.same_as(login));
        let generation = match known {
            Some((_, generation)) => *generation,
            None => {
                let next = presented.seen.iter().map(|(_, g)| g + 1).max().unwrap_or(0);
                if presented.seen.len() == REMEMBERED {
                    presented.seen.remove(0);
                }
                presented.seen.push((login.clone(), next));
                next
            }
        };
        presented.current = generation;
        generation
    }

    fn generation_now(&self) -> u64 {
        lock(&self.presented).current
    }

    fn options(&self) -> SessionOptions {
        lock(&self.options).clone()
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
                let life = self.options().life(
                    access.expose_secret(),
                    sent,
                    Instant::now(),
                    date.as_ref(),
                );
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
                } else if error.may_have_reached_server() {
                    // It may have reached SDDC Manager, and been refused; a
                    // connection never made cannot have been.
                    Class::Unknown
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
                let life = self.options().life(
                    access.expose_secret(),
                    sent,
                    Instant::now(),
                    date.as_ref(),
                );
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
            (Kind::Refresh, None) => Step {
                result: Err((
                    Error::new(ErrorKind::NotFound, "no refresh token to refresh with")
                        .for_service(Service::Vcf),
                    Class::GrantRefused,
                )),
                grant: None,
                credentials: self.generation_now(),
            },
            (Kind::Login, _) => self.login().await,
        }
    }

    async fn retire(&self, grant: SecretString) {
        if let Err(error) = self.client.invalidate_refresh_token(&grant).await {
            tracing::debug!(error = %error, "could not invalidate a superseded VCF refresh token");
        }
    }

    fn credentials(&self) -> u64 {
        self.generation_now()
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
            .field("options", &sddc.options())
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
            options: Arc::new(Mutex::new(options)),
            presented: Arc::default(),
        };
        VcfSession {
            cache: Cache::new(sddc, rules),
        }
    }

    /// Replaces the renewal timing of this session and of its clones. What
    /// the session knows stays: its tokens, and the logins refused on its
    /// account, which a second session could not know about.
    pub fn with_options(self, options: SessionOptions) -> Self {
        let rules = options.rules();
        *lock(&self.cache.loader().options) = options;
        self.cache.set_rules(rules);
        self
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

    /// A client for the rest of the SDDC Manager API (see [`ApiClient`](crate::ApiClient)):
    /// the session's own connection pool, TLS settings and transport policy
    /// (retries, deadline, tracing), and this session's access token on
    /// every request to this SDDC Manager, renewed and sent once more on a
    /// 401. Requests to other hosts get no token. Cheap: build one per task
    /// or keep one.
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
    pub fn api_client(&self) -> crate::ApiClient {
        self.client().api_client(Arc::new(self.clone()))
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
        self.cache.with(AccessToken::clone).await
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
        self.cache.with(|token| f(token.expose_secret())).await
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
        let Some(id) = self.cache.close().await else {
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
