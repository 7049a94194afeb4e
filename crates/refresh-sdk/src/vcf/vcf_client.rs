//! [`VcfClient`]: the token operations (`create_token`,
//! `refresh_access_token`, `invalidate_refresh_token`) and the checks of
//! their responses.

use std::sync::Arc;

use progenitor_client::Error as GeneratedError;
use reqwest::header::{DATE, HeaderValue};
use secrecy::zeroize::Zeroize as _;
use secrecy::{ExposeSecret, SecretString};

use super::credentials::{Kind, Login};
use super::errors::map;
use super::{SERVICE, VcfConfig, VcfCredentials};
use crate::error::{Error, ErrorKind, Result};
use crate::http::client::{build_http_client, check_scheme};
use crate::http::exec::{Call, CallFacts, Transport, TransportPolicy, generated_exec};

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

impl VcfClient {
    /// Builds the client (and its one `reqwest::Client`).
    pub fn new(config: VcfConfig) -> Result<Self> {
        check_scheme(
            SERVICE,
            &config.base_url,
            &config.transport,
            "VCF_ALLOW_INSECURE_HTTP",
        )?;
        let http = build_http_client(SERVICE, &config.transport, None, Default::default())?;
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

    /// The generated client for one operation: this client's connection
    /// pool, with `call` as its executor.
    /// It shares the long-lived client's base URL and operation URLs,
    /// parsed once when that was built: building it is two reference-count
    /// increments, no copy of the base URL and no parsing.
    fn generated(&self, call: &Arc<Call>) -> vcf_tokens::Client {
        self.raw.with_inner(Some(call.clone()))
    }

    /// The SDK's transport policy with this client's settings, for requests
    /// sent on the same connection pool; success bodies pass unread.
    pub(crate) fn policy(&self) -> TransportPolicy {
        self.policy.clone().streaming_successes()
    }

    /// A client for the rest of the SDDC Manager API with the tokens of
    /// `source` (see [`ApiClient`](crate::ApiClient)): this client's
    /// connection pool, TLS settings and transport policy.
    /// [`VcfSession::api_client`](super::VcfSession::api_client) is this
    /// with the session as its source; this is for a source of your own
    /// (tokens kept elsewhere).
    ///
    /// ```no_run
    /// # async fn run(client: refresh_sdk::VcfClient, source: std::sync::Arc<dyn refresh_sdk::AccessTokenSource>) -> Result<(), Box<dyn std::error::Error>> {
    /// let api = client.api_client(source);
    /// let system = api.get(format!("{}/v1/system", client.base_url())).send().await?;
    /// # let _ = system;
    /// # Ok(())
    /// # }
    /// ```
    pub fn api_client(&self, source: Arc<dyn crate::AccessTokenSource>) -> crate::ApiClient {
        use vcf_tokens::ClientInfo as _;
        crate::ApiClient::new(
            self.raw.client().clone(),
            crate::middleware::BearerAuth::new(source),
            self.policy(),
        )
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
        let call = Call::new(&self.policy, false);
        let result = self.generated(&call).create_token(&spec).await;
        let facts = call.facts();
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
                    map(OPERATION, err, &facts, secret),
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
        // Repeated after a 502 or 504, as an idempotent request would be:
        // a second refresh only mints another access token.
        let call = Call::new(&self.policy, true);
        let result = self
            .generated(&call)
            .refresh_access_token(refresh_token.expose_secret())
            .await;
        let facts = call.facts();
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
            Err(err) => return Err(map(OPERATION, err, &facts, refresh_token.expose_secret())),
        };
        if token.is_empty() {
            return Err(invalid(OPERATION, &facts, "the access token is empty"));
        }
        Ok((token.into(), date))
    }

    /// Invalidates a refresh token (`DELETE /v1/tokens/refresh-token`).
    pub async fn invalidate_refresh_token(&self, refresh_token: &SecretString) -> Result<()> {
        const OPERATION: &str = "invalidate_refresh_token";
        let call = Call::new(&self.policy, false);
        let result = self
            .generated(&call)
            .invalidate_refresh_token(refresh_token.expose_secret())
            .await;
        let facts = call.facts();
        match result {
            Ok(_) => Ok(()),
            Err(GeneratedError::UnexpectedResponse(response)) if response.status().is_success() => {
                Ok(())
            }
            Err(err) => Err(map(OPERATION, err, &facts, refresh_token.expose_secret())),
        }
    }
}

generated_exec!(vcf_tokens::Exec);

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
