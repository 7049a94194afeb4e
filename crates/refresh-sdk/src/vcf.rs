//! VMware Cloud Foundation (VCF) SDDC Manager tokens, and [`VcfSession`],
//! which always has a valid access token at hand.
//!
//! ```no_run
//! # async fn run() -> refresh_sdk::Result<()> {
//! use refresh_sdk::vcf::{VcfClient, VcfCredentials};
//!
//! // VCF_SDDC_MANAGER_HOST=sfo-vcf01.rainpole.io
//! let vcf = VcfClient::from_env()?;
//! let credentials = VcfCredentials::new("administrator@vsphere.local", "secret");
//! let pair = vcf.create_token(&credentials).await?;
//! let access = vcf.refresh_access_token(&pair.refresh_token).await?;
//! vcf.invalidate_refresh_token(&pair.refresh_token).await?;
//! # let _ = access;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use progenitor_client::Error as GeneratedError;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::base_url::normalize_url;
use crate::error::{Error, ErrorKind, Result, Service, VcfErrorDetail, VendorDetail};
use crate::source::{AccessToken, AccessTokenSource, TokenFuture};
use crate::transport::{self, CallFacts, Transport, TransportOptions};
use crate::{Lookup, env_var, jwt};

/// The generated VCF Tokens client, for callers who need the raw operations.
pub use vcf_tokens as client;

const SERVICE: Service = Service::Vcf;

/// Turns `VCF_SDDC_MANAGER_HOST` into a base URL: a bare FQDN (with an
/// optional port) means `https://`; an explicit `http://` or `https://` URL is
/// kept as given, for local sandboxes and tests.
///
/// ```
/// use refresh_sdk::vcf::normalize_host;
/// assert_eq!(normalize_host("sfo-vcf01.rainpole.io").unwrap(), "https://sfo-vcf01.rainpole.io");
/// assert_eq!(normalize_host("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
/// ```
pub fn normalize_host(input: &str) -> Result<String> {
    let input = input.trim();
    if input.is_empty() {
        return Err(
            Error::config("the SDDC Manager host is empty; set VCF_SDDC_MANAGER_HOST")
                .for_service(SERVICE),
        );
    }
    if input.contains("://") {
        normalize_url(input, SERVICE, false)
    } else {
        normalize_url(&format!("https://{input}"), SERVICE, false)
    }
}

/// Where and how to reach an SDDC Manager.
#[derive(Clone, Debug)]
pub struct VcfConfig {
    base_url: String,
    transport: TransportOptions,
}

impl VcfConfig {
    /// An SDDC Manager host or URL (see [`normalize_host`]).
    pub fn new(host: &str) -> Result<Self> {
        Ok(VcfConfig {
            base_url: normalize_host(host)?,
            transport: TransportOptions::default(),
        })
    }

    /// Reads `VCF_SDDC_MANAGER_HOST` and `VCF_ALLOW_UNVERIFIED_TLS` (`true`
    /// or `1` to accept self-signed certificates; warned about once).
    pub fn from_env() -> Result<Self> {
        VcfConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup: &Lookup = &lookup;
        let host = env_var(lookup, "VCF_SDDC_MANAGER_HOST").ok_or_else(|| {
            Error::config("VCF_SDDC_MANAGER_HOST is not set").for_service(SERVICE)
        })?;
        let allow_unverified = match env_var(lookup, "VCF_ALLOW_UNVERIFIED_TLS")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            Some(other) => {
                return Err(Error::config(format!(
                    "VCF_ALLOW_UNVERIFIED_TLS must be true or false, not {other:?}"
                ))
                .for_service(SERVICE));
            }
        };
        let config = VcfConfig::new(&host)?;
        let transport = config
            .transport
            .clone()
            .allow_unverified_tls(allow_unverified);
        Ok(config.transport(transport))
    }

    /// Replaces the timeouts, retry policy, size cap and TLS options.
    pub fn transport(mut self, options: TransportOptions) -> Self {
        self.transport = options;
        self
    }

    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

/// A VCF user's credentials.
#[derive(Clone, Debug)]
pub struct VcfCredentials {
    username: String,
    password: SecretString,
}

impl VcfCredentials {
    /// A username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        VcfCredentials {
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// Reads `VCF_SDDC_MANAGER_USERNAME` and `VCF_SDDC_MANAGER_PASSWORD` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup: &Lookup = &lookup;
        let username = env_var(lookup, "VCF_SDDC_MANAGER_USERNAME").ok_or_else(|| {
            Error::config("VCF_SDDC_MANAGER_USERNAME is not set").for_service(SERVICE)
        })?;
        let password = env_var(lookup, "VCF_SDDC_MANAGER_PASSWORD").ok_or_else(|| {
            Error::config("VCF_SDDC_MANAGER_PASSWORD is not set").for_service(SERVICE)
        })?;
        Ok(VcfCredentials::new(username, password))
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// An access token and the id of the refresh token that renews it.
#[derive(Clone, Debug)]
pub struct TokenPair {
    /// The bearer token for the SDDC Manager API.
    pub access_token: SecretString,
    /// The refresh token's id.
    pub refresh_token: SecretString,
}

/// The VCF Tokens client: one connection pool, retries, limits and typed
/// errors around the generated client.
#[derive(Clone, Debug)]
pub struct VcfClient {
    raw: vcf_tokens::Client,
    base_url: String,
}

fn vcf_detail(error: &vcf_tokens::types::Error) -> Option<VendorDetail> {
    let detail = VcfErrorDetail {
        message: error.message.clone(),
        error_code: error.error_code.clone(),
        remediation_message: error.remediation_message.clone(),
        reference_token: error.reference_token.clone(),
    };
    // Every field is optional, so any JSON object decodes; one with none of
    // them is better shown raw.
    (detail != VcfErrorDetail::default()).then_some(VendorDetail::Vcf(detail))
}

fn map(operation: &'static str, error: GeneratedError<impl VcfVendor>, facts: &CallFacts) -> Error {
    transport::map_error(
        SERVICE,
        operation,
        error,
        facts,
        VcfVendor::detail,
        |body| {
            serde_json::from_slice::<vcf_tokens::types::Error>(body)
                .ok()
                .as_ref()
                .and_then(vcf_detail)
        },
    )
}

/// The error bodies of the generated operations: VCF's `Error`, or nothing.
trait VcfVendor {
    fn detail(&self) -> Option<VendorDetail>;
}

impl VcfVendor for vcf_tokens::types::Error {
    fn detail(&self) -> Option<VendorDetail> {
        vcf_detail(self)
    }
}

impl VcfVendor for () {
    fn detail(&self) -> Option<VendorDetail> {
        None
    }
}

impl VcfClient {
    /// Builds the client (and its one `reqwest::Client`).
    pub fn new(config: VcfConfig) -> Result<Self> {
        let http =
            transport::build_http_client(SERVICE, &config.transport, None, Default::default())?;
        let exec = Transport {
            service: SERVICE,
            retry: config.transport.retry.clone(),
            attempt_timeout: config.transport.attempt_timeout,
            max_response_bytes: config.transport.max_response_bytes,
        };
        let raw = vcf_tokens::Client::new_with_client(&config.base_url, http, Some(Arc::new(exec)));
        Ok(VcfClient {
            raw,
            base_url: config.base_url,
        })
    }

    /// Builds the client from the environment; see [`VcfConfig::from_env`].
    pub fn from_env() -> Result<Self> {
        VcfClient::new(VcfConfig::from_env()?)
    }

    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The generated client, sharing this client's connection pool and executor.
    pub fn raw(&self) -> &vcf_tokens::Client {
        &self.raw
    }

    /// Exchanges credentials for a new token pair (`POST /v1/tokens`).
    pub async fn create_token(&self, credentials: &VcfCredentials) -> Result<TokenPair> {
        const OPERATION: &str = "create_token";
        if credentials.username.trim().is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidInput, "the username is empty").at(SERVICE, OPERATION)
            );
        }
        let spec = vcf_tokens::types::TokenCreationSpec {
            username: Some(credentials.username.clone()),
            password: Some(credentials.password.expose_secret().to_owned()),
            ..Default::default()
        };
        let (result, facts) = transport::observe(self.raw.create_token(&spec)).await;
        drop(spec);
        let pair = match result {
            Ok(value) => value.into_inner(),
            // The spec says 201; a server answering 200 with the same body is
            // still a success.
            Err(GeneratedError::UnexpectedResponse(response)) if response.status().is_success() => {
                match facts
                    .body
                    .as_deref()
                    .map(serde_json::from_slice::<vcf_tokens::types::TokenPair>)
                {
                    Some(Ok(pair)) => pair,
                    _ => {
                        return Err(invalid(
                            OPERATION,
                            &facts,
                            "the token pair is not the documented JSON",
                        ));
                    }
                }
            }
            Err(err) => return Err(credentials_rejected(map(OPERATION, err, &facts))),
        };
        let access = pair.access_token.filter(|t| !t.is_empty());
        let refresh = pair
            .refresh_token
            .and_then(|r| r.id)
            .filter(|t| !t.is_empty());
        match (access, refresh) {
            (Some(access), Some(refresh)) => Ok(TokenPair {
                access_token: access.into(),
                refresh_token: refresh.into(),
            }),
            _ => Err(invalid(
                OPERATION,
                &facts,
                "the response lacks the access token or the refresh token id",
            )),
        }
    }

    /// Returns a new access token for a refresh token
    /// (`PATCH /v1/tokens/access-token/refresh`). An unknown, expired or
    /// invalidated refresh token is an [`ErrorKind::NotFound`] error.
    pub async fn refresh_access_token(&self, refresh_token: &SecretString) -> Result<SecretString> {
        const OPERATION: &str = "refresh_access_token";
        let (result, facts) =
            transport::observe(self.raw.refresh_access_token(refresh_token.expose_secret())).await;
        let token = match result {
            Ok(value) => value.into_inner(),
            // Some servers send the token as bare text rather than a JSON string.
            Err(GeneratedError::InvalidResponsePayload(body, _))
                if facts.status.is_some_and(|s| s.is_success()) && looks_like_bare_token(&body) =>
            {
                String::from_utf8_lossy(body.trim_ascii()).into_owned()
            }
            Err(err) => return Err(map(OPERATION, err, &facts)),
        };
        if token.is_empty() {
            return Err(invalid(OPERATION, &facts, "the access token is empty"));
        }
        Ok(token.into())
    }

    /// Invalidates a refresh token (`DELETE /v1/tokens/refresh-token`).
    pub async fn invalidate_refresh_token(&self, refresh_token: &SecretString) -> Result<()> {
        const OPERATION: &str = "invalidate_refresh_token";
        let (result, facts) = transport::observe(
            self.raw
                .invalidate_refresh_token(refresh_token.expose_secret()),
        )
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(GeneratedError::UnexpectedResponse(response)) if response.status().is_success() => {
                Ok(())
            }
            Err(err) => Err(map(OPERATION, err, &facts)),
        }
    }
}

/// SDDC Manager answers a wrong username or password with 400
/// `TOKEN_CREATION_FAILED` (and may answer 401 or 403): for the operation that
/// exchanges credentials, all three mean the credentials were refused.
fn credentials_rejected(error: Error) -> Error {
    match error.status().map(|s| s.as_u16()) {
        Some(400 | 401 | 403) => error.with_kind(ErrorKind::Auth).with_hint(transport::hint(
            SERVICE,
            "create_token",
            ErrorKind::Auth,
        )),
        _ => error,
    }
}

fn looks_like_bare_token(body: &[u8]) -> bool {
    let body = body.trim_ascii();
    !body.is_empty()
        && body
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'{' | b'[' | b'<'))
}

fn invalid(operation: &'static str, facts: &CallFacts, message: &str) -> Error {
    Error::new(ErrorKind::InvalidResponse, message)
        .with_status(facts.status)
        .with_attempts(facts.attempts)
        .at(SERVICE, operation)
}

/// When [`VcfSession`] refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    skew: Duration,
    assumed_access_lifetime: Duration,
    refresh_token_lifetime: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            skew: Duration::from_secs(60),
            assumed_access_lifetime: Duration::from_secs(60 * 60),
            refresh_token_lifetime: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl SessionOptions {
    /// How long before expiry a token counts as stale (default 60 s).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// The lifetime assumed for an access token that is not a JWT with `exp`
    /// (default 1 hour, as VCF documents).
    pub fn assumed_access_lifetime(mut self, lifetime: Duration) -> Self {
        self.assumed_access_lifetime = lifetime;
        self
    }

    /// The lifetime of a refresh token (default 24 hours, as VCF documents);
    /// near its end the session logs in again instead of refreshing.
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }
}

struct CachedTokens {
    access: AccessToken,
    access_expires: Instant,
    refresh: SecretString,
    refresh_expires: Instant,
}

type Flight = Arc<OnceCell<Result<Arc<CachedTokens>>>>;

/// Keeps a valid VCF access token: cached, refreshed before it expires, and
/// renewed by logging in again when the refresh token is gone.
///
/// Reading a fresh cached token takes no lock and no allocation. When the
/// token is stale, all concurrent callers share one refresh; if it fails,
/// every one of them gets the error, and the next call tries again.
///
/// ```no_run
/// use std::sync::Arc;
/// use refresh_sdk::{AccessTokenSource, ExposeSecret, vcf::VcfSession};
///
/// # async fn run() -> refresh_sdk::Result<()> {
/// // VCF_SDDC_MANAGER_HOST, VCF_SDDC_MANAGER_USERNAME, VCF_SDDC_MANAGER_PASSWORD
/// let vcf = Arc::new(VcfSession::from_env()?);
/// let token = vcf.access_token().await?;
/// let bearer = format!("Bearer {}", token.expose_secret());
/// // Hand it to the parts of the service that only need tokens:
/// let source: Arc<dyn AccessTokenSource> = vcf.clone();
/// # let _ = (bearer, source);
/// vcf.logout().await?;
/// # Ok(())
/// # }
/// ```
pub struct VcfSession {
    client: VcfClient,
    credentials: VcfCredentials,
    options: SessionOptions,
    cache: ArcSwapOption<CachedTokens>,
    flight: Mutex<Option<Flight>>,
}

impl fmt::Debug for VcfSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VcfSession")
            .field("client", &self.client)
            .field("credentials", &self.credentials)
            .field("options", &self.options)
            .field("has_token", &self.cache.load().is_some())
            .finish()
    }
}

fn deadline_after(lifetime: Duration) -> Instant {
    // Clamped so that a far-future `exp` cannot overflow `Instant`.
    let lifetime = lifetime.min(Duration::from_secs(10 * 365 * 24 * 60 * 60));
    let now = Instant::now();
    now.checked_add(lifetime).unwrap_or(now)
}

fn is_fresh(expires: Instant, skew: Duration) -> bool {
    Instant::now()
        .checked_add(skew)
        .is_some_and(|soon| soon < expires)
}

impl VcfSession {
    /// A session for `credentials` on the SDDC Manager `client` talks to.
    pub fn new(client: VcfClient, credentials: VcfCredentials) -> Self {
        VcfSession {
            client,
            credentials,
            options: SessionOptions::default(),
            cache: ArcSwapOption::empty(),
            flight: Mutex::new(None),
        }
    }

    /// Replaces the refresh timing.
    pub fn with_options(mut self, options: SessionOptions) -> Self {
        self.options = options;
        self
    }

    /// Builds a session from `VCF_SDDC_MANAGER_HOST`,
    /// `VCF_SDDC_MANAGER_USERNAME`, `VCF_SDDC_MANAGER_PASSWORD` and
    /// `VCF_ALLOW_UNVERIFIED_TLS`. Nothing is sent until the first
    /// [`access_token`](Self::access_token).
    pub fn from_env() -> Result<Self> {
        VcfSession::from_lookup(|name| std::env::var(name).ok())
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
        &self.client
    }

    /// A valid access token: the cached one while it is fresh, else a
    /// refreshed one (or a new login when the refresh token is gone).
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
            let cached = self.cache.load();
            if let Some(tokens) = cached.as_deref()
                && is_fresh(tokens.access_expires, self.options.skew)
            {
                return Ok(tokens.access.clone());
            }
        }
        Ok(self.renewed().await?.access.clone())
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
            let cached = self.cache.load();
            if let Some(tokens) = cached.as_deref()
                && is_fresh(tokens.access_expires, self.options.skew)
            {
                return Ok(f(tokens.access.expose_secret()));
            }
        }
        Ok(f(self.renewed().await?.access.expose_secret()))
    }

    /// Joins the refresh in flight, or starts one.
    async fn renewed(&self) -> Result<Arc<CachedTokens>> {
        let flight = {
            let mut slot = self
                .flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(slot.get_or_insert_with(|| Arc::new(OnceCell::new())))
        };
        let outcome = flight.get_or_init(|| self.renew()).await.clone();
        {
            let mut slot = self
                .flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Only the finished flight is cleared, so the next stale read
            // starts a new one; a newer flight is left alone.
            if slot
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, &flight))
            {
                *slot = None;
            }
        }
        outcome
    }

    /// Runs once per flight: re-checks the cache (a flight that just finished
    /// may have filled it), then refreshes or logs in.
    async fn renew(&self) -> Result<Arc<CachedTokens>> {
        let current = self.cache.load_full();
        if let Some(tokens) = &current
            && is_fresh(tokens.access_expires, self.options.skew)
        {
            return Ok(Arc::clone(tokens));
        }
        let renewed = match current.filter(|t| is_fresh(t.refresh_expires, self.options.skew)) {
            Some(tokens) => match self.client.refresh_access_token(&tokens.refresh).await {
                Ok(access) => {
                    tracing::debug!("VCF access token refreshed");
                    CachedTokens {
                        access_expires: self.access_expiry(access.expose_secret()),
                        access: AccessToken::from(access),
                        refresh: tokens.refresh.clone(),
                        refresh_expires: tokens.refresh_expires,
                    }
                }
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    tracing::info!("VCF refresh token expired or invalidated; logging in again");
                    self.login().await?
                }
                Err(err) => return Err(err),
            },
            None => self.login().await?,
        };
        let renewed = Arc::new(renewed);
        self.cache.store(Some(Arc::clone(&renewed)));
        Ok(renewed)
    }

    async fn login(&self) -> Result<CachedTokens> {
        let pair = self.client.create_token(&self.credentials).await?;
        tracing::debug!("VCF token pair created");
        Ok(CachedTokens {
            access_expires: self.access_expiry(pair.access_token.expose_secret()),
            access: AccessToken::from(pair.access_token),
            refresh: pair.refresh_token,
            refresh_expires: deadline_after(self.options.refresh_token_lifetime),
        })
    }

    fn access_expiry(&self, token: &str) -> Instant {
        match jwt::expiry(token) {
            Some(exp) => deadline_after(
                exp.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            ),
            None => deadline_after(self.options.assumed_access_lifetime),
        }
    }

    /// Invalidates the refresh token and forgets the cached tokens, after
    /// any refresh in flight has finished. A refresh token the server no
    /// longer knows counts as invalidated.
    pub async fn logout(&self) -> Result<()> {
        // A refresh or login in flight would store its tokens after the swap
        // below and leave a live refresh token behind: let it land first, so
        // that its tokens are the ones invalidated.
        let in_flight = self
            .flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(flight) = in_flight {
            let _ = flight.get_or_init(|| self.renew()).await;
        }
        let Some(tokens) = self.cache.swap(None) else {
            return Ok(());
        };
        match self.client.invalidate_refresh_token(&tokens.refresh).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl AccessTokenSource for VcfSession {
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(VcfSession::access_token(self))
    }
}
