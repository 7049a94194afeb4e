//! The one `reqwest::Client` of a configured service, and the rules checked
//! before it sends anything.

use std::sync::Once;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use super::options::TransportOptions;
use crate::error::{Error, Result, Service};

static INSECURE_HTTP_WARNING: Once = Once::new();

/// Refuses plain `http://` to a host other than loopback unless `options`
/// allow it; checked when a client is built, so nothing is ever sent. The
/// error names `allow_variable`, the service's environment variable that
/// allows it.
pub(crate) fn check_scheme(
    service: Service,
    base_url: &str,
    options: &TransportOptions,
    allow_variable: &str,
) -> Result<()> {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return Err(Error::config("the address is not a valid URL").for_service(service));
    };
    if url.scheme() != "http" || is_loopback(&url) {
        return Ok(());
    }
    if options.allow_insecure_http == Some(true) {
        INSECURE_HTTP_WARNING.call_once(|| {
            tracing::warn!(
                service = service.name(),
                "plain http:// to a host that is not loopback (allow_insecure_http): \
                 credentials and tokens cross the network in clear text"
            );
        });
        return Ok(());
    }
    Err(Error::config(format!(
        "the address uses plain http:// for a host that is not loopback, which would send \
         credentials in clear text; use https://, or set {allow_variable}=true to allow it"
    ))
    .for_service(service))
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // The URL parser has already turned `127.1` and the like into dotted
    // quads, and writes IPv6 hosts in brackets.
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

static UNVERIFIED_TLS_WARNING: Once = Once::new();

/// Builds the one `reqwest::Client` of a configured service.
pub(crate) fn build_http_client(
    service: Service,
    options: &TransportOptions,
    identity: Option<reqwest::Identity>,
    default_headers: HeaderMap,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(options.connect_timeout)
        .default_headers(default_headers)
        .redirect(super::cause::redirect_policy());
    // The attempt timeout is the client's default, so the executor sets one
    // per request only when the deadline cuts it shorter (a request's own
    // timeout costs it an extensions map).
    if let Some(timeout) = client_timeout(options.attempt_timeout) {
        builder = builder.timeout(timeout);
    }
    if let Some(pem) = &options.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
            Error::config("the CA bundle is not valid PEM")
                .with_source(err)
                .for_service(service)
        })?;
        if certs.is_empty() {
            return Err(Error::config("the CA bundle holds no certificate").for_service(service));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if options.allow_unverified_tls == Some(true) {
        UNVERIFIED_TLS_WARNING.call_once(|| {
            tracing::warn!(
                service = service.name(),
                "TLS certificate verification is disabled (allow_unverified_tls): \
                 credentials can be intercepted; give a CA bundle instead"
            );
        });
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().map_err(|err| {
        Error::config("cannot build the HTTP client")
            .with_source(err)
            .for_service(service)
    })
}

/// The `reqwest::Client`'s own timeout: the attempt timeout, unless it is too
/// large to represent (then none, as the policy reads it).
pub(crate) fn client_timeout(attempt_timeout: Duration) -> Option<Duration> {
    Instant::now()
        .checked_add(attempt_timeout)
        .map(|_| attempt_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        let options = TransportOptions::default();
        for local in [
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://127.0.0.1",
            "http://127.8.9.10:1",
            "http://[::1]:9000",
            "https://sddc.example.com",
        ] {
            assert!(
                check_scheme(Service::Vcf, local, &options, "VCF_ALLOW_INSECURE_HTTP").is_ok(),
                "{local}"
            );
        }
        for remote in [
            "http://sddc.example.com",
            "http://10.0.0.5",
            "http://localhost.example.com",
            "http://[::2]",
            "http://128.0.0.1",
        ] {
            let err = check_scheme(Service::Vcf, remote, &options, "ALLOW_IT").expect_err(remote);
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("set ALLOW_IT=true"), "{err}");
            let allowed = options.clone().allow_insecure_http(true);
            assert!(
                check_scheme(Service::Vcf, remote, &allowed, "ALLOW_IT").is_ok(),
                "{remote}"
            );
        }
    }
}
