//! The fault matrix: every fault the fault-injecting server can produce,
//! against the F5 operation and the VCF operations of the facade.
//!
//! Each case asserts the error kind and status, the attempts the server saw
//! (and the error reports), the elapsed time within bounds, that nothing
//! panicked, and that the canary, used as every secret the SDK sends and
//! every token the server issues, shows in no error text, no `Debug` and no
//! trace line.
//!
//! Time bounds: lower bounds are what the facade must wait (a `Retry-After`,
//! a timeout); upper bounds add [`SLACK`], a fixed allowance for a loaded
//! 2-core machine. They check behaviour (a wait happened, a deadline held),
//! not performance.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use refresh_loopback::{Loopback, Reply, Step, refused_url};
use refresh_sdk::error::VendorDetail;
use refresh_sdk::vcf::VcfCredentials;
use refresh_sdk::{
    Error, ErrorKind, ExposeSecret, F5Client, F5Config, F5Credentials, RetryPolicy, SecretString,
    TransportOptions, VcfClient, VcfConfig,
};
use serde_json::json;
use workspace_tests::{peak_resident_bytes, resident_bytes};

const CANARY: &str = "CANARY-6b3d91f2";

/// What a loaded machine may add to any wait: scheduling, connection set-up.
const SLACK: Duration = Duration::from_millis(750);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const BASE_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_millis(100);

/// The matrix's client settings: three attempts with short backoff, a 1 s
/// per-attempt timeout, a deadline far enough not to interfere.
fn transport() -> TransportOptions {
    TransportOptions::default()
        .connect_timeout(Duration::from_secs(2))
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .retry(policy().max_attempts(3))
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .base_delay(BASE_DELAY)
        .max_delay(MAX_DELAY)
        .deadline(Duration::from_secs(10))
}

/// The longest the backoff can wait in total before attempt `attempts`.
fn max_backoff(attempts: u32) -> Duration {
    (1..attempts)
        .map(|retry| {
            BASE_DELAY
                .saturating_mul(2u32.pow(retry - 1))
                .min(MAX_DELAY)
        })
        .sum()
}

// ---------------------------------------------------------------- traces

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("trace buffer lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Every trace line of this test binary, at every level.
fn traces() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(capture.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this test binary");
        capture
    })
}

fn assert_no_canary_in_traces() {
    let text = String::from_utf8_lossy(&traces().0.lock().expect("trace buffer lock")).into_owned();
    assert!(
        text.contains("refresh_sdk.operation"),
        "the trace capture works"
    );
    assert!(!text.contains(CANARY), "the canary is in a trace:\n{text}");
}

fn assert_no_canary_in_error(err: &Error) {
    let mut texts = vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")];
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        texts.push(inner.to_string());
        texts.push(format!("{inner:?}"));
        source = inner.source();
    }
    for text in texts {
        assert!(!text.contains(CANARY), "the canary is in an error: {text}");
    }
}

// ---------------------------------------------------------------- operations

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    F5Refresh,
    VcfCreate,
    VcfRefresh,
}

const OPS: [Op; 3] = [Op::F5Refresh, Op::VcfCreate, Op::VcfRefresh];

impl Op {
    fn success_status(self) -> u16 {
        match self {
            Op::VcfCreate => 201,
            _ => 200,
        }
    }

    /// The documented success, carrying the canary as the issued token.
    fn success(self) -> Reply {
        match self {
            Op::F5Refresh => Reply::json(
                200,
                json!({ "result": json!({ "token": format!("{CANARY}-pipeline") }).to_string() }),
            ),
            Op::VcfCreate => Reply::json(
                201,
                json!({
                    "accessToken": format!("{CANARY}-access"),
                    "refreshToken": { "id": format!("{CANARY}-refresh") },
                }),
            ),
            Op::VcfRefresh => Reply::json(200, json!(format!("{CANARY}-access"))),
        }
    }

    /// A success status whose body breaks off inside the issued token.
    fn malformed(self) -> Reply {
        let body = match self {
            Op::F5Refresh => format!(r#"{{"result": "{{\"token\": \"{CANARY}"#),
            Op::VcfCreate => format!(r#"{{"accessToken": "{CANARY}", "refreshToken": {{"id"#),
            Op::VcfRefresh => format!(r#""{CANARY}"#),
        };
        Reply::new(self.success_status(), "application/json", body)
    }

    /// A success status whose token bytes are not UTF-8.
    fn invalid_utf8(self) -> Reply {
        let mut body = match self {
            Op::F5Refresh => br#"{"result": ""#.to_vec(),
            Op::VcfCreate => br#"{"refreshToken": {"id": "r"}, "accessToken": ""#.to_vec(),
            Op::VcfRefresh => br#"""#.to_vec(),
        };
        body.extend_from_slice(CANARY.as_bytes());
        body.extend_from_slice(b"\xff\xfe\xc3\x28");
        body.extend_from_slice(match self {
            Op::F5Refresh => br#""}"#.as_slice(),
            Op::VcfCreate => br#""}"#.as_slice(),
            Op::VcfRefresh => br#"""#.as_slice(),
        });
        Reply::new(self.success_status(), "application/json", body)
    }

    fn path(self) -> &'static str {
        match self {
            Op::F5Refresh => "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
            Op::VcfCreate => "/v1/tokens",
            Op::VcfRefresh => "/v1/tokens/access-token/refresh",
        }
    }

    /// Runs the operation with the canary as its secret. A success is
    /// checked here (the token arrived, its `Debug` hides it) and returned as
    /// `Ok(())`.
    async fn call(self, url: String, transport: TransportOptions) -> Result<(), Error> {
        match self {
            Op::F5Refresh => {
                let config = F5Config::new(&url, F5Credentials::api_token(CANARY))
                    .expect("a loopback URL is a valid F5 address")
                    .transport(transport);
                let client = F5Client::new(config).expect("the F5 client builds");
                let token = client.refresh_token("pipeline").await?;
                assert!(token.secret().expose_secret().contains(CANARY));
                assert!(!format!("{token:?}").contains(CANARY));
            }
            Op::VcfCreate | Op::VcfRefresh => {
                let config = VcfConfig::new(&url)
                    .expect("a loopback URL is a valid VCF address")
                    .transport(transport);
                let client = VcfClient::new(config).expect("the VCF client builds");
                if self == Op::VcfCreate {
                    let credentials = VcfCredentials::new("administrator@vsphere.local", CANARY);
                    let pair = client.create_token(&credentials).await?;
                    assert!(pair.access_token.expose_secret().contains(CANARY));
                    assert!(!format!("{pair:?} {credentials:?}").contains(CANARY));
                } else {
                    let refresh = SecretString::from(CANARY);
                    let access = client.refresh_access_token(&refresh).await?;
                    assert!(access.expose_secret().contains(CANARY));
                    assert!(!format!("{access:?}").contains(CANARY));
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- checks

/// What one case expects of one operation.
#[derive(Clone, Debug)]
struct Expect {
    /// `None`: the operation succeeds.
    kind: Option<ErrorKind>,
    status: Option<u16>,
    /// Attempts the server saw and the error reports.
    attempts: u32,
    /// Inclusive bounds of the elapsed time.
    at_least: Duration,
    at_most: Duration,
}

impl Expect {
    fn failure(kind: ErrorKind, status: Option<u16>, attempts: u32) -> Expect {
        Expect {
            kind: Some(kind),
            status,
            attempts,
            at_least: Duration::ZERO,
            at_most: max_backoff(attempts) + SLACK,
        }
    }

    fn success(attempts: u32) -> Expect {
        Expect {
            kind: None,
            status: None,
            attempts,
            at_least: Duration::ZERO,
            at_most: max_backoff(attempts) + SLACK,
        }
    }

    fn between(mut self, at_least: Duration, at_most: Duration) -> Expect {
        self.at_least = at_least;
        self.at_most = at_most;
        self
    }
}

/// Runs `op` against `url` on its own task, so that a panic is caught and
/// reported as such, and checks the outcome. Returns the error, if any, for
/// case-specific checks.
async fn run(
    op: Op,
    url: String,
    transport: TransportOptions,
    server: Option<&Loopback>,
    expect: &Expect,
) -> Option<Error> {
    traces();
    let started = Instant::now();
    let outcome = tokio::spawn(op.call(url, transport)).await;
    let elapsed = started.elapsed();
    let result = match outcome {
        Ok(result) => result,
        Err(join) => panic!("{op:?} panicked or was cancelled: {join}"),
    };
    let error = match (&result, expect.kind) {
        (Ok(()), None) => None,
        (Ok(()), Some(kind)) => panic!("{op:?} succeeded, expected a {kind:?} error"),
        (Err(err), None) => panic!("{op:?} failed, expected success: {err}"),
        (Err(err), Some(kind)) => {
            assert_eq!(err.kind(), kind, "{op:?}: the error kind of {err}");
            assert_eq!(
                err.status().map(|s| s.as_u16()),
                expect.status,
                "{op:?}: the status of {err}"
            );
            assert_eq!(err.attempts(), expect.attempts, "{op:?}: attempts of {err}");
            if expect.status.is_some_and(|status| status >= 400) {
                // The server answered: the exchange itself did not fail.
                assert_eq!(err.transport_cause(), None, "{op:?}: {err:?}");
            }
            assert_no_canary_in_error(err);
            Some(err.clone())
        }
    };
    if let Some(server) = server {
        assert_eq!(
            server.requests(),
            expect.attempts as usize,
            "{op:?}: requests the server saw"
        );
        assert!(
            server
                .received()
                .iter()
                .all(|request| request.path == op.path()),
            "{op:?}: every request went to the operation's path"
        );
    }
    assert!(
        elapsed >= expect.at_least && elapsed <= expect.at_most,
        "{op:?}: took {elapsed:?}, expected {:?}..={:?}",
        expect.at_least,
        expect.at_most
    );
    assert_no_canary_in_traces();
    error
}

/// Held shared by every case and exclusively by the memory case, so that
/// under `cargo test` (one process, many threads) the memory it measures is
/// its own. (nextest runs each test in its own process anyway.)
static MEMORY_MEASUREMENT: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Runs `case` for every operation at once and fails if any of them failed.
async fn for_each_op<F, Fut>(case: F)
where
    F: Fn(Op) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _shared = MEMORY_MEASUREMENT.read().await;
    let tasks: Vec<_> = OPS
        .into_iter()
        .map(|op| (op, tokio::spawn(case(op))))
        .collect();
    let mut failures = Vec::new();
    for (op, task) in tasks {
        if let Err(err) = task.await {
            failures.push(format!("{op:?}: {err}"));
        }
    }
    assert!(failures.is_empty(), "failed cases: {failures:#?}");
}

/// The one-step script case: every request gets `step`.
async fn scripted(op: Op, steps: Vec<Step>, expect: Expect) -> Option<Error> {
    let server = Loopback::script(steps).await.without_date();
    run(op, server.url(), transport(), Some(&server), &expect).await
}

// ---------------------------------------------------------------- connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_a_transport_error() {
    for_each_op(|op| async move {
        let url = refused_url().await;
        let expect = Expect::failure(ErrorKind::Transport, None, 3);
        run(op, url, transport(), None, &expect).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_headers_is_a_transport_error_sent_once() {
    for_each_op(|op| async move {
        let expect = Expect::failure(ErrorKind::Transport, None, 1);
        scripted(op, vec![Step::ResetBeforeHeaders], expect).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_is_a_transport_error() {
    for_each_op(|op| async move {
        let mut reply = op.success();
        reply.body.extend_from_slice(&[b' '; 2048]);
        let step = Step::ResetMidBody { reply, sent: 10 };
        let expect = Expect::failure(ErrorKind::Transport, Some(op.success_status()), 1);
        scripted(op, vec![step], expect).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_respects_the_deadline_within_ten_percent() {
    const DEADLINE: Duration = Duration::from_millis(1500);
    for_each_op(|op| async move {
        let server = Loopback::script(vec![Step::Silent]).await.without_date();
        // The per-attempt timeout is longer than the deadline, so only the
        // deadline can end the wait.
        let transport = transport()
            .attempt_timeout(Duration::from_secs(30))
            .retry(policy().max_attempts(3).deadline(DEADLINE));
        let expect = Expect::failure(ErrorKind::Timeout, None, 1)
            .between(DEADLINE, DEADLINE + DEADLINE / 10 + SLACK);
        let err = run(op, server.url(), transport, Some(&server), &expect)
            .await
            .expect("an error");
        assert!(err.to_string().contains("deadline"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickling_past_the_timeout_times_out() {
    for_each_op(|op| async move {
        // 40 bytes of padding at 10 per second: 4 s, four times the timeout.
        let mut reply = op.success();
        reply.body.extend_from_slice(&[b' '; 40]);
        let step = Step::Respond(reply.trickle(1, Duration::from_millis(100)));
        let expect = Expect::failure(ErrorKind::Timeout, Some(op.success_status()), 1)
            .between(ATTEMPT_TIMEOUT, ATTEMPT_TIMEOUT + SLACK);
        scripted(op, vec![step], expect).await;
    })
    .await;
}

// ---------------------------------------------------------------- statuses

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_retry_after_seconds() {
    for_each_op(|op| async move {
        let step = Step::Respond(Reply::json(429, json!("slow down")).header("retry-after", "1"));
        let server = Loopback::script(vec![step]).await.without_date();
        let transport = transport().retry(policy().max_attempts(2));
        let expect = Expect::failure(ErrorKind::RateLimited, Some(429), 2)
            .between(Duration::from_secs(1), Duration::from_secs(1) + SLACK);
        let err = run(op, server.url(), transport, Some(&server), &expect)
            .await
            .expect("an error");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
        assert!(err.is_retryable());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_until_an_http_date() {
    for_each_op(|op| async move {
        // Two seconds ahead, cut to whole seconds by the date format: the
        // wait is over one second and at most two.
        let server = Loopback::start(|_| {
            let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
            Step::Respond(Reply::json(429, json!("slow down")).header("retry-after", &date))
        })
        .await
        .without_date();
        let transport = transport().retry(policy().max_attempts(2));
        let expect = Expect::failure(ErrorKind::RateLimited, Some(429), 2)
            .between(Duration::from_millis(900), Duration::from_secs(2) + SLACK);
        let err = run(op, server.url(), transport, Some(&server), &expect)
            .await
            .expect("an error");
        let wait = err.retry_after().expect("the date became a wait");
        assert!(wait <= Duration::from_secs(2), "{wait:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_unavailable_twice_then_success_on_the_third_attempt() {
    for_each_op(|op| async move {
        let busy = Step::Respond(Reply::json(503, json!("busy")));
        let steps = vec![busy.clone(), busy, Step::Respond(op.success())];
        scripted(op, steps, Expect::success(3)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gateway_and_gateway_timeout_are_retried_only_where_repeating_is_harmless() {
    // Behind a gateway that answered 502 or 504 the request may have been
    // processed: a POST that logs in (VCF create_token) or issues a token (F5
    // refresh_token) is not sent again; VCF's refresh, a PATCH that only
    // mints another access token, is.
    for status in [502u16, 504] {
        for_each_op(move |op| async move {
            let steps = vec![
                Step::Respond(Reply::json(status, json!({"message": "gateway"}))),
                Step::Respond(op.success()),
            ];
            match op {
                Op::VcfRefresh => {
                    scripted(op, steps, Expect::success(2)).await;
                }
                Op::F5Refresh | Op::VcfCreate => {
                    let expect = Expect::failure(ErrorKind::Server, Some(status), 1);
                    let err = scripted(op, steps, expect).await.expect("an error");
                    // The caller may still decide to try again.
                    assert!(err.is_retryable(), "{op:?}: {err}");
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_server_error_is_not_retried() {
    // The facade retries 429 and 503 (and 502 and 504 where repeating is
    // harmless) only: a 500 may have done the work, so it is reported at once.
    for_each_op(|op| async move {
        let step = Step::Respond(Reply::json(500, json!({"message": "boom"})));
        let err = scripted(
            op,
            vec![step],
            Expect::failure(ErrorKind::Server, Some(500), 1),
        )
        .await
        .expect("an error");
        assert!(!err.is_retryable());
    })
    .await;
}

async fn unauthorized(op: Op, reply: Reply) -> Error {
    scripted(
        op,
        vec![Step::Respond(reply)],
        Expect::failure(ErrorKind::Auth, Some(401), 1),
    )
    .await
    .expect("an error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_with_a_json_object() {
    for_each_op(|op| async move {
        let body = json!({"message": "Invalid credentials", "errorCode": "AUTH_FAILED"});
        let err = unauthorized(op, Reply::json(401, body)).await;
        assert!(err.to_string().contains("Invalid credentials"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_with_text_plain() {
    for_each_op(|op| async move {
        let err = unauthorized(op, Reply::new(401, "text/plain", "token expired")).await;
        assert!(
            matches!(err.vendor_detail(), Some(VendorDetail::Unparsed(s)) if s.text == "token expired"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_with_an_html_page() {
    for_each_op(|op| async move {
        let page = "<html><body><h1>401 Authorization Required</h1></body></html>";
        let err = unauthorized(op, Reply::new(401, "text/html", page)).await;
        assert!(
            matches!(err.vendor_detail(), Some(VendorDetail::Unparsed(s)) if s.content_type.as_deref() == Some("text/html")),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_with_no_body() {
    for_each_op(|op| async move {
        // Nothing to decode: an empty snippet without a content type, which
        // the message names rather than leaving a dangling "server said:".
        let err = unauthorized(op, Reply::empty(401)).await;
        match err.vendor_detail() {
            Some(VendorDetail::Unparsed(snippet)) => {
                assert_eq!(snippet.text, "", "{op:?}");
                assert_eq!(snippet.content_type, None, "{op:?}");
                assert!(!snippet.truncated, "{op:?}");
            }
            other => panic!("{op:?}: expected an empty snippet, got {other:?}"),
        }
        assert!(
            err.to_string()
                .contains("server said: empty body (no content type)"),
            "{op:?}: {err}"
        );
    })
    .await;
}

// ---------------------------------------------------------------- bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_with_malformed_json_is_an_invalid_response() {
    for_each_op(|op| async move {
        let expect = Expect::failure(ErrorKind::InvalidResponse, Some(op.success_status()), 1);
        scripted(op, vec![Step::Respond(op.malformed())], expect).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_with_the_wrong_content_type_is_an_invalid_response() {
    for_each_op(|op| async move {
        // A captive portal or a proxy's login page, answered with 2xx.
        let page = format!("<html><body>Sign in ({CANARY})</body></html>");
        let reply = Reply::new(op.success_status(), "text/html", page);
        let expect = Expect::failure(ErrorKind::InvalidResponse, Some(op.success_status()), 1);
        scripted(op, vec![Step::Respond(reply)], expect).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_with_invalid_utf8_is_an_invalid_response() {
    for_each_op(|op| async move {
        let expect = Expect::failure(ErrorKind::InvalidResponse, Some(op.success_status()), 1);
        scripted(op, vec![Step::Respond(op.invalid_utf8())], expect).await;
    })
    .await;
}

/// One test, operations one after another, so that the memory measured is
/// this case's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_mib_body_is_refused_at_the_cap_with_bounded_memory() {
    const TEN_MIB: usize = 10 * 1024 * 1024;
    const CAP: usize = 1024 * 1024;
    let _exclusive = MEMORY_MEASUREMENT.write().await;
    // The first client of each operation loads TLS roots and sets up the
    // runtime's and allocator's pools: a few MiB that are not the body's.
    for op in OPS {
        let server = Loopback::script(vec![Step::Respond(op.success())])
            .await
            .without_date();
        run(
            op,
            server.url(),
            transport(),
            Some(&server),
            &Expect::success(1),
        )
        .await;
    }
    let rss_before = resident_bytes().expect("/proc/self/status is readable");
    let peak_before = peak_resident_bytes().expect("/proc/self/status is readable");
    for op in OPS {
        for content_length in [true, false] {
            let step = Step::Stream {
                status: op.success_status(),
                len: TEN_MIB,
                content_length,
            };
            let server = Loopback::script(vec![step]).await.without_date();
            let expect = Expect::failure(ErrorKind::InvalidResponse, Some(op.success_status()), 1);
            let err = run(
                op,
                server.url(),
                transport().max_response_bytes(CAP),
                Some(&server),
                &expect,
            )
            .await
            .expect("an error");
            assert!(err.to_string().contains("cap"), "{err}");
        }
    }
    let peak_after = peak_resident_bytes().expect("/proc/self/status is readable");
    let growth = peak_after.saturating_sub(peak_before.max(rss_before));
    println!(
        "10 MiB bodies: RSS before {} KiB, peak before {} KiB, peak after {} KiB",
        rss_before / 1024,
        peak_before / 1024,
        peak_after / 1024
    );
    // Buffering a whole body would add 10 MiB; the cap allows about 1 MiB
    // plus the buffer's doubling and the HTTP stack's read buffers.
    assert!(
        growth < 6 * 1024 * 1024,
        "the peak RSS grew by {} KiB",
        growth / 1024
    );
}

// ---------------------------------------------------------------- redirects

/// A redirect loop within the origin (here a relative `Location`, as a
/// property test first found it) is followed 5 times, then reported as too
/// many redirects on the status of the last one, after one attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_too_many_redirects_on_its_last_status() {
    for_each_op(|op| async move {
        let step = Step::Respond(Reply::empty(301).header("location", "39297155854"));
        let server = Loopback::script(vec![step]).await.without_date();
        let expect = Expect::failure(ErrorKind::InvalidResponse, Some(301), 1);
        let err = run(op, server.url(), transport(), None, &expect)
            .await
            .expect("an error");
        assert!(err.to_string().contains("too many redirects"), "{err}");
        assert_eq!(
            server.requests(),
            6,
            "{op:?}: the first request and 5 redirects"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_is_not_followed() {
    for_each_op(|op| async move {
        // Another port on 127.0.0.1 is another origin to the facade's redirect
        // policy, as another host name would be; the tests never leave
        // 127.0.0.1.
        let elsewhere = Loopback::script(vec![Step::Respond(op.success())])
            .await
            .without_date();
        let location = format!("{}{}", elsewhere.url(), op.path());
        let step = Step::Respond(Reply::empty(307).header("location", &location));
        let expect = Expect::failure(ErrorKind::InvalidResponse, Some(307), 1);
        let err = scripted(op, vec![step], expect).await.expect("an error");
        assert_eq!(
            elsewhere.requests(),
            0,
            "{op:?}: the credentials went to the other origin"
        );
        assert!(err.to_string().contains("redirect"), "{err}");
    })
    .await;
}
