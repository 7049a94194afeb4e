//! Retries, Retry-After, the deadline, the size cap, redirects, headers and
//! base-URL normalization, over real HTTP on loopback.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use refresh_loopback::{Loopback, Reply, Step, refused_url};
use refresh_sdk::{Error, ErrorKind, ExposeSecret, RetryPolicy, SecretString, VcfCredentials};
use serde_json::json;

fn ok_reply() -> Reply {
    Reply::json(200, json!({"result": "{\"token\":\"t\"}"}))
}

/// Answers the `n`-th request (0-based) with `replies[n]`, then `ok_reply`.
async fn scripted(replies: Vec<Reply>) -> Loopback {
    Loopback::start(move |r| replies.get(r.index).cloned().unwrap_or_else(ok_reply)).await
}

/// The operations of both services, for tables of the retry rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// F5's `refresh_token`: `POST`.
    F5Refresh,
    /// VCF's `create_token`: `POST /v1/tokens`.
    VcfCreate,
    /// VCF's `refresh_access_token`: `PATCH /v1/tokens/access-token/refresh`.
    VcfRefresh,
    /// VCF's `invalidate_refresh_token`: `DELETE /v1/tokens/refresh-token`.
    VcfInvalidate,
}

impl Op {
    fn method_and_path(self) -> (&'static str, &'static str) {
        match self {
            Op::F5Refresh => ("POST", F5_PATH),
            Op::VcfCreate => ("POST", "/v1/tokens"),
            Op::VcfRefresh => ("PATCH", "/v1/tokens/access-token/refresh"),
            Op::VcfInvalidate => ("DELETE", "/v1/tokens/refresh-token"),
        }
    }

    fn success(self) -> Reply {
        match self {
            Op::F5Refresh => ok_reply(),
            Op::VcfCreate => Reply::json(
                201,
                json!({"accessToken": "access", "refreshToken": {"id": "refresh"}}),
            ),
            Op::VcfRefresh => Reply::json(200, json!("access")),
            Op::VcfInvalidate => Reply::empty(204),
        }
    }

    async fn call(self, url: &str, transport: refresh_sdk::TransportOptions) -> Result<(), Error> {
        let refresh = SecretString::from("refresh");
        match self {
            Op::F5Refresh => f5_client(url, "token", transport)
                .refresh_token("pipeline")
                .await
                .map(|_| ()),
            Op::VcfCreate => vcf_client(url, transport)
                .create_token(&VcfCredentials::new("admin", "pw"))
                .await
                .map(|_| ()),
            Op::VcfRefresh => vcf_client(url, transport)
                .refresh_access_token(&refresh)
                .await
                .map(|_| ()),
            Op::VcfInvalidate => {
                vcf_client(url, transport)
                    .invalidate_refresh_token(&refresh)
                    .await
            }
        }
    }
}

/// What the retry rule does with one failed response.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Sent again: the second attempt succeeds.
    Retried,
    /// Not sent again: the error carries the status, after one attempt.
    SentOnce,
}

/// Operation × status → whether a second attempt follows. 429 and 503 say
/// the request was not processed; after 502 and 504 it may have been, so
/// only the idempotent `DELETE` and VCF's refresh (which only mints an access
/// token) are sent again, never a `POST` that logs in or issues a token.
const RETRY_RULE: &[(Op, u16, Rule)] = &[
    (Op::F5Refresh, 429, Rule::Retried),
    (Op::F5Refresh, 503, Rule::Retried),
    (Op::F5Refresh, 502, Rule::SentOnce),
    (Op::F5Refresh, 504, Rule::SentOnce),
    (Op::F5Refresh, 500, Rule::SentOnce),
    (Op::VcfCreate, 429, Rule::Retried),
    (Op::VcfCreate, 503, Rule::Retried),
    (Op::VcfCreate, 502, Rule::SentOnce),
    (Op::VcfCreate, 504, Rule::SentOnce),
    (Op::VcfCreate, 500, Rule::SentOnce),
    (Op::VcfRefresh, 429, Rule::Retried),
    (Op::VcfRefresh, 503, Rule::Retried),
    (Op::VcfRefresh, 502, Rule::Retried),
    (Op::VcfRefresh, 504, Rule::Retried),
    (Op::VcfRefresh, 500, Rule::SentOnce),
    (Op::VcfInvalidate, 429, Rule::Retried),
    (Op::VcfInvalidate, 503, Rule::Retried),
    (Op::VcfInvalidate, 502, Rule::Retried),
    (Op::VcfInvalidate, 504, Rule::Retried),
    (Op::VcfInvalidate, 500, Rule::SentOnce),
];

#[tokio::test]
async fn a_request_that_may_have_been_processed_is_not_sent_again() {
    for &(op, status, rule) in RETRY_RULE {
        let case = format!("{op:?} answered {status}");
        let server = scripted_for(
            op,
            vec![Reply::json(status, json!({"message": "gateway says no"}))],
        )
        .await;
        let outcome = op.call(&server.url(), quick_transport()).await;
        let (method, path) = op.method_and_path();
        assert!(
            server
                .received()
                .iter()
                .all(|r| r.method == method && r.path == path),
            "{case}: {:?}",
            server.received()
        );
        match rule {
            Rule::Retried => {
                outcome.unwrap_or_else(|err| panic!("{case}: the retry must succeed: {err}"));
                assert_eq!(server.requests(), 2, "{case}");
            }
            Rule::SentOnce => {
                let err = outcome.expect_err("one attempt, whose error is returned");
                assert_eq!(server.requests(), 1, "{case}: sent again");
                assert_eq!(err.attempts(), 1, "{case}");
                assert_eq!(err.kind(), ErrorKind::Server, "{case}: {err}");
                assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{case}");
            }
        }
    }
}

/// Answers the `n`-th request with `replies[n]`, then with `op`'s success.
async fn scripted_for(op: Op, replies: Vec<Reply>) -> Loopback {
    Loopback::start(move |r| {
        replies
            .get(r.index)
            .cloned()
            .unwrap_or_else(|| op.success())
    })
    .await
}

#[tokio::test]
async fn transient_statuses_are_retried_until_success() {
    // Every request is retried after 429 and 503; 502 and 504 only where
    // repeating is harmless, such as VCF's refresh.
    let cases = [
        (Op::F5Refresh, 429),
        (Op::F5Refresh, 503),
        (Op::VcfCreate, 429),
        (Op::VcfCreate, 503),
        (Op::VcfRefresh, 429),
        (Op::VcfRefresh, 502),
        (Op::VcfRefresh, 503),
        (Op::VcfRefresh, 504),
    ];
    for (op, status) in cases {
        let server = scripted_for(
            op,
            vec![Reply::json(status, json!("busy")), Reply::empty(status)],
        )
        .await;
        op.call(&server.url(), quick_transport())
            .await
            .unwrap_or_else(|err| panic!("{op:?} {status}: the third attempt succeeds: {err}"));
        assert_eq!(server.requests(), 3, "{op:?} {status}");
    }
    // The pipeline token arrives whole after retries.
    let server = scripted(vec![Reply::json(503, json!("busy"))]).await;
    let client = f5_client(&server.url(), "token", quick_transport());
    let token = client
        .refresh_token("pipeline")
        .await
        .expect("second attempt succeeds");
    assert_eq!(token.secret().expose_secret(), "{\"token\":\"t\"}");
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let server = Loopback::start(|_| Reply::json(503, json!("down"))).await;
    let transport = quick_transport().retry(
        RetryPolicy::default()
            .max_attempts(4)
            .base_delay(Duration::from_millis(5))
            .max_delay(Duration::from_millis(20)),
    );
    let client = f5_client(&server.url(), "token", transport);
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("always 503");
    assert_eq!(server.requests(), 4);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
}

#[tokio::test]
async fn non_transient_statuses_are_not_retried() {
    for status in [400, 401, 403, 404, 409, 500] {
        let server = Loopback::start(move |_| Reply::json(status, json!("no"))).await;
        let client = f5_client(&server.url(), "token", quick_transport());
        client
            .refresh_token("pipeline")
            .await
            .expect_err("error status");
        assert_eq!(server.requests(), 1, "{status} must not be retried");
    }
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = scripted(vec![
        Reply::json(429, json!("slow down")).header("retry-after", "1"),
    ])
    .await;
    let client = f5_client(&server.url(), "token", quick_transport());
    client
        .refresh_token("pipeline")
        .await
        .expect("second attempt succeeds");
    let received = server.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    // Without Retry-After the quick policy waits at most 50 ms; the wait is
    // the server's second, not more (a backoff added on top, a unit taken
    // for minutes).
    assert!(
        gap >= Duration::from_millis(950) && gap < Duration::from_millis(1750),
        "waited {gap:?} for Retry-After: 1"
    );
}

#[tokio::test]
async fn retry_after_http_date_counts_from_the_servers_date() {
    // A server whose clock is 31 years behind ours asks for 2 s by date: the
    // wait is those 2 s, measured against its `Date`, not zero (the date is
    // in our past) and not a wait measured by our clock.
    let server = scripted(vec![
        Reply::json(503, json!("maintenance"))
            .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("retry-after", "Sun, 06 Nov 1994 08:49:39 GMT"),
    ])
    .await;
    let client = f5_client(&server.url(), "token", quick_transport());
    client
        .refresh_token("pipeline")
        .await
        .expect("second attempt succeeds");
    let received = server.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(1950) && gap < Duration::from_millis(2750),
        "waited {gap:?} for a date 2 s after the server's"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_returns_at_once_with_the_wait() {
    let server =
        Loopback::start(|_| Reply::json(429, json!("later")).header("retry-after", "120")).await;
    let transport =
        quick_transport().retry(RetryPolicy::default().deadline(Duration::from_secs(5)));
    let client = f5_client(&server.url(), "token", transport);
    let started = Instant::now();
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("rate limited");
    // The wait cannot end before the deadline, so none is taken at all: not
    // the 120 s asked, nor the 5 s left.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?} instead of returning at once",
        started.elapsed()
    );
    assert_eq!(server.requests(), 1);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn the_deadline_bounds_a_slow_server() {
    let server = Loopback::start(|_| ok_reply().after(Duration::from_secs(30))).await;
    let transport = quick_transport()
        .attempt_timeout(Duration::from_secs(60))
        .retry(RetryPolicy::default().deadline(Duration::from_millis(500)));
    let client = f5_client(&server.url(), "token", transport);
    let started = Instant::now();
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("deadline passes");
    // The attempt is cut at the deadline, not at the 60 s attempt timeout
    // nor the server's 30 s.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(1500),
        "took {elapsed:?} for a 500 ms deadline"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.to_string().contains("deadline"), "{err}");
}

/// Statuses that are retried for every request, each with a `Retry-After`
/// no wait can honour, or one that is not a wait at all.
#[tokio::test]
async fn absurd_retry_after_values_neither_panic_nor_stall() {
    let end_of_http_time = "Fri, 31 Dec 9999 23:59:59 GMT";
    let forever = Some(Duration::from_secs(u64::MAX));
    for status in [429, 503] {
        let kind = if status == 429 {
            ErrorKind::RateLimited
        } else {
            ErrorKind::Server
        };
        for (value, attempts) in [
            ("18446744073709551615", 1),
            ("99999999999999999999999999", 1),
            (end_of_http_time, 1),
            // Not a wait: the backoff applies, and all attempts are made.
            ("-1", 3),
        ] {
            let case = format!("{status} with Retry-After: {value}");
            let server = Loopback::start(move |_| {
                Reply::json(status, json!("later")).header("retry-after", value)
            })
            .await;
            let client = f5_client(&server.url(), "token", quick_transport());
            let started = Instant::now();
            let err = tokio::spawn(async move { client.refresh_token("pipeline").await })
                .await
                .unwrap_or_else(|join| panic!("{case}: the call panicked: {join}"))
                .expect_err("the server always refuses");
            let elapsed = started.elapsed();
            assert!(elapsed < Duration::from_secs(1), "{case}: took {elapsed:?}");
            assert_eq!(server.requests(), attempts, "{case}");
            assert_eq!(err.attempts(), attempts as u32, "{case}");
            assert_eq!(err.kind(), kind, "{case}: {err}");
            assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{case}");
            match value {
                "-1" => assert_eq!(err.retry_after(), None, "{case}"),
                v if v == end_of_http_time => {
                    let wait = err.retry_after().expect("a date in the future");
                    assert!(wait > Duration::from_secs(7_000 * 365 * 86_400), "{case}");
                }
                _ => {
                    assert_eq!(err.retry_after(), forever, "{case}");
                    assert!(
                        err.to_string()
                            .contains("retry after 18446744073709551615 s"),
                        "{case}: {err}"
                    );
                }
            }
        }
    }
}

/// `Duration::MAX` as the deadline and every timeout means none: the
/// operation works, retries, and a wait that cannot end is not taken.
#[tokio::test]
async fn a_deadline_and_timeouts_of_duration_max_mean_none() {
    let unbounded = || {
        quick_transport()
            .connect_timeout(Duration::MAX)
            .attempt_timeout(Duration::MAX)
            .retry(
                RetryPolicy::default()
                    .base_delay(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(50))
                    .deadline(Duration::MAX),
            )
    };
    for op in [
        Op::F5Refresh,
        Op::VcfCreate,
        Op::VcfRefresh,
        Op::VcfInvalidate,
    ] {
        let server = scripted_for(op, vec![Reply::json(503, json!("busy"))]).await;
        tokio::spawn(async move { op.call(&server.url(), unbounded()).await.map(|()| server) })
            .await
            .unwrap_or_else(|join| panic!("{op:?}: the call panicked: {join}"))
            .map(|server| assert_eq!(server.requests(), 2, "{op:?}"))
            .unwrap_or_else(|err| panic!("{op:?}: the retry succeeds: {err}"));
    }

    let server = Loopback::start(|_| {
        Reply::json(429, json!("later")).header("retry-after", "18446744073709551615")
    })
    .await;
    let url = server.url();
    let started = Instant::now();
    let err = tokio::spawn(async move { Op::VcfCreate.call(&url, unbounded()).await })
        .await
        .expect("the call does not panic")
        .expect_err("rate limited");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 1);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(u64::MAX)));

    // Waits that can be represented but would stall the caller (and every
    // caller sharing a token renewal) for as long as the server says: over
    // 5 minutes, none is taken without a deadline either.
    for seconds in [9_999_999_999_u64, 301] {
        let value = seconds.to_string();
        let server = Loopback::start(move |_| {
            Reply::json(429, json!("later")).header("retry-after", &value)
        })
        .await;
        let url = server.url();
        let call = tokio::spawn(async move { Op::VcfCreate.call(&url, unbounded()).await });
        let err = tokio::time::timeout(Duration::from_secs(20), call)
            .await
            .unwrap_or_else(|_| panic!("Retry-After: {seconds} stalled the call"))
            .expect("the call does not panic")
            .expect_err("rate limited");
        assert_eq!(server.requests(), 1, "Retry-After: {seconds}");
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(seconds)));
        assert!(
            !err.to_string().contains("deadline"),
            "no deadline passed: {err}"
        );
    }
}

/// An attempt that fails without an answer after one that was answered: the
/// error describes the last attempt, not the earlier status and its wait.
#[tokio::test]
async fn a_failure_after_a_retried_status_is_reported_as_itself() {
    let server = scripted(vec![
        Reply::json(503, json!("busy")).header("retry-after", "0"),
        ok_reply().after(Duration::from_secs(30)),
    ])
    .await;
    let transport = quick_transport().attempt_timeout(Duration::from_millis(300));
    let client = f5_client(&server.url(), "token", transport);
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("the second attempt times out");
    assert_eq!(server.requests(), 2);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(
        err.status(),
        None,
        "no status came with the last attempt: {err}"
    );
    assert_eq!(err.retry_after(), None, "{err}");
    assert!(!err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn connection_failures_are_retried() {
    let url = refused_url().await;
    let client = f5_client(&url, "token", quick_transport());
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.attempts(), 3);
}

#[tokio::test]
async fn bodies_over_the_cap_fail_without_losing_the_status() {
    let big = "x".repeat(2 * 1024 * 1024);
    let server = Loopback::start(move |r| match r.index {
        0 => Reply::json(200, json!({ "result": big.clone() })),
        _ => Reply::new(500, "text/plain", big.clone()),
    })
    .await;
    let client = f5_client(&server.url(), "token", quick_transport());
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert!(err.to_string().contains("1048576-byte cap"), "{err}");
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));

    // The cap is configurable, and holds for bodies without Content-Length.
    let mut raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"result\":\"".to_vec();
    raw.extend(std::iter::repeat_n(b'y', 64 * 1024));
    raw.extend_from_slice(b"\"}");
    let raw_server = Loopback::always(Step::Raw(raw)).await;
    let url = raw_server.url();
    let small = f5_client(
        &url,
        "token",
        quick_transport().max_response_bytes(16 * 1024),
    );
    let err = small
        .refresh_token("pipeline")
        .await
        .expect_err("too large");
    assert!(err.to_string().contains("16384-byte cap"), "{err}");
    let roomy = f5_client(&url, "token", quick_transport());
    roomy
        .refresh_token("pipeline")
        .await
        .expect("fits under 1 MiB");
}

#[tokio::test]
async fn requests_carry_the_api_token_and_user_agent() {
    let server = Loopback::start(|_| ok_reply()).await;
    let client = f5_client(&server.url(), "my-token", quick_transport());
    client.refresh_token("pipeline-7").await.expect("ok");
    let request = &server.received()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, F5_PATH);
    assert_eq!(request.header("authorization"), Some("APIToken my-token"));
    let agent = request.header("user-agent").expect("a user agent");
    assert_eq!(agent, format!("refresh-sdk/{}", env!("CARGO_PKG_VERSION")));
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(body, json!({"product_name": "pipeline-7"}));
}

#[tokio::test]
async fn redirects_to_another_origin_are_not_followed() {
    let other = Loopback::start(|_| ok_reply()).await;
    let target = format!("{}{F5_PATH}", other.url());
    let server = Loopback::start(move |_| Reply::empty(307).header("location", &target)).await;
    let client = f5_client(&server.url(), "token", quick_transport());
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("redirect refused");
    assert_eq!(other.requests(), 0, "credentials reached another origin");
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(307));

    // Within the same origin a redirect is followed.
    let hops = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hops);
    let same = Loopback::start(move |r| {
        if r.path == "/moved" {
            ok_reply()
        } else {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::empty(307).header("location", "/moved")
        }
    })
    .await;
    let client = f5_client(&same.url(), "token", quick_transport());
    client
        .refresh_token("pipeline")
        .await
        .expect("same-origin redirect followed");
    assert_eq!(hops.load(Ordering::SeqCst), 1);
    assert_eq!(
        same.received()[1].header("authorization"),
        Some("APIToken token")
    );
}

#[tokio::test]
async fn every_base_url_form_reaches_the_same_path() {
    let server = Loopback::start(|_| ok_reply()).await;
    for form in [
        server.url(),
        format!("{}/", server.url()),
        format!("{}/api", server.url()),
        format!("{}/api/", server.url()),
        format!("{}//api//", server.url()),
        server.addr().to_string(),
    ] {
        let base = refresh_sdk::f5xc::normalize_base_url(&form).expect("valid form");
        let base = if form == server.addr().to_string() {
            // A bare host:port means https; swap in http for the loopback server.
            assert_eq!(base, format!("https://{}", server.addr()));
            server.url()
        } else {
            assert_eq!(base, server.url(), "{form}");
            form.clone()
        };
        let client = f5_client(&base, "token", quick_transport());
        client.refresh_token("pipeline").await.expect("reachable");
    }
    assert!(server.received().iter().all(|r| r.path == F5_PATH));
}

#[test]
fn tenant_and_console_forms_normalize_to_the_console_root() {
    let root = "https://acme.console.ves.volterra.io";
    for form in [
        "acme",
        " acme ",
        "ACME",
        "acme.console.ves.volterra.io",
        "https://acme.console.ves.volterra.io",
        "https://acme.console.ves.volterra.io/",
        "https://acme.console.ves.volterra.io/api",
        "https://acme.console.ves.volterra.io/api/",
        "https://acme.console.ves.volterra.io/api/api",
        "https://acme.console.ves.volterra.io/api//api/",
    ] {
        assert_eq!(
            refresh_sdk::f5xc::normalize_base_url(form).expect(form),
            root,
            "{form}"
        );
    }
    // A path prefix (a proxy) is kept; only trailing /api segments are dropped.
    assert_eq!(
        refresh_sdk::f5xc::normalize_base_url("https://proxy.example/f5/api").expect("prefix"),
        "https://proxy.example/f5"
    );
    let vcf = refresh_sdk::vcf::normalize_host;
    assert_eq!(
        vcf("sfo-vcf01.rainpole.io").expect("fqdn"),
        "https://sfo-vcf01.rainpole.io"
    );
    assert_eq!(
        vcf("sfo-vcf01.rainpole.io:8443/").expect("port"),
        "https://sfo-vcf01.rainpole.io:8443"
    );
    assert_eq!(
        vcf("http://127.0.0.1:9000").expect("http"),
        "http://127.0.0.1:9000"
    );
    assert_eq!(
        vcf("https://vcf.example/").expect("https"),
        "https://vcf.example"
    );
}

#[tokio::test]
async fn the_raw_client_shares_auth_and_the_executor() {
    let server = scripted(vec![Reply::json(503, json!("busy"))]).await;
    let client = f5_client(&server.url(), "raw-token", quick_transport());
    let request = refresh_sdk::f5xc::client::types::RefreshTokenRequest {
        product_name: Some("p".into()),
    };
    client
        .raw()
        .refresh_token(&request)
        .await
        .expect("retried through the shared executor");
    assert_eq!(server.requests(), 2);
    assert_eq!(
        server.received()[1].header("authorization"),
        Some("APIToken raw-token")
    );
}
