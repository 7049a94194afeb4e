//! A generated operation's failure as the SDK's [`Error`]: the kind, the
//! words, the vendor's detail and a hint, whatever shape the answer had.
//! What a vendor knows (how its error bodies read, what to do about its
//! operations' errors) comes in a [`Vendor`]; nothing here keys on a vendor.

use super::cause::{Cause, cause_of, origin, unfollowed_redirect};
use super::exec::CallFacts;
use crate::error::{BodySnippet, Error, ErrorKind, Service, VendorDetail};
use crate::text::Secrets;

/// What the error mapping needs to know about a vendor.
#[derive(Debug)]
pub(crate) struct Vendor {
    pub(crate) service: Service,
    /// The vendor's detail in an error body, when the body holds one.
    pub(crate) detail: fn(&[u8]) -> Option<VendorDetail>,
    /// What to do about an error of this kind from this operation, when the
    /// vendor knows better than [`generic_hint`].
    pub(crate) hint: fn(&'static str, ErrorKind) -> Option<&'static str>,
}

/// Turns the failure of `vendor`'s generated `operation` into the crate's
/// error, keeping the status and kind whatever shape the body had; the error
/// body is read from `facts` (the attempt loop kept every error body), so a
/// body that is not the documented one still shows. What the server said is
/// kept with every one of `secrets` (those of the request) redacted: a
/// server that echoes the request must not put a password in a log.
pub(crate) fn map_error<E>(
    vendor: &Vendor,
    operation: &'static str,
    error: progenitor_client::Error<E>,
    facts: &CallFacts,
    secrets: &Secrets,
) -> Error {
    use progenitor_client::Error as P;

    let status = facts.status.or_else(|| error.status());
    let error_status = status.filter(|s| s.is_client_error() || s.is_server_error());
    let vendor_or_snippet = || {
        facts
            .buffered
            .body
            .as_deref()
            .and_then(vendor.detail)
            .or_else(|| Some(VendorDetail::Unparsed(snippet(facts, secrets))))
    };
    // Why the request failed, when it got no usable answer.
    let mut cause = None;
    let error = if let Some(cap) = facts.buffered.over_cap {
        let message = format!("the response body exceeded the {cap}-byte cap and was dropped");
        match error_status {
            Some(s) => Error::new(ErrorKind::from_status(s), message),
            None => Error::new(ErrorKind::InvalidResponse, message),
        }
    } else {
        match error {
            P::InvalidRequest(message) => Error::new(ErrorKind::InvalidInput, message),
            P::Custom(message) => Error::new(ErrorKind::Transport, message),
            P::CommunicationError(err) | P::InvalidUpgrade(err) | P::ResponseBodyError(err) => {
                cause = cause_of(&err);
                request_failure(err, cause.as_ref(), error_status, facts.deadline_exceeded)
            }
            P::ErrorResponse(value) => Error::new(ErrorKind::from_status(value.status()), "")
                .with_vendor(vendor_or_snippet()),
            P::InvalidResponsePayload(_, err) => match error_status {
                Some(s) => {
                    Error::new(ErrorKind::from_status(s), "").with_vendor(vendor_or_snippet())
                }
                None => Error::new(
                    ErrorKind::InvalidResponse,
                    // serde's message can quote values from a body that holds
                    // tokens; only its category and position are kept.
                    format!(
                        "the body is not the documented JSON ({:?} error at line {} column {})",
                        err.classify(),
                        err.line(),
                        err.column()
                    ),
                ),
            },
            P::UnexpectedResponse(response) => {
                let s = response.status();
                if s.is_client_error() || s.is_server_error() {
                    Error::new(ErrorKind::from_status(s), "").with_vendor(vendor_or_snippet())
                } else if s.is_redirection() {
                    Error::new(ErrorKind::InvalidResponse, unfollowed_redirect(&response))
                } else {
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!("undocumented status {s}"),
                    )
                }
            }
        }
    };
    // A redirect loop ended on a redirect's status, which is the answer.
    let status = status.or_else(|| cause.as_ref().and_then(Cause::status));
    let kind = error.kind();
    // A cause has its own hint, or none: a reset calls for no advice on
    // certificates.
    let hint = match &cause {
        Some(cause) => cause.hint(),
        None => Some((vendor.hint)(operation, kind).unwrap_or_else(|| generic_hint(kind))),
    };
    let error = error
        .with_status(status)
        .with_transport_cause(cause.as_ref().map(Cause::public))
        .with_retry_after(facts.retry_after)
        .with_attempts(facts.attempts)
        .at(vendor.service, operation);
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
    .scrubbed(secrets)
}

/// A request that got no usable answer, as the SDK's error: the origin
/// tried (never the path, query or userinfo) and why, from its `cause`.
fn request_failure(
    err: reqwest::Error,
    cause: Option<&Cause>,
    error_status: Option<reqwest::StatusCode>,
    deadline_exceeded: bool,
) -> Error {
    // A cause first: a connect that timed out sent nothing, so it is a
    // failed connection, not a request left running.
    let kind = if let Some(cause) = cause {
        cause.kind()
    } else if err.is_timeout() {
        ErrorKind::Timeout
    } else if let Some(s) = error_status {
        ErrorKind::from_status(s)
    } else if err.is_builder() {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Transport
    };
    let what = if deadline_exceeded {
        "the operation's deadline passed".to_owned()
    } else if let Some(cause) = cause {
        cause.to_string()
    } else if err.is_timeout() {
        "no answer within the per-attempt timeout".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        String::new()
    };
    let message = match err.url().map(origin) {
        Some(origin) if what.is_empty() => origin,
        Some(origin) => format!("{origin}: {what}"),
        None => what,
    };
    Error::new(kind, message).with_source(err.without_url())
}

/// The SDK's error for a failed request of a middleware stack (see
/// [`middleware::into_error`](crate::middleware::into_error)).
pub(crate) fn stack_failure(error: reqwest_middleware::Error) -> Error {
    match error {
        reqwest_middleware::Error::Middleware(inner) => match inner.downcast::<Error>() {
            Ok(error) => error,
            // Another layer's own error: its words are all there is.
            Err(other) => Error::new(ErrorKind::Transport, other.to_string()),
        },
        reqwest_middleware::Error::Reqwest(err) => err.into(),
    }
}

/// A failure reported by reqwest (reading a response's body, say, or
/// `error_for_status`) as the SDK's error: the origin and the cause, never
/// the URL's path, query or userinfo, so that `?` works in a function that
/// returns [`refresh_sdk::Result`](crate::Result).
///
/// ```no_run
/// # async fn run(api: refresh_sdk::ApiClient, url: String) -> refresh_sdk::Result<()> {
/// let body: serde_json::Value = api.get(url).send().await?.error_for_status()?.json().await?;
/// # let _ = body;
/// # Ok(())
/// # }
/// ```
impl From<reqwest::Error> for Error {
    fn from(err: reqwest::Error) -> Error {
        send_failure(err, &CallFacts::default())
    }
}

/// The SDK's error for a request of no generated operation that got no
/// usable answer, with what the attempt loop learned (`facts`; the default
/// when nobody kept them).
pub(crate) fn send_failure(err: reqwest::Error, facts: &CallFacts) -> Error {
    let cause = cause_of(&err);
    let status = err
        .status()
        .or_else(|| cause.as_ref().and_then(Cause::status));
    let error = request_failure(err, cause.as_ref(), status, facts.deadline_exceeded)
        .with_status(status)
        .with_transport_cause(cause.as_ref().map(Cause::public))
        .with_attempts(facts.attempts);
    match cause
        .as_ref()
        .map_or(Some(generic_hint(error.kind())), Cause::hint)
    {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

/// A bounded snippet of the body, for error responses only: success bodies
/// carry tokens.
fn snippet(facts: &CallFacts, secrets: &Secrets) -> BodySnippet {
    let buffered = &facts.buffered;
    BodySnippet::from_body(
        buffered
            .content_type
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        buffered.body.as_deref().unwrap_or_default(),
        secrets,
    )
}

/// What the caller can do about an error of `kind`, whatever the vendor.
pub(crate) fn generic_hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RateLimited => "Wait for the time the server asked for, then retry",
        ErrorKind::Server => "The server failed; retry later or quote the reference to support",
        ErrorKind::Timeout => {
            "The server did not answer in time; retry later or raise the timeouts"
        }
        ErrorKind::Transport => {
            "Check the address, the network and the TLS settings (CA bundle, client certificate)"
        }
        ErrorKind::InvalidResponse => {
            "The server answered in a shape the SDK does not know; check the address points at the service"
        }
        _ => "Check the request",
    }
}
