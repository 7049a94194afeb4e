//! Spec-faithful local servers for both APIs of the workspace, the F5
//! Distributed Cloud AI Data BFDP refresh-token API and the VMware Cloud
//! Foundation SDDC Manager Tokens API, served in-process (axum on tokio) on
//! one loopback listener.
//!
//! A downstream service starts it in its tests in three lines:
//!
//! ```no_run
//! # async fn run() -> Result<(), refresh_sandbox::Error> {
//! let sandbox = refresh_sandbox::Sandbox::start_default().await?;
//! let vcf_url = sandbox.vcf_url(); // and sandbox.f5xc_url(), sandbox.credentials()
//! // ... point the client under test at `vcf_url`, then:
//! sandbox.assert_spec_clean();
//! # let _ = vcf_url;
//! # Ok(())
//! # }
//! ```
//!
//! # Faithful to the specs
//!
//! The sandbox embeds `specs/f5xc-bfdp.yaml` and `specs/vcf-tokens.yaml` and
//! checks every request against the operation its method and path name:
//! the security requirement (F5: an `Authorization` header), a required
//! body, `Content-Type: application/json` and the body's JSON shape (types,
//! required properties; unknown properties are allowed, as the specs do not
//! forbid them). A request that fails a check is recorded as a [`Violation`]
//! and answered with a status the operation documents:
//!
//! | Operation | Violation | Answer |
//! |---|---|---|
//! | VCF `createToken`, `refreshAccessToken` | any | `400` with a VCF `Error` body |
//! | VCF `invalidateRefreshToken` | any | `204` (the only status the spec documents; nothing is invalidated) |
//! | F5 `refresh_token` | no `Authorization` header | `401` with a JSON string body |
//! | F5 `refresh_token` | body, `Content-Type` | `404` with a JSON string body: the request names no readable pipeline (404 is documented and, unlike 5xx, not retried) |
//! | a documented path, wrong method | | the path's operation's `400` (VCF) or `404` (F5); `404` when it documents neither |
//! | an unknown path | | `404` |
//!
//! The sandbox also checks its own answers: a status the operation does not
//! document, unless a test injected it with [`Faults::fail_next`], is
//! recorded as a [`ViolationKind::UndocumentedResponse`].
//!
//! # Semantics
//!
//! - VCF `createToken` with the configured username and password, API key
//!   (`apiKey`) or identity token (`idToken`), exactly one of the three,
//!   answers `201` with a `TokenPair` (`vcf_tokens::types::TokenPair`): a JWT
//!   access token (HS256, signed with a key random per sandbox, `exp` = now +
//!   the access TTL, default 1 h) and a refresh token id (a UUID, valid for
//!   the refresh TTL, default 24 h). Other credentials, or more than one
//!   kind in one request, get `400` `TOKEN_CREATION_FAILED` with an `Error`
//!   body, as SDDC Manager answers a wrong password.
//! - `refreshAccessToken` answers `200` with a new access token, or `404`
//!   with an `Error` body for an unknown, expired or invalidated id.
//! - `invalidateRefreshToken` answers `204`, known id or not, and the
//!   access tokens that refresh token created or refreshed stop being live
//!   (see [Protected routes](#protected-routes)).
//! - F5 `refresh_token` needs `Authorization: APIToken <configured token>`
//!   (a wrong value gets `401`; it is not a spec violation), a known
//!   pipeline (`product_name`; else `404`) and, with a rate limit configured,
//!   answers `429` with `Retry-After` past the limit. Success is `200` with
//!   `{"result": "<JSON text>"}`, where the text is the sandbox's own choice
//!   (the real shape is not documented):
//!   `{"token":"<64 hex digits>","product_name":"<name>","expires_at":<unix seconds>}`,
//!   expiring after the access TTL.
//!
//! # Fault injection
//!
//! [`Sandbox::faults`] queues faults per [`Operation`], consumed in order by
//! its next requests: a status (with `Retry-After`), a delay, a malformed
//! body, a dropped connection, an access token replaced by any text or
//! backdated. See [`Faults`].
//!
//! # Protected routes
//!
//! A downstream service uses its VCF access token on other SDDC Manager
//! endpoints. [`SandboxBuilder::protected_route`] declares such an endpoint
//! (exact method and path, such as `GET /v1/domains`) with a canned JSON
//! answer, served only to `Authorization: Bearer <live access token>`. A
//! token is live when this sandbox issued it, it has not expired by the
//! sandbox's clock (offset included), its refresh token was not invalidated
//! and it was not revoked ([`Faults::revoke_access_tokens`]);
//! anything else gets `401` with a VCF `Error` body saying which (never the
//! token) and `WWW-Authenticate: Bearer`, so the token → endpoint → `401` →
//! renew path can be tested. These paths are outside the specs: their
//! requests are counted by [`Sandbox::route_requests`] and
//! [`Sandbox::route_rejections`], never as violations. Every other path
//! behaves as before.
//!
//! ```
//! use refresh_sandbox::{ExposeSecret, Method, Sandbox};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder()
//!     .protected_route(Method::GET, "/v1/domains", serde_json::json!({ "elements": [] }))
//!     .start()
//!     .await?;
//! let http = reqwest::Client::new();
//! let credentials = sandbox.credentials();
//! let pair: serde_json::Value = http
//!     .post(format!("{}/v1/tokens", sandbox.vcf_url()))
//!     .json(&serde_json::json!({
//!         "username": credentials.vcf_username,
//!         "password": credentials.vcf_password.expose_secret(),
//!     }))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! let token = pair["accessToken"].as_str().unwrap_or_default();
//! let domains = |token: String| {
//!     http.get(format!("{}/v1/domains", sandbox.vcf_url()))
//!         .bearer_auth(token)
//!         .send()
//! };
//! assert_eq!(domains(token.to_owned()).await?.status(), 200);
//!
//! sandbox.faults().revoke_access_tokens();
//! assert_eq!(domains(token.to_owned()).await?.status(), 401);
//! assert_eq!(sandbox.route_requests(Method::GET, "/v1/domains"), 2);
//! assert_eq!(sandbox.route_rejections(Method::GET, "/v1/domains"), 1);
//! sandbox.assert_spec_clean();
//! # Ok(())
//! # }
//! ```
//!
//! # Configuration for the SDK
//!
//! [`Sandbox::vcf_env`] and [`Sandbox::f5xc_env`] give the environment the
//! SDK reads as a lookup (`VcfSession::from_lookup(sandbox.vcf_env())` in
//! refresh-sdk), and [`Sandbox::vcf_env_vars`] and
//! [`Sandbox::f5xc_env_vars`] as pairs for a child process: no process
//! variables to set. They hold this sandbox's demo credentials.

#![deny(missing_docs)]

mod access;
mod jwt;
mod net;
mod routes;
mod samples;
mod server;
mod spec;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use axum::http::{Method, StatusCode};
pub use secrecy::{ExposeSecret, SecretString};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    #[error("the sandbox cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The self-signed certificate or the TLS configuration failed.
    #[error("the sandbox cannot set up TLS: {0}")]
    Tls(String),
    /// An embedded spec does not parse, or names an operation the sandbox
    /// does not implement.
    #[error("the sandbox's embedded spec is unusable: {0}")]
    Spec(String),
    /// The system's random generator failed.
    #[error("the sandbox cannot draw random bytes for keys and tokens")]
    Random,
    /// `start` was awaited outside a tokio runtime, which the server needs.
    #[error("the sandbox must be started inside a tokio runtime")]
    NoRuntime,
    /// A [protected route](SandboxBuilder::protected_route) cannot be
    /// served: its path does not start with `/`, carries a query, or is a
    /// path of the specs.
    #[error("the sandbox cannot serve the protected route {0}")]
    ProtectedRoute(String),
}

/// One operation of the two specs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// F5 XC `refresh_token`: `POST /api/ai_data/bfdp/namespaces/system/bfdp/refresh_token`.
    F5xcRefreshToken,
    /// VCF `createToken`: `POST /v1/tokens`.
    VcfCreateToken,
    /// VCF `refreshAccessToken`: `PATCH /v1/tokens/access-token/refresh`.
    VcfRefreshAccessToken,
    /// VCF `invalidateRefreshToken`: `DELETE /v1/tokens/refresh-token`.
    VcfInvalidateRefreshToken,
}

impl Operation {
    /// Every operation the sandbox serves.
    pub const ALL: [Operation; 4] = [
        Operation::F5xcRefreshToken,
        Operation::VcfCreateToken,
        Operation::VcfRefreshAccessToken,
        Operation::VcfInvalidateRefreshToken,
    ];

    /// The operation's `operationId` in its spec.
    pub fn operation_id(self) -> &'static str {
        match self {
            Operation::F5xcRefreshToken => "refresh_token",
            Operation::VcfCreateToken => "createToken",
            Operation::VcfRefreshAccessToken => "refreshAccessToken",
            Operation::VcfInvalidateRefreshToken => "invalidateRefreshToken",
        }
    }

    fn from_operation_id(id: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|op| op.operation_id() == id)
    }

    fn is_vcf(self) -> bool {
        !matches!(self, Operation::F5xcRefreshToken)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.operation_id())
    }
}

/// What was wrong with a request (or, for
/// [`UndocumentedResponse`](ViolationKind::UndocumentedResponse), with the
/// sandbox's answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The path is in neither spec.
    UnknownPath,
    /// The path is documented, but not with this method.
    MethodNotAllowed,
    /// The operation's security requirement is not met (no credentials
    /// header at all).
    MissingAuth,
    /// The operation requires a body and there is none.
    MissingBody,
    /// The body's `Content-Type` is not the spec's `application/json`.
    ContentType,
    /// The body is not JSON (or could not be read).
    InvalidJson,
    /// The body is JSON but does not match the operation's schema.
    BodySchema,
    /// The sandbox answered with a status the operation does not document,
    /// without a test asking for it: a sandbox bug.
    UndocumentedResponse,
}

/// A request the specs do not allow (or an answer they do not document),
/// as recorded by the sandbox. Names no value from the request: bodies and
/// headers carry credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The operation the method and path name, if any.
    pub operation: Option<Operation>,
    /// What was wrong.
    pub kind: ViolationKind,
    /// A readable description.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {:?}: {}",
            self.method, self.path, self.kind, self.detail
        )
    }
}

/// The sandbox's demo credentials. `Debug` shows the secrets as redacted;
/// [`ExposeSecret::expose_secret`] reads them.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The VCF username `createToken` accepts.
    pub vcf_username: String,
    /// The VCF password `createToken` accepts.
    pub vcf_password: SecretString,
    /// The VCF API key `createToken` accepts (`apiKey`), instead of the
    /// username and password; its tokens are the demo user's.
    pub vcf_api_key: SecretString,
    /// The VCF identity token `createToken` accepts (`idToken`), instead of
    /// the username and password; its tokens are the demo user's.
    pub vcf_id_token: SecretString,
    /// The F5 XC API token, sent as `Authorization: APIToken <token>`.
    pub f5xc_api_token: SecretString,
    /// The F5 pipelines (`product_name`) the sandbox knows.
    pub f5xc_pipelines: Vec<String>,
}

/// The demo username.
pub const DEFAULT_VCF_USERNAME: &str = "administrator@vsphere.local";
const DEFAULT_VCF_PASSWORD: &str = "sandbox-Passw0rd!";
const DEFAULT_VCF_API_KEY: &str = "sandbox-vcf-api-key";
const DEFAULT_VCF_ID_TOKEN: &str = "sandbox-vcf-id-token";
const DEFAULT_F5XC_API_TOKEN: &str = "sandbox-api-token";
/// The demo pipeline, the spec's example `product_name`.
pub const DEFAULT_F5XC_PIPELINE: &str = "example";
/// VCF's documented access-token lifetime, the sandbox's default.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// VCF's documented refresh-token lifetime, the sandbox's default.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a client has to send a request's headers (and to finish a TLS
/// handshake) by default; see [`SandboxBuilder::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's body by default; see
/// [`SandboxBuilder::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Sandbox::shutdown`] lets requests in flight finish before it
/// closes their connections.
pub const SHUTDOWN_GRACE: Duration = net::SHUTDOWN_GRACE;

/// Which secrets a builder was given, rather than left at the demo values.
#[derive(Clone, Copy, Debug, Default)]
struct SecretsSet {
    vcf_password: bool,
    vcf_api_key: bool,
    vcf_id_token: bool,
    f5xc_api_token: bool,
}

/// Configures and starts a [`Sandbox`]; see [`Sandbox::builder`].
#[derive(Debug)]
pub struct SandboxBuilder {
    credentials: Credentials,
    access_ttl: Duration,
    refresh_ttl: Duration,
    rate_limit: Option<(u32, Duration)>,
    tls: bool,
    listen: SocketAddr,
    report_dir: Option<std::path::PathBuf>,
    clock_offset: i64,
    protected_routes: Vec<(Method, String, serde_json::Value)>,
    sddc_samples: bool,
    secrets_set: SecretsSet,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            credentials: Credentials {
                vcf_username: DEFAULT_VCF_USERNAME.to_owned(),
                vcf_password: DEFAULT_VCF_PASSWORD.into(),
                vcf_api_key: DEFAULT_VCF_API_KEY.into(),
                vcf_id_token: DEFAULT_VCF_ID_TOKEN.into(),
                f5xc_api_token: DEFAULT_F5XC_API_TOKEN.into(),
                f5xc_pipelines: vec![DEFAULT_F5XC_PIPELINE.to_owned()],
            },
            access_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            rate_limit: None,
            tls: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            report_dir: std::env::var_os(REPORT_DIR_ENV).map(Into::into),
            clock_offset: 0,
            protected_routes: Vec::new(),
            sddc_samples: false,
            secrets_set: SecretsSet::default(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

impl SandboxBuilder {
    /// The credentials to serve: as set, with every secret not set drawn at
    /// random when the sandbox listens beyond loopback.
    fn credentials_for_listen(&self) -> Result<Credentials, Error> {
        let mut credentials = self.credentials.clone();
        if net::is_loopback(self.listen.ip()) {
            return Ok(credentials);
        }
        let random = || jwt::random_hex::<16>().map(|hex| SecretString::from(format!("sbx-{hex}")));
        let set = self.secrets_set;
        if !set.vcf_password {
            credentials.vcf_password = random()?;
        }
        if !set.vcf_api_key {
            credentials.vcf_api_key = random()?;
        }
        if !set.vcf_id_token {
            credentials.vcf_id_token = random()?;
        }
        if !set.f5xc_api_token {
            credentials.f5xc_api_token = random()?;
        }
        Ok(credentials)
    }

    /// The VCF username `createToken` accepts.
    pub fn vcf_username(mut self, username: impl Into<String>) -> Self {
        self.credentials.vcf_username = username.into();
        self
    }

    /// The VCF password `createToken` accepts.
    pub fn vcf_password(mut self, password: impl Into<String>) -> Self {
        self.credentials.vcf_password = SecretString::from(password.into());
        self.secrets_set.vcf_password = true;
        self
    }

    /// The VCF API key `createToken` accepts as `apiKey`.
    pub fn vcf_api_key(mut self, key: impl Into<String>) -> Self {
        self.credentials.vcf_api_key = SecretString::from(key.into());
        self.secrets_set.vcf_api_key = true;
        self
    }

    /// The VCF identity token `createToken` accepts as `idToken`.
    pub fn vcf_id_token(mut self, token: impl Into<String>) -> Self {
        self.credentials.vcf_id_token = SecretString::from(token.into());
        self.secrets_set.vcf_id_token = true;
        self
    }

    /// The F5 XC API token the sandbox accepts.
    pub fn f5xc_api_token(mut self, token: impl Into<String>) -> Self {
        self.credentials.f5xc_api_token = SecretString::from(token.into());
        self.secrets_set.f5xc_api_token = true;
        self
    }

    /// The F5 pipelines (`product_name`) the sandbox knows, replacing the
    /// default `example`.
    pub fn f5xc_pipelines<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.credentials.f5xc_pipelines = names.into_iter().map(Into::into).collect();
        self
    }

    /// How long VCF access tokens (and F5 pipeline tokens) live; default 1 h.
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// How long VCF refresh tokens live; default 24 h.
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Runs the sandbox's clock `seconds` off the real one (negative:
    /// behind), as an SDDC Manager with a wrong clock: its JWTs' `iat` and
    /// `exp` and its own expiry checks follow that clock. Default 0.
    ///
    /// ```
    /// # async fn run() -> Result<(), refresh_sandbox::Error> {
    /// let two_hours_behind = refresh_sandbox::Sandbox::builder()
    ///     .clock_offset_secs(-2 * 3600)
    ///     .start()
    ///     .await?;
    /// # let _ = two_hours_behind;
    /// # Ok(())
    /// # }
    /// ```
    pub fn clock_offset_secs(mut self, seconds: i64) -> Self {
        self.clock_offset = seconds;
        self
    }

    /// Answers F5 requests past `max` per fixed window of length `per` with
    /// `429` and `Retry-After` (the window's remaining whole seconds, at
    /// least 1). Off by default.
    pub fn f5xc_rate_limit(mut self, max: u32, per: Duration) -> Self {
        self.rate_limit = Some((max, per));
        self
    }

    /// Serves HTTPS with a self-signed certificate generated at start for
    /// `localhost`, `127.0.0.1` and `::1`, and, listening beyond loopback
    /// (see [`listen`](SandboxBuilder::listen)), the addresses the sandbox
    /// is reached at: the one it listens on, or for a wildcard this
    /// machine's address on its default route. [`Sandbox::ca_pem`] gives it.
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// The address to listen on; default `127.0.0.1:0` (any free port).
    ///
    /// An address beyond loopback (`0.0.0.0:0`, `[::]:0`, a LAN address)
    /// lets other machines reach the sandbox, so the secrets it accepts are
    /// then not the published demo ones: each of the VCF password, API key
    /// and identity token and the F5 API token that was not set on this
    /// builder is random for this sandbox ([`Sandbox::credentials`] gives
    /// them; the username stays the demo one). For a wildcard,
    /// [`Sandbox::vcf_url`] names this machine's address on its default
    /// route (loopback when it has none); [`Sandbox::local_addr`] is the
    /// bound wildcard.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// How long a client has to send a request's headers, counted from when
    /// the connection is ready for a request (so an idle keep-alive
    /// connection is closed after it too), and to finish a TLS handshake;
    /// then the connection is closed without an answer. Default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`] (10 s). A zero duration is taken as
    /// 1 ms.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a client has to send a request's body once its headers are
    /// in. Past it, a spec operation records an
    /// [`InvalidJson`](ViolationKind::InvalidJson) violation (the body could
    /// not be read) and gets the operation's documented answer to one; any
    /// other path gets `408`; either way with `Connection: close`. Default
    /// [`DEFAULT_BODY_READ_TIMEOUT`] (30 s).
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Also serves a few read-only SDDC Manager endpoints as
    /// [protected routes](SandboxBuilder::protected_route), with canned
    /// answers in the shapes of VMware's VCF 9.0.2 API (`specs/swagger.json`
    /// of `vmware/vcf-sdk-go`): `GET /v1/domains` (a `PageOfDomain`: one
    /// management and one workload domain), `GET /v1/clusters`
    /// (`PageOfCluster`), `GET /v1/hosts` (`PageOfHost`, seven hosts) and
    /// `GET /v1/system` (`System`). Lists are one page:
    /// `{"elements": [...], "pageMetadata": {"pageNumber": 0, "pageSize": N,
    /// "totalElements": N, "totalPages": 1}}`; queries (filters, paging) are
    /// ignored. A [`protected_route`](SandboxBuilder::protected_route)
    /// declared on the same method and path replaces the sample, whichever
    /// is called first. Off by default, so that a test sandbox answers only
    /// what its test declares; `refresh sandbox` turns it on.
    ///
    /// ```
    /// use refresh_sandbox::{Method, Sandbox};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = Sandbox::builder().with_sddc_samples().start().await?;
    /// assert!(sandbox.protected_routes().contains(&(Method::GET, "/v1/domains".to_owned())));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_sddc_samples(mut self) -> Self {
        self.sddc_samples = true;
        self
    }

    /// Where to write the spec report when the sandbox stops; default: the
    /// folder named by [`REPORT_DIR_ENV`], if set.
    pub fn report_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.report_dir = Some(dir.into());
        self
    }

    /// Declares an endpoint of "the rest of SDDC Manager" that the service
    /// under test calls with its VCF access token, such as `GET /v1/domains`,
    /// and the JSON it answers (`200`, `application/json`).
    ///
    /// The route requires `Authorization: Bearer <access token>` with a live
    /// access token from this sandbox's VCF API (see
    /// [`Sandbox::is_valid_access_token`]). A missing header, another scheme,
    /// or an unknown, expired, invalidated or revoked token gets `401` with a
    /// VCF `Error` body (`errorCode` `UNAUTHORIZED`, a message saying which,
    /// never the token) and `WWW-Authenticate: Bearer`. Another method on a
    /// declared path gets `405` with `Allow`.
    ///
    /// The path matches exactly (no templates; the request's query is
    /// ignored). Declare several routes, and several methods on one path, by
    /// calling this again; declaring a method and path twice keeps the last
    /// body. Requests to declared paths are outside the specs: they are not
    /// [validated](Sandbox::validated_requests) nor recorded as violations;
    /// [`Sandbox::route_requests`] and [`Sandbox::route_rejections`] count
    /// them. [`start`](SandboxBuilder::start) fails with
    /// [`Error::ProtectedRoute`] for a path without a leading `/`, with a
    /// query, or that belongs to a spec operation (such as `/v1/tokens`).
    ///
    /// ```no_run
    /// use refresh_sandbox::{Method, Sandbox};
    /// # async fn run() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = Sandbox::builder()
    ///     .protected_route(
    ///         Method::GET,
    ///         "/v1/domains",
    ///         serde_json::json!({ "elements": [{ "id": "d1", "name": "sfo-m01" }] }),
    ///     )
    ///     .start()
    ///     .await?;
    /// // ... the service under test logs in, calls GET /v1/domains, then:
    /// assert_eq!(sandbox.route_rejections(Method::GET, "/v1/domains"), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn protected_route(
        mut self,
        method: Method,
        path: impl Into<String>,
        body: serde_json::Value,
    ) -> Self {
        self.protected_routes.push((method, path.into(), body));
        self
    }

    /// Binds, starts serving on the current tokio runtime and returns the
    /// running sandbox.
    pub async fn start(self) -> Result<Sandbox, Error> {
        // tokio's bind and spawn would panic outside a runtime.
        tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let specs = spec::Specs::load()?;
        let credentials = self.credentials_for_listen()?;
        // The samples first: a route the test declares replaces one.
        let mut declared = match self.sddc_samples {
            true => samples::routes(),
            false => Vec::new(),
        };
        declared.extend(self.protected_routes);
        let protected = routes::ProtectedRoutes::new(&specs, declared)?;
        let tcp = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: self.listen,
                source,
            })?;
        let bind_error = |source| Error::Bind {
            addr: self.listen,
            source,
        };
        let bound = tcp.local_addr().map_err(bind_error)?;
        let reachable = net::reachable_addresses(bound.ip());
        let (acceptor, ca_pem) = match self.tls {
            true => {
                let mut names = reachable.clone();
                if !bound.ip().is_unspecified() {
                    names.push(bound.ip());
                }
                let (acceptor, pem) = net::self_signed_tls(&names)?;
                (Some(acceptor), Some(pem))
            }
            false => (None, None),
        };
        let listener = net::SandboxListener::new(tcp, acceptor, self.header_read_timeout)
            .map_err(bind_error)?;
        let local_addr = listener.local_addr();
        let shared = Arc::new(Shared {
            specs,
            protected,
            credentials,
            body_read_timeout: self.body_read_timeout,
            signer: jwt::Signer::with_clock_offset(self.clock_offset)?,
            rate_limit: self.rate_limit,
            state: Mutex::new(MutableState {
                access_ttl: self.access_ttl,
                refresh_ttl: self.refresh_ttl,
                refresh_tokens: HashMap::new(),
                access_tokens: access::AccessTokens::default(),
                faults: HashMap::new(),
                revoke_before: HashMap::new(),
                requests: HashMap::new(),
                violations: Vec::new(),
                validated: 0,
                taken_violations: 0,
                rate_window: None,
            }),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let server = tokio::spawn(net::serve(listener, app, stopped, self.header_read_timeout));
        let scheme = if ca_pem.is_some() { "https" } else { "http" };
        // A wildcard is no address to connect to: name the machine's address
        // on its default route, else loopback of the same family.
        let host = match local_addr.ip() {
            ip if ip.is_unspecified() => reachable.first().copied().unwrap_or(match ip {
                std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            }),
            ip => ip,
        };
        let host = match host {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let base_url = format!("{scheme}://{host}:{}", local_addr.port());
        if !net::is_loopback(local_addr.ip()) {
            // `refresh sandbox` warns on stderr itself; a test that asked
            // for this address hears it at info.
            tracing::info!(
                listen = %local_addr,
                "the sandbox listens beyond loopback: other machines can reach it; its secrets are random unless set"
            );
        }
        tracing::debug!(%base_url, "sandbox started");
        Ok(Sandbox {
            shared,
            base_url,
            local_addr,
            ca_pem,
            stop: Some(stop),
            server: Some(server),
            report_dir: self.report_dir,
        })
    }
}

/// A running sandbox serving both APIs. Dropping it stops the server (in the
/// background); [`Sandbox::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    base_url: String,
    local_addr: SocketAddr,
    ca_pem: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    report_dir: Option<std::path::PathBuf>,
}

impl Sandbox {
    /// A builder with the defaults: demo credentials, pipeline `example`,
    /// TTLs 1 h and 24 h, no rate limit, plain HTTP on `127.0.0.1:0`.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts a sandbox with the defaults of [`Sandbox::builder`].
    pub async fn start_default() -> Result<Sandbox, Error> {
        Sandbox::builder().start().await
    }

    /// The base URL of the F5 XC API (the tenant console root), such as
    /// `http://127.0.0.1:41234`.
    pub fn f5xc_url(&self) -> String {
        self.base_url.clone()
    }

    /// The base URL of the VCF SDDC Manager API. The same listener serves
    /// both APIs (their paths do not overlap), so this equals
    /// [`f5xc_url`](Sandbox::f5xc_url).
    pub fn vcf_url(&self) -> String {
        self.base_url.clone()
    }

    /// The address the sandbox listens on (for a wildcard listen address,
    /// the wildcard, such as `0.0.0.0:41234`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the sandbox listens on an address other machines may reach
    /// (anything but `127.0.0.0/8` and `::1`); its secrets are then random
    /// unless the builder set them (see [`SandboxBuilder::listen`]).
    pub fn listens_beyond_loopback(&self) -> bool {
        !net::is_loopback(self.local_addr.ip())
    }

    /// The [protected routes](SandboxBuilder::protected_route) it serves,
    /// [samples](SandboxBuilder::with_sddc_samples) included, as method and
    /// path, sorted by path and then method.
    ///
    /// ```
    /// use refresh_sandbox::{Method, Sandbox};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = Sandbox::builder()
    ///     .protected_route(Method::GET, "/v1/domains", serde_json::json!({ "elements": [] }))
    ///     .start()
    ///     .await?;
    /// assert_eq!(sandbox.protected_routes(), [(Method::GET, "/v1/domains".to_owned())]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn protected_routes(&self) -> Vec<(Method, String)> {
        self.shared.protected.list()
    }

    /// The credentials the sandbox accepts.
    pub fn credentials(&self) -> &Credentials {
        &self.shared.credentials
    }

    /// With TLS, the PEM of the self-signed certificate, which is its own CA:
    /// trust it to reach the sandbox with verification on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The VCF environment the SDK reads, as a lookup:
    /// `VCF_SDDC_MANAGER_HOST` (= [`vcf_url`](Sandbox::vcf_url)),
    /// `VCF_SDDC_MANAGER_USERNAME` and `VCF_SDDC_MANAGER_PASSWORD`; any
    /// other name is `None`. So a downstream test gets a session on the
    /// sandbox in one line, without setting process variables (which
    /// edition 2024 makes `unsafe`):
    /// `VcfSession::from_lookup(sandbox.vcf_env())` (refresh-sdk).
    ///
    /// The values are this sandbox's demo credentials, good for this
    /// sandbox only. The demo API key and identity token are not part of it,
    /// as the SDK takes one kind of credentials at a time: to log in with
    /// one, give `VCF_SDDC_MANAGER_API_KEY` or `VCF_SDDC_MANAGER_ID_TOKEN`
    /// from [`credentials`](Sandbox::credentials) instead of the username and
    /// password. With [TLS](SandboxBuilder::tls) on, the host is an
    /// `https://` URL and the certificate to trust
    /// ([`ca_pem`](Sandbox::ca_pem)) is not part of the environment:
    /// configure the client with it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = refresh_sandbox::Sandbox::start_default().await?;
    /// let env = sandbox.vcf_env();
    /// assert_eq!(env("VCF_SDDC_MANAGER_HOST"), Some(sandbox.vcf_url()));
    /// assert_eq!(env("HOME"), None);
    /// // let session = refresh_sdk::VcfSession::from_lookup(sandbox.vcf_env())?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn vcf_env(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        lookup(self.vcf_env_vars())
    }

    /// The variables of [`vcf_env`](Sandbox::vcf_env) as pairs, for a child
    /// process (`assert_cmd`'s `.envs(...)`). They hold this sandbox's demo
    /// password in the clear: do not log them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = refresh_sandbox::Sandbox::start_default().await?;
    /// let mut command = std::process::Command::new("refresh");
    /// command.args(["vcf", "create-token"]).envs(sandbox.vcf_env_vars());
    /// # Ok(())
    /// # }
    /// ```
    pub fn vcf_env_vars(&self) -> Vec<(&'static str, String)> {
        let credentials = &self.shared.credentials;
        vec![
            ("VCF_SDDC_MANAGER_HOST", self.vcf_url()),
            (
                "VCF_SDDC_MANAGER_USERNAME",
                credentials.vcf_username.clone(),
            ),
            (
                "VCF_SDDC_MANAGER_PASSWORD",
                credentials.vcf_password.expose_secret().to_owned(),
            ),
        ]
    }

    /// The F5 XC environment the SDK reads, as a lookup: `VOLT_API_URL`
    /// (= [`f5xc_url`](Sandbox::f5xc_url)) and `VOLT_API_TOKEN`; any other
    /// name is `None`. For `F5Config::from_lookup(sandbox.f5xc_env())`
    /// (refresh-sdk). The token is this sandbox's demo token, good for this
    /// sandbox only; with [TLS](SandboxBuilder::tls) on, the certificate to
    /// trust ([`ca_pem`](Sandbox::ca_pem)) is not part of it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = refresh_sandbox::Sandbox::start_default().await?;
    /// let env = sandbox.f5xc_env();
    /// assert_eq!(env("VOLT_API_URL"), Some(sandbox.f5xc_url()));
    /// assert_eq!(env("VOLT_API_P12_FILE"), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn f5xc_env(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        lookup(self.f5xc_env_vars())
    }

    /// The variables of [`f5xc_env`](Sandbox::f5xc_env) as pairs, for a
    /// child process. They hold this sandbox's demo API token in the clear:
    /// do not log them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = refresh_sandbox::Sandbox::start_default().await?;
    /// let names: Vec<&str> = sandbox.f5xc_env_vars().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["VOLT_API_URL", "VOLT_API_TOKEN"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn f5xc_env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VOLT_API_URL", self.f5xc_url()),
            (
                "VOLT_API_TOKEN",
                self.shared
                    .credentials
                    .f5xc_api_token
                    .expose_secret()
                    .to_owned(),
            ),
        ]
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// How many requests `operation` has received, faulted and rejected ones
    /// included.
    pub fn requests(&self, operation: Operation) -> u64 {
        self.shared
            .lock()
            .requests
            .get(&operation)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests the [protected route](SandboxBuilder::protected_route)
    /// `method` `path` has received, whatever their answer; 0 for a route
    /// that was not declared (a request with an undeclared method on a
    /// declared path is not counted anywhere).
    ///
    /// ```no_run
    /// # use refresh_sandbox::{Method, Sandbox};
    /// # fn check(sandbox: &Sandbox) {
    /// assert_eq!(sandbox.route_requests(Method::GET, "/v1/domains"), 2);
    /// # }
    /// ```
    pub fn route_requests(&self, method: Method, path: &str) -> u64 {
        self.shared.protected.requests(&method, path)
    }

    /// How many requests to the [protected route](SandboxBuilder::protected_route)
    /// `method` `path` were answered `401`: the renewals a service needed.
    ///
    /// ```no_run
    /// # use refresh_sandbox::{Method, Sandbox};
    /// # fn check(sandbox: &Sandbox) {
    /// sandbox.faults().revoke_access_tokens();
    /// // ... the service calls GET /v1/domains, gets 401, refreshes, retries:
    /// assert_eq!(sandbox.route_rejections(Method::GET, "/v1/domains"), 1);
    /// assert_eq!(sandbox.route_requests(Method::GET, "/v1/domains"), 2);
    /// # }
    /// ```
    pub fn route_rejections(&self, method: Method, path: &str) -> u64 {
        self.shared.protected.rejections(&method, path)
    }

    /// Every violation recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.clone()
    }

    /// Every violation recorded so far, clearing the record. A test that
    /// provokes violations on purpose takes them, so they count as expected
    /// in the suite report (see [`REPORT_DIR_ENV`]).
    pub fn take_violations(&self) -> Vec<Violation> {
        let mut state = self.shared.lock();
        let taken = std::mem::take(&mut state.violations);
        state.taken_violations += taken.len() as u64;
        taken
    }

    /// How many requests the sandbox has checked against the specs.
    /// Requests to [protected routes](SandboxBuilder::protected_route) are
    /// outside the specs and not counted here.
    pub fn validated_requests(&self) -> u64 {
        self.shared.lock().validated
    }

    /// `Ok` when no request violated the specs (and the sandbox answered
    /// only documented statuses); otherwise the violations.
    pub fn check_spec_clean(&self) -> Result<(), Vec<Violation>> {
        let violations = self.violations();
        match violations.is_empty() {
            true => Ok(()),
            false => Err(violations),
        }
    }

    /// A test assertion: no request violated the specs.
    ///
    /// # Panics
    ///
    /// When a violation was recorded, listing them all; that is its purpose.
    /// Use [`check_spec_clean`](Sandbox::check_spec_clean) to handle them.
    #[track_caller]
    pub fn assert_spec_clean(&self) {
        if let Err(violations) = self.check_spec_clean() {
            let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
            panic!(
                "{} request(s) violated the specs:\n{}",
                violations.len(),
                list.join("\n")
            );
        }
    }

    /// Whether `token` is a live access token: this sandbox issued it, it
    /// has not expired (by the sandbox's clock, offset included), its
    /// refresh token was not invalidated and it was not revoked
    /// ([`Faults::revoke_access_tokens`]). Tests check what a client holds
    /// with it; a protected route accepts exactly these tokens.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), refresh_sandbox::Error> {
    /// let sandbox = refresh_sandbox::Sandbox::start_default().await?;
    /// assert!(!sandbox.is_valid_access_token("not.a.token"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_valid_access_token(&self, token: &str) -> bool {
        self.shared.access_token_status(token) == access::TokenStatus::Live
    }

    /// Stops accepting connections, closes idle ones, lets requests in
    /// flight finish for up to [`SHUTDOWN_GRACE`] (1 s), then closes the
    /// connections left (a client stuck mid-request, a delayed answer) and
    /// returns: it never waits on a client.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.write_report();
    }
}

/// A lookup over fixed variables. The closure keeps the values (secrets
/// among them) as [`SecretString`]s, zeroed when it is dropped, and has no
/// `Debug`: a value is shown only to whoever asks for it by name.
fn lookup(
    vars: Vec<(&'static str, String)>,
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: Vec<(&'static str, SecretString)> = vars
        .into_iter()
        .map(|(name, value)| (name, SecretString::from(value)))
        .collect();
    move |name: &str| {
        vars.iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.expose_secret().to_owned())
    }
}

/// When this environment variable names a folder, every sandbox writes a
/// report there as it stops: `<pid>-<n>.json` holding
/// `{"validated": <requests checked>, "violations": [<unexpected>],
/// "expected_violations": <taken by the test>}`. `cargo xtask validate` sets
/// it for the whole test suite and fails on any unexpected violation, so no
/// test can send a request the spec does not allow without noticing.
pub const REPORT_DIR_ENV: &str = "REFRESH_SANDBOX_REPORT_DIR";

impl Sandbox {
    fn write_report(&self) {
        static REPORTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let Some(dir) = &self.report_dir else {
            return;
        };
        let (validated, violations, expected) = {
            let state = self.shared.lock();
            let listed: Vec<String> = state.violations.iter().map(ToString::to_string).collect();
            (state.validated, listed, state.taken_violations)
        };
        let report = serde_json::json!({
            "validated": validated,
            "violations": violations,
            "expected_violations": expected,
        });
        let n = REPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.json", std::process::id()));
        // A report that cannot be written must not fail the test that owns
        // the sandbox; the validate step notices the missing count instead.
        if let Err(e) =
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, report.to_string()))
        {
            tracing::warn!(path = %path.display(), error = %e, "sandbox: cannot write the spec report");
        }
    }
}

/// Injects faults into a running [`Sandbox`]: each call queues `n` faults for
/// an operation, consumed in order by its next requests (one fault per
/// request). Requests still go through the spec checks first. Cloning shares
/// the queue.
#[derive(Clone, Debug)]
pub struct Faults {
    shared: Arc<Shared>,
}

/// One queued fault.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    Delay(Duration),
    Malformed,
    Drop,
    Body {
        status: StatusCode,
        body: serde_json::Value,
    },
    /// A token answer whose access token is this text instead.
    AccessToken(SecretString),
    /// A token answer whose access token was issued this long ago.
    Backdated(Duration),
}

impl Faults {
    fn push(&self, operation: Operation, n: usize, fault: Fault) {
        let mut state = self.shared.lock();
        let queue = state.faults.entry(operation).or_default();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` requests of `operation` get `status`, with the API's
    /// error body (VCF `Error`, F5 a JSON string) and, when given,
    /// `Retry-After` in whole seconds (rounded up). A status the operation
    /// does not document is allowed here and not recorded as a violation:
    /// the test asked for it.
    pub fn fail_next(
        &self,
        operation: Operation,
        n: usize,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) {
        self.push(
            operation,
            n,
            Fault::Status {
                status,
                retry_after,
            },
        );
    }

    /// The next `n` requests of `operation` get `status` with this JSON
    /// body, as it is: an error the way a particular SDDC Manager words it
    /// (with `notifications`, say). Not checked against the spec and not
    /// recorded as a violation: the test asked for it.
    ///
    /// ```
    /// # fn run(sandbox: refresh_sandbox::Sandbox) {
    /// use refresh_sandbox::{Operation, StatusCode};
    /// sandbox.faults().fail_next_with_body(
    ///     Operation::VcfCreateToken,
    ///     1,
    ///     StatusCode::BAD_REQUEST,
    ///     serde_json::json!({
    ///         "errorCode": "PASSWORD_EXPIRED",
    ///         "message": "The password has expired.",
    ///         "notifications": [{ "severity": "ERROR", "message": "Expired on 2026-11-01" }]
    ///     }),
    /// );
    /// # }
    /// ```
    pub fn fail_next_with_body(
        &self,
        operation: Operation,
        n: usize,
        status: StatusCode,
        body: serde_json::Value,
    ) {
        self.push(operation, n, Fault::Body { status, body });
    }

    /// The next `n` requests of `operation` are answered normally after
    /// `delay`.
    pub fn delay_next(&self, operation: Operation, n: usize, delay: Duration) {
        self.push(operation, n, Fault::Delay(delay));
    }

    /// The next `n` requests of `operation` get the operation's success
    /// status with `Content-Type: application/json` and a body that is not
    /// JSON. (`invalidateRefreshToken`'s `204` carries no body, so for it
    /// this is a plain `204`.)
    pub fn malformed_next(&self, operation: Operation, n: usize) {
        self.push(operation, n, Fault::Malformed);
    }

    /// The next `n` requests of `operation` are read in full and then their
    /// connection is closed without any response byte: the client sees the
    /// connection closed before a response (reqwest: an error whose
    /// `is_request()` is true, not a status).
    pub fn drop_connection_next(&self, operation: Operation, n: usize) {
        self.push(operation, n, Fault::Drop);
    }

    /// Expires every refresh token issued so far: refreshing with any of them
    /// gets `404`. The access tokens they brought stay live until their own
    /// expiry.
    pub fn expire_all_refresh_tokens(&self) {
        self.shared.lock().refresh_tokens.clear();
    }

    /// Revokes every VCF access token issued so far, as an SDDC Manager
    /// whose sessions were reset: [protected routes](SandboxBuilder::protected_route)
    /// answer them `401` and [`Sandbox::is_valid_access_token`] says `false`.
    /// Refresh tokens stay valid, and access tokens issued afterwards (by a
    /// refresh or a new `createToken`) are live.
    ///
    /// ```
    /// # async fn run(sandbox: refresh_sandbox::Sandbox, held: &str) {
    /// sandbox.faults().revoke_access_tokens();
    /// assert!(!sandbox.is_valid_access_token(held));
    /// // The client under test should now get a 401, refresh and carry on.
    /// # }
    /// ```
    pub fn revoke_access_tokens(&self) {
        self.shared.lock().access_tokens.revoke_all();
    }

    /// The next `n` requests to the [protected route](SandboxBuilder::protected_route)
    /// `method` `path` first [revoke every access token](Self::revoke_access_tokens)
    /// issued so far, then are checked: a client that logged in a moment
    /// before gets its `401` mid-call, as when SDDC Manager's sessions are
    /// reset between a login and the call that follows it (which a test
    /// cannot time from outside when both run in another process).
    ///
    /// ```
    /// # fn run(sandbox: refresh_sandbox::Sandbox) {
    /// use refresh_sandbox::Method;
    /// sandbox.faults().revoke_before_next(Method::GET, "/v1/domains", 1);
    /// # }
    /// ```
    pub fn revoke_before_next(&self, method: Method, path: impl Into<String>, n: usize) {
        *self
            .shared
            .lock()
            .revoke_before
            .entry((method, path.into()))
            .or_default() += n;
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.lock().access_ttl = ttl;
    }

    /// Sets the lifetime of refresh tokens issued from now on.
    pub fn set_refresh_token_ttl(&self, ttl: Duration) {
        self.shared.lock().refresh_ttl = ttl;
    }

    /// Drops every queued fault.
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.faults.clear();
        state.revoke_before.clear();
    }

    /// How many faults are still queued for `operation`.
    pub fn pending(&self, operation: Operation) -> usize {
        self.shared
            .lock()
            .faults
            .get(&operation)
            .map_or(0, VecDeque::len)
    }

    /// The next `n` requests of `operation` are answered normally, except
    /// that when the answer carries an access token (`createToken`'s pair,
    /// `refreshAccessToken`'s string) it is `text` instead of the token the
    /// sandbox issued: one with a control character or a space, say, that
    /// no client should put in a header. The rest of the answer is real: a
    /// pair's refresh token id is issued and works. A request answered
    /// without a token (refused credentials, an unknown refresh token, a
    /// violation), or of another operation, is answered as usual and still
    /// uses up one of the `n`.
    ///
    /// ```
    /// # fn run(sandbox: refresh_sandbox::Sandbox) {
    /// use refresh_sandbox::Operation;
    /// sandbox
    ///     .faults()
    ///     .access_token_next(Operation::VcfCreateToken, 1, "eyJ\u{1}broken");
    /// # }
    /// ```
    pub fn access_token_next(&self, operation: Operation, n: usize, text: impl Into<String>) {
        let text = SecretString::from(text.into());
        self.push(operation, n, Fault::AccessToken(text));
    }

    /// The next `n` requests of `operation` are answered normally, except
    /// that the access token they carry (`createToken`'s pair,
    /// `refreshAccessToken`'s string) claims to have been issued `ago`
    /// (whole seconds) before now: its `iat` and `exp` are both that much
    /// earlier, so it has only the access TTL less `ago` left (nothing when
    /// `ago` is at least the TTL), as a token an SDDC Manager had cached and
    /// handed out again. The sandbox judges it by that `exp` too: a protected
    /// route accepts it until then and [`Sandbox::is_valid_access_token`]
    /// agrees. The response's `Date` is the real one. A request answered
    /// without a token, or of another operation, is answered as usual and
    /// still uses up one of the `n`.
    ///
    /// ```
    /// # fn run(sandbox: refresh_sandbox::Sandbox) {
    /// use std::time::Duration;
    /// use refresh_sandbox::Operation;
    /// // An hour's token with 5 s left.
    /// sandbox.faults().backdate_next(
    ///     Operation::VcfRefreshAccessToken,
    ///     1,
    ///     Duration::from_secs(3600 - 5),
    /// );
    /// # }
    /// ```
    pub fn backdate_next(&self, operation: Operation, n: usize, ago: Duration) {
        self.push(operation, n, Fault::Backdated(ago));
    }
}

/// What the server's handlers share with the [`Sandbox`] handle.
pub(crate) struct Shared {
    specs: spec::Specs,
    protected: routes::ProtectedRoutes,
    credentials: Credentials,
    /// How long a request's body may take to arrive.
    body_read_timeout: Duration,
    signer: jwt::Signer,
    rate_limit: Option<(u32, Duration)>,
    state: Mutex<MutableState>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

pub(crate) struct MutableState {
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// Refresh token id → when it expires.
    refresh_tokens: HashMap<String, Instant>,
    /// Every access token issued, with what makes it live or not.
    access_tokens: access::AccessTokens,
    faults: HashMap<Operation, VecDeque<Fault>>,
    /// Protected-route requests (method, path) still to revoke every access
    /// token before they are checked.
    revoke_before: HashMap<(Method, String), usize>,
    requests: HashMap<Operation, u64>,
    violations: Vec<Violation>,
    /// Requests checked against the specs, whatever their path.
    validated: u64,
    /// Violations a test took with `take_violations`: provoked on purpose.
    taken_violations: u64,
    /// Start of the current F5 rate-limit window and the requests in it.
    rate_window: Option<(Instant, u32)>,
}

impl Shared {
    /// The state's lock. A handler that panicked while holding it cannot
    /// leave the maps half-updated in a way that matters to a test sandbox,
    /// so a poisoned lock is used as is rather than turned into a panic.
    fn lock(&self) -> MutexGuard<'_, MutableState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Revokes every access token if a [`Faults::revoke_before_next`] is
    /// pending for this protected-route request.
    fn revoke_if_asked(&self, method: &Method, path: &str) {
        let mut state = self.lock();
        let key = (method.clone(), path.to_owned());
        if let Some(pending) = state.revoke_before.get_mut(&key).filter(|n| **n > 0) {
            *pending -= 1;
            state.access_tokens.revoke_all();
        }
    }

    /// What the sandbox makes of a VCF access token, by its own clock.
    fn access_token_status(&self, token: &str) -> access::TokenStatus {
        let Some(claims) = self.signer.verify(token) else {
            return access::TokenStatus::Unknown;
        };
        let now = self.signer.now();
        self.lock()
            .access_tokens
            .status(&claims.jti, claims.exp, now)
    }
}
