//! [`F5Config`]: where and how to reach F5 XC, from code or the environment.

use secrecy::ExposeSecret;

use super::SERVICE;
use super::credentials::{
    ClientCertificate, F5Credentials, P12Variable, p12_credentials, read_named,
};
use crate::base_url::normalize_url;
use crate::env::{self, Lookup, var as env_var};
use crate::error::{Error, Result};
use crate::transport::TransportOptions;

/// The domain of F5 XC tenant consoles, used when only a tenant name is given.
pub const CONSOLE_DOMAIN: &str = "console.ves.volterra.io";

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

/// Where and how to reach F5 XC.
#[derive(Clone, Debug)]
pub struct F5Config {
    pub(super) base_url: String,
    pub(super) credentials: F5Credentials,
    pub(super) transport: TransportOptions,
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
    /// configuration and of the [`F5Client`](super::F5Client) built from it,
    /// so a rotated token takes a new client. Setting both a variable and its
    /// `_FILE` form is an error naming both.
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
