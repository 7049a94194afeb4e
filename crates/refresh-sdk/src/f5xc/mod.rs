//! F5 Distributed Cloud (F5 XC) AI Data BFDP: pipeline tokens.
//!
//! ```no_run
//! # async fn run() -> refresh_sdk::Result<()> {
//! use refresh_sdk::ExposeSecret;
//! use refresh_sdk::f5xc::F5Client;
//!
//! // VOLT_API_URL=acme (or https://acme.console.ves.volterra.io[/api]),
//! // VOLT_API_TOKEN=... (or VOLT_API_P12_FILE + VES_P12_PASSWORD with the
//! // `p12` feature; see `F5Config::from_env`)
//! let f5 = F5Client::from_env()?;
//! let token = f5.refresh_token("my-pipeline").await?;
//! let parsed: serde_json::Value = token.parse_json()?;
//! # let _ = (token.secret().expose_secret(), parsed);
//! # Ok(())
//! # }
//! ```
//!
//! A service that needs the token per request holds a
//! [`PipelineTokenSource`] ([`F5Client::pipeline`]): one POST at a time,
//! shared by concurrent callers, and reuse only for as long as
//! [`reuse_for`](PipelineTokenSource::reuse_for) says.

use std::fmt;
use std::path::Path;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::de::DeserializeOwned;

use crate::base_url::normalize_url;
use crate::env::{self, Lookup, var as env_var};
use crate::error::{Error, ErrorKind, Result, Service, VendorDetail};
use crate::transport::{self, Transport, TransportOptions};

mod pipeline;

pub use pipeline::{PipelineStats, PipelineTokenSource};

/// The generated F5 XC BFDP client, for callers who need the raw operation.
pub use f5xc_bfdp as client;

/// The domain of F5 XC tenant consoles, used when only a tenant name is given.
pub const CONSOLE_DOMAIN: &str = "console.ves.volterra.io";

const SERVICE: Service = Service::F5Xc;

/// Turns a tenant name (`acme`), a console root
/// (`https://acme.console.ves.volterra.io`) or the `.../api` form of
/// `VOLT_API_URL` into the one base URL the operations are appended to.
/// Every trailing `/api` segment is dropped, so a normalized URL normalizes
/// to itself.
///
/// ```
/// use refresh_sdk::f5xc::normalize_base_url;
/// let expected = "https://acme.console.ves.volterra.io";
/// assert_eq!(normalize_base_url("acme").unwrap(), expected);
/// assert_eq!(normalize_base_url("https://acme.console.ves.volterra.io/api/").unwrap(), expected);
/// assert_eq!(normalize_base_url("https://acme.console.ves.volterra.io/api/api").unwrap(), expected);
/// assert_eq!(normalize_base_url(expected).unwrap(), expected);
/// ```
pub fn normalize_base_url(input: &str) -> Result<String> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Error::config(
            "the F5 XC address is empty; set VOLT_API_URL to the tenant name or console URL",
        )
        .for_service(SERVICE));
    }
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else if input.contains('.') || input.contains(':') || input.contains('/') {
        format!("https://{input}")
    } else if input.len() <= 63 && input.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        format!("https://{}.{CONSOLE_DOMAIN}", input.to_ascii_lowercase())
    } else {
        // Not quoted: a value in the wrong variable may be a token.
        return Err(Error::config(
            "the F5 XC address (VOLT_API_URL) is neither a tenant name nor a URL",
        )
        .for_service(SERVICE));
    };
    normalize_url(&with_scheme, SERVICE, true)
}

/// A client certificate presented as the TLS client identity.
#[derive(Clone)]
pub struct ClientCertificate {
    identity_pem: SecretSlice<u8>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCertificate([REDACTED])")
    }
}

impl ClientCertificate {
    /// A PEM certificate (chain) and its PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: SecretSlice<u8>) -> Result<Self> {
        let mut identity = Vec::with_capacity(cert_pem.len() + key_pem.expose_secret().len() + 1);
        identity.extend_from_slice(key_pem.expose_secret());
        identity.push(b'\n');
        identity.extend_from_slice(cert_pem);
        let certificate = ClientCertificate {
            identity_pem: identity.into(),
        };
        certificate.identity()?;
        Ok(certificate)
    }

    /// A PEM certificate file and its PEM private-key file.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let cert_pem = read_file(cert.as_ref(), "certificate")?;
        let key_pem = read_file(key.as_ref(), "private key")?;
        ClientCertificate::from_pem(&cert_pem, key_pem.into())
    }

    /// A PKCS#12 (`.p12`) archive, as F5 XC's console downloads them.
    #[cfg(feature = "p12")]
    pub fn from_p12(der: &[u8], password: &SecretString) -> Result<Self> {
        let wrong = || {
            Error::config("cannot open the .p12 API certificate: wrong password (VES_P12_PASSWORD) or not a PKCS#12 file")
                .for_service(SERVICE)
        };
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password.expose_secret(),
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|_| wrong())?;
        let Some((_, chain)) = store.private_key_chain() else {
            return Err(
                Error::config("the .p12 API certificate holds no private key").for_service(SERVICE),
            );
        };
        if chain.certs().is_empty() {
            return Err(
                Error::config("the .p12 API certificate holds no certificate").for_service(SERVICE),
            );
        }
        let certs: Vec<&[u8]> = chain.certs().iter().map(|cert| cert.as_der()).collect();
        let identity = pem_chain(chain.key().as_der(), &certs);
        let certificate = ClientCertificate {
            identity_pem: identity.into(),
        };
        certificate.identity()?;
        Ok(certificate)
    }

    /// A PKCS#12 (`.p12`) file, as F5 XC's console downloads them.
    #[cfg(feature = "p12")]
    pub fn from_p12_file(path: impl AsRef<Path>, password: &SecretString) -> Result<Self> {
        let der = read_file(path.as_ref(), ".p12 API certificate")?;
        ClientCertificate::from_p12(&der, password)
    }

    fn identity(&self) -> Result<reqwest::Identity> {
        reqwest::Identity::from_pem(self.identity_pem.expose_secret()).map_err(|_| {
            Error::config("the client certificate or its private key is not valid PEM")
                .for_service(SERVICE)
        })
    }
}

/// Reads the file an environment variable names. The error names the
/// variable, not its value: that may be a secret pasted into the wrong one.
fn read_named(path: &str, variable: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| {
        Error::config(format!("cannot read the file named by {variable}"))
            .with_source(err)
            .for_service(SERVICE)
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| {
        Error::config(format!("cannot read the {what} {}", path.display()))
            .with_source(err)
            .for_service(SERVICE)
    })
}

/// The PEM of a private key and its certificates, written into one buffer
/// of exactly its final size: it is never reallocated (which would leave a
/// copy of the key in freed memory) and becomes a secret without a copy.
#[cfg(feature = "p12")]
fn pem_chain(key: &[u8], certs: &[&[u8]]) -> Vec<u8> {
    use base64::Engine as _;
    const LINE: usize = 64;
    let base64_len = |der: &[u8]| der.len().div_ceil(3) * 4;
    let block_len = |label: &str, der: &[u8]| {
        let body = base64_len(der);
        "-----BEGIN -----\n-----END -----\n".len() + 2 * label.len() + body + body.div_ceil(LINE)
    };
    let block = |out: &mut Vec<u8>, label: &str, der: &[u8]| {
        let mut body = Zeroizing::new(vec![0; base64_len(der)]);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(der, &mut body[..])
            .unwrap_or(0);
        out.extend_from_slice(b"-----BEGIN ");
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(b"-----\n");
        for line in body[..written].chunks(LINE) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(b"-----END ");
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(b"-----\n");
    };
    let total = block_len("PRIVATE KEY", key)
        + certs
            .iter()
            .map(|cert| block_len("CERTIFICATE", cert))
            .sum::<usize>();
    let mut pem = Vec::with_capacity(total);
    block(&mut pem, "PRIVATE KEY", key);
    for cert in certs {
        block(&mut pem, "CERTIFICATE", cert);
    }
    pem
}

/// How F5 XC authenticates the caller. A client keeps its credentials for
/// its whole life (files such as `VOLT_API_TOKEN_FILE` names are read once,
/// when the configuration is read): for a rotated token, build a new
/// [`F5Client`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum F5Credentials {
    /// An API token, sent as `Authorization: APIToken <token>`.
    ApiToken(SecretString),
    /// An API certificate, presented as the TLS client identity.
    Certificate(ClientCertificate),
}

impl F5Credentials {
    /// An API token.
    pub fn api_token(token: impl Into<String>) -> Self {
        F5Credentials::ApiToken(SecretString::from(token.into()))
    }
}

/// Where and how to reach F5 XC.
#[derive(Clone, Debug)]
pub struct F5Config {
    base_url: String,
    credentials: F5Credentials,
    transport: TransportOptions,
}

impl F5Config {
    /// A tenant name or console URL (any form [`normalize_base_url`] takes)
    /// and credentials.
    pub fn new(tenant_or_url: &str, credentials: F5Credentials) -> Result<Self> {
        Ok(F5Config {
            base_url: normalize_base_url(tenant_or_url)?,
            credentials,
            transport: TransportOptions::default(),
        })
    }

    /// Reads the configuration from the environment, with the names F5's own
    /// tooling (vesctl, the Terraform provider) reads:
    ///
    /// - `VOLT_API_URL`: the tenant name or console URL;
    /// - the credentials, the first of these that is set:
    ///   - `VOLT_API_TOKEN`: an API token, or `VOLT_API_TOKEN_FILE`: the path
    ///     of a file that holds it;
    ///   - `VOLT_API_P12_FILE`: the path of a `.p12` API certificate, with its
    ///     password in `VES_P12_PASSWORD` or in the file
    ///     `VES_P12_PASSWORD_FILE` names (feature `p12`);
    ///   - `VES_P12_CONTENT`: the `.p12` file's content, base64-encoded (line
    ///     breaks allowed), with its password as for `VOLT_API_P12_FILE`
    ///     (feature `p12`);
    ///   - `VOLT_API_CERT` and `VOLT_API_KEY`: PEM certificate and key files;
    /// - `VOLT_API_CA_CERT` (optional): a PEM file of CA certificates to trust
    ///   in addition to the bundled roots, as
    ///   [`TransportOptions::ca_bundle_pem`] (kept by
    ///   [`transport`](Self::transport) unless its options give another).
    /// - `VOLT_ALLOW_INSECURE_HTTP`: `true` allows plain `http://` to a host
    ///   that is not loopback ([`TransportOptions::allow_insecure_http`]).
    ///
    /// Without the `p12` feature, a `.p12` variable is an error that says
    /// how to turn the feature on. No error quotes a variable's value.
    ///
    /// The files of `VOLT_API_TOKEN_FILE` and `VES_P12_PASSWORD_FILE` (one
    /// trailing line break, `\n` or `\r\n`, is not part of the secret) are
    /// read here, once: F5 XC credentials are fixed for the life of the
    /// configuration and of the [`F5Client`] built from it, so a rotated
    /// token takes a new client. Setting both a variable and its `_FILE`
    /// form is an error naming both.
    pub fn from_env() -> Result<Self> {
        F5Config::from_lookup(env::process(SERVICE, &F5Config::VARIABLES)?)
    }

    /// The variables [`from_env`](Self::from_env) reads, for a program that
    /// lists or checks them.
    ///
    /// ```
    /// assert!(refresh_sdk::F5Config::VARIABLES.contains(&"VOLT_API_URL"));
    /// ```
    pub const VARIABLES: [&str; 11] = [
        "VOLT_API_URL",
        "VOLT_API_TOKEN",
        "VOLT_API_TOKEN_FILE",
        "VOLT_API_P12_FILE",
        "VES_P12_CONTENT",
        "VES_P12_PASSWORD",
        "VES_P12_PASSWORD_FILE",
        "VOLT_API_CERT",
        "VOLT_API_KEY",
        "VOLT_API_CA_CERT",
        "VOLT_ALLOW_INSECURE_HTTP",
    ];

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup: &Lookup = &lookup;
        let url = env_var(lookup, "VOLT_API_URL").ok_or_else(|| {
            Error::config("VOLT_API_URL is not set; set it to the tenant name or console URL")
                .for_service(SERVICE)
        })?;
        let token = env::secret_var(lookup, "VOLT_API_TOKEN", "VOLT_API_TOKEN_FILE", SERVICE)?;
        let p12_password =
            env::secret_var(lookup, "VES_P12_PASSWORD", "VES_P12_PASSWORD_FILE", SERVICE)?;
        let credentials = if let Some(token) = token {
            F5Credentials::ApiToken(match token {
                // A token pasted with a trailing newline or space would make
                // every request a puzzling 401.
                env::SecretVar::Value(token) => token.expose_secret().trim().to_owned().into(),
                env::SecretVar::File(path) => {
                    env::read_secret_file(&path, "the file named by VOLT_API_TOKEN_FILE", SERVICE)?
                }
            })
        } else if let Some(path) = env_var(lookup, "VOLT_API_P12_FILE") {
            p12_credentials(p12_password, P12Variable::File(path))?
        } else if let Some(content) = env_var(lookup, "VES_P12_CONTENT") {
            p12_credentials(p12_password, P12Variable::Content(content.into()))?
        } else if let Some(cert) = env_var(lookup, "VOLT_API_CERT") {
            let key = env_var(lookup, "VOLT_API_KEY").ok_or_else(|| {
                Error::config("VOLT_API_CERT is set but VOLT_API_KEY is not").for_service(SERVICE)
            })?;
            F5Credentials::Certificate(ClientCertificate::from_pem(
                &read_named(&cert, "VOLT_API_CERT")?,
                read_named(&key, "VOLT_API_KEY")?.into(),
            )?)
        } else {
            return Err(Error::config(
                "no F5 XC credentials: set VOLT_API_TOKEN (or VOLT_API_TOKEN_FILE), or VOLT_API_P12_FILE (or VES_P12_CONTENT) and VES_P12_PASSWORD (or VES_P12_PASSWORD_FILE), or VOLT_API_CERT and VOLT_API_KEY",
            )
            .for_service(SERVICE));
        };
        let mut transport = TransportOptions::default();
        if let Some(path) = env_var(lookup, "VOLT_API_CA_CERT") {
            let pem = read_named(&path, "VOLT_API_CA_CERT")?;
            transport = transport.ca_bundle_pem(pem);
        }
        if let Some(allow) = crate::env::flag(lookup, "VOLT_ALLOW_INSECURE_HTTP", SERVICE)? {
            transport = transport.allow_insecure_http(allow);
        }
        Ok(F5Config::new(&url, credentials)?.transport(transport))
    }

    /// Replaces the timeouts, retry policy and size cap, and the TLS and
    /// plain-HTTP settings that `options` set; those it leaves unset (a CA
    /// bundle [`from_env`](Self::from_env) read from `VOLT_API_CA_CERT`, say)
    /// keep their values.
    pub fn transport(mut self, options: TransportOptions) -> Self {
        self.transport = options.over(&self.transport);
        self
    }

    /// The timeouts, retry policy, size cap and TLS options this
    /// configuration holds.
    ///
    /// ```
    /// # fn run() -> refresh_sdk::Result<()> {
    /// use refresh_sdk::{F5Config, RetryPolicy};
    /// let config = F5Config::from_env()?;
    /// // Change the retries but keep the CA bundle of VOLT_API_CA_CERT.
    /// let options = config.transport_options().clone().retry(RetryPolicy::no_retries());
    /// let config = config.transport(options);
    /// # let _ = config;
    /// # Ok(())
    /// # }
    /// ```
    pub fn transport_options(&self) -> &TransportOptions {
        &self.transport
    }

    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

/// Where the environment gives a `.p12` API certificate.
// Without the `p12` feature only the variable's name is used.
#[cfg_attr(not(feature = "p12"), allow(dead_code))]
enum P12Variable {
    /// `VOLT_API_P12_FILE`: a path.
    File(String),
    /// `VES_P12_CONTENT`: the file's content, base64-encoded.
    Content(SecretString),
}

impl P12Variable {
    fn name(&self) -> &'static str {
        match self {
            P12Variable::File(_) => "VOLT_API_P12_FILE",
            P12Variable::Content(_) => "VES_P12_CONTENT",
        }
    }
}

/// The `.p12` API certificate the environment names, opened with the
/// password in `VES_P12_PASSWORD` or the file `VES_P12_PASSWORD_FILE` names.
#[cfg(feature = "p12")]
fn p12_credentials(password: Option<env::SecretVar>, p12: P12Variable) -> Result<F5Credentials> {
    let password = match password {
        Some(env::SecretVar::Value(password)) => password,
        Some(env::SecretVar::File(path)) => {
            env::read_secret_file(&path, "the file named by VES_P12_PASSWORD_FILE", SERVICE)?
        }
        None => {
            return Err(Error::config(format!(
                "{} is set but VES_P12_PASSWORD is not (nor VES_P12_PASSWORD_FILE)",
                p12.name()
            ))
            .for_service(SERVICE));
        }
    };
    let certificate = match p12 {
        P12Variable::File(path) => {
            ClientCertificate::from_p12(&read_named(&path, "VOLT_API_P12_FILE")?, &password)?
        }
        P12Variable::Content(content) => {
            ClientCertificate::from_p12(decode_p12_content(&content)?.expose_secret(), &password)?
        }
    };
    Ok(F5Credentials::Certificate(certificate))
}

/// Without the `p12` feature: an error that says how to turn it on, before
/// anything else (a missing password is not the problem).
#[cfg(not(feature = "p12"))]
fn p12_credentials(_password: Option<env::SecretVar>, p12: P12Variable) -> Result<F5Credentials> {
    Err(Error::config(format!(
        "{} is set, but this build of refresh-sdk reads .p12 API certificates only with its \
         `p12` feature: depend on it with `refresh-sdk = {{ features = [\"p12\"] }}` in \
         Cargo.toml, or give the certificate as PEM files in VOLT_API_CERT and VOLT_API_KEY",
        p12.name()
    ))
    .for_service(SERVICE))
}

/// `VES_P12_CONTENT`'s base64 (standard alphabet, padding optional, line
/// breaks and spaces ignored) as bytes. The error says neither the value nor
/// where it went wrong: the offset and byte the decoder reports are a piece
/// of the secret.
#[cfg(feature = "p12")]
fn decode_p12_content(content: &SecretString) -> Result<SecretSlice<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Sized up front, so the archive's text is never reallocated and left
    // behind in freed memory; zeroized when dropped.
    let text = content.expose_secret();
    let mut compact = Zeroizing::new(String::with_capacity(text.len()));
    compact.extend(text.chars().filter(|c| !c.is_ascii_whitespace()));
    match BASE64.decode(compact.as_bytes()) {
        Ok(der) if !der.is_empty() => Ok(der.into()),
        _ => Err(Error::config(
            "VES_P12_CONTENT is not base64: it must hold the .p12 file's content, \
             base64-encoded (as `base64 -w0 api.p12` prints it)",
        )
        .for_service(SERVICE)),
    }
}

/// The F5 XC BFDP client: one connection pool, authentication, retries,
/// limits and typed errors around the generated client.
#[derive(Clone, Debug)]
pub struct F5Client {
    raw: f5xc_bfdp::Client,
    base_url: String,
}

impl F5Client {
    /// Builds the client (and its one `reqwest::Client`).
    pub fn new(config: F5Config) -> Result<Self> {
        transport::check_scheme(SERVICE, &config.base_url, &config.transport)?;
        let mut headers = HeaderMap::new();
        let mut identity = None;
        match &config.credentials {
            F5Credentials::ApiToken(token) => {
                // The text on the way to the header value is zeroized.
                let secret = token.expose_secret();
                let mut text = Zeroizing::new(String::with_capacity(secret.len() + 9));
                text.push_str("APIToken ");
                text.push_str(secret);
                let mut value = HeaderValue::from_str(&text).map_err(|_| {
                    Error::config("the API token holds characters a header cannot carry")
                        .for_service(SERVICE)
                })?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            F5Credentials::Certificate(certificate) => identity = Some(certificate.identity()?),
        }
        let http = transport::build_http_client(SERVICE, &config.transport, identity, headers)?;
        let exec = Transport::new(SERVICE, &config.transport);
        let raw = f5xc_bfdp::Client::new_with_client(
            &config.base_url,
            http,
            Some(std::sync::Arc::new(exec)),
        );
        Ok(F5Client {
            raw,
            base_url: config.base_url,
        })
    }

    /// Builds the client from the environment; see [`F5Config::from_env`].
    pub fn from_env() -> Result<Self> {
        F5Client::new(F5Config::from_env()?)
    }

    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The generated client, sharing this client's connection pool,
    /// authentication and executor.
    pub fn raw(&self) -> &f5xc_bfdp::Client {
        &self.raw
    }

    /// Refreshes the token of the pipeline `product_name`.
    pub async fn refresh_token(&self, product_name: &str) -> Result<PipelineToken> {
        const OPERATION: &str = "refresh_token";
        if product_name.trim().is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidInput, "the product name is empty")
                    .at(SERVICE, OPERATION),
            );
        }
        let body = f5xc_bfdp::types::RefreshTokenRequest {
            product_name: Some(product_name.to_owned()),
        };
        let (result, facts) = transport::observe(self.raw.refresh_token(&body)).await;
        let response = result
            .map_err(|err| {
                transport::map_error(
                    SERVICE,
                    OPERATION,
                    err,
                    &facts,
                    |text| Some(VendorDetail::Text(text.clone())),
                    |body| {
                        serde_json::from_slice::<String>(body)
                            .ok()
                            .map(VendorDetail::Text)
                    },
                )
            })?
            .into_inner();
        match response.result {
            Some(result) if !result.is_empty() => Ok(PipelineToken {
                result: result.into(),
            }),
            _ => Err(
                Error::new(ErrorKind::InvalidResponse, "the response has no `result`")
                    .with_status(facts.status)
                    .with_attempts(facts.attempts)
                    .at(SERVICE, OPERATION),
            ),
        }
    }

    /// A token source for one pipeline, usable as `Arc<dyn AccessTokenSource>`:
    /// one `refresh_token` POST at a time, shared by every concurrent caller,
    /// run on a task the source owns; tokens are reused only if
    /// [`reuse_for`](PipelineTokenSource::reuse_for) says for how long. See
    /// [`PipelineTokenSource`].
    ///
    /// ```no_run
    /// # async fn run() -> refresh_sdk::Result<()> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use refresh_sdk::{AccessTokenSource, F5Client};
    ///
    /// let f5 = F5Client::from_env()?;
    /// let source: Arc<dyn AccessTokenSource> =
    ///     Arc::new(f5.pipeline("my-pipeline").reuse_for(Duration::from_secs(300)));
    /// let token = source.access_token().await?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pipeline(&self, product_name: impl Into<String>) -> PipelineTokenSource {
        PipelineTokenSource::new(self.clone(), product_name.into())
    }
}

/// A pipeline token: the `result` text F5 XC returned, JSON that carries the
/// token.
#[derive(Clone, Debug)]
pub struct PipelineToken {
    result: SecretString,
}

impl PipelineToken {
    /// The `result` text.
    pub fn secret(&self) -> &SecretString {
        &self.result
    }

    /// The `result` text, owned.
    pub fn into_secret(self) -> SecretString {
        self.result
    }

    /// Parses the `result` text as JSON into a type of the caller's choice
    /// (`serde_json::Value` when the shape is not known). The error never
    /// quotes the text.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(self.result.expose_secret()).map_err(|err| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!(
                    "the token `result` is not the expected JSON ({:?} error at line {} column {})",
                    err.classify(),
                    err.line(),
                    err.column()
                ),
            )
            .at(SERVICE, "refresh_token")
        })
    }
}

#[cfg(all(test, feature = "p12"))]
mod tests {
    use super::pem_chain;

    #[test]
    fn the_pem_chain_is_written_at_exactly_its_final_size() {
        for key_len in 0..70 {
            for cert_len in [0, 1, 2, 3, 47, 48, 49, 100, 1000] {
                let (key, cert) = (vec![7u8; key_len], vec![9u8; cert_len]);
                let pem = pem_chain(&key, &[&cert, &cert]);
                assert_eq!(pem.len(), pem.capacity(), "key {key_len}, cert {cert_len}");
                let text = String::from_utf8(pem).expect("PEM is ASCII");
                assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
                assert!(text.ends_with("-----END CERTIFICATE-----\n"));
                assert!(
                    text.lines()
                        .all(|line| line.len() <= 64 || line.starts_with("-----"))
                );
            }
        }
    }
}
