//! What a user reads when the exchange itself fails (issue 17): the error
//! names the origin tried (scheme, host, port; never userinfo, path or
//! query) and the cause (name not resolved, connection refused, timed out
//! connecting, reset, TLS, not HTTP, too many redirects), with a hint only
//! where one applies. Over real connections on loopback.

mod common;

use std::time::Duration;

use common::pki::{https_server, pki_for};
use common::*;
use refresh_loopback::{Loopback, Reply, Step, Unanswered, refused_url};
use refresh_sdk::error::{TlsProblem, TransportCause};
use refresh_sdk::{ErrorKind, RetryPolicy, TransportOptions, VcfCredentials};

fn no_retries() -> TransportOptions {
    TransportOptions::default().retry(RetryPolicy::no_retries())
}

async fn f5_failure(url: &str, transport: TransportOptions) -> refresh_sdk::Error {
    f5_client(url, "secret-api-token", transport)
        .refresh_token("pipeline")
        .await
        .expect_err("the exchange fails")
}

async fn vcf_failure(url: &str, transport: TransportOptions) -> refresh_sdk::Error {
    vcf_client(url, transport)
        .create_token(&VcfCredentials::new("admin", "secret-password"))
        .await
        .expect_err("the exchange fails")
}

/// Asserts that `err`'s one line names `origin` and says `cause`, and shows
/// nothing of the request's path (F5's is `/api/ai_data/bfdp/...`, VCF's
/// `/v1/tokens`) nor a credential.
fn assert_names(err: &refresh_sdk::Error, origin: &str, cause: &str) {
    let shown = err.to_string();
    assert!(shown.contains(origin), "names {origin}: {shown}");
    assert!(shown.contains(cause), "says {cause:?}: {shown}");
    for hidden in ["/api", "ai_data", "/v1/", "secret"] {
        assert!(!shown.contains(hidden), "shows {hidden:?}: {shown}");
    }
}

/// Asserts that the hint, if any, is not about certificates: the issue's
/// complaint was a self-signed-certificate hint for a host that did not
/// resolve.
fn assert_no_certificate_hint(err: &refresh_sdk::Error) {
    let hint = err.hint().unwrap_or_default();
    for wrong in ["certificate", "TLS", "CA bundle", "ca_bundle"] {
        assert!(!hint.contains(wrong), "hint {hint:?} for {err}");
    }
}

/// A host name that resolves nowhere, without a network: a name with an
/// empty label cannot be put in a DNS query, so the resolver library fails
/// before sending any; `.invalid` is never a real name anyway. (The
/// configuration refuses labels over 63 bytes, which would fail the same way.)
fn unresolvable_host() -> String {
    "no-such-host..invalid".to_owned()
}

#[tokio::test]
async fn an_unresolvable_host_is_named_retried_and_hinted_at() {
    let host = unresolvable_host();
    // Plain http: over https, TLS refuses the name before it is resolved.
    let transport = quick_transport().allow_insecure_http(true);
    let err = f5_failure(&format!("http://{host}"), transport).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_names(&err, &format!("http://{host}:80"), "name not resolved");
    assert_eq!(err.transport_cause(), Some(TransportCause::NameNotResolved));
    // A resolver may be starting (a laptop waking, a VPN connecting).
    assert_eq!(
        err.attempts(),
        3,
        "retried as other connect failures: {err}"
    );
    assert!(err.is_retryable());
    assert_no_certificate_hint(&err);
    assert!(
        err.hint().is_some_and(|hint| hint.contains("DNS")),
        "{:?}",
        err.hint()
    );
}

#[tokio::test]
async fn a_closed_port_says_connection_refused() {
    let url = refused_url().await;
    let err = vcf_failure(&url, quick_transport()).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_names(&err, &url, "connection refused");
    assert_eq!(err.transport_cause(), Some(TransportCause::Refused));
    assert_eq!(err.attempts(), 3, "{err}");
    assert_no_certificate_hint(&err);
    assert!(
        err.hint().is_some_and(|hint| hint.contains("port")),
        "{:?}",
        err.hint()
    );
}

#[tokio::test]
async fn a_connection_never_answered_says_timed_out_connecting() {
    let unanswered = Unanswered::start().await;
    let transport = no_retries().connect_timeout(Duration::from_millis(200));
    let err = f5_failure(&unanswered.url(), transport).await;
    assert_names(&err, &unanswered.url(), "timed out connecting");
    assert_eq!(err.transport_cause(), Some(TransportCause::ConnectTimeout));
    // The connection failed; no request was sent that could still be
    // running.
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_no_certificate_hint(&err);
}

#[tokio::test]
async fn a_reset_says_connection_reset() {
    let server = Loopback::always(Step::ResetBeforeHeaders).await;
    let err = vcf_failure(&server.url(), no_retries()).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_names(&err, &server.url(), "connection reset");
    assert_eq!(err.transport_cause(), Some(TransportCause::Reset));
    assert_no_certificate_hint(&err);
}

#[tokio::test]
async fn tls_failures_name_the_certificate_problem_and_only_then_the_ca_hint() {
    let retrying = quick_transport();
    // Untrusted: the CA is not given.
    let pki = pki_for("127.0.0.1", false);
    let (url, served) = https_server(&pki, false).await;
    let err = f5_failure(&url, retrying.clone()).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_names(
        &err,
        &url,
        "TLS: the server's certificate is not trusted: unknown issuer",
    );
    assert_eq!(
        err.transport_cause(),
        Some(TransportCause::Tls(TlsProblem::UnknownIssuer))
    );
    assert_eq!(err.attempts(), 1, "trying again cannot help: {err}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 0);
    let hint = err.hint().unwrap_or_default();
    assert!(hint.contains("ca_bundle_file"), "{hint}");
    assert!(hint.contains("allow_unverified_tls"), "{hint}");

    // Trusted, but for another name, or expired.
    for (name, expired, cause, problem) in [
        (
            "other.example",
            false,
            "TLS: the server's certificate is not valid for this host name",
            TlsProblem::NameMismatch,
        ),
        (
            "127.0.0.1",
            true,
            "TLS: the server's certificate has expired",
            TlsProblem::Expired,
        ),
    ] {
        let pki = pki_for(name, expired);
        let (url, _served) = https_server(&pki, false).await;
        let trusting = retrying.clone().ca_bundle_pem(pki.ca_pem.clone());
        let err = vcf_failure(&url, trusting).await;
        assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
        assert_names(&err, &url, cause);
        assert_eq!(err.transport_cause(), Some(TransportCause::Tls(problem)));
        assert_eq!(err.attempts(), 1, "{err}");
        let hint = err.hint().unwrap_or_default();
        assert!(
            !hint.contains("allow_unverified_tls"),
            "trusting the CA is not the fix: {hint}"
        );
    }
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_an_invalid_response() {
    let mut many_headers = b"HTTP/1.1 200 OK\r\n".to_vec();
    for n in 0..10_000 {
        many_headers.extend_from_slice(format!("x-header-{n}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"content-length: 0\r\n\r\n");
    for (case, bytes) in [
        ("a garbage status line", b"SECRET GARBAGE\r\n\r\n".to_vec()),
        (
            "two different Content-Lengths",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello".to_vec(),
        ),
        ("10,000 headers", many_headers),
    ] {
        let server = Loopback::always(Step::Raw(bytes)).await;
        let err = f5_failure(&server.url(), quick_transport()).await;
        assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{case}: {err:?}");
        assert_names(
            &err,
            &server.url(),
            "the server's answer is not valid HTTP: ",
        );
        assert_eq!(
            err.transport_cause(),
            Some(TransportCause::NotHttp),
            "{case}"
        );
        assert!(!err.is_retryable(), "{case}");
        assert_eq!(server.requests(), 1, "{case}: not sent again");
    }
}

/// A server that redirects every request to `location` (`PORT` replaced by
/// its own port).
async fn redirecting(status: u16, location: &'static str) -> Loopback {
    Loopback::start(move |request| {
        let port = request
            .header("host")
            .and_then(|host| host.rsplit(':').next())
            .unwrap_or_default()
            .to_owned();
        Reply::empty(status).header("location", &location.replace("PORT", &port))
    })
    .await
}

#[tokio::test]
async fn a_redirect_loop_says_too_many_redirects() {
    for location in [
        "http://127.0.0.1:PORT/v1/tokens",
        "/v1/tokens?again=1",
        "again",
    ] {
        for status in [301, 307] {
            a_redirect_loop(status, location).await;
        }
    }
}

/// The error of a loop of `status` redirects to `location`: too many
/// redirects, on the status of the last one, after one attempt.
async fn a_redirect_loop(status: u16, location: &'static str) {
    let server = redirecting(status, location).await;
    let err = vcf_failure(&server.url(), quick_transport()).await;
    assert_names(&err, &server.url(), "too many redirects");
    assert_eq!(
        err.transport_cause(),
        Some(TransportCause::TooManyRedirects)
    );
    assert_eq!(
        err.status().map(|s| s.as_u16()),
        Some(status),
        "{location}: the loop ended on a {status}: {err:?}"
    );
    let shown = err.to_string();
    assert!(!shown.contains("unknown host"), "{location}: {shown}");
    assert!(!shown.contains("not followed"), "{location}: {shown}");
    assert_eq!(
        server.requests(),
        6,
        "{location}: the first and 5 redirects"
    );
    assert!(!err.is_retryable(), "{location}: {err:?}");
}

#[tokio::test]
async fn a_redirect_to_another_origin_names_that_origin_only() {
    let other = Loopback::always(Reply::empty(204)).await;
    let port = other.addr().port();
    let location = format!("http://user:secret@127.0.0.1:{port}/secret/path?token=abc");
    let server = Loopback::start(move |_| Reply::empty(307).header("location", &location)).await;
    let err = f5_failure(&server.url(), quick_transport()).await;
    assert_eq!(other.requests(), 0, "credentials reached another origin");
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(307));
    assert_names(
        &err,
        &format!("a redirect to http://127.0.0.1:{port} was not followed"),
        "credentials stay on this host",
    );
    // An answer with a status, not a failed exchange.
    assert_eq!(err.transport_cause(), None, "{err:?}");
    let shown = err.to_string();
    for hidden in ["user:", "token=", "abc"] {
        assert!(!shown.contains(hidden), "shows {hidden:?}: {shown}");
    }

    // A relative Location is resolved against the request, not "an unknown
    // host": a scheme-relative one to another host is another origin.
    let server = redirecting(302, "//localhost:PORT/elsewhere").await;
    let err = vcf_failure(&server.url(), quick_transport()).await;
    let port = server.addr().port();
    assert_names(
        &err,
        &format!("a redirect to http://localhost:{port} was not followed"),
        "credentials stay on this host",
    );
}

/// A request of a middleware stack (what `vcf api` and a service's own
/// SDDC Manager calls send) fails in the same words as the SDK's own.
#[tokio::test]
async fn a_middleware_request_failure_reads_as_the_sdks_own() {
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(refresh_sdk::middleware::TransportPolicy::new(&no_retries()))
        .build();

    let url = refused_url().await;
    let err = api
        .get(format!("{url}/v1/system?secret=query"))
        .send()
        .await
        .expect_err("nothing listens");
    let err = refresh_sdk::middleware::into_error(err);
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_names(&err, &url, "connection refused");
    assert_eq!(err.transport_cause(), Some(TransportCause::Refused));
    assert!(!err.to_string().contains("secret=query"), "{err}");

    let server = Loopback::always(Step::Raw(b"HTTP/1.1 abc garbage\r\n\r\n".to_vec())).await;
    let err = api
        .get(format!("{}/v1/system", server.url()))
        .send()
        .await
        .expect_err("the answer is not HTTP");
    let err = refresh_sdk::middleware::into_error(err);
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err:?}");
    assert_names(&err, &server.url(), "not valid HTTP");
    assert_eq!(err.transport_cause(), Some(TransportCause::NotHttp));
}

/// A token source that always hands out the same token.
#[derive(Debug)]
struct Fixed;

impl refresh_sdk::AccessTokenSource for Fixed {
    fn access_token(&self) -> refresh_sdk::TokenFuture<'_> {
        Box::pin(async { Ok(refresh_sdk::AccessToken::new("fixed-token-0123")) })
    }
}

/// A redirect to another origin that `api_client()` did not follow reads as
/// the token operations' does: the other origin named, nothing else of it.
#[tokio::test]
async fn an_api_client_redirect_to_another_origin_names_that_origin_only() {
    let other = Loopback::always(Reply::empty(204)).await;
    let port = other.addr().port();
    let location = format!("http://user:secret@127.0.0.1:{port}/secret/path?token=abc");
    let server = Loopback::start(move |_| Reply::empty(307).header("location", &location)).await;
    let api = vcf_client(&server.url(), quick_transport()).api_client(std::sync::Arc::new(Fixed));
    let response = api
        .get(format!("{}/v1/system", server.url()))
        .send()
        .await
        .expect("the redirect is answered");
    assert_eq!(other.requests(), 0, "the token reached another origin");
    let err = refresh_sdk::middleware::unfollowed_redirect(&response).expect("a redirect");
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(307));
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "a redirect to http://127.0.0.1:{port} was not followed"
        )),
        "{shown}"
    );
    for hidden in ["user:", "secret", "token=", "abc"] {
        assert!(!shown.contains(hidden), "shows {hidden:?}: {shown}");
    }

    let ok = Loopback::always(Reply::empty(204)).await;
    let response = api.get(ok.url()).send().await.expect("answered");
    assert!(refresh_sdk::middleware::unfollowed_redirect(&response).is_none());
}

/// A redirect loop through `api_client()` reads as the token operations'
/// does: too many redirects, on the status of the last one, after one
/// attempt.
#[tokio::test]
async fn an_api_client_redirect_loop_is_too_many_redirects_on_its_status() {
    let server = redirecting(308, "/v1/system").await;
    let api = vcf_client(&server.url(), quick_transport()).api_client(std::sync::Arc::new(Fixed));
    let err = api
        .get(format!("{}/v1/system", server.url()))
        .send()
        .await
        .expect_err("the loop is not followed forever");
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err:?}");
    assert_names(&err, &server.url(), "too many redirects");
    assert_eq!(
        err.transport_cause(),
        Some(TransportCause::TooManyRedirects)
    );
    assert_eq!(err.status().map(|s| s.as_u16()), Some(308), "{err:?}");
    assert_eq!(err.attempts(), 1, "{err:?}");
    assert_eq!(server.requests(), 6, "the first and 5 redirects");
}
