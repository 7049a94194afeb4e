//! What a service configures about its HTTP: [`TransportOptions`] (timeouts,
//! the response-size cap, TLS trust) and the [`RetryPolicy`] in them.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// When and how often a request is retried.
///
/// A request is sent again only when the server cannot have acted on it, or
/// when acting on it twice does no harm:
///
/// - a connection that failed before anything was sent (refused, TLS
///   handshake failure, connect timeout): every request;
/// - `429 Too Many Requests` and `503 Service Unavailable`, which say the
///   request was not processed: every request;
/// - `502 Bad Gateway` and `504 Gateway Timeout`, after which the request may
///   have been processed behind the gateway: only `GET`, `HEAD`, `PUT`,
///   `DELETE` and `OPTIONS` requests (VCF's `invalidate_refresh_token`) and
///   VCF's `refresh_access_token` (`PATCH /v1/tokens/access-token/refresh`,
///   which only mints another access token). VCF's `create_token` and F5's
///   `refresh_token` (both `POST`) are not sent again: a second login would
///   leave an orphaned refresh token, a second refresh another pipeline token.
///
/// Nothing else is retried: not a timeout or a connection lost after the
/// request was sent (the server may still be working on it), not any other
/// status.
///
/// Delays grow exponentially with full jitter (a random delay between zero
/// and `min(max_delay, base_delay * 2^n)`); a server's `Retry-After` replaces
/// the computed delay. Nothing waits past the overall deadline: when the next
/// wait would end after it, the last error is returned at once, carrying the
/// server's wait in [`Error::retry_after`]. A deadline too large to represent
/// (such as `Duration::MAX`) means no deadline; a `Retry-After` longer than
/// 5 minutes is never waited for, deadline or not (such as
/// `Retry-After: 18446744073709551615`): the error carries it. A
/// `Retry-After` date counts from the response's `Date`, so a server whose
/// clock differs from ours still gets the wait it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that sends each request once.
    pub fn no_retries() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// How many attempts at most, the first included (default 3; 0 counts as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay the exponential backoff starts from (default 200 ms).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest computed backoff delay (default 10 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The time budget of one operation, retries and waits included (default
    /// 60 s). A budget too large to represent as an instant from now (such as
    /// `Duration::MAX`) means no deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// Connection, timeout, size and TLS settings of one service's client.
#[derive(Clone)]
pub struct TransportOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) ca_bundle_pem: Option<Vec<u8>>,
    /// `None` until set, here or by the environment (`from_env`): a later
    /// [`VcfConfig::transport`](crate::VcfConfig::transport) keeps what the
    /// environment said unless these options say otherwise.
    pub(crate) allow_unverified_tls: Option<bool>,
    pub(crate) allow_insecure_http: Option<bool>,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            connect_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            retry: RetryPolicy::default(),
            ca_bundle_pem: None,
            allow_unverified_tls: None,
            allow_insecure_http: None,
        }
    }
}

impl fmt::Debug for TransportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retry", &self.retry)
            .field("ca_bundle_pem", &self.ca_bundle_pem.as_ref().map(Vec::len))
            .field(
                "allow_unverified_tls",
                &self.allow_unverified_tls.unwrap_or(false),
            )
            .field(
                "allow_insecure_http",
                &self.allow_insecure_http.unwrap_or(false),
            )
            .finish()
    }
}

impl TransportOptions {
    /// The time to establish a connection, TLS included (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The time one attempt may take, from sending to the end of the body
    /// (default 30 s), cut to what is left of the retry policy's deadline. A
    /// timeout too large to represent (such as `Duration::MAX`) means none.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The largest response body read, in bytes (default 1 MiB); a larger one
    /// fails the operation instead of exhausting memory.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Trust these PEM certificates, in addition to the bundled web roots.
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Trust the PEM certificates in this file, in addition to the bundled roots.
    pub fn ca_bundle_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|err| {
            Error::config(format!("cannot read the CA bundle {}", path.display())).with_source(err)
        })?;
        Ok(self.ca_bundle_pem(pem))
    }

    /// Accept any server certificate, as the self-signed ones many SDDC
    /// Managers ship with. This disables server authentication: anyone on the
    /// path can read the credentials. Prefer [`ca_bundle_pem`](Self::ca_bundle_pem).
    pub fn allow_unverified_tls(mut self, allow: bool) -> Self {
        self.allow_unverified_tls = Some(allow);
        self
    }

    /// Allow plain `http://` to a host that is not loopback. Without it a
    /// client refuses such an address before sending anything: an API token
    /// or a password would cross the network in clear text. Loopback
    /// (`localhost`, `127.0.0.0/8`, `::1`: sandboxes and tests) needs no
    /// opt-in. Warned about once.
    ///
    /// ```
    /// use refresh_sdk::{TransportOptions, VcfClient, VcfConfig};
    ///
    /// let config = VcfConfig::new("http://sddc-manager.lab.example")?;
    /// assert!(VcfClient::new(config.clone()).is_err());
    /// let config = config.transport(TransportOptions::default().allow_insecure_http(true));
    /// assert!(VcfClient::new(config).is_ok());
    /// # Ok::<(), refresh_sdk::Error>(())
    /// ```
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = Some(allow);
        self
    }

    /// These options, with the settings they leave unset (the TLS and
    /// plain-HTTP permissions, the CA bundle) taken from `base`: how a
    /// configuration read from the environment takes new options without
    /// losing what the environment said.
    pub(crate) fn over(self, base: &TransportOptions) -> TransportOptions {
        TransportOptions {
            ca_bundle_pem: self.ca_bundle_pem.or_else(|| base.ca_bundle_pem.clone()),
            allow_unverified_tls: self.allow_unverified_tls.or(base.allow_unverified_tls),
            allow_insecure_http: self.allow_insecure_http.or(base.allow_insecure_http),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_the_settings_they_leave_unset_from_the_base() {
        let from_env = TransportOptions::default()
            .allow_unverified_tls(true)
            .allow_insecure_http(true)
            .ca_bundle_pem("pem");
        let merged = TransportOptions::default()
            .attempt_timeout(Duration::from_secs(5))
            .over(&from_env);
        assert_eq!(merged.allow_unverified_tls, Some(true));
        assert_eq!(merged.allow_insecure_http, Some(true));
        assert_eq!(merged.ca_bundle_pem.as_deref(), Some(&b"pem"[..]));
        assert_eq!(merged.attempt_timeout, Duration::from_secs(5));
        let overridden = TransportOptions::default()
            .allow_unverified_tls(false)
            .over(&from_env);
        assert_eq!(overridden.allow_unverified_tls, Some(false));
    }
}
