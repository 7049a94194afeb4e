//! Base-URL checks shared by both services.

use crate::error::{Error, Result, Service};

/// Parses an http(s) URL and returns it without trailing slashes, query or
/// fragment; with `strip_api`, every trailing `/api` segment goes too.
pub(crate) fn normalize_url(input: &str, service: Service, strip_api: bool) -> Result<String> {
    let url = reqwest::Url::parse(input).map_err(|err| {
        Error::config(format!("{input:?} is not a valid URL: {err}")).for_service(service)
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(format!(
            "{input:?} must use https:// (or http:// for local tests)"
        ))
        .for_service(service));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(format!("{input:?} has no host")).for_service(service));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(
            Error::config("the base URL must not carry a query, fragment or credentials")
                .for_service(service),
        );
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
