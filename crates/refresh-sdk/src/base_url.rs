//! Base-URL checks shared by both services.

use crate::error::{Error, Result, Service};

/// Parses an http(s) URL and returns it without trailing slashes (a URL
/// with a query or fragment is refused); with `strip_api`, every trailing
/// `/api` segment goes too.
///
/// Errors never quote the input: a URL can carry a password, and a value in
/// the wrong variable may be a token.
pub(crate) fn normalize_url(input: &str, service: Service, strip_api: bool) -> Result<String> {
    let fail = |message: String| Err(Error::config(message).for_service(service));
    let url = match reqwest::Url::parse(input) {
        Ok(url) => url,
        // url's messages name the problem, never the input.
        Err(err) => return fail(format!("the address is not a valid URL ({err})")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return fail(
            "the address must not carry a username or password (user:password@host): \
             credentials go in their own variables, and addresses end up in logs"
                .to_owned(),
        );
    }
    if !matches!(url.scheme(), "http" | "https") {
        return fail("the address must use https:// (or http:// for local tests)".to_owned());
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return fail("the address has no host".to_owned());
    };
    if !plausible_host(host) {
        return fail(
            "the address's host is not a host name (too long, or a label over 63 \
             characters): is a token in the address variable?"
                .to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return fail("the address must not carry a query or fragment".to_owned());
    }
    let mut path = url.path().trim_end_matches('/');
    // Every trailing `/api` goes, not just one: a result that still ended in
    // `/api` would lose it when fed back in (`F5Config::new(config.base_url())`).
    while strip_api && let Some(shorter) = path.strip_suffix("/api") {
        path = shorter.trim_end_matches('/');
    }
    let mut origin = url.origin().ascii_serialization();
    origin.push_str(path);
    Ok(origin)
}

/// DNS limits: 253 characters, labels of at most 63. A token pasted into an
/// address variable breaks them; a real host (or IP literal) does not.
fn plausible_host(host: &str) -> bool {
    host.len() <= 253 && host.split('.').all(|label| label.len() <= 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_quote_the_address() {
        let token = format!("eyJ{}", "a".repeat(120));
        for (input, says) in [
            ("https://admin:S3cret@vcf.example", "username or password"),
            ("https://:S3cret@vcf.example", "username or password"),
            ("ftp://S3cret.example", "https://"),
            ("https://vcf.example/?S3cret", "query"),
            ("https://vcf.example:S3cret", "not a valid URL"),
            (&format!("https://{token}.example"), "not a host name"),
            (&format!("https://{token}"), "not a host name"),
        ] {
            let err = normalize_url(input, Service::Vcf, false).expect_err(input);
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("S3cret") && !shown.contains(&token),
                "{shown}"
            );
            assert!(shown.contains(says), "{input}: {shown}");
        }
        assert!(normalize_url("https://10.0.0.1:8443/", Service::Vcf, false).is_ok());
        assert!(normalize_url("http://[::1]:8080", Service::Vcf, false).is_ok());
    }
}
