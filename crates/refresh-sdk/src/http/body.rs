//! Bodies and copies: a request copied for another attempt, and a response
//! body read whole up to the size cap, so that nothing after the transport
//! reads an unbounded body and an error can quote what the server said.

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

/// A response body read whole, up to the size cap.
#[derive(Debug, Clone, Default)]
pub(crate) struct Buffered {
    /// Kept as the header value (a reference-counted copy) and turned into
    /// text only for an error's snippet.
    pub(crate) content_type: Option<HeaderValue>,
    /// The whole body, so error bodies can be decoded leniently; `None` when
    /// it was over the cap.
    pub(crate) body: Option<Bytes>,
    /// The cap, when the body was larger than it and dropped.
    pub(crate) over_cap: Option<usize>,
}

/// Reads `response`'s body up to `cap` bytes and hands on a response that
/// holds it (an empty one when it was over the cap), with what was read.
pub(crate) async fn buffer(
    mut response: reqwest::Response,
    cap: usize,
) -> reqwest::Result<(reqwest::Response, Buffered)> {
    let status = response.status();
    let version = response.version();
    // Moved, not copied: the rebuilt response gets them back.
    let headers = std::mem::take(response.headers_mut());
    let url = response.url().clone();
    let mut buffered = Buffered {
        content_type: headers.get(CONTENT_TYPE).cloned(),
        ..Buffered::default()
    };
    let body = match read_capped(&mut response, cap).await? {
        Some(body) => {
            buffered.body = Some(body.clone());
            body
        }
        None => {
            tracing::warn!(
                status = status.as_u16(),
                cap,
                "response body exceeds the size cap"
            );
            buffered.over_cap = Some(cap);
            Bytes::new()
        }
    };
    Ok((rebuild(status, version, headers, url, body), buffered))
}

/// A copy of `request` for another attempt, or `None` when its body streams
/// (it cannot be sent twice). What `reqwest::Request::try_clone` makes,
/// without the extensions map `try_clone` allocates for the copy's timeout
/// and then replaces by a copy of the request's own (0.5k–0.7k instructions
/// of the copy's 2.1k per call, by callgrind): reqwest reads nothing from a
/// request's extensions but its timeout (they are crate-private; one
/// converted from an `http::Request` carries the others, unread), and the
/// timeout is copied.
pub(crate) fn spare_copy(request: &reqwest::Request) -> Option<reqwest::Request> {
    let body = match request.body() {
        Some(body) => Some(reqwest::Body::from(Bytes::copy_from_slice(
            body.as_bytes()?,
        ))),
        None => None,
    };
    let mut copy = reqwest::Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    *copy.body_mut() = body;
    Some(copy)
}

/// The body, or `None` as soon as it is known to exceed `cap` bytes.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> reqwest::Result<Option<Bytes>> {
    if response
        .content_length()
        .is_some_and(|len| len > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

fn rebuild(
    status: StatusCode,
    version: reqwest::Version,
    headers: HeaderMap,
    url: reqwest::Url,
    body: Bytes,
) -> reqwest::Response {
    use reqwest::ResponseBuilderExt as _;

    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    // reqwest reads a response's URL from an extension that only its builder
    // extension can set; without it, the conversion parses a placeholder
    // URL on every call.
    if let Some(extensions) = http::response::Builder::new().url(url).extensions_mut() {
        *response.extensions_mut() = std::mem::take(extensions);
    }
    reqwest::Response::from(response)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_spare_copy_is_the_request_and_a_streaming_body_has_none() {
        let url = reqwest::Url::parse("https://example.com/v1/tokens?x=1").expect("a URL");
        let mut request = reqwest::Request::new(reqwest::Method::PATCH, url);
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *request.version_mut() = reqwest::Version::HTTP_2;
        *request.timeout_mut() = Some(Duration::from_secs(3));
        *request.body_mut() = Some(reqwest::Body::from(r#"{"a":1}"#));
        let copy = spare_copy(&request).expect("a body of bytes is copied");
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.url(), request.url());
        assert_eq!(copy.headers(), request.headers());
        assert_eq!(copy.version(), reqwest::Version::HTTP_2);
        assert_eq!(copy.timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(
            copy.body().and_then(reqwest::Body::as_bytes),
            Some(&br#"{"a":1}"#[..])
        );

        *request.body_mut() = None;
        *request.timeout_mut() = None;
        let copy = spare_copy(&request).expect("no body is copied");
        assert!(copy.body().is_none());
        assert_eq!(copy.timeout(), None);

        *request.body_mut() = Some(reqwest::Body::wrap(String::from("streamed")));
        assert!(spare_copy(&request).is_none());
        assert!(request.try_clone().is_none(), "as reqwest's own copy");
    }
}
