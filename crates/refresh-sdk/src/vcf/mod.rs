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
use std::path::PathBuf;
use std::sync::Arc;

use progenitor_client::Error as GeneratedError;
use reqwest::header::{DATE, HeaderValue};
use secrecy::zeroize::Zeroize as _;
use secrecy::{ExposeSecret, SecretString};

use crate::base_url::normalize_url;
use crate::env::{self, Lookup, var as env_var};
use crate::error::{
    Error, ErrorKind, Result, Service, VcfErrorDetail, VcfNotification, VcfRemediation,
    VendorDetail,
};
use crate::middleware::TransportPolicy;
use crate::transport::{self, CallFacts, Transport, TransportOptions};

mod options;
mod session;

pub use options::SessionOptions;
pub use session::{SessionStats, VcfSession};

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
    /// The variables the VCF `from_env` constructors ([`VcfConfig`],
    /// [`VcfSession`]) read, for a program that lists or checks them.
    ///
    /// ```
    /// assert!(refresh_sdk::VcfConfig::VARIABLES.contains(&"VCF_SDDC_MANAGER_HOST"));
    /// ```
    pub const VARIABLES: [&str; 11] = [
        "VCF_SDDC_MANAGER_HOST",
        "VCF_SDDC_MANAGER_CA_CERT",
        "VCF_ALLOW_UNVERIFIED_TLS",
        "VCF_ALLOW_INSECURE_HTTP",
        USERNAME,
        PASSWORD,
        PASSWORD_FILE,
        API_KEY,
        API_KEY_FILE,
        ID_TOKEN,
        ID_TOKEN_FILE,
    ];

    /// An SDDC Manager host or URL (see [`normalize_host`]).
    pub fn new(host: &str) -> Result<Self> {
        Ok(VcfConfig {
            base_url: normalize_host(host)?,
            transport: TransportOptions::default(),
        })
    }

    /// Reads `VCF_SDDC_MANAGER_HOST`, `VCF_SDDC_MANAGER_CA_CERT` (a PEM
    /// file of CA certificates to trust besides the bundled roots, such as
    /// the one that signed a self-signed SDDC Manager's certificate: the
    /// safe alternative to the next), `VCF_ALLOW_UNVERIFIED_TLS` (`true`
    /// or `1` to accept self-signed certificates; warned about once) and
    /// `VCF_ALLOW_INSECURE_HTTP` (`true` to allow plain `http://` to a host
    /// that is not loopback; see [`TransportOptions::allow_insecure_http`]).
    /// An unreadable CA file is an error that names the variable.
    pub fn from_env() -> Result<Self> {
        VcfConfig::from_lookup(env::process(SERVICE, &VcfConfig::VARIABLES)?)
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup: &Lookup = &lookup;
        let host = env_var(lookup, "VCF_SDDC_MANAGER_HOST").ok_or_else(|| {
            Error::config("VCF_SDDC_MANAGER_HOST is not set").for_service(SERVICE)
        })?;
        let mut transport = TransportOptions::default();
        if let Some(path) = env_var(lookup, "VCF_SDDC_MANAGER_CA_CERT") {
            let pem = std::fs::read(path).map_err(|err| {
                Error::config("cannot read the file named by VCF_SDDC_MANAGER_CA_CERT")
                    .with_source(err)
                    .for_service(SERVICE)
            })?;
            transport = transport.ca_bundle_pem(pem);
        }
        if let Some(allow) = env::flag(lookup, "VCF_ALLOW_UNVERIFIED_TLS", SERVICE)? {
            transport = transport.allow_unverified_tls(allow);
        }
        if let Some(allow) = env::flag(lookup, "VCF_ALLOW_INSECURE_HTTP", SERVICE)? {
            transport = transport.allow_insecure_http(allow);
        }
        let config = VcfConfig::new(&host)?;
        Ok(config.transport(transport))
    }

    /// Replaces the timeouts, retry policy and size cap, and the TLS and
    /// plain-HTTP settings that `options` set; those it leaves unset keep
    /// their values (from the environment, say).
    pub fn transport(mut self, options: TransportOptions) -> Self {
        self.transport = options.over(&self.transport);
        self
    }

    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

// The variables of the credentials.
const USERNAME: &str = "VCF_SDDC_MANAGER_USERNAME";
const PASSWORD: &str = "VCF_SDDC_MANAGER_PASSWORD";
const PASSWORD_FILE: &str = "VCF_SDDC_MANAGER_PASSWORD_FILE";
const API_KEY: &str = "VCF_SDDC_MANAGER_API_KEY";
const API_KEY_FILE: &str = "VCF_SDDC_MANAGER_API_KEY_FILE";
const ID_TOKEN: &str = "VCF_SDDC_MANAGER_ID_TOKEN";
const ID_TOKEN_FILE: &str = "VCF_SDDC_MANAGER_ID_TOKEN_FILE";

/// Which fields of VCF's `TokenCreationSpec` a login fills.
#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// `username` and `password`.
    Password { username: String },
    /// `apiKey`.
    ApiKey,
    /// `idToken`.
    IdToken,
}

impl Kind {
    /// What the secret is called in messages.
    fn secret_name(&self) -> &'static str {
        match self {
            Kind::Password { .. } => "password",
            Kind::ApiKey => "API key",
            Kind::IdToken => "ID token",
        }
    }

    /// What to check when SDDC Manager refuses this kind of credentials.
    fn refused_hint(&self) -> &'static str {
        match self {
            Kind::Password { .. } => transport::hint(SERVICE, "create_token", ErrorKind::Auth),
            Kind::ApiKey => {
                "Check VCF_SDDC_MANAGER_API_KEY (or the file VCF_SDDC_MANAGER_API_KEY_FILE names)"
            }
            Kind::IdToken => {
                "Check VCF_SDDC_MANAGER_ID_TOKEN (or the file VCF_SDDC_MANAGER_ID_TOKEN_FILE names); an identity token expires"
            }
        }
    }
}

/// Where the secret of [`VcfCredentials`] is kept.
#[derive(Clone)]
enum SecretSource {
    /// Given once, kept for the credentials' life.
    Fixed(SecretString),
    /// Read from this file at every login.
    File {
        path: PathBuf,
        /// The `_FILE` variable that named the file, when the environment
        /// did: errors then name the variable, not the path (which may be a
        /// secret pasted into the wrong variable).
        variable: Option<&'static str>,
    },
}

/// A VCF user's credentials, one of the three kinds SDDC Manager's
/// `POST /v1/tokens` takes: a username and password, an API key, or an
/// identity (ID) token.
///
/// The secret is either fixed ([`new`](Self::new), [`api_key`](Self::api_key),
/// [`id_token`](Self::id_token)) or kept in a file that is read again before
/// every login ([`password_file`](Self::password_file),
/// [`api_key_file`](Self::api_key_file), [`id_token_file`](Self::id_token_file),
/// or a `_FILE` variable): a password rotated in a mounted secret (a
/// Kubernetes `Secret` volume, say) is used from the next login on, without a
/// restart. `Debug` never shows the secret.
#[derive(Clone)]
pub struct VcfCredentials {
    kind: Kind,
    secret: SecretSource,
}

impl fmt::Debug for VcfCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("VcfCredentials");
        out.field("kind", &self.kind.secret_name());
        if let Kind::Password { username } = &self.kind {
            out.field("username", username);
        }
        match &self.secret {
            SecretSource::Fixed(_) => out.field("secret", &"[REDACTED]"),
            SecretSource::File {
                variable: Some(variable),
                ..
            } => out.field("secret_file_named_by", variable),
            SecretSource::File {
                path,
                variable: None,
            } => out.field("secret_file", path),
        };
        out.finish()
    }
}

impl VcfCredentials {
    /// A username and password.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::new("administrator@vsphere.local", "secret");
    /// assert_eq!(credentials.username(), Some("administrator@vsphere.local"));
    /// ```
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        VcfCredentials {
            kind: Kind::Password {
                username: username.into(),
            },
            secret: SecretSource::Fixed(SecretString::from(password.into())),
        }
    }

    /// An API key, sent as `apiKey`.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::api_key("my-api-key");
    /// assert_eq!(credentials.username(), None);
    /// ```
    pub fn api_key(key: impl Into<String>) -> Self {
        VcfCredentials {
            kind: Kind::ApiKey,
            secret: SecretSource::Fixed(SecretString::from(key.into())),
        }
    }

    /// An identity token from the identity provider SDDC Manager trusts,
    /// sent as `idToken`.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::id_token("eyJhbGciOi...");
    /// assert_eq!(credentials.username(), None);
    /// ```
    pub fn id_token(token: impl Into<String>) -> Self {
        VcfCredentials {
            kind: Kind::IdToken,
            secret: SecretSource::Fixed(SecretString::from(token.into())),
        }
    }

    /// A username, and a password kept in the file at `path`, read again
    /// before every login (one trailing line break is not part of it), so a
    /// rotated password is used without a restart. Nothing is read here: a
    /// file that cannot be read fails the login, with a
    /// [`Config`](ErrorKind::Config) error.
    ///
    /// ```
    /// use refresh_sdk::VcfCredentials;
    /// // A Kubernetes Secret mounted as a volume.
    /// let credentials = VcfCredentials::password_file("svc-tokens@vsphere.local", "/run/secrets/vcf/password");
    /// assert_eq!(credentials.username(), Some("svc-tokens@vsphere.local"));
    /// ```
    pub fn password_file(username: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        VcfCredentials {
            kind: Kind::Password {
                username: username.into(),
            },
            secret: SecretSource::File {
                path: path.into(),
                variable: None,
            },
        }
    }

    /// An API key kept in the file at `path`, read again before every login
    /// as in [`password_file`](Self::password_file).
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::api_key_file("/run/secrets/vcf/api-key");
    /// # let _ = credentials;
    /// ```
    pub fn api_key_file(path: impl Into<PathBuf>) -> Self {
        VcfCredentials {
            kind: Kind::ApiKey,
            secret: SecretSource::File {
                path: path.into(),
                variable: None,
            },
        }
    }

    /// An identity token kept in the file at `path`, read again before every
    /// login as in [`password_file`](Self::password_file): whatever renews the
    /// token only has to rewrite the file.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::id_token_file("/var/run/secrets/tokens/vcf");
    /// # let _ = credentials;
    /// ```
    pub fn id_token_file(path: impl Into<PathBuf>) -> Self {
        VcfCredentials {
            kind: Kind::IdToken,
            secret: SecretSource::File {
                path: path.into(),
                variable: None,
            },
        }
    }

    /// Reads the credentials through `lookup`: exactly one of
    ///
    /// - `VCF_SDDC_MANAGER_USERNAME` with `VCF_SDDC_MANAGER_PASSWORD` or
    ///   `VCF_SDDC_MANAGER_PASSWORD_FILE`;
    /// - `VCF_SDDC_MANAGER_API_KEY` or `VCF_SDDC_MANAGER_API_KEY_FILE`;
    /// - `VCF_SDDC_MANAGER_ID_TOKEN` or `VCF_SDDC_MANAGER_ID_TOKEN_FILE`.
    ///
    /// A `_FILE` variable names a file that holds the secret; it is read
    /// here, to report a wrong path at once, and again before every login,
    /// so a secret rotated in a mounted volume is picked up without a
    /// restart. One trailing line break (`\n` or `\r\n`) is not part of the
    /// secret. Setting a secret both ways, no kind, or two kinds is a
    /// [`Config`](ErrorKind::Config) error that names the variables and never
    /// their values.
    ///
    /// ```
    /// use refresh_sdk::VcfCredentials;
    /// let env = |name: &str| match name {
    ///     "VCF_SDDC_MANAGER_API_KEY" => Some("my-api-key".to_owned()),
    ///     _ => None,
    /// };
    /// let credentials = VcfCredentials::from_lookup(env)?;
    /// assert_eq!(credentials.username(), None);
    /// # Ok::<(), refresh_sdk::Error>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup: &Lookup = &lookup;
        let username = env_var(lookup, USERNAME);
        let password = env::secret_var(lookup, PASSWORD, PASSWORD_FILE, SERVICE)?;
        let api_key = env::secret_var(lookup, API_KEY, API_KEY_FILE, SERVICE)?;
        let id_token = env::secret_var(lookup, ID_TOKEN, ID_TOKEN_FILE, SERVICE)?;

        // The variables of each kind that are set, to name them.
        let set = |name: &'static str| env_var(lookup, name).map(|_| name);
        let mut kinds: Vec<Vec<&'static str>> = [
            vec![set(USERNAME), set(PASSWORD), set(PASSWORD_FILE)],
            vec![set(API_KEY), set(API_KEY_FILE)],
            vec![set(ID_TOKEN), set(ID_TOKEN_FILE)],
        ]
        .into_iter()
        .map(|names| names.into_iter().flatten().collect::<Vec<_>>())
        .collect();
        kinds.retain(|names| !names.is_empty());
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.concat();
            return Err(Error::config(format!(
                "VCF credentials of more than one kind are set ({}); set only a username and password, an API key, or an ID token",
                names.join(", ")
            ))
            .for_service(SERVICE));
        }

        let (kind, secret, file_variable) = if let Some(secret) = api_key {
            (Kind::ApiKey, secret, API_KEY_FILE)
        } else if let Some(secret) = id_token {
            (Kind::IdToken, secret, ID_TOKEN_FILE)
        } else if username.is_some() || password.is_some() {
            let username = username.ok_or_else(|| {
                Error::config(format!("{USERNAME} is not set (the password is)"))
                    .for_service(SERVICE)
            })?;
            let password = password.ok_or_else(|| {
                Error::config(format!(
                    "{PASSWORD} is not set (nor {PASSWORD_FILE}); the username needs a password"
                ))
                .for_service(SERVICE)
            })?;
            (Kind::Password { username }, password, PASSWORD_FILE)
        } else {
            return Err(Error::config(format!(
                "no VCF credentials: set {USERNAME} and {PASSWORD} (or {PASSWORD_FILE}), or {API_KEY} (or {API_KEY_FILE}), or {ID_TOKEN} (or {ID_TOKEN_FILE})"
            ))
            .for_service(SERVICE));
        };
        let credentials = VcfCredentials {
            kind,
            secret: match secret {
                env::SecretVar::Value(value) => SecretSource::Fixed(value),
                env::SecretVar::File(path) => SecretSource::File {
                    path,
                    variable: Some(file_variable),
                },
            },
        };
        // A wrong path is reported now rather than at the first login.
        credentials.login()?;
        Ok(credentials)
    }

    /// The username, for credentials of that kind; `None` for an API key or
    /// an identity token.
    pub fn username(&self) -> Option<&str> {
        match &self.kind {
            Kind::Password { username } => Some(username),
            Kind::ApiKey | Kind::IdToken => None,
        }
    }

    /// What one login sends: the fixed secret, or the file's content now.
    pub(crate) fn login(&self) -> Result<Login> {
        let secret = match &self.secret {
            SecretSource::Fixed(secret) => secret.clone(),
            SecretSource::File { path, variable } => {
                let what = match variable {
                    Some(variable) => format!("the file named by {variable}"),
                    None => format!(
                        "the VCF {} file {}",
                        self.kind.secret_name(),
                        path.display()
                    ),
                };
                env::read_secret_file(path, &what, SERVICE)?
            }
        };
        Ok(Login {
            kind: self.kind.clone(),
            secret,
        })
    }

    /// Whether the secret is read from a file at each login, so that it may
    /// change between two logins.
    // The session engine asks this to decide whether refused credentials
    // can have been fixed by a rotation.
    pub(crate) fn is_file_backed(&self) -> bool {
        matches!(self.secret, SecretSource::File { .. })
    }
}

/// What one createToken sends, resolved from the credentials at that moment.
#[derive(Clone)]
pub(crate) struct Login {
    kind: Kind,
    secret: SecretString,
}

impl Login {
    /// Whether `other` sends the same credentials: the same kind, username
    /// and secret. A login that was refused is not worth sending again
    /// unchanged; one whose secret was rotated is.
    // The session engine compares logins to tell a rotated secret from the
    // one SDDC Manager refused.
    pub(crate) fn same_as(&self, other: &Login) -> bool {
        self.kind == other.kind
            && secrets_equal(
                self.secret.expose_secret().as_bytes(),
                other.secret.expose_secret().as_bytes(),
            )
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Login");
        out.field("kind", &self.kind.secret_name());
        if let Kind::Password { username } = &self.kind {
            out.field("username", username);
        }
        out.field("secret", &"[REDACTED]").finish()
    }
}

/// Compares two secrets in time that depends on their lengths only, not on
/// where they first differ.
fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
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
    /// The executor's policy, for the other SDDC Manager calls.
    policy: TransportPolicy,
}

fn vcf_detail(error: &vcf_tokens::types::Error) -> Option<VendorDetail> {
    let detail = VcfErrorDetail {
        message: error.message.clone(),
        error_code: error.error_code.clone(),
        remediation_message: error.remediation_message.clone(),
        reference_token: error.reference_token.clone(),
        notifications: error
            .notifications
            .iter()
            .map(|n| {
                let mut notification = VcfNotification {
                    severity: n.severity.clone(),
                    message: n.message.clone(),
                    impact: n.impact_message.clone(),
                    ..VcfNotification::default()
                };
                notification.remediations = n
                    .remediations
                    .iter()
                    .map(|r| VcfRemediation {
                        message: r.message.clone(),
                        link: r.link.clone(),
                    })
                    .collect();
                notification
            })
            .collect(),
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
        transport::check_scheme(SERVICE, &config.base_url, &config.transport)?;
        let http =
            transport::build_http_client(SERVICE, &config.transport, None, Default::default())?;
        let exec = Transport::new(SERVICE, &config.transport);
        let policy = exec.policy().clone();
        let raw = vcf_tokens::Client::new_with_client(&config.base_url, http, Some(Arc::new(exec)));
        Ok(VcfClient {
            raw,
            base_url: config.base_url,
            policy,
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

    /// The SDK's transport policy with this client's settings, for requests
    /// sent on the same connection pool; success bodies pass unread.
    pub(crate) fn policy(&self) -> TransportPolicy {
        self.policy.clone().streaming_successes()
    }

    /// A client for the rest of the SDDC Manager API with the tokens of
    /// `source`: this client's connection pool, TLS settings and transport
    /// policy, and [`BearerAuth`](crate::middleware::BearerAuth) on
    /// `source`. [`VcfSession::api_client`] is this with the session as its
    /// source; this is for a source of your own (tokens kept elsewhere).
    ///
    /// ```no_run
    /// # async fn run(client: refresh_sdk::VcfClient, source: std::sync::Arc<dyn refresh_sdk::AccessTokenSource>) -> Result<(), Box<dyn std::error::Error>> {
    /// let api = client.api_client(source);
    /// let system = api.get(format!("{}/v1/system", client.base_url())).send().await?;
    /// # let _ = system;
    /// # Ok(())
    /// # }
    /// ```
    pub fn api_client(
        &self,
        source: Arc<dyn crate::AccessTokenSource>,
    ) -> reqwest_middleware::ClientWithMiddleware {
        use vcf_tokens::ClientInfo as _;
        let layers: Vec<Arc<dyn reqwest_middleware::Middleware>> = vec![
            Arc::new(crate::middleware::BearerAuth::new(source)),
            Arc::new(self.policy()),
        ];
        reqwest_middleware::ClientWithMiddleware::new(self.raw.client().clone(), layers)
    }

    /// Exchanges credentials for a new token pair (`POST /v1/tokens`).
    /// File-backed credentials are read now. An empty username, password,
    /// API key or identity token is an [`ErrorKind::InvalidInput`] error and
    /// nothing is sent; credentials SDDC Manager refuses are an
    /// [`ErrorKind::Auth`] error.
    pub async fn create_token(&self, credentials: &VcfCredentials) -> Result<TokenPair> {
        self.create_token_dated(credentials, false)
            .await
            .map(|(pair, _)| pair)
    }

    /// [`create_token`](Self::create_token) with, if `keep_date`, the
    /// response's `Date`: the server's clock, which a session needs for a
    /// token without `iat` (looked up only then: a plain call pays nothing).
    pub(crate) async fn create_token_dated(
        &self,
        credentials: &VcfCredentials,
        keep_date: bool,
    ) -> Result<(TokenPair, Option<HeaderValue>)> {
        let login = credentials.login()?;
        self.create_token_login(&login, keep_date).await
    }

    /// [`create_token_dated`](Self::create_token_dated) for credentials
    /// already resolved: what is sent is exactly `login`.
    pub(crate) async fn create_token_login(
        &self,
        login: &Login,
        keep_date: bool,
    ) -> Result<(TokenPair, Option<HeaderValue>)> {
        const OPERATION: &str = "create_token";
        let empty = |what: &str| {
            Err(
                Error::new(ErrorKind::InvalidInput, format!("the {what} is empty"))
                    .at(SERVICE, OPERATION),
            )
        };
        let secret = login.secret.expose_secret();
        let mut spec = vcf_tokens::types::TokenCreationSpec::default();
        match &login.kind {
            Kind::Password { username } => {
                if username.trim().is_empty() {
                    return empty("username");
                }
                // No SDDC Manager account has an empty password: sending one
                // would only count as a failed login against the account.
                if secret.is_empty() {
                    return empty("password");
                }
                spec.username = Some(username.clone());
                spec.password = Some(secret.to_owned());
            }
            Kind::ApiKey => {
                if secret.trim().is_empty() {
                    return empty("API key");
                }
                spec.api_key = Some(secret.to_owned());
            }
            Kind::IdToken => {
                if secret.trim().is_empty() {
                    return empty("ID token");
                }
                spec.id_token = Some(secret.to_owned());
            }
        }
        let (result, facts) = transport::observe(self.raw.create_token(&spec)).await;
        // The secret's copy in the request is wiped, not just freed.
        spec.password.zeroize();
        spec.api_key.zeroize();
        spec.id_token.zeroize();
        let (pair, date) = match result {
            Ok(value) => {
                let date = date_of(keep_date, value.headers());
                (value.into_inner(), date)
            }
            // The spec says 201; a server answering 200 with the same body is
            // still a success.
            Err(GeneratedError::UnexpectedResponse(response)) if response.status().is_success() => {
                let date = date_of(keep_date, response.headers());
                // The executor bounded this body by the size cap (and emptied
                // it when it was over), so it can be read whole.
                let pair = match response
                    .bytes()
                    .await
                    .ok()
                    .map(|body| serde_json::from_slice::<vcf_tokens::types::TokenPair>(&body))
                {
                    Some(Ok(pair)) => pair,
                    _ => {
                        return Err(invalid(
                            OPERATION,
                            &facts,
                            "the token pair is not the documented JSON",
                        ));
                    }
                };
                (pair, date)
            }
            Err(err) => {
                return Err(credentials_rejected(
                    map(OPERATION, err, &facts),
                    &login.kind,
                ));
            }
        };
        let access = pair.access_token.filter(|t| !t.is_empty());
        let refresh = pair
            .refresh_token
            .and_then(|r| r.id)
            .filter(|t| !t.is_empty());
        match (access, refresh) {
            (Some(access), Some(refresh)) => Ok((
                TokenPair {
                    access_token: access.into(),
                    refresh_token: refresh.into(),
                },
                date,
            )),
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
        self.refresh_access_token_dated(refresh_token, false)
            .await
            .map(|(token, _)| token)
    }

    /// [`refresh_access_token`](Self::refresh_access_token) with, if
    /// `keep_date`, the response's `Date`, as
    /// [`create_token_dated`](Self::create_token_dated).
    pub(crate) async fn refresh_access_token_dated(
        &self,
        refresh_token: &SecretString,
        keep_date: bool,
    ) -> Result<(SecretString, Option<HeaderValue>)> {
        const OPERATION: &str = "refresh_access_token";
        let (result, facts) =
            transport::observe(self.raw.refresh_access_token(refresh_token.expose_secret())).await;
        let (token, date) = match result {
            Ok(value) => {
                let date = date_of(keep_date, value.headers());
                (value.into_inner(), date)
            }
            // Some servers send the token as bare text rather than a JSON
            // string (its headers are not kept: no `Date`).
            Err(GeneratedError::InvalidResponsePayload(body, _))
                if facts.status.is_some_and(|s| s.is_success()) && looks_like_bare_token(&body) =>
            {
                (
                    String::from_utf8_lossy(body.trim_ascii()).into_owned(),
                    None,
                )
            }
            Err(err) => return Err(map(OPERATION, err, &facts)),
        };
        if token.is_empty() {
            return Err(invalid(OPERATION, &facts, "the access token is empty"));
        }
        Ok((token.into(), date))
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
/// exchanges credentials, all three mean the credentials were refused, whatever
/// their kind.
fn credentials_rejected(error: Error, kind: &Kind) -> Error {
    match error.status().map(|s| s.as_u16()) {
        Some(400 | 401 | 403) => error
            .with_kind(ErrorKind::Auth)
            .with_hint(kind.refused_hint()),
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

/// The `Date` of a response's `headers`, when it is wanted.
fn date_of(keep: bool, headers: &reqwest::header::HeaderMap) -> Option<HeaderValue> {
    if keep {
        headers.get(DATE).cloned()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use refresh_loopback::{Loopback, Reply, Step};

    use super::*;

    /// A file in the temp directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, content: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "refresh-sdk-vcf-unit-{}-{name}",
                std::process::id()
            ));
            std::fs::write(&path, content).expect("write a temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn secret(login: &Login) -> &str {
        login.secret.expose_secret()
    }

    #[test]
    fn a_file_backed_login_reads_the_file_each_time() {
        let file = TempFile::new("rotate", "first\n");
        let credentials = VcfCredentials::password_file("admin", &file.0);
        assert!(credentials.is_file_backed());
        let first = credentials.login().expect("readable");
        assert_eq!(secret(&first), "first");
        assert!(first.same_as(&credentials.login().expect("readable")));

        std::fs::write(&file.0, "second\r\n").expect("rewrite");
        let second = credentials.login().expect("readable");
        assert_eq!(secret(&second), "second");
        assert!(!second.same_as(&first), "a rotated secret is another login");

        // From a `_FILE` variable, likewise.
        let path = file.0.to_string_lossy().into_owned();
        let credentials = VcfCredentials::from_lookup(|name: &str| {
            (name == "VCF_SDDC_MANAGER_ID_TOKEN_FILE").then(|| path.clone())
        })
        .expect("configured");
        assert!(credentials.is_file_backed());
        assert_eq!(secret(&credentials.login().expect("readable")), "second");
        std::fs::write(&file.0, "third\n\n").expect("rewrite");
        assert_eq!(secret(&credentials.login().expect("readable")), "third\n");
        std::fs::remove_file(&file.0).expect("remove");
        let err = credentials.login().expect_err("gone");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.to_string()
                .contains("the file named by VCF_SDDC_MANAGER_ID_TOKEN_FILE"),
            "{err}"
        );
    }

    #[test]
    fn fixed_credentials_are_not_file_backed_and_log_in_as_given() {
        for credentials in [
            VcfCredentials::new("admin", "pw\n"),
            VcfCredentials::api_key("pw\n"),
            VcfCredentials::id_token("pw\n"),
        ] {
            assert!(!credentials.is_file_backed());
            // A value given in code is the secret as it is.
            assert_eq!(secret(&credentials.login().expect("fixed")), "pw\n");
        }
    }

    #[test]
    fn logins_are_the_same_only_with_the_same_kind_username_and_secret() {
        let login = |credentials: VcfCredentials| credentials.login().expect("fixed");
        let admin = login(VcfCredentials::new("admin", "s"));
        assert!(admin.same_as(&login(VcfCredentials::new("admin", "s"))));
        assert!(!admin.same_as(&login(VcfCredentials::new("other", "s"))));
        assert!(!admin.same_as(&login(VcfCredentials::new("admin", "t"))));
        assert!(!admin.same_as(&login(VcfCredentials::new("admin", "s2"))));
        assert!(!admin.same_as(&login(VcfCredentials::api_key("s"))));
        let key = login(VcfCredentials::api_key("s"));
        assert!(key.same_as(&login(VcfCredentials::api_key("s"))));
        assert!(!key.same_as(&login(VcfCredentials::id_token("s"))));
        assert!(!key.same_as(&login(VcfCredentials::api_key("t"))));
        let debug = format!("{admin:?} {key:#?}");
        assert!(debug.contains("admin"), "{debug}");
        assert!(!debug.contains("\"s\""), "{debug}");
    }

    /// What `createToken` sends for each kind: exactly that kind's fields.
    #[tokio::test]
    async fn each_kind_sends_only_its_own_fields() {
        let pair = r#"{"accessToken":"a","refreshToken":{"id":"r"}}"#;
        let server = Loopback::always(Reply::new(201, "application/json", pair))
            .await
            .without_date();
        let url = server.url();
        let client =
            VcfClient::new(VcfConfig::new(&url).expect("a valid host")).expect("the client builds");
        for credentials in [
            VcfCredentials::new("admin", "pw"),
            VcfCredentials::api_key("key"),
            VcfCredentials::id_token("id"),
        ] {
            client.create_token(&credentials).await.expect("a pair");
        }
        let sent: Vec<serde_json::Value> = server.received().iter().map(|r| r.json()).collect();
        assert_eq!(
            sent,
            [
                serde_json::json!({"username": "admin", "password": "pw"}),
                serde_json::json!({"apiKey": "key"}),
                serde_json::json!({"idToken": "id"}),
            ]
        );
    }

    /// The spec says 201; a 200 with the same body is still a success, whether
    /// the executor passed the body through (known length) or read it
    /// (chunked, no length).
    #[tokio::test]
    async fn a_token_pair_answered_with_200_is_a_success() {
        let pair = r#"{"accessToken":"access","refreshToken":{"id":"refresh"}}"#;
        let with_length = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{pair}",
            pair.len()
        );
        let chunked = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{pair}\r\n0\r\n\r\n",
            pair.len()
        );
        for response in [with_length, chunked] {
            let server = Loopback::always(Step::Raw(response.clone().into_bytes())).await;
            let client = VcfClient::new(VcfConfig::new(&server.url()).expect("a valid host"))
                .expect("the client builds");
            let tokens = client
                .create_token(&VcfCredentials::new("admin", "pw"))
                .await
                .unwrap_or_else(|err| panic!("{err} for {response:?}"));
            assert_eq!(tokens.access_token.expose_secret(), "access");
            assert_eq!(tokens.refresh_token.expose_secret(), "refresh");
        }
    }
}
