//! Property tests: base-URL normalization and response decoding never panic,
//! whatever the input or the server's answer, its headers included.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use refresh_loopback::{Loopback, Reply, Step};
use refresh_sdk::vcf::VcfCredentials;
use refresh_sdk::{
    ErrorKind, F5Client, F5Config, F5Credentials, RetryPolicy, SecretString, TransportOptions,
    VcfClient, VcfConfig,
};

/// Strings shaped like what people put in `VOLT_API_URL` and
/// `VCF_SDDC_MANAGER_HOST`, plus anything at all.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9-]{0,12}",
        "(https?://)?[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-z/]{0,10})?(/api)?/?",
        // Repeated `/api`, dot segments and doubled slashes, which the URL
        // parser and the `/api` stripping both rewrite.
        "https?://[a-z0-9.-]{1,12}(/{1,2}(api|\\.|\\.\\.|%2e|[a-z]{1,3})){0,5}/{0,2}",
        "[ -~]{0,40}",
    ]
}

/// `cases` cases (or `PROPTEST_CASES`, for a longer soak), and no
/// regression files written into the source tree: a failure prints its
/// minimal input, which goes into a named test.
fn config(cases: u32) -> ProptestConfig {
    let soak = std::env::var("PROPTEST_CASES").ok();
    ProptestConfig {
        cases: soak.and_then(|n| n.parse().ok()).unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn f5_base_url_normalization_never_panics_and_is_stable(input in address()) {
        if let Ok(url) = refresh_sdk::f5xc::normalize_base_url(&input) {
            prop_assert!(url.starts_with("https://") || url.starts_with("http://"), "{url}");
            prop_assert!(!url.ends_with('/'), "{url}");
            // A normalized URL fed back (F5Config::new(config.base_url()))
            // must not move.
            prop_assert!(!url.ends_with("/api"), "{url}");
            let again = refresh_sdk::f5xc::normalize_base_url(&url);
            prop_assert_eq!(again.ok(), Some(url));
        }
    }

    #[test]
    fn vcf_host_normalization_never_panics_and_is_idempotent(input in address()) {
        if let Ok(url) = refresh_sdk::vcf::normalize_host(&input) {
            prop_assert!(url.starts_with("https://") || url.starts_with("http://"), "{url}");
            let again = refresh_sdk::vcf::normalize_host(&url);
            prop_assert_eq!(again.ok(), Some(url));
        }
    }

    #[test]
    fn jwt_expiry_never_panics(token in any::<String>()) {
        let _ = refresh_sdk::jwt::expiry(&token);
    }
}

/// The address that once moved when normalized twice (one `/api` was
/// stripped per pass): every trailing `/api` now goes in one pass.
#[test]
fn f5_base_url_normalization_is_idempotent_with_a_doubled_api_segment() {
    let once =
        refresh_sdk::f5xc::normalize_base_url("https://h.example/api/api").expect("a valid URL");
    assert_eq!(once, "https://h.example");
    let twice = refresh_sdk::f5xc::normalize_base_url(&once).expect("a valid URL");
    assert_eq!(once, twice);
}

/// What the loopback server answers next.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn answer() -> impl Strategy<Value = Answer> {
    // 1xx are interim answers, not something a server ends a request with.
    let status = prop_oneof![
        Just(200u16),
        Just(201),
        Just(204),
        Just(401),
        Just(404),
        Just(429),
        Just(500),
        Just(502),
        Just(503),
        Just(504),
        200u16..600,
    ];
    let content_type = prop_oneof![
        Just("application/json"),
        Just("text/plain"),
        Just("text/html"),
        Just(""),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        any::<String>().prop_map(String::into_bytes),
        any::<String>().prop_map(|s| serde_json::json!(s).to_string().into_bytes()),
        any::<String>().prop_map(|s| serde_json::json!({ "result": s }).to_string().into_bytes()),
        (any::<Option<String>>(), any::<Option<String>>()).prop_map(|(a, r)| {
            serde_json::json!({ "accessToken": a, "refreshToken": { "id": r } })
                .to_string()
                .into_bytes()
        }),
    ];
    (status, content_type, body).prop_map(|(status, content_type, body)| Answer {
        status,
        content_type,
        body,
    })
}

/// The kind an error must have for a status the server sent.
fn expected_kind(operation: &str, status: u16) -> ErrorKind {
    match status {
        // SDDC Manager's answer to wrong credentials.
        400 | 401 | 403 if operation == "create_token" => ErrorKind::Auth,
        400.. => {
            ErrorKind::from_status(reqwest::StatusCode::from_u16(status).expect("a valid status"))
        }
        _ => ErrorKind::InvalidResponse,
    }
}

/// Any status and body, for all three operations: never a panic; a success
/// only for a success status; an error that carries the status the server
/// sent.
#[test]
fn any_response_gives_a_value_or_an_error_with_its_status() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let next: Arc<Mutex<Option<Answer>>> = Arc::new(Mutex::new(None));
    let script = Arc::clone(&next);
    let server = runtime
        .block_on(Loopback::start(move |_| {
            let answer = script
                .lock()
                .expect("answer lock")
                .clone()
                .expect("an answer is set before each call");
            Step::Respond(Reply::new(answer.status, answer.content_type, answer.body))
        }))
        .without_date();
    // One attempt, so the status the error reports is the one just set.
    let transport = TransportOptions::default()
        .attempt_timeout(Duration::from_secs(5))
        .retry(RetryPolicy::no_retries());
    let f5 = F5Client::new(
        F5Config::new(&server.url(), F5Credentials::api_token("token"))
            .expect("valid F5 config")
            .transport(transport.clone()),
    )
    .expect("F5 client");
    let vcf = VcfClient::new(
        VcfConfig::new(&server.url())
            .expect("valid VCF config")
            .transport(transport),
    )
    .expect("VCF client");
    let credentials = VcfCredentials::new("user", "password");
    let refresh = SecretString::from("refresh-id");

    let mut runner = proptest::test_runner::TestRunner::new(config(32));
    runner
        .run(&answer(), |answer| {
            *next.lock().expect("answer lock") = Some(answer.clone());
            let status = answer.status;
            let outcomes = runtime.block_on(async {
                [
                    ("refresh_token", f5.refresh_token("p").await.map(|_| ())),
                    (
                        "create_token",
                        vcf.create_token(&credentials).await.map(|_| ()),
                    ),
                    (
                        "refresh_access_token",
                        vcf.refresh_access_token(&refresh).await.map(|_| ()),
                    ),
                ]
            });
            for (operation, outcome) in outcomes {
                match outcome {
                    Ok(()) => prop_assert!(
                        (200..300).contains(&status),
                        "{operation} succeeded on {status}"
                    ),
                    Err(err) => {
                        prop_assert_eq!(
                            err.status().map(|s| s.as_u16()),
                            Some(status),
                            "{}: {}",
                            operation,
                            err
                        );
                        prop_assert_eq!(
                            err.kind(),
                            expected_kind(operation, status),
                            "{}: {}",
                            operation,
                            err
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// A `Retry-After` value in any form a server might send: the delay-seconds
/// and HTTP-date forms, in range and absurd, and anything else.
fn retry_after_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(u64::MAX.to_string().into_bytes()),
        Just(b"99999999999999999999999999".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"-18446744073709551616".to_vec()),
        Just(b"0".to_vec()),
        Just(b"1".to_vec()),
        Just(Vec::new()),
        Just(b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec()),
        Just(b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec()),
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        // Every date HTTP can write: almost all long past or far ahead.
        (0u64..253_402_300_800).prop_map(|secs| {
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)).into_bytes()
        }),
        // A date within the deadline, which is waited for.
        (0u64..3).prop_map(|secs| {
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs)).into_bytes()
        }),
        "[ -~]{0,30}".prop_map(String::into_bytes),
        field_value(),
    ]
}

/// Any bytes a header value may hold on the wire: tab, visible ASCII and
/// bytes 0x80 to 0xFF, which are not UTF-8 on their own.
fn field_value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..40)
}

/// Any header name (an RFC 9110 token) except those that frame the message,
/// which would make it another response rather than this one with odd
/// headers; plus names the SDK reads.
fn header_name() -> impl Strategy<Value = Vec<u8>> {
    const FRAMING: [&str; 7] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    ];
    prop_oneof![
        Just(b"retry-after".to_vec()),
        Just(b"Retry-After".to_vec()),
        Just(b"content-type".to_vec()),
        Just(b"location".to_vec()),
        "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}"
            .prop_filter("a framing header", |name| {
                !FRAMING.contains(&name.to_ascii_lowercase().as_str())
            })
            .prop_map(String::into_bytes),
    ]
}

/// Header names and values, as the bytes on the wire.
type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// An answer with any headers, `Retry-After` ones among them.
fn answer_with_headers() -> impl Strategy<Value = (Answer, Headers)> {
    let retry_after = proptest::collection::vec(
        retry_after_value().prop_map(|value| (b"retry-after".to_vec(), value)),
        0..3,
    );
    let others = proptest::collection::vec(
        (
            header_name(),
            prop_oneof![field_value(), retry_after_value()],
        ),
        0..4,
    );
    (answer(), retry_after, others).prop_map(|(answer, mut headers, others)| {
        headers.extend(others);
        (answer, headers)
    })
}

/// The statuses the SDK sends a request again after, by operation (see
/// `RetryPolicy`).
fn may_retry(operation: &str, status: u16) -> bool {
    match status {
        429 | 503 => true,
        502 | 504 => operation == "refresh_access_token",
        _ => false,
    }
}

/// Any status, body and headers, `Retry-After` in both forms with absurd
/// values among them, for all three operations with retries on and a short
/// deadline: never a panic; a success only for a success status; an error
/// that carries the status the server sent, after one attempt unless the
/// retry rule allows more; and an answer within the deadline plus a margin,
/// whatever wait the server asked for.
#[test]
fn any_response_with_any_headers_ends_within_the_deadline_under_retries() {
    const DEADLINE: Duration = Duration::from_secs(2);
    const MARGIN: Duration = Duration::from_secs(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let next: Arc<Mutex<Option<(Answer, Headers)>>> = Arc::new(Mutex::new(None));
    let script = Arc::clone(&next);
    let server = runtime
        .block_on(Loopback::start(move |_| {
            let (answer, headers) = script
                .lock()
                .expect("answer lock")
                .clone()
                .expect("an answer is set before each call");
            let reply = headers.iter().fold(
                Reply::new(answer.status, answer.content_type, answer.body),
                |reply, (name, value)| reply.header_bytes(name, value),
            );
            Step::Respond(reply)
        }))
        .without_date();
    // Every request gets the same answer, so every attempt sees the status.
    let transport = TransportOptions::default()
        .attempt_timeout(Duration::from_secs(5))
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(5))
                .deadline(DEADLINE),
        );
    let f5 = F5Client::new(
        F5Config::new(&server.url(), F5Credentials::api_token("token"))
            .expect("valid F5 config")
            .transport(transport.clone()),
    )
    .expect("F5 client");
    let vcf = VcfClient::new(
        VcfConfig::new(&server.url())
            .expect("valid VCF config")
            .transport(transport),
    )
    .expect("VCF client");
    let credentials = VcfCredentials::new("user", "password");
    let refresh = SecretString::from("refresh-id");

    async fn timed<T>(
        call: impl std::future::Future<Output = refresh_sdk::Result<T>>,
    ) -> (refresh_sdk::Result<()>, Duration) {
        let started = Instant::now();
        let outcome = call.await.map(|_| ());
        (outcome, started.elapsed())
    }

    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    runner
        .run(&answer_with_headers(), |(answer, headers)| {
            let status = answer.status;
            let sent_retry_after = headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(b"retry-after"));
            *next.lock().expect("answer lock") = Some((answer, headers));
            let (f5_outcome, create_outcome, refresh_outcome) = runtime.block_on(async {
                tokio::join!(
                    timed(f5.refresh_token("p")),
                    timed(vcf.create_token(&credentials)),
                    timed(vcf.refresh_access_token(&refresh)),
                )
            });
            let outcomes = [
                ("refresh_token", f5_outcome),
                ("create_token", create_outcome),
                ("refresh_access_token", refresh_outcome),
            ];
            for (operation, (outcome, elapsed)) in outcomes {
                prop_assert!(
                    elapsed <= DEADLINE + MARGIN,
                    "{} took {:?} on {}",
                    operation,
                    elapsed,
                    status
                );
                match outcome {
                    Ok(()) => prop_assert!(
                        (200..300).contains(&status),
                        "{operation} succeeded on {status}"
                    ),
                    Err(err) => {
                        prop_assert_eq!(
                            err.status().map(|s| s.as_u16()),
                            Some(status),
                            "{}: {}",
                            operation,
                            err
                        );
                        let most = if may_retry(operation, status) { 3 } else { 1 };
                        prop_assert!(
                            (1..=most).contains(&err.attempts()),
                            "{}: {} attempts on {}",
                            operation,
                            err.attempts(),
                            status
                        );
                        if !sent_retry_after {
                            prop_assert_eq!(err.retry_after(), None, "{}: {}", operation, err);
                        }
                        prop_assert_eq!(
                            err.kind(),
                            expected_kind(operation, status),
                            "{}: {}",
                            operation,
                            err
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
