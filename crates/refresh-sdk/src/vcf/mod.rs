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

use std::sync::Arc;

use progenitor_client::Error as GeneratedError;
use reqwest::header::{DATE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::base_url::normalize_url;
use crate::env::{self, Lookup, var as env_var};
use crate::error::{
    Error, ErrorKind, Result, Service, VcfErrorDetail, VcfNotification, VcfRemediation,
    VendorDetail,
};
use crate::middleware::TransportPolicy;
use crate::transport::{self, CallFacts, Transport, TransportOptions};

mod session;

pub use session::{SessionOptions, SessionStats, VcfSession};

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
    pub const VARIABLES: [&str; 5] = [
        "VCF_SDDC_MANAGER_HOST",
        "VCF_ALLOW_UNVERIFIED_TLS",
        "VCF_ALLOW_INSECURE_HTTP",
        "VCF_SDDC_MANAGER_USERNAME",
        "VCF_SDDC_MANAGER_PASSWORD",
    ];

    /// An SDDC Manager host or URL (see [`normalize_host`]).
    pub fn new(host: &str) -> Result<Self> {
        Ok(VcfConfig {
            base_url: normalize_host(host)?,
            transport: TransportOptions::default(),
        })
    }

    /// Reads `VCF_SDDC_MANAGER_HOST`, `VCF_ALLOW_UNVERIFIED_TLS` (`true`
    /// or `1` to accept self-signed certificates; warned about once) and
    /// `VCF_ALLOW_INSECURE_HTTP` (`true` to allow plain `http://` to a host
    /// that is not loopback; see [`TransportOptions::allow_insecure_http`]).
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

    /// Exchanges credentials for a new token pair (`POST /v1/tokens`).
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
            Err(err) => return Err(credentials_rejected(map(OPERATION, err, &facts))),
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
    use std::io::{Read, Write};

    use super::*;

    /// A loopback server that answers every request with `response`, after
    /// reading the whole request (headers, then `Content-Length` bytes).
    fn serve_raw(response: Vec<u8>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while let Ok(read @ 1..) = stream.read(&mut buffer) {
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = stream.write_all(&response);
            }
        });
        url
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
            let url = serve_raw(response.clone().into_bytes());
            let client = VcfClient::new(VcfConfig::new(&url).expect("a valid host"))
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
