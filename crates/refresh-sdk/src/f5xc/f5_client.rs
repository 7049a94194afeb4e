//! [`F5Client`] and its one operation, `refresh_token`.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::{F5Config, F5Credentials, SERVICE};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result, VendorDetail};
use crate::http::client::{build_http_client, check_scheme};
use crate::http::exec::{Call, Transport, TransportPolicy, generated_exec};
use crate::http::failure::{Vendor, map_error};
use crate::text::Secrets;

generated_exec!(f5xc_bfdp::Exec);

/// What the error mapping knows of F5: its error bodies are JSON strings.
static VENDOR: Vendor = Vendor {
    service: SERVICE,
    detail: |body| {
        serde_json::from_slice::<String>(body)
            .ok()
            .map(VendorDetail::Text)
    },
    hint,
};

/// What the caller can do about an error of `kind`, where F5's calls for
/// more than the generic hint.
fn hint(_operation: &'static str, kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::Auth => Some(
            "Check VOLT_API_TOKEN (or the API certificate) and its permission to refresh pipeline tokens",
        ),
        ErrorKind::NotFound => Some("Check the product name and the tenant in VOLT_API_URL"),
        _ => None,
    }
}

/// The F5 XC BFDP client: one connection pool, authentication, retries,
/// limits and typed errors around the generated client.
#[derive(Clone, Debug)]
pub struct F5Client {
    raw: f5xc_bfdp::Client,
    base_url: String,
    policy: TransportPolicy,
    /// What every request carries that a server's error must not echo: the
    /// API token, when that is the credential.
    secrets: Secrets,
}

impl F5Client {
    /// Builds the client (and its one `reqwest::Client`).
    pub fn new(config: F5Config) -> Result<Self> {
        check_scheme(
            SERVICE,
            &config.base_url,
            &config.transport,
            "VOLT_ALLOW_INSECURE_HTTP",
        )?;
        let mut headers = HeaderMap::new();
        let mut identity = None;
        let mut secrets = Secrets::default();
        match &config.credentials {
            F5Credentials::ApiToken(token) => {
                secrets.add(token.expose_secret());
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
        let http = build_http_client(SERVICE, &config.transport, identity, headers)?;
        let exec = Transport::new(SERVICE, &config.transport);
        let policy = exec.policy().clone();
        let raw = f5xc_bfdp::Client::new_with_client(&config.base_url, http, Some(Arc::new(exec)));
        Ok(F5Client {
            raw,
            base_url: config.base_url,
            policy,
            secrets,
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

    /// The generated client for one operation: this client's connection
    /// pool and authentication, with `call` as its executor.
    /// It shares the long-lived client's base URL and operation URLs,
    /// parsed once when that was built: building it is two reference-count
    /// increments, no copy of the base URL and no parsing.
    fn generated(&self, call: &Arc<Call>) -> f5xc_bfdp::Client {
        self.raw.with_inner(Some(call.clone()))
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
        // A POST that mints a token: never repeated once it may have arrived.
        let call = Call::new(&self.policy, false);
        let result = self.generated(&call).refresh_token(&body).await;
        let facts = call.facts();
        let response = result
            .map_err(|err| map_error(&VENDOR, OPERATION, err, &facts, &self.secrets))?
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
