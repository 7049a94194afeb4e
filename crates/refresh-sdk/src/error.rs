//! The one error type of the crate: what went wrong, where, and what the
//! vendor said about it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::text::{Scrubbed, Secrets, WITHHELD, printable, printable_owned};

/// The longest raw body an error carries, in bytes.
pub const MAX_SNIPPET_BYTES: usize = 4 * 1024;

/// How much of a raw body `Display` shows; the full snippet stays available
/// through [`Error::vendor_detail`].
const DISPLAY_SNIPPET_CHARS: usize = 512;

/// What kind of failure an [`Error`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server refused the credentials or their permissions (401, 403;
    /// for VCF's `create_token` also 400, SDDC Manager's answer to a wrong
    /// password).
    Auth,
    /// The resource does not exist (404); for VCF's refresh, the refresh
    /// token is unknown, expired or invalidated.
    NotFound,
    /// The request conflicts with the resource's current state (409).
    Conflict,
    /// The server rate-limited the caller (429); see [`Error::retry_after`].
    RateLimited,
    /// The server failed (5xx).
    Server,
    /// The server rejected the request for another reason (other 4xx).
    BadRequest,
    /// No answer in time, once the request was sent: the per-attempt
    /// timeout or the overall deadline.
    Timeout,
    /// The connection failed: the name did not resolve, the connection was
    /// refused or timed out, TLS refused the certificate, the connection was
    /// reset or closed early. The message names the origin tried and why.
    Transport,
    /// The server answered something the SDK cannot use: an answer that is
    /// not valid HTTP, an undecodable or oversized success body, an
    /// unexpected status, too many redirects, or a redirect to another
    /// origin, which is not followed.
    InvalidResponse,
    /// The caller's input was rejected before anything was sent.
    InvalidInput,
    /// The configuration is incomplete or wrong (environment, URLs, TLS files).
    Config,
    /// The session was closed by [`logout`](crate::vcf::VcfSession::logout);
    /// nothing was sent. Build a new session to log in again.
    Closed,
}

impl ErrorKind {
    /// The kind an HTTP error status stands for.
    pub fn from_status(status: StatusCode) -> ErrorKind {
        match status.as_u16() {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::InvalidResponse,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Auth => "authentication failed",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Server => "server error",
            ErrorKind::BadRequest => "request rejected",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Transport => "connection failed",
            ErrorKind::InvalidResponse => "invalid response",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Config => "configuration error",
            ErrorKind::Closed => "session closed",
        }
    }
}

/// The service an operation talked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// F5 Distributed Cloud, AI Data BFDP.
    F5Xc,
    /// VMware Cloud Foundation SDDC Manager.
    Vcf,
}

impl Service {
    /// A short name for messages and traces.
    pub fn name(self) -> &'static str {
        match self {
            Service::F5Xc => "F5 XC",
            Service::Vcf => "VCF",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an exchange with the server failed below the level of a status: the
/// connection, TLS, or an answer that is not usable HTTP
/// ([`Error::transport_cause`]). The error's message says the same in words,
/// with the origin tried; this is for code that acts on it.
///
/// ```
/// use refresh_sdk::error::{TlsProblem, TransportCause};
///
/// fn advice(cause: TransportCause) -> &'static str {
///     match cause {
///         TransportCause::Tls(TlsProblem::UnknownIssuer | TlsProblem::BadSignature) => {
///             "trust the CA that signed the server's certificate"
///         }
///         TransportCause::NameNotResolved => "check the host name",
///         _ => "see the error's message",
///     }
/// }
/// assert_eq!(advice(TransportCause::NameNotResolved), "check the host name");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportCause {
    /// The host name did not resolve to an address.
    NameNotResolved,
    /// Nothing accepted the connection: the port is closed.
    Refused,
    /// No route to the host or its network.
    Unreachable,
    /// The connection (TCP, and the TLS handshake) was not made within the
    /// connect timeout; nothing was sent.
    ConnectTimeout,
    /// The connection was reset (or aborted) on the way.
    Reset,
    /// The connection closed before the whole answer arrived.
    ClosedEarly,
    /// The TLS handshake failed.
    Tls(TlsProblem),
    /// The answer is not valid HTTP.
    NotHttp,
    /// The server redirected more times than the SDK follows; the error's
    /// [`status`](Error::status) is the last redirect's.
    TooManyRedirects,
}

/// What happened, in the words the error's message uses.
impl fmt::Display for TransportCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportCause::NameNotResolved => f.write_str("name not resolved"),
            TransportCause::Refused => f.write_str("connection refused"),
            TransportCause::Unreachable => f.write_str("host unreachable"),
            TransportCause::ConnectTimeout => f.write_str("timed out connecting"),
            TransportCause::Reset => f.write_str("connection reset"),
            TransportCause::ClosedEarly => {
                f.write_str("connection closed before the answer was complete")
            }
            TransportCause::Tls(problem) => write!(f, "TLS: {problem}"),
            TransportCause::NotHttp => f.write_str("the server's answer is not valid HTTP"),
            TransportCause::TooManyRedirects => f.write_str("too many redirects"),
        }
    }
}

/// What went wrong in a TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate chains to no CA the client trusts
    /// (self-signed, or a private CA).
    UnknownIssuer,
    /// The server's certificate names a trusted CA as its issuer, but that
    /// CA's key did not sign it: another CA of the same name (a regenerated
    /// one) did.
    BadSignature,
    /// The server's certificate is not for the host name (or address) dialled.
    NameMismatch,
    /// The server's certificate has expired.
    Expired,
    /// The server's certificate is not valid yet.
    NotValidYet,
    /// The server's certificate was revoked.
    Revoked,
    /// The server's certificate was rejected for another reason.
    OtherCertificate,
    /// The server refused the client's certificate, or wanted one.
    ClientCertificateRejected,
    /// The server did not answer in TLS: a plain HTTP port, most likely.
    NotTls,
    /// The host is not a name TLS can check a certificate against (such as
    /// one with an empty label): refused before it is even resolved.
    InvalidName,
    /// The handshake failed otherwise (no common version or cipher, an alert).
    Handshake,
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsProblem::UnknownIssuer => {
                "the server's certificate is not trusted: unknown issuer (self-signed, or \
                 signed by a CA this client does not trust)"
            }
            TlsProblem::BadSignature => {
                "the server's certificate is not trusted: bad signature (signed by another \
                 CA of the trusted CA's name)"
            }
            TlsProblem::NameMismatch => "the server's certificate is not valid for this host name",
            TlsProblem::Expired => "the server's certificate has expired",
            TlsProblem::NotValidYet => "the server's certificate is not valid yet",
            TlsProblem::Revoked => "the server's certificate was revoked",
            TlsProblem::OtherCertificate => "the server's certificate was rejected",
            TlsProblem::ClientCertificateRejected => {
                "the server rejected this client's certificate, or wanted one"
            }
            TlsProblem::NotTls => "the server did not answer in TLS",
            TlsProblem::InvalidName => "the host is not a valid DNS name",
            TlsProblem::Handshake => "the handshake failed",
        })
    }
}

/// What the vendor said about an HTTP error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VendorDetail {
    /// VCF's documented `Error` object.
    Vcf(VcfErrorDetail),
    /// F5 XC's documented error body: a JSON string.
    Text(String),
    /// A body that was not in the documented shape (a JSON object where a
    /// string was documented, `text/plain`, an HTML page from a proxy, an
    /// empty body), kept as a bounded snippet.
    Unparsed(BodySnippet),
}

/// The parts of VCF's `Error` a person needs to act on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VcfErrorDetail {
    /// The localized error message.
    pub message: Option<String>,
    /// The minor error code.
    pub error_code: Option<String>,
    /// How to fix the error.
    pub remediation_message: Option<String>,
    /// Correlates the error with the server's logs; quote it to support.
    pub reference_token: Option<String>,
    /// Validation findings that explain the error, each with what to do.
    pub notifications: Vec<VcfNotification>,
}

/// One validation finding in a VCF `Error` (`ValidationNotification`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VcfNotification {
    /// How serious it is, such as `ERROR` or `WARNING`.
    pub severity: Option<String>,
    /// The finding.
    pub message: Option<String>,
    /// What the finding affects.
    pub impact: Option<String>,
    /// What can be done about it.
    pub remediations: Vec<VcfRemediation>,
}

/// One way to address a [`VcfNotification`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VcfRemediation {
    /// What to do.
    pub message: Option<String>,
    /// A link to documentation about it.
    pub link: Option<String>,
}

impl VcfNotification {
    /// `SEVERITY: message (impact: ...; remediation: ... <link>)`, one line.
    pub(crate) fn line(&self) -> String {
        let mut out = String::new();
        if let Some(severity) = &self.severity {
            out.push_str(severity);
            out.push_str(": ");
        }
        out.push_str(self.message.as_deref().unwrap_or("(no message)"));
        let mut details = Vec::new();
        if let Some(impact) = &self.impact {
            details.push(format!("impact: {impact}"));
        }
        for remediation in &self.remediations {
            match (&remediation.message, &remediation.link) {
                (Some(message), Some(link)) => {
                    details.push(format!("remediation: {message} <{link}>"));
                }
                (Some(message), None) => details.push(format!("remediation: {message}")),
                (None, Some(link)) => details.push(format!("remediation: <{link}>")),
                (None, None) => {}
            }
        }
        if !details.is_empty() {
            out.push_str(" (");
            out.push_str(&details.join("; "));
            out.push(')');
        }
        printable_owned(out)
    }
}

/// The first bytes of a body the SDK could not decode.
///
/// Its fields hold what the server sent, control characters included; its
/// owner's `Display` shows them escaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodySnippet {
    /// The `Content-Type` the server sent, if any.
    pub content_type: Option<String>,
    /// The body's first [`MAX_SNIPPET_BYTES`] bytes, as lossy UTF-8.
    pub text: String,
    /// Whether the body was longer than the snippet.
    pub truncated: bool,
}

impl BodySnippet {
    /// The snippet of a body, without the `secrets` of the request it
    /// answers (see [`Forms::scrub`]). The whole body is scrubbed before it
    /// is cut to [`MAX_SNIPPET_BYTES`], so that no part of a secret is left
    /// at the cut. A body that must be withheld becomes a snippet saying so,
    /// not marked truncated.
    pub(crate) fn from_body(
        content_type: Option<String>,
        body: &[u8],
        secrets: &Secrets,
    ) -> BodySnippet {
        let forms = secrets.forms();
        let whole = String::from_utf8_lossy(body);
        let (text, truncated) = match forms.scrub(&whole) {
            Scrubbed::Clean(text) => {
                let mut end = text.len().min(MAX_SNIPPET_BYTES);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let head = text.get(..end).unwrap_or_default();
                (head.to_owned(), end < text.len())
            }
            Scrubbed::Withheld => (WITHHELD.to_owned(), false),
        };
        BodySnippet {
            content_type: content_type.map(|value| forms.scrub_owned(value)),
            text,
            truncated,
        }
    }
}

impl VendorDetail {
    /// The validation findings VCF sent with the error, if any.
    pub fn notifications(&self) -> &[VcfNotification] {
        match self {
            VendorDetail::Vcf(detail) => &detail.notifications,
            _ => &[],
        }
    }

    /// What the vendor said, without the `secrets` of the request it
    /// answers (see [`Forms::scrub`]): every string is scrubbed on its own,
    /// and one that must be withheld is replaced by a sentence saying so, so
    /// that the others (an error code, a reference token for support) stay.
    ///
    /// A snippet cut before it was scrubbed may end in the start of a
    /// secret, which is dropped; build snippets with
    /// [`BodySnippet::from_body`] instead, which scrubs the whole
    /// body.
    pub(crate) fn scrubbed(self, secrets: &Secrets) -> VendorDetail {
        if secrets.is_empty() {
            return self;
        }
        let forms = secrets.forms();
        let scrub = |text: Option<String>| text.map(|text| forms.scrub_owned(text));
        match self {
            VendorDetail::Vcf(detail) => VendorDetail::Vcf(VcfErrorDetail {
                message: scrub(detail.message),
                error_code: scrub(detail.error_code),
                remediation_message: scrub(detail.remediation_message),
                reference_token: scrub(detail.reference_token),
                notifications: detail
                    .notifications
                    .into_iter()
                    .map(|notification| VcfNotification {
                        severity: scrub(notification.severity),
                        message: scrub(notification.message),
                        impact: scrub(notification.impact),
                        remediations: notification
                            .remediations
                            .into_iter()
                            .map(|remediation| VcfRemediation {
                                message: scrub(remediation.message),
                                link: scrub(remediation.link),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            VendorDetail::Text(text) => VendorDetail::Text(forms.scrub_owned(text)),
            VendorDetail::Unparsed(snippet) => {
                let text = if snippet.truncated {
                    forms.without_partial_tail(&snippet.text).to_owned()
                } else {
                    snippet.text
                };
                let text = forms.scrub_owned(text);
                VendorDetail::Unparsed(BodySnippet {
                    content_type: scrub(snippet.content_type),
                    truncated: snippet.truncated && text != WITHHELD,
                    text,
                })
            }
        }
    }
}

/// Shows what the vendor said on one line, notifications included; with
/// `{:#}`, without them (an [`Error`] shown with `{:#}` lists them on lines of
/// their own). Control characters and bidirectional overrides in the
/// server's text are shown escaped (`\u{1b}`), tabs as spaces.
impl fmt::Display for VendorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VendorDetail::Vcf(detail) => {
                let mut parts = Vec::new();
                if let Some(message) = &detail.message {
                    parts.push(message.clone());
                }
                if let Some(code) = &detail.error_code {
                    parts.push(format!("error code {code}"));
                }
                if let Some(remediation) = &detail.remediation_message {
                    parts.push(format!("remediation: {remediation}"));
                }
                if let Some(reference) = &detail.reference_token {
                    parts.push(format!("reference token {reference}"));
                }
                if !f.alternate() {
                    parts.extend(
                        detail
                            .notifications
                            .iter()
                            .map(|n| format!("notification {}", n.line())),
                    );
                }
                f.write_str(&printable(&parts.join("; ")))
            }
            VendorDetail::Text(text) => f.write_str(&printable(text)),
            VendorDetail::Unparsed(snippet) => {
                let kind = snippet.content_type.as_deref().unwrap_or("no content type");
                let kind = printable(kind);
                if snippet.text.is_empty() {
                    return write!(f, "empty body ({kind})");
                }
                // Cut before escaping, so that no escape is cut in half.
                let shown: String = snippet.text.chars().take(DISPLAY_SNIPPET_CHARS).collect();
                let cut = snippet.truncated || shown.len() < snippet.text.len();
                write!(f, "undocumented body ({kind}): {}", printable(&shown))?;
                if cut {
                    f.write_str("…")?;
                }
                Ok(())
            }
        }
    }
}

/// An error from any operation of the crate.
///
/// Match on [`kind`](Error::kind); read the HTTP [`status`](Error::status), the
/// [`service`](Error::service) and [`operation`](Error::operation), and what
/// the vendor said in [`vendor_detail`](Error::vendor_detail). It is cheap to
/// clone, so one failed refresh can be handed to every caller that waited for
/// it. It never contains a token, password or refresh-token id that the SDK
/// sent.
#[derive(Clone, thiserror::Error)]
#[error(transparent)]
#[non_exhaustive]
pub struct Error(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    service: Option<Service>,
    operation: Option<&'static str>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    transport_cause: Option<TransportCause>,
    vendor: Option<VendorDetail>,
    message: String,
    hint: Option<&'static str>,
    attempts: u32,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// One line saying what happened; with `{:#}`, VCF's validation findings
/// follow on lines of their own, indented.
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alternate = f.alternate();
        f.write_str(&render(self, alternate))?;
        if alternate && let Some(vendor) = &self.vendor {
            for notification in vendor.notifications() {
                write!(f, "\n  - {}", notification.line())?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Inner {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

fn render(inner: &Inner, without_notifications: bool) -> String {
    let mut out = match (inner.service, inner.operation) {
        (Some(service), Some(operation)) => format!("{service} {operation} failed: "),
        (Some(service), None) => format!("{service}: "),
        _ => String::new(),
    };
    out.push_str(inner.kind.label());
    if let Some(status) = inner.status {
        out.push_str(&format!(" (HTTP {status})"));
    }
    if !inner.message.is_empty() {
        out.push_str(": ");
        out.push_str(&inner.message);
    }
    if let Some(vendor) = &inner.vendor {
        if without_notifications {
            out.push_str(&format!("; server said: {vendor:#}"));
        } else {
            out.push_str(&format!("; server said: {vendor}"));
        }
    }
    if let Some(wait) = inner.retry_after {
        // Whole seconds, rounded up; exact for any wait a server can send.
        let seconds = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        out.push_str(&format!("; retry after {seconds} s"));
    }
    if inner.attempts > 1 {
        out.push_str(&format!(" (after {} attempts)", inner.attempts));
    }
    // One line, shown as it is: a server's text may carry line breaks and
    // terminal control sequences.
    printable_owned(out)
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The server's text is shown through `str`'s `Debug`, which escapes
        // every control and bidirectional formatting character (`\u{1b}`,
        // `\u{202e}`), line breaks included.
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("service", &self.0.service)
            .field("operation", &self.0.operation)
            .field("status", &self.0.status)
            .field("retry_after", &self.0.retry_after)
            .field("attempts", &self.0.attempts)
            .field("message", &self.0.message)
            .field("vendor", &self.0.vendor)
            .field("hint", &self.0.hint)
            .field("source", &self.0.source)
            .finish()
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Arc::new(Inner {
            kind,
            service: None,
            operation: None,
            status: None,
            retry_after: None,
            transport_cause: None,
            vendor: None,
            message: message.into(),
            hint: None,
            attempts: 0,
            source: None,
        }))
    }

    /// An error of `kind` for code outside the SDK, such as an
    /// [`AccessTokenSource`](crate::AccessTokenSource) of your own. The
    /// message is shown as is: keep secrets out of it.
    ///
    /// ```
    /// use refresh_sdk::{Error, ErrorKind};
    ///
    /// let err = Error::custom(ErrorKind::Auth, "the vault refused the token request");
    /// assert_eq!(err.kind(), ErrorKind::Auth);
    /// ```
    pub fn custom(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    fn edit(mut self, change: impl FnOnce(&mut Inner)) -> Error {
        // Builders run on a fresh error, so the Arc is unique; the fallback
        // copy only keeps this panic-free.
        match Arc::get_mut(&mut self.0) {
            Some(inner) => change(inner),
            None => {
                let old = &self.0;
                let mut copy = Inner {
                    kind: old.kind,
                    service: old.service,
                    operation: old.operation,
                    status: old.status,
                    retry_after: old.retry_after,
                    transport_cause: old.transport_cause,
                    vendor: old.vendor.clone(),
                    message: old.message.clone(),
                    hint: old.hint,
                    attempts: old.attempts,
                    source: old.source.clone(),
                };
                change(&mut copy);
                self.0 = Arc::new(copy);
            }
        }
        self
    }

    pub(crate) fn at(self, service: Service, operation: &'static str) -> Error {
        self.edit(|inner| {
            inner.service = Some(service);
            inner.operation = Some(operation);
        })
    }

    pub(crate) fn for_service(self, service: Service) -> Error {
        self.edit(|inner| inner.service = Some(service))
    }

    // Only VCF's login turns a status into another kind.
    #[cfg_attr(not(feature = "vcf"), allow(dead_code))]
    pub(crate) fn with_kind(self, kind: ErrorKind) -> Error {
        self.edit(|inner| inner.kind = kind)
    }

    pub(crate) fn with_status(self, status: Option<StatusCode>) -> Error {
        self.edit(|inner| inner.status = status)
    }

    pub(crate) fn with_retry_after(self, retry_after: Option<Duration>) -> Error {
        self.edit(|inner| inner.retry_after = retry_after)
    }

    pub(crate) fn with_transport_cause(self, cause: Option<TransportCause>) -> Error {
        self.edit(|inner| inner.transport_cause = cause)
    }

    pub(crate) fn with_vendor(self, vendor: Option<VendorDetail>) -> Error {
        self.edit(|inner| inner.vendor = vendor)
    }

    pub(crate) fn with_hint(self, hint: &'static str) -> Error {
        self.edit(|inner| inner.hint = Some(hint))
    }

    pub(crate) fn with_attempts(self, attempts: u32) -> Error {
        self.edit(|inner| inner.attempts = attempts)
    }

    /// This error without the `secrets` of the request it is about in what
    /// the vendor said (see [`VendorDetail::scrubbed`]).
    ///
    /// The message is the SDK's own words and is left alone: checked for a
    /// short secret, "the server's certificate is not trusted" would be
    /// withheld for an API token `t`. A message that quotes the server must
    /// scrub the quote itself ([`Forms::scrub`]).
    pub(crate) fn scrubbed(self, secrets: &Secrets) -> Error {
        if secrets.is_empty() {
            return self;
        }
        self.edit(|inner| inner.vendor = inner.vendor.take().map(|v| v.scrubbed(secrets)))
    }

    pub(crate) fn with_source(
        self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.edit(|inner| inner.source = Some(Arc::new(source)))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The service the failed operation talked to, if it got that far.
    pub fn service(&self) -> Option<Service> {
        self.0.service
    }

    /// The operation that failed, such as `refresh_token` or `create_token`.
    pub fn operation(&self) -> Option<&'static str> {
        self.0.operation
    }

    /// The HTTP status of the last response, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// Why the exchange failed, when it failed below the level of a status:
    /// the name did not resolve, the connection was refused or reset, TLS
    /// refused the certificate, the answer was not HTTP, the redirects
    /// looped. `None` when the server's answer is the error (an error
    /// status, a redirect to another origin, a body that is not the
    /// documented one), and for failures outside the exchange (the
    /// deadline, the configuration, the input).
    ///
    /// ```
    /// use refresh_sdk::error::{TlsProblem, TransportCause};
    ///
    /// fn report(err: &refresh_sdk::Error) {
    ///     if let Some(TransportCause::Tls(TlsProblem::UnknownIssuer)) = err.transport_cause() {
    ///         eprintln!("add the server's CA to the trusted ones: {err}");
    ///     }
    /// }
    /// # report(&refresh_sdk::Error::custom(refresh_sdk::ErrorKind::Transport, "x"));
    /// ```
    pub fn transport_cause(&self) -> Option<TransportCause> {
        self.0.transport_cause
    }

    /// What the vendor said: VCF's decoded `Error`, F5's text, or a bounded
    /// snippet of a body in an undocumented shape.
    pub fn vendor_detail(&self) -> Option<&VendorDetail> {
        self.0.vendor.as_ref()
    }

    /// How long the server asked the caller to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Whether the server refused the request itself: a 4xx other than 408
    /// (its own timeout) and 429 (too many requests). Sent again as it is,
    /// it gets the same answer.
    pub(crate) fn is_refusal(&self) -> bool {
        self.0
            .status
            .is_some_and(|status| status.is_client_error() && !matches!(status.as_u16(), 408 | 429))
    }

    /// Whether the request may have reached the server although no answer
    /// came: a timeout or a connection lost, but not a connection that was
    /// never made (refused, unreachable, a TLS handshake that failed).
    #[cfg(feature = "vcf")]
    pub(crate) fn may_have_reached_server(&self) -> bool {
        if !matches!(self.0.kind, ErrorKind::Timeout | ErrorKind::Transport) {
            return false;
        }
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            if cause
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_connect)
            {
                return false;
            }
            source = cause.source();
        }
        true
    }

    /// What the caller can do about it, fitted to the operation, such as
    /// "Check VCF_SDDC_MANAGER_USERNAME and VCF_SDDC_MANAGER_PASSWORD".
    /// Kept out of `Display`, which is one line saying what happened, so a
    /// program that shows both shows each once.
    ///
    /// ```
    /// # fn show(err: &refresh_sdk::Error) {
    /// eprintln!("error: {err}");
    /// if let Some(hint) = err.hint() {
    ///     eprintln!("  hint: {hint}");
    /// }
    /// # }
    /// ```
    pub fn hint(&self) -> Option<&'static str> {
        self.0.hint
    }

    /// How many attempts were made; 0 when nothing was sent.
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// Whether trying again later may succeed: rate limiting, timeouts,
    /// connection failures and 502, 503 and 504.
    ///
    /// The SDK has already retried what its [`RetryPolicy`](crate::RetryPolicy)
    /// allows, within the deadline. It does not retry timeouts, nor a 502 or
    /// 504 to a request that may have been processed (VCF's `create_token`,
    /// F5's `refresh_token`): before sending such a request again, consider
    /// that the first one may have succeeded (a second login leaves the first
    /// refresh token unused until it expires).
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Transport => true,
            ErrorKind::Server => matches!(self.0.status.map(|s| s.as_u16()), Some(502..=504)),
            _ => false,
        }
    }
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_is_bounded_even_when_cut_inside_a_character() {
        let body = "é".repeat(MAX_SNIPPET_BYTES);
        let snippet = BodySnippet::from_body(None, body.as_bytes(), &Secrets::default());
        assert!(snippet.truncated);
        assert!(snippet.text.len() <= MAX_SNIPPET_BYTES);
    }

    fn secrets(list: &[&str]) -> Secrets {
        let mut secrets = Secrets::default();
        for secret in list {
            secrets.add(secret);
        }
        secrets
    }

    fn vcf_error(detail: VcfErrorDetail) -> Error {
        Error::new(ErrorKind::BadRequest, "")
            .with_status(Some(StatusCode::BAD_REQUEST))
            .at(Service::Vcf, "create_token")
            .with_vendor(Some(VendorDetail::Vcf(detail)))
    }

    #[test]
    fn server_text_is_shown_escaped_and_kept_raw() {
        let notification = VcfNotification {
            severity: Some("ERROR".into()),
            message: Some("bad\u{1b}]52;c;ZXZpbA==\u{7}".into()),
            impact: Some("one\ntwo".into()),
            remediations: vec![VcfRemediation {
                message: Some("fix\u{202e}it".into()),
                link: Some("https://kb\u{8}".into()),
            }],
        };
        let detail = VcfErrorDetail {
            message: Some("Invalid\u{1b}[2J\ttitle\u{1b}]0;x\u{7}".into()),
            error_code: Some("CODE\u{9b}".into()),
            notifications: vec![notification],
            ..VcfErrorDetail::default()
        };
        let err = vcf_error(detail.clone());
        assert_eq!(
            err.to_string(),
            "VCF create_token failed: request rejected (HTTP 400 Bad Request); server said: \
             Invalid\\u{1b}[2J title\\u{1b}]0;x\\u{7}; error code CODE\\u{9b}; \
             notification ERROR: bad\\u{1b}]52;c;ZXZpbA==\\u{7} (impact: one two; \
             remediation: fix\\u{202e}it <https://kb\\u{8}>)"
        );
        assert_eq!(
            format!("{err:#}"),
            "VCF create_token failed: request rejected (HTTP 400 Bad Request); server said: \
             Invalid\\u{1b}[2J title\\u{1b}]0;x\\u{7}; error code CODE\\u{9b}\n  \
             - ERROR: bad\\u{1b}]52;c;ZXZpbA==\\u{7} (impact: one two; \
             remediation: fix\\u{202e}it <https://kb\\u{8}>)"
        );
        let debug = format!("{err:?}");
        assert!(debug.contains("Invalid\\u{1b}[2J\\ttitle"), "{debug}");
        assert!(!debug.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{debug}");
        assert_eq!(err.vendor_detail(), Some(&VendorDetail::Vcf(detail)));

        let text = VendorDetail::Text("a\u{1b}[31mb\u{2066}".into());
        assert_eq!(text.to_string(), "a\\u{1b}[31mb\\u{2066}");
        let snippet = VendorDetail::Unparsed(BodySnippet::from_body(
            Some("text/plain\tx".into()),
            "<h1>\u{1b}]0;t\u{7}</h1>".as_bytes(),
            &Secrets::default(),
        ));
        assert_eq!(
            snippet.to_string(),
            "undocumented body (text/plain x): <h1>\\u{1b}]0;t\\u{7}</h1>"
        );
    }

    #[test]
    fn snippets_are_scrubbed_before_they_are_cut() {
        let secret = "a-long-password";
        // The secret starts 5 bytes before the cut.
        let body = format!("{}{secret}", "x".repeat(MAX_SNIPPET_BYTES - 5));
        let snippet = BodySnippet::from_body(
            Some(format!("text/plain; {secret}")),
            body.as_bytes(),
            &secrets(&[secret]),
        );
        assert!(
            snippet.text.ends_with("x[reda"),
            "{:?}",
            snippet.text.get(4000..)
        );
        assert!(snippet.truncated);
        assert_eq!(
            snippet.content_type.as_deref(),
            Some("text/plain; [redacted]")
        );
        // Without secrets, the same body keeps them.
        let plain = BodySnippet::from_body(None, body.as_bytes(), &Secrets::default());
        assert!(plain.text.ends_with("xa-lon"));
        assert_eq!(plain.text.len(), MAX_SNIPPET_BYTES);
    }

    #[test]
    fn snippets_that_repeat_a_short_secret_are_withheld() {
        let snippet = BodySnippet::from_body(None, br#"{"password":"pw"}"#, &secrets(&["pw"]));
        assert_eq!(snippet.text, crate::text::WITHHELD);
        assert!(!snippet.truncated);
    }

    #[test]
    fn vendor_detail_is_scrubbed_field_by_field() {
        let long = "a-long-secret";
        let detail = VcfErrorDetail {
            message: Some(format!("Invalid request: {{\"password\":\"{long}\"}}")),
            error_code: Some("TOKEN_CREATION_FAILED".into()),
            remediation_message: Some("password pw is wrong".into()),
            reference_token: Some("REF1".into()),
            notifications: vec![VcfNotification {
                severity: Some("ERROR".into()),
                message: Some(format!("saw {long}")),
                impact: Some("no secret here".into()),
                remediations: vec![VcfRemediation {
                    message: Some(format!("not {long}")),
                    link: Some(format!("https://kb/?p={long}")),
                }],
            }],
        };
        let scrubbed = VendorDetail::Vcf(detail).scrubbed(&secrets(&[long, "pw"]));
        let want = VcfErrorDetail {
            message: Some("Invalid request: {\"password\":\"[redacted]\"}".into()),
            error_code: Some("TOKEN_CREATION_FAILED".into()),
            remediation_message: Some(crate::text::WITHHELD.into()),
            reference_token: Some("REF1".into()),
            notifications: vec![VcfNotification {
                severity: Some("ERROR".into()),
                message: Some("saw [redacted]".into()),
                impact: Some("no secret here".into()),
                remediations: vec![VcfRemediation {
                    message: Some("not [redacted]".into()),
                    link: Some("https://kb/?p=[redacted]".into()),
                }],
            }],
        };
        assert_eq!(scrubbed, VendorDetail::Vcf(want));

        let text = VendorDetail::Text(format!("token {long}")).scrubbed(&secrets(&[long]));
        assert_eq!(text, VendorDetail::Text("token [redacted]".into()));
    }

    #[test]
    fn a_snippet_cut_before_scrubbing_loses_a_partial_secret() {
        let long = "a-long-secret";
        let cut = VendorDetail::Unparsed(BodySnippet {
            content_type: None,
            text: format!("{long} then a-long-se"),
            truncated: true,
        });
        let VendorDetail::Unparsed(snippet) = cut.scrubbed(&secrets(&[long])) else {
            panic!("still a snippet");
        };
        assert_eq!(snippet.text, "[redacted] then ");
        assert!(snippet.truncated);
    }

    #[test]
    fn errors_are_scrubbed_in_what_the_vendor_said() {
        let long = "a-long-secret";
        let err = Error::new(ErrorKind::Server, "the server's certificate is not trusted")
            .with_vendor(Some(VendorDetail::Text(format!("echo {long}"))))
            .scrubbed(&secrets(&[long, "t"]));
        // The SDK's own words hold `t`, and stay.
        assert_eq!(
            err.to_string(),
            "server error: the server's certificate is not trusted; server said: \
             the server's text was withheld: it repeats a secret of the request"
        );
        let err = Error::new(ErrorKind::Server, "")
            .with_vendor(Some(VendorDetail::Text(format!("echo {long}"))))
            .scrubbed(&secrets(&[long]));
        assert_eq!(
            err.to_string(),
            "server error; server said: echo [redacted]"
        );
        // No secrets: the same error, not a copy.
        let err = Error::new(ErrorKind::Server, "said");
        let same = err.clone().scrubbed(&Secrets::default());
        assert!(Arc::ptr_eq(&err.0, &same.0));
    }

    #[test]
    fn retry_after_shows_in_whole_seconds_rounded_up_whatever_its_size() {
        let shown = |wait| {
            Error::new(ErrorKind::RateLimited, "")
                .with_retry_after(Some(wait))
                .to_string()
        };
        assert!(
            shown(Duration::from_millis(1500)).contains("; retry after 2 s"),
            "{}",
            shown(Duration::from_millis(1500))
        );
        assert!(shown(Duration::from_secs(7)).contains("; retry after 7 s"));
        let max = format!("; retry after {} s", u64::MAX);
        assert!(shown(Duration::from_secs(u64::MAX)).contains(&max));
        assert!(
            shown(Duration::MAX).contains(&max),
            "{}",
            shown(Duration::MAX)
        );
    }

    #[test]
    fn status_kinds() {
        let kind = |code| ErrorKind::from_status(StatusCode::from_u16(code).expect("valid status"));
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(409), ErrorKind::Conflict);
        assert_eq!(kind(429), ErrorKind::RateLimited);
        assert_eq!(kind(503), ErrorKind::Server);
        assert_eq!(kind(400), ErrorKind::BadRequest);
    }
}
