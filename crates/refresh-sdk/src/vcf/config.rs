//! [`VcfConfig`]: where and how to reach an SDDC Manager, from code or the
//! environment.

use super::SERVICE;
use super::credentials::{
    API_KEY, API_KEY_FILE, ID_TOKEN, ID_TOKEN_FILE, PASSWORD, PASSWORD_FILE, USERNAME,
};
use crate::base_url::normalize_url;
use crate::env::{self, Lookup, var as env_var};
use crate::error::{Error, Result};
use crate::transport::TransportOptions;

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
    pub(super) base_url: String,
    pub(super) transport: TransportOptions,
}

impl VcfConfig {
    /// The variables the VCF `from_env` constructors ([`VcfConfig`],
    /// [`VcfSession`](super::VcfSession)) read, for a program that lists or
    /// checks them.
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
