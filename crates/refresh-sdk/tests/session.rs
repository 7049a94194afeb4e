//! `VcfSession` against a loopback SDDC Manager that counts logins,
//! refreshes and invalidations.

mod common;

use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use refresh_loopback::{Loopback, Reply};
use refresh_sdk::vcf::{SessionOptions, VcfCredentials, VcfSession};
use refresh_sdk::{AccessTokenSource, ErrorKind, ExposeSecret, RetryPolicy};
use serde_json::json;

/// How the fake SDDC Manager behaves; tests change it between calls.
struct Manager {
    logins: AtomicUsize,
    refreshes: AtomicUsize,
    invalidated: Mutex<Vec<String>>,
    /// `exp` of issued access tokens, seconds from now; 0 = opaque tokens.
    login_ttl: AtomicU64,
    refresh_ttl: AtomicU64,
    refresh_status: AtomicU16,
    refresh_delay_ms: AtomicU64,
}

fn token(ttl: u64, name: String) -> String {
    if ttl == 0 {
        format!("opaque-{name}")
    } else {
        jwt_expiring_in(ttl as i64, &name)
    }
}

async fn manager(login_ttl: u64, refresh_ttl: u64) -> (Arc<Manager>, Loopback) {
    let state = Arc::new(Manager {
        logins: AtomicUsize::new(0),
        refreshes: AtomicUsize::new(0),
        invalidated: Mutex::new(Vec::new()),
        login_ttl: AtomicU64::new(login_ttl),
        refresh_ttl: AtomicU64::new(refresh_ttl),
        refresh_status: AtomicU16::new(200),
        refresh_delay_ms: AtomicU64::new(0),
    });
    let m = Arc::clone(&state);
    let server = Loopback::start(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/tokens") => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if body["password"] != "pw" {
                return Reply::json(400, json!({"message": "Invalid credentials"}));
            }
            let n = m.logins.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(
                201,
                json!({
                    "accessToken": token(m.login_ttl.load(Ordering::SeqCst), format!("login-{n}")),
                    "refreshToken": {"id": format!("refresh-{n}")},
                }),
            )
        }
        ("PATCH", "/v1/tokens/access-token/refresh") => {
            let n = m.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            let delay = Duration::from_millis(m.refresh_delay_ms.load(Ordering::SeqCst));
            let reply = match m.refresh_status.load(Ordering::SeqCst) {
                200 => {
                    let id = serde_json::from_slice::<String>(&r.body).unwrap_or_default();
                    Reply::json(
                        200,
                        json!(token(
                            m.refresh_ttl.load(Ordering::SeqCst),
                            format!("refreshed-{n}-with-{id}")
                        )),
                    )
                }
                404 => Reply::json(
                    404,
                    json!({"message": "Refresh token not found", "errorCode": "TOKEN_NOT_FOUND"}),
                ),
                status => Reply::json(
                    status,
                    json!({"message": "refresh broke", "referenceToken": "R1"}),
                ),
            };
            reply.after(delay)
        }
        ("DELETE", "/v1/tokens/refresh-token") => {
            m.invalidated
                .lock()
                .expect("lock")
                .push(serde_json::from_slice::<String>(&r.body).unwrap_or_default());
            Reply::empty(204)
        }
        _ => Reply::empty(404),
    })
    .await;
    (state, server)
}

fn session(server: &Loopback, options: SessionOptions) -> VcfSession {
    let transport = quick_transport().retry(RetryPolicy::no_retries());
    VcfSession::new(
        vcf_client(&server.url(), transport),
        VcfCredentials::new("admin", "pw"),
    )
    .with_options(options)
}

fn subject(token: &impl ExposeSecret<str>) -> String {
    use base64::Engine as _;
    let text = token.expose_secret();
    let Some(payload) = text.split('.').nth(1) else {
        return text.to_owned();
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("test JWT payload");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("test JWT claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

#[tokio::test]
async fn a_fresh_token_is_served_from_the_cache() {
    let (m, server) = manager(3600, 3600).await;
    let vcf = session(&server, SessionOptions::default());
    let first = vcf.access_token().await.expect("login");
    for _ in 0..5 {
        assert_eq!(
            vcf.access_token().await.expect("cached").expose_secret(),
            first.expose_secret()
        );
    }
    assert_eq!(subject(&first), "login-1");
    assert_eq!(
        (
            m.logins.load(Ordering::SeqCst),
            m.refreshes.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_share_one_refresh() {
    // Real threads and real time: the paused-clock table in scenarios.rs
    // cannot show that the renewal is shared across worker threads.
    let (m, server) = manager(3600, 3600).await;
    m.refresh_delay_ms.store(1000, Ordering::SeqCst);
    let vcf = session(&server, SessionOptions::default());
    let rejected = vcf.access_token().await.expect("login");
    vcf.invalidate(&rejected);
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let vcf = vcf.clone();
            tokio::spawn(async move { vcf.access_token().await })
        })
        .collect();
    for caller in callers {
        let token = caller.await.expect("caller task").expect("token");
        assert_eq!(subject(&token), "refreshed-1-with-refresh-1");
    }
    assert_eq!(
        m.refreshes.load(Ordering::SeqCst),
        1,
        "one refresh request for all callers"
    );
    assert_eq!(m.logins.load(Ordering::SeqCst), 1);
    let stats = vcf.stats();
    assert_eq!(
        (stats.logins, stats.refreshes, stats.invalidations),
        (1, 1, 1)
    );
    assert_eq!(stats.waited, 1001, "the login's caller and the 1,000");
}

#[tokio::test]
async fn logout_invalidates_the_refresh_token_and_closes_the_session() {
    let (m, server) = manager(3600, 3600).await;
    let vcf = session(&server, SessionOptions::default());
    vcf.access_token().await.expect("login");
    vcf.logout().await.expect("logout");
    assert_eq!(
        *m.invalidated.lock().expect("lock"),
        vec!["refresh-1".to_owned()]
    );
    let err = vcf.access_token().await.expect_err("closed");
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(m.logins.load(Ordering::SeqCst), 1, "no login after logout");
    vcf.logout()
        .await
        .expect("a second logout has nothing to do");
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn sessions_and_pipelines_are_token_sources() {
    let (_m, vcf_server) = manager(3600, 3600).await;
    let f5_server =
        Loopback::start(|_| Reply::json(200, json!({"result": "{\"token\":\"f5\"}"}))).await;
    let sources: Vec<Arc<dyn AccessTokenSource>> = vec![
        Arc::new(session(&vcf_server, SessionOptions::default())),
        Arc::new(f5_client(&f5_server.url(), "api", quick_transport()).pipeline("p1")),
    ];
    let mut tokens = Vec::new();
    for source in &sources {
        tokens.push(
            source
                .access_token()
                .await
                .expect("token")
                .expose_secret()
                .to_owned(),
        );
    }
    assert_eq!(
        subject(&refresh_sdk::SecretString::from(tokens[0].clone())),
        "login-1"
    );
    assert_eq!(tokens[1], "{\"token\":\"f5\"}");
}

#[tokio::test]
async fn from_lookup_builds_a_working_session() {
    let (_m, server) = manager(3600, 3600).await;
    let url = server.url();
    let vcf = VcfSession::from_lookup(move |name| match name {
        "VCF_SDDC_MANAGER_HOST" => Some(url.clone()),
        "VCF_SDDC_MANAGER_USERNAME" => Some("admin".into()),
        "VCF_SDDC_MANAGER_PASSWORD" => Some("pw".into()),
        _ => None,
    })
    .expect("complete environment");
    assert_eq!(
        subject(&vcf.access_token().await.expect("login")),
        "login-1"
    );
    let request = &server.received()[0];
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body, json!({"username": "admin", "password": "pw"}));
}

#[tokio::test]
async fn with_access_token_reads_the_cache_and_renews_a_rejected_token() {
    let (m, server) = manager(3600, 3600).await;
    let vcf = session(&server, SessionOptions::default());
    let header = vcf
        .with_access_token(|token| format!("Bearer {token}"))
        .await
        .expect("login");
    assert_eq!(
        subject(&refresh_sdk::SecretString::from(
            header.trim_start_matches("Bearer ").to_owned()
        )),
        "login-1"
    );
    // Fresh: the closure sees exactly the cached token, and nothing is sent.
    let token = vcf.access_token().await.expect("cached");
    for _ in 0..3 {
        let same = vcf
            .with_access_token(|text| text == token.expose_secret())
            .await
            .expect("cached");
        assert!(
            same,
            "with_access_token saw another token than access_token"
        );
    }
    assert_eq!(m.refreshes.load(Ordering::SeqCst), 0);
    // Rejected: the closure gets the renewed token.
    vcf.invalidate(&token);
    let text = vcf.with_access_token(str::to_owned).await.expect("refresh");
    assert_eq!(
        subject(&refresh_sdk::SecretString::from(text)),
        "refreshed-1-with-refresh-1"
    );
    assert_eq!(
        (
            m.logins.load(Ordering::SeqCst),
            m.refreshes.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn with_access_token_passes_the_error_on_and_never_calls_the_closure() {
    let (_m, server) = manager(3600, 3600).await;
    let transport = quick_transport().retry(RetryPolicy::no_retries());
    let vcf = VcfSession::new(
        vcf_client(&server.url(), transport),
        VcfCredentials::new("admin", "wrong"),
    );
    let called = std::sync::atomic::AtomicBool::new(false);
    let err = vcf
        .with_access_token(|_| called.store(true, Ordering::SeqCst))
        .await
        .expect_err("bad password");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(!called.load(Ordering::SeqCst));
}

#[tokio::test]
async fn cached_tokens_are_shared_not_copied_and_survive_logout() {
    let (_m, server) = manager(3600, 3600).await;
    let vcf = session(&server, SessionOptions::default());
    let first = vcf.access_token().await.expect("login");
    let again = vcf.access_token().await.expect("cached");
    assert!(
        std::ptr::eq(first.expose_secret(), again.expose_secret()),
        "a fresh read copied the token instead of sharing it"
    );
    // The session forgets its tokens; the caller's clone stays readable.
    vcf.logout().await.expect("logout");
    assert_eq!(subject(&first), "login-1");
}

/// A renewal runs on the runtime of the caller that started it. When that
/// runtime shuts down mid-renewal (a test's runtime, a `block_on` wrapper),
/// the next read on a live runtime forgets the dead renewal and starts
/// another, rather than waiting for it or serving its error until expiry.
#[test]
fn a_renewal_whose_runtime_shut_down_is_started_again_on_the_next_read() {
    let main = tokio::runtime::Runtime::new().expect("a runtime");
    let (manager, server) = main.block_on(manager(3600, 3600));
    let vcf = session(&server, SessionOptions::default());
    let first = main.block_on(vcf.access_token()).expect("the first login");
    manager.refresh_delay_ms.store(2000, Ordering::SeqCst);
    {
        let short = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        short.block_on(async {
            // The refresh this report starts runs on `short`.
            vcf.invalidate(&first);
            let waited = tokio::time::timeout(Duration::from_millis(100), vcf.access_token());
            assert!(waited.await.is_err(), "the refresh is still running");
        });
    }
    manager.refresh_delay_ms.store(0, Ordering::SeqCst);
    let renewed = main.block_on(async {
        let started = tokio::time::Instant::now();
        loop {
            match vcf.access_token().await {
                Ok(token) => break token,
                Err(err) => {
                    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
                    assert!(
                        started.elapsed() < Duration::from_secs(2),
                        "no renewal 2 s after its runtime shut down: {err}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    assert!(
        subject(&renewed).starts_with("refreshed-2-"),
        "{}",
        subject(&renewed)
    );
    assert_eq!(manager.refreshes.load(Ordering::SeqCst), 2);
    assert_eq!(manager.logins.load(Ordering::SeqCst), 1);
}

/// Reads for `span` of real time, each as soon as the last failed.
async fn read_for(vcf: &VcfSession, span: Duration) {
    let started = std::time::Instant::now();
    while started.elapsed() < span {
        assert!(vcf.access_token().await.is_err(), "no server, no token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A login that never reached SDDC Manager (nothing listening) cannot have
/// been refused: it does not count against the refused-login limit, so a
/// service that starts before its SDDC Manager keeps trying at the
/// transient pace and logs in as soon as it answers, not 15 minutes later.
#[tokio::test]
async fn a_connection_never_made_is_not_a_possible_refusal() {
    let url = refresh_loopback::refused_url().await;
    let transport = quick_transport().retry(RetryPolicy::no_retries());
    let vcf = VcfSession::new(
        vcf_client(&url, transport),
        VcfCredentials::new("admin", "pw"),
    );
    read_for(&vcf, Duration::from_millis(2500)).await;
    assert!(
        vcf.stats().logins >= 4,
        "logins kept being tried: {:?}",
        vcf.stats()
    );
}

/// A login sent but never answered may have been refused: with credentials
/// never yet accepted, two such count as the limit's two refusals.
#[tokio::test]
async fn a_login_that_timed_out_counts_while_the_credentials_are_unproven() {
    let server = Loopback::always(refresh_loopback::Step::Silent).await;
    let transport = quick_transport()
        .retry(RetryPolicy::no_retries())
        .attempt_timeout(Duration::from_millis(200));
    let vcf = VcfSession::new(
        vcf_client(&server.url(), transport),
        VcfCredentials::new("admin", "pw"),
    );
    read_for(&vcf, Duration::from_millis(2500)).await;
    assert_eq!(
        server.requests(),
        2,
        "held back after two possible refusals"
    );
}
