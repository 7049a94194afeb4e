//! Why a request failed, in words a user can act on.
//!
//! `reqwest` reports every failed exchange as "error sending request" and
//! keeps the reason a few sources down, partly inside `io::Error`s that hide
//! their inner error from `source()`. [`cause_of`] digs it out as a
//! [`Cause`]: the name did not resolve, nothing listens, TLS refused the
//! certificate, the answer is not HTTP, the redirects loop. Each cause says
//! what happened ([`Display`](fmt::Display)), which [`ErrorKind`] it is, and
//! what to do about it where something can be done ([`Cause::hint`]);
//! callers see it as a [`TransportCause`] ([`Cause::public`]), without the
//! details only the message carries.
//!
//! [`origin`] names where a request went without the parts of a URL that
//! may be secret (userinfo, path, query). [`redirect_policy`] keeps
//! credentials on the origin they were configured for, and
//! [`unfollowed_redirect`] says which origin a stopped redirect pointed at.

use std::error::Error as StdError;
use std::fmt;

use crate::error::{ErrorKind, TlsProblem, TransportCause};

/// The most redirects followed for one request (all within its origin).
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Why an exchange with the server failed: a [`TransportCause`] (whose
/// variants say what each means), with what only the message and the
/// error's status carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cause {
    NameNotResolved,
    Refused,
    Unreachable,
    ConnectTimeout,
    Reset,
    ClosedEarly,
    Tls(TlsProblem),
    /// What was wrong, in words of our own or hyper's fixed descriptions,
    /// never in the server's bytes.
    NotHttp(String),
    /// The status of the last redirect, the answer the request ended on.
    TooManyRedirects(reqwest::StatusCode),
}

/// The public cause's words, with what only the message carries: what was
/// not HTTP about the answer, how many redirects were followed.
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::NotHttp(what) => write!(f, "{}: {what}", self.public()),
            Cause::TooManyRedirects(_) => {
                write!(f, "{} (more than {MAX_REDIRECTS})", self.public())
            }
            _ => fmt::Display::fmt(&self.public(), f),
        }
    }
}

impl Cause {
    /// What the caller can do about it, where something can be done; the
    /// vendor modules may say it in their own variables' names.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Cause::NameNotResolved => {
                "Check the host name for typos, and that this machine's DNS resolves it \
                 (some names resolve only on a VPN)"
            }
            Cause::Refused => {
                "Nothing accepts connections there: check the host and port, and that the \
                 service is running"
            }
            Cause::Unreachable => {
                "Check the address and this machine's route to it (network, VPN, firewall)"
            }
            Cause::ConnectTimeout => {
                "Check the host and port, and any firewall or VPN on the way; or raise \
                 TransportOptions::connect_timeout"
            }
            Cause::Tls(TlsProblem::UnknownIssuer | TlsProblem::BadSignature) => {
                "Trust the CA that signed the server's certificate \
                 (TransportOptions::ca_bundle_file, or the configuration's CA certificate \
                 variable); for a lab only, allow_unverified_tls"
            }
            Cause::Tls(TlsProblem::NameMismatch) => {
                "Use the host name the certificate was issued for in the address, or have \
                 the certificate reissued for this one"
            }
            Cause::Tls(TlsProblem::Expired) => {
                "The server's certificate must be renewed; if it is not expired, check this \
                 machine's clock"
            }
            Cause::Tls(TlsProblem::NotValidYet) => {
                "Check the clocks of this machine and of the server"
            }
            Cause::Tls(TlsProblem::ClientCertificateRejected) => {
                "Check the client certificate: issued by a CA the server trusts, not \
                 expired, and given with its key"
            }
            Cause::Tls(TlsProblem::InvalidName) => {
                "Check the host name in the address: letters, digits, hyphens and dots"
            }
            Cause::Tls(TlsProblem::NotTls) => {
                "The port speaks plain HTTP: check the scheme (http:// or https://) and the port"
            }
            Cause::NotHttp(_) => {
                "Check that the address (scheme and port) points at the service itself, not \
                 at another protocol or a proxy"
            }
            Cause::TooManyRedirects(_) => {
                "The server redirects in a loop: check the address and the server's configuration"
            }
            // Nothing the caller can change: a reset or an early close is
            // the server's or the network's doing, and the other
            // certificate problems are the server owner's to fix.
            Cause::Reset
            | Cause::ClosedEarly
            | Cause::Tls(
                TlsProblem::Revoked | TlsProblem::OtherCertificate | TlsProblem::Handshake,
            ) => return None,
        })
    }

    /// The kind of error this cause makes.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            // The server answered, with something the SDK cannot use; a
            // redirect loop is such an answer (and, not being a connection
            // failure, is not retried).
            Cause::NotHttp(_) | Cause::TooManyRedirects(_) => ErrorKind::InvalidResponse,
            _ => ErrorKind::Transport,
        }
    }

    /// Whether trying again cannot change the answer, so the request is not
    /// retried: TLS refuses a certificate, a protocol or a plain-HTTP port
    /// the same way every time. A name that did not resolve may resolve
    /// later (a resolver starting, a VPN connecting); a refused or
    /// unanswered connection may be taken once the service is up.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Cause::Tls(_))
    }

    /// The status the server answered with, for a cause that is an answer.
    pub(crate) fn status(&self) -> Option<reqwest::StatusCode> {
        match self {
            Cause::TooManyRedirects(status) => Some(*status),
            _ => None,
        }
    }

    /// This cause as the error shows it to callers.
    pub(crate) fn public(&self) -> TransportCause {
        match self {
            Cause::NameNotResolved => TransportCause::NameNotResolved,
            Cause::Refused => TransportCause::Refused,
            Cause::Unreachable => TransportCause::Unreachable,
            Cause::ConnectTimeout => TransportCause::ConnectTimeout,
            Cause::Reset => TransportCause::Reset,
            Cause::ClosedEarly => TransportCause::ClosedEarly,
            Cause::Tls(problem) => TransportCause::Tls(*problem),
            Cause::NotHttp(_) => TransportCause::NotHttp,
            Cause::TooManyRedirects(_) => TransportCause::TooManyRedirects,
        }
    }
}

/// Why `error` happened, when it is (or wraps) a failed exchange: the first
/// cause found walking its sources, `io::Error`s unwrapped.
pub(crate) fn cause_of(error: &(dyn StdError + 'static)) -> Option<Cause> {
    let mut next = Some(error);
    while let Some(current) = next {
        // reqwest-middleware's error is `transparent`: its `source()` skips
        // the `reqwest::Error` it holds, which knows about DNS and timeouts.
        if let Some(reqwest_middleware::Error::Reqwest(inner)) =
            current.downcast_ref::<reqwest_middleware::Error>()
        {
            next = Some(inner);
            continue;
        }
        // An `io::Error` hides the error it wraps from `source()`, and may
        // wrap another `io::Error` (rustls' errors come wrapped twice):
        // look at each layer.
        let mut layer = current;
        loop {
            if let Some(cause) = classify(layer) {
                return Some(cause);
            }
            match layer
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(inner) => layer = inner,
                None => break,
            }
        }
        next = layer.source();
    }
    None
}

/// The cause one error in a chain stands for, if it tells.
fn classify(error: &(dyn StdError + 'static)) -> Option<Cause> {
    if let Some(error) = error.downcast_ref::<reqwest::Error>() {
        // Both walk this error's sources for types reqwest keeps private
        // (its `DnsError` and `TimedOut`).
        if error.is_dns() {
            return Some(Cause::NameNotResolved);
        }
        if error.is_connect() && error.is_timeout() {
            return Some(Cause::ConnectTimeout);
        }
        return None;
    }
    if let Some(limit) = error.downcast_ref::<RedirectLimit>() {
        return Some(Cause::TooManyRedirects(limit.status));
    }
    if let Some(error) = error.downcast_ref::<rustls::Error>() {
        return Some(Cause::Tls(tls_problem(error)));
    }
    // hyper-rustls checks the host is a DNS name before resolving it.
    if error.is::<rustls::pki_types::InvalidDnsNameError>() {
        return Some(Cause::Tls(TlsProblem::InvalidName));
    }
    if let Some(error) = error.downcast_ref::<hyper::Error>() {
        if error.is_parse_status() {
            return Some(Cause::NotHttp("the status line is malformed".to_owned()));
        }
        if error.is_parse() {
            // A parse error's Display is one of hyper's fixed descriptions
            // ("invalid content-length parsed", "message head is too
            // large"): it never quotes the server's bytes. hyper offers no
            // typed test for most of them (`is_parse_too_large` needs its
            // server feature).
            return Some(Cause::NotHttp(error.to_string()));
        }
        if error.is_incomplete_message() {
            return Some(Cause::ClosedEarly);
        }
        return None;
    }
    if let Some(error) = error.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind as Io;
        return match error.kind() {
            Io::ConnectionRefused => Some(Cause::Refused),
            Io::ConnectionReset | Io::ConnectionAborted => Some(Cause::Reset),
            Io::HostUnreachable | Io::NetworkUnreachable => Some(Cause::Unreachable),
            // A body cut short: hyper's "end of file before message length
            // reached".
            Io::UnexpectedEof => Some(Cause::ClosedEarly),
            _ => None,
        };
    }
    None
}

/// What a TLS error from rustls says about the handshake.
fn tls_problem(error: &rustls::Error) -> TlsProblem {
    use rustls::AlertDescription as Alert;
    use rustls::CertificateError as C;

    match error {
        rustls::Error::InvalidCertificate(problem) => match problem {
            C::UnknownIssuer => TlsProblem::UnknownIssuer,
            C::BadSignature => TlsProblem::BadSignature,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsProblem::NameMismatch,
            C::Expired | C::ExpiredContext { .. } => TlsProblem::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsProblem::NotValidYet,
            C::Revoked => TlsProblem::Revoked,
            _ => TlsProblem::OtherCertificate,
        },
        // The first bytes were not a TLS record: "HTTP/1.1 400 ..." from a
        // plain HTTP server starts with 'H', no TLS content type.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            TlsProblem::NotTls
        }
        // Alerts a server sends about the client's certificate (with TLS
        // 1.3, after the handshake, on the first read).
        rustls::Error::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA,
        ) => TlsProblem::ClientCertificateRejected,
        _ => TlsProblem::Handshake,
    }
}

/// `scheme://host:port` of `url`, the port always shown (the scheme's
/// default filled in), an IPv6 host in brackets; never its userinfo, path,
/// query or fragment. A URL without a host (`data:`) is its scheme alone.
pub(crate) fn origin(url: &reqwest::Url) -> String {
    let scheme = url.scheme();
    // `host_str` is already normalised: lower case, punycode, IPv6 bracketed.
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{scheme}://{host}:{port}"),
        (Some(host), None) => format!("{scheme}://{host}"),
        (None, _) => format!("{scheme}:"),
    }
}

/// Whether `a` and `b` have the same scheme, host and port.
fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The error that ends a chain of more than [`MAX_REDIRECTS`] redirects;
/// [`cause_of`] finds it in the `reqwest::Error` and reports
/// [`Cause::TooManyRedirects`].
#[derive(Debug)]
struct RedirectLimit {
    /// The status of the redirect not followed.
    status: reqwest::StatusCode,
}

impl fmt::Display for RedirectLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl StdError for RedirectLimit {}

/// Follows redirects within the request's origin only, so that credentials
/// (headers, the TLS identity) never reach another host: a redirect to
/// another origin is not followed, and the client returns the redirect
/// itself (see [`unfollowed_redirect`]). A chain longer than
/// [`MAX_REDIRECTS`] fails with [`Cause::TooManyRedirects`].
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // `previous` starts with the URL first requested; every hop
        // followed shares its origin, so comparing with it is enough.
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if !same {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            let status = attempt.status();
            attempt.error(RedirectLimit { status })
        } else {
            attempt.follow()
        }
    })
}

/// Says why a redirect `response` came back unfollowed, naming the origin
/// its `Location` points at (resolved against the response's URL), never
/// its path or query.
pub(crate) fn unfollowed_redirect(response: &reqwest::Response) -> String {
    let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
        return "the server redirected without saying where (no Location header)".to_owned();
    };
    let target = location
        .to_str()
        .ok()
        .and_then(|location| response.url().join(location.trim()).ok());
    match target {
        None => "a redirect to a Location that is not a valid address was not followed".to_owned(),
        // Within the origin, a redirect is followed unless reqwest cannot
        // (300 and 304 are not followed; nor a 307 or 308 whose streamed
        // body cannot be sent again).
        Some(target) if same_origin(&target, response.url()) => {
            format!("a redirect within {} was not followed", origin(&target))
        }
        Some(target) => format!(
            "a redirect to {} was not followed, so credentials stay on this host",
            origin(&target)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use refresh_loopback::{Loopback, Reply, Step, Unanswered, refused_url};

    /// A client as the SDK builds one, as far as causes go: the redirect
    /// policy and a short connect timeout.
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(redirect_policy())
            .connect_timeout(Duration::from_millis(300))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client")
    }

    /// The error of a GET to `url`.
    async fn failure(client: &reqwest::Client, url: &str) -> reqwest::Error {
        match client.get(url).send().await {
            Ok(response) => panic!("{url} answered {}", response.status()),
            Err(err) => err,
        }
    }

    /// A host name no resolver can answer, without a network: a name with
    /// an empty label cannot be put in a DNS query, so the resolver library
    /// fails before sending any (checked with strace against glibc); and
    /// `.invalid` is never a real name. A plain `nonexistent.invalid` is
    /// sent to the configured DNS server: fast with one, slow where none
    /// answers.
    fn unresolvable() -> String {
        "http://no-such-host..invalid/v1/tokens?secret=1".to_owned()
    }

    #[tokio::test]
    async fn connection_failures_name_their_cause() {
        let unanswered = Unanswered::start().await;
        let cases = [
            (
                "unresolvable",
                unresolvable(),
                Cause::NameNotResolved,
                "name not resolved",
            ),
            (
                "closed port",
                refused_url().await,
                Cause::Refused,
                "connection refused",
            ),
            (
                "full backlog",
                unanswered.url(),
                Cause::ConnectTimeout,
                "timed out connecting",
            ),
        ];
        let client = client();
        for (case, url, expected, words) in cases {
            let err = failure(&client, &url).await;
            // The retry loop retries `is_connect` failures only: every one
            // of these must be one, name resolution included.
            assert!(err.is_connect(), "{case}: {err:?}");
            let cause = cause_of(&err);
            assert_eq!(cause.as_ref(), Some(&expected), "{case}: {err:?}");
            assert_eq!(expected.to_string(), words, "{case}");
            assert_eq!(expected.kind(), ErrorKind::Transport, "{case}");
            assert!(expected.hint().is_some(), "{case}");
            assert!(!expected.is_permanent(), "{case}: retried");
        }

        // Over https the same name fails sooner: it is no DNS name for
        // TLS to check a certificate against.
        let https = unresolvable().replacen("http://", "https://", 1);
        let err = failure(&client, &https).await;
        let cause = cause_of(&err);
        assert_eq!(cause, Some(Cause::Tls(TlsProblem::InvalidName)), "{err:?}");
        assert!(cause.is_some_and(|cause| cause.is_permanent() && cause.hint().is_some()));
    }

    #[tokio::test]
    async fn answers_that_are_not_http_are_invalid_responses() {
        let mut many_headers = b"HTTP/1.1 200 OK\r\n".to_vec();
        for n in 0..10_000 {
            many_headers.extend_from_slice(format!("x-header-{n}: v\r\n").as_bytes());
        }
        many_headers.extend_from_slice(b"content-length: 0\r\n\r\n");
        let cases: [(&str, Vec<u8>, &str); 6] = [
            (
                "garbage status line",
                b"SECRET-GARBAGE 42\r\n\r\n".to_vec(),
                "invalid HTTP version parsed",
            ),
            (
                "garbage without a line end",
                b"SECRET-GARBAGE".to_vec(),
                "invalid HTTP version parsed",
            ),
            (
                "status code not a number",
                b"HTTP/1.1 SECRET OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
                "the status line is malformed",
            ),
            (
                "two different Content-Lengths",
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello".to_vec(),
                "invalid content-length parsed",
            ),
            (
                "a header without a colon",
                b"HTTP/1.1 200 OK\r\nSECRET header\r\ncontent-length: 0\r\n\r\n".to_vec(),
                "invalid HTTP header parsed",
            ),
            ("10,000 headers", many_headers, "message head is too large"),
        ];
        let client = client();
        for (case, bytes, what) in cases {
            let server = Loopback::always(Step::Raw(bytes)).await;
            let err = failure(&client, &server.url()).await;
            assert!(!err.is_connect(), "{case}: not retried: {err:?}");
            let cause = cause_of(&err).unwrap_or_else(|| panic!("{case}: no cause in {err:?}"));
            assert_eq!(cause, Cause::NotHttp(what.to_owned()), "{case}");
            assert_eq!(cause.kind(), ErrorKind::InvalidResponse, "{case}");
            let shown = cause.to_string();
            assert_eq!(
                shown,
                format!("the server's answer is not valid HTTP: {what}"),
                "{case}"
            );
            assert!(!shown.contains("SECRET"), "{case}: {shown}");
            assert!(cause.hint().is_some(), "{case}");
        }
    }

    #[tokio::test]
    async fn connections_lost_after_sending_are_reset_or_closed_early() {
        let client = client();
        let reset = Loopback::always(Step::ResetBeforeHeaders).await;
        let err = failure(&client, &reset.url()).await;
        assert_eq!(cause_of(&err), Some(Cause::Reset), "{err:?}");

        let silent_close = Loopback::always(Step::Raw(Vec::new())).await;
        let err = failure(&client, &silent_close.url()).await;
        assert_eq!(cause_of(&err), Some(Cause::ClosedEarly), "{err:?}");

        // A body cut short fails when it is read, not when it is sent.
        let cut = Loopback::always(Step::Raw(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec(),
        ))
        .await;
        let response = client
            .get(cut.url())
            .send()
            .await
            .expect("the head arrives");
        let err = response.bytes().await.expect_err("the body is cut short");
        assert_eq!(cause_of(&err), Some(Cause::ClosedEarly), "{err:?}");

        for cause in [Cause::Reset, Cause::ClosedEarly] {
            assert_eq!(cause.kind(), ErrorKind::Transport);
            assert_eq!(cause.hint(), None, "{cause}: nothing the caller can do");
        }
        assert_eq!(Cause::Reset.to_string(), "connection reset");
    }

    /// A test PKI: a CA the trusting client knows, and server certificates.
    mod pki {
        use std::sync::Arc;

        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        pub(super) struct Ca {
            pub(super) der: CertificateDer<'static>,
            issuer: Issuer<'static, KeyPair>,
        }

        /// A CA named `name`: two CAs of one name are told apart by their
        /// keys only.
        pub(super) fn ca(name: &str) -> Ca {
            let key = KeyPair::generate().expect("CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let der = params
                .self_signed(&key)
                .expect("CA certificate")
                .der()
                .clone();
            Ca {
                der,
                issuer: Issuer::new(params, key),
            }
        }

        /// A certificate for `name`, with its key; signed by `ca`, or by
        /// itself; `expired` makes it valid in 2020 only.
        pub(super) fn certificate(
            name: &str,
            ca: Option<&Ca>,
            expired: bool,
        ) -> (CertificateDer<'static>, KeyPair) {
            let key = KeyPair::generate().expect("server key");
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
            // Named apart from the CA, or a self-signed certificate would
            // read as one the CA signed with the wrong key.
            params.distinguished_name.push(DnType::CommonName, name);
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2020, 12, 31);
            }
            let cert = match ca {
                Some(ca) => params.signed_by(&key, &ca.issuer),
                None => params.self_signed(&key),
            };
            (cert.expect("certificate").der().clone(), key)
        }

        /// An HTTPS server on 127.0.0.1 presenting `cert`, answering 204;
        /// with `client_ca`, it requires a client certificate from it.
        pub(super) async fn https_server(
            cert: CertificateDer<'static>,
            key: &KeyPair,
            client_ca: Option<&Ca>,
        ) -> String {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .expect("protocol versions");
            let builder = match client_ca {
                Some(ca) => {
                    let mut roots = rustls::RootCertStore::empty();
                    roots.add(ca.der.clone()).expect("CA root");
                    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()
                    .expect("client verifier");
                    builder.with_client_cert_verifier(verifier)
                }
                None => builder.with_no_client_auth(),
            };
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            let config = builder
                .with_single_cert(vec![cert], key)
                .expect("server config");
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let url = format!("https://{}", listener.local_addr().expect("address"));
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut request = [0u8; 4096];
                        let _ = tls.read(&mut request).await;
                        let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
            url
        }
    }

    #[tokio::test]
    async fn tls_failures_say_what_is_wrong_with_the_certificate() {
        let ca = pki::ca("Test CA");
        // SDDC Manager's VMCA, regenerated, keeps its name and changes its key.
        let impostor = pki::ca("Test CA");
        let trusting = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_der(&ca.der).expect("CA"))
            .build()
            .expect("a client");
        let (good, good_key) = pki::certificate("127.0.0.1", Some(&ca), false);
        let (self_signed, self_key) = pki::certificate("127.0.0.1", None, false);
        let (other_name, other_key) = pki::certificate("other.example", Some(&ca), false);
        let (expired, expired_key) = pki::certificate("127.0.0.1", Some(&ca), true);
        let (renamed, renamed_key) = pki::certificate("127.0.0.1", Some(&impostor), false);
        let cases = [
            (
                "self-signed",
                pki::https_server(self_signed, &self_key, None).await,
                TlsProblem::UnknownIssuer,
                "TLS: the server's certificate is not trusted: unknown issuer",
            ),
            (
                "issued for another name",
                pki::https_server(other_name, &other_key, None).await,
                TlsProblem::NameMismatch,
                "TLS: the server's certificate is not valid for this host name",
            ),
            (
                "expired",
                pki::https_server(expired, &expired_key, None).await,
                TlsProblem::Expired,
                "TLS: the server's certificate has expired",
            ),
            (
                "signed by another CA of the trusted CA's name",
                pki::https_server(renamed, &renamed_key, None).await,
                TlsProblem::BadSignature,
                "TLS: the server's certificate is not trusted: bad signature",
            ),
        ];
        for (case, url, problem, words) in cases {
            let err = failure(&trusting, &url).await;
            let cause = cause_of(&err);
            assert_eq!(cause, Some(Cause::Tls(problem)), "{case}: {err:?}");
            let cause = Cause::Tls(problem);
            assert!(cause.to_string().starts_with(words), "{case}: {cause}");
            assert!(cause.is_permanent(), "{case}: never retried");
            assert!(cause.hint().is_some(), "{case}");
            assert_eq!(cause.kind(), ErrorKind::Transport, "{case}");
        }
        for problem in [TlsProblem::UnknownIssuer, TlsProblem::BadSignature] {
            let untrusted = Cause::Tls(problem).hint().unwrap_or_default();
            assert!(untrusted.contains("ca_bundle_file"), "{untrusted}");
            assert!(untrusted.contains("allow_unverified_tls"), "{untrusted}");
        }

        // The server wants a client certificate: its alert comes on the
        // first read, after a TLS 1.3 handshake.
        let url = pki::https_server(good, &good_key, Some(&ca)).await;
        let err = failure(&trusting, &url).await;
        let cause = cause_of(&err);
        assert_eq!(
            cause,
            Some(Cause::Tls(TlsProblem::ClientCertificateRejected)),
            "{err:?}"
        );
        assert!(cause.is_some_and(|cause| cause.is_permanent()));
    }

    #[tokio::test]
    async fn https_to_a_plain_http_port_and_back_say_so() {
        let client = client();
        // The loopback server answers only after reading a request, which a
        // ClientHello is not: answer at once instead.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            while let Ok((mut tcp, _)) = listener.accept().await {
                let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let err = failure(&client, &format!("https://{addr}")).await;
        let cause = cause_of(&err);
        assert_eq!(cause, Some(Cause::Tls(TlsProblem::NotTls)), "{err:?}");
        assert!(
            cause
                .and_then(|cause| cause.hint())
                .is_some_and(|hint| hint.contains("scheme")),
            "the hint names the scheme"
        );

        let ca = pki::ca("Test CA");
        let (cert, key) = pki::certificate("127.0.0.1", Some(&ca), false);
        let tls = pki::https_server(cert, &key, None).await;
        let err = failure(&client, &tls.replacen("https://", "http://", 1)).await;
        assert!(
            matches!(cause_of(&err), Some(Cause::NotHttp(_))),
            "a TLS alert is not HTTP: {err:?}"
        );
    }

    #[tokio::test]
    async fn redirects_stay_on_their_origin_and_a_loop_is_too_many() {
        let client = client();
        for location in ["/again?token=1", "http://127.0.0.1:PORT/again"] {
            let server = Loopback::start(move |request| {
                let port = request
                    .header("host")
                    .and_then(|host| host.rsplit(':').next())
                    .unwrap_or_default()
                    .to_owned();
                Reply::empty(307).header("location", &location.replace("PORT", &port))
            })
            .await;
            let err = failure(&client, &format!("{}/start", server.url())).await;
            assert!(err.is_redirect(), "{location}: {err:?}");
            let cause = cause_of(&err);
            assert_eq!(
                cause,
                Some(Cause::TooManyRedirects(
                    reqwest::StatusCode::TEMPORARY_REDIRECT
                )),
                "{location}: the loop ends on the last redirect's status: {err:?}"
            );
            assert_eq!(
                server.requests(),
                MAX_REDIRECTS + 1,
                "{location}: the first request and {MAX_REDIRECTS} redirects"
            );
        }
        let redirects = Cause::TooManyRedirects(reqwest::StatusCode::MOVED_PERMANENTLY);
        assert_eq!(redirects.to_string(), "too many redirects (more than 5)");
        assert_eq!(redirects.kind(), ErrorKind::InvalidResponse);
        assert_eq!(
            redirects.status(),
            Some(reqwest::StatusCode::MOVED_PERMANENTLY)
        );

        // Two hops within the origin are followed.
        let server = Loopback::start(|request| match request.path.as_str() {
            "/one" => Reply::empty(302).header("location", "two"),
            "/two" => Reply::empty(204),
            _ => Reply::empty(301).header("location", "/one"),
        })
        .await;
        let response = client
            .get(format!("{}/start", server.url()))
            .send()
            .await
            .expect("followed");
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(server.requests(), 3);
    }

    #[tokio::test]
    async fn an_unfollowed_redirect_names_only_the_other_origin() {
        let other = Loopback::always(Reply::empty(204)).await;
        let port = other.addr().port();
        let client = client();
        let cases = [
            (
                format!("http://user:pass@127.0.0.1:{port}/secret/path?token=abc"),
                format!(
                    "a redirect to http://127.0.0.1:{port} was not followed, so credentials \
                     stay on this host"
                ),
            ),
            (
                "https://Other.Example/x?y=1".to_owned(),
                "a redirect to https://other.example:443 was not followed, so credentials \
                 stay on this host"
                    .to_owned(),
            ),
            (
                "//[::1]:8443/x".to_owned(),
                "a redirect to http://[::1]:8443 was not followed, so credentials stay on \
                 this host"
                    .to_owned(),
            ),
            (
                "http://[bad".to_owned(),
                "a redirect to a Location that is not a valid address was not followed".to_owned(),
            ),
        ];
        for (location, expected) in cases {
            let target = location.clone();
            let server =
                Loopback::start(move |_| Reply::empty(307).header("location", &target)).await;
            let response = client
                .get(format!("{}/start?q=1", server.url()))
                .send()
                .await
                .expect("the redirect itself comes back");
            assert_eq!(response.status().as_u16(), 307, "{location}");
            assert_eq!(unfollowed_redirect(&response), expected, "{location}");
        }
        assert_eq!(other.requests(), 0, "nothing reached the other origin");

        let cases: [(Reply, &str); 3] = [
            (
                Reply::empty(302),
                "the server redirected without saying where (no Location header)",
            ),
            (
                Reply::empty(302).header_bytes(b"location", b"/\xff\xfe"),
                "a redirect to a Location that is not a valid address was not followed",
            ),
            // 300 is never followed, even within the origin.
            (
                Reply::empty(300).header("location", "/choice?secret=1"),
                "a redirect within http://127.0.0.1:PORT was not followed",
            ),
        ];
        for (reply, expected) in cases {
            let server = Loopback::always(reply).await;
            let response = client.get(server.url()).send().await.expect("an answer");
            let expected = expected.replace("PORT", &server.addr().port().to_string());
            assert_eq!(unfollowed_redirect(&response), expected);
        }
    }

    #[test]
    fn the_origin_is_scheme_host_and_port_only() {
        let cases = [
            ("https://example.com/a/b?c=d#e", "https://example.com:443"),
            (
                "http://user:secret@EXAMPLE.com:8080/x",
                "http://example.com:8080",
            ),
            ("http://127.0.0.1/", "http://127.0.0.1:80"),
            ("https://[::1]:9443/?token=1", "https://[::1]:9443"),
            ("https://[2001:DB8::1]/", "https://[2001:db8::1]:443"),
            (
                "https://bücher.example/",
                "https://xn--bcher-kva.example:443",
            ),
            ("custom://host/path", "custom://host"),
            ("data:text/plain,secret", "data:"),
        ];
        for (url, expected) in cases {
            let url = reqwest::Url::parse(url).expect("a URL");
            assert_eq!(origin(&url), expected, "{url}");
        }
    }

    #[tokio::test]
    async fn causes_are_found_through_the_wrappers_the_sdk_uses() {
        let err = failure(&client(), &refused_url().await).await;
        // As the SDK's error keeps it (`without_url`), behind
        // reqwest-middleware's transparent error, and inside an `io::Error`.
        let wrapped: [Box<dyn StdError>; 3] = [
            Box::new(failure(&client(), &refused_url().await).await.without_url()),
            Box::new(reqwest_middleware::Error::Reqwest(err)),
            Box::new(std::io::Error::other(
                failure(&client(), &unresolvable()).await,
            )),
        ];
        let found: Vec<_> = wrapped.iter().map(|err| cause_of(err.as_ref())).collect();
        assert_eq!(
            found,
            [
                Some(Cause::Refused),
                Some(Cause::Refused),
                Some(Cause::NameNotResolved)
            ]
        );
        let unrelated = std::io::Error::other("something else");
        assert_eq!(cause_of(&unrelated), None);
    }
}
