//! The session engine as a downstream service meets it, against the sandbox
//! in real time: callers with their own timeouts, a server that blips or
//! refuses the password, a token another endpoint rejects, logout, and the
//! token's rollover. The paused-clock table in the SDK's
//! `tests/scenarios.rs` covers the same rows exhaustively; these show they
//! hold for a crate that only has the public API.

use std::time::{Duration, Instant};

use refresh_sandbox::{ExposeSecret, Method, Operation, Sandbox, StatusCode};
use refresh_sdk::vcf::{SessionOptions, VcfCredentials, VcfSession};
use refresh_sdk::{ErrorKind, RetryPolicy, TransportOptions, VcfClient, VcfConfig};

fn session(sandbox: &Sandbox, password: &str, options: SessionOptions) -> VcfSession {
    let config = VcfConfig::new(&sandbox.vcf_url())
        .expect("the sandbox URL")
        .transport(
            TransportOptions::default().retry(
                RetryPolicy::default()
                    .base_delay(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(50)),
            ),
        );
    let client = VcfClient::new(config).expect("a VCF client");
    let username = sandbox.credentials().vcf_username.clone();
    VcfSession::new(client, VcfCredentials::new(username, password)).with_options(options)
}

fn good(sandbox: &Sandbox, options: SessionOptions) -> VcfSession {
    let password = sandbox
        .credentials()
        .vcf_password
        .expose_secret()
        .to_owned();
    session(sandbox, &password, options)
}

#[tokio::test]
async fn callers_cancelled_by_their_timeouts_do_not_cancel_the_login() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    sandbox
        .faults()
        .delay_next(Operation::VcfCreateToken, 1, Duration::from_millis(400));
    let vcf = good(&sandbox, SessionOptions::default());
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let vcf = vcf.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(300), vcf.access_token()).await
            })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.expect("a caller").is_err(), "timed out");
    }
    let token = vcf.access_token().await.expect("the login finished anyway");
    assert!(sandbox.is_valid_access_token(token.expose_secret()));
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1, "one login");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_wrong_password_is_tried_once_however_many_callers_ask() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    let vcf = session(&sandbox, "wrong", SessionOptions::default());
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let vcf = vcf.clone();
            tokio::spawn(async move { vcf.access_token().await })
        })
        .collect();
    for caller in callers {
        let err = caller.await.expect("a caller").expect_err("wrong password");
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    }
    for _ in 0..10 {
        let err = vcf.access_token().await.expect_err("still backing off");
        assert_eq!(err.kind(), ErrorKind::Auth);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1, "no lockout");
    assert_eq!(vcf.stats().failed_renewals, 1);
}

#[tokio::test]
async fn absurd_retry_after_and_a_504_on_the_login_neither_panic_nor_repeat_it() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    let faults = sandbox.faults();
    faults.fail_next(
        Operation::VcfCreateToken,
        1,
        StatusCode::SERVICE_UNAVAILABLE,
        Some(Duration::from_secs(u64::MAX)),
    );
    let vcf = good(&sandbox, SessionOptions::default());
    let started = Instant::now();
    let err = vcf.access_token().await.expect_err("503");
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not obey 2^64-1 s"
    );

    let vcf = good(&sandbox, SessionOptions::default());
    faults.fail_next(
        Operation::VcfCreateToken,
        1,
        StatusCode::GATEWAY_TIMEOUT,
        None,
    );
    let before = sandbox.requests(Operation::VcfCreateToken);
    let err = vcf.access_token().await.expect_err("504");
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken) - before,
        1,
        "a login that may have made a token pair is not sent again"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    vcf.access_token().await.expect("the next read logs in");
}

#[tokio::test]
async fn a_token_another_endpoint_rejects_is_renewed_once() {
    let sandbox = Sandbox::builder()
        .protected_route(
            Method::GET,
            "/v1/domains",
            serde_json::json!({ "elements": [{ "name": "sfo-m01" }] }),
        )
        .start()
        .await
        .expect("the sandbox starts");
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configured");
    let inventory = downstream_service::Inventory::new(vcf.clone());
    assert_eq!(
        inventory.domain_names().await.expect("domains"),
        ["sfo-m01"]
    );
    // SDDC Manager drops its sessions; ten calls fail with the same token at
    // once: one renewal, and every call gets its answer.
    sandbox.faults().revoke_access_tokens();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let inventory = inventory.clone();
        calls.spawn(async move { inventory.domain_names().await });
    }
    while let Some(names) = calls.join_next().await {
        assert_eq!(names.expect("a call task").expect("a call"), ["sfo-m01"]);
    }
    let stats = vcf.stats();
    assert_eq!((stats.refreshes, stats.invalidations), (1, 1));
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 1);
    sandbox.assert_spec_clean();
}

/// A sandbox issuing 4 s tokens, which the session counts as 3 s (their
/// claims are whole seconds): renewed 1.5 s before that end, and served
/// normally until 0.75 s before it (the 1 s skew, cut to a quarter of the
/// lifetime).
async fn short_lived() -> (Sandbox, VcfSession) {
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::from_secs(4))
        .start()
        .await
        .expect("the sandbox starts");
    let vcf = good(
        &sandbox,
        SessionOptions::default()
            .skew(Duration::from_secs(1))
            .refresh_ahead(Duration::from_millis(1500)),
    );
    (sandbox, vcf)
}

#[tokio::test]
async fn while_sddc_manager_is_down_the_cached_token_is_served_then_renewed() {
    let (sandbox, vcf) = short_lived().await;
    let first = vcf.access_token().await.expect("a token");
    sandbox.faults().fail_next(
        Operation::VcfRefreshAccessToken,
        1000,
        StatusCode::SERVICE_UNAVAILABLE,
        None,
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let down = Instant::now();
    // From 1.6 s to 2.45 s of the 3 s the token is counted, past the 2.25 s
    // it would normally be served until: renewals fail, callers are served
    // the token that is still valid.
    while down.elapsed() < Duration::from_millis(850) {
        let token = vcf.access_token().await.expect("the cached token");
        assert_eq!(token.expose_secret(), first.expose_secret());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(vcf.stats().failed_renewals >= 1, "renewals were tried");
    sandbox.faults().clear();
    let back = Instant::now();
    loop {
        // Once the token has expired, a read during the backoff gets the
        // last error: that is the only time callers see one.
        if let Ok(token) = vcf.access_token().await
            && token.expose_secret() != first.expose_secret()
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not renewed 5 s after recovery"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Renewed by a refresh while the token lived, or, once it had expired
    // with its last refresh failed, by one login.
    let stats = vcf.stats();
    assert!(stats.logins <= 2, "one login at most: {stats:?}");
    assert_eq!(
        stats.logins + stats.refreshes - stats.failed_renewals,
        2,
        "the first login and one renewal succeeded: {stats:?}"
    );
}

#[tokio::test]
async fn a_refresh_token_sddc_manager_refuses_is_replaced_by_a_login() {
    let (sandbox, vcf) = short_lived().await;
    let first = vcf.access_token().await.expect("a token");
    // VCF documents 400 for the refresh: retrying the same refresh token
    // would fail until it expires, a day later.
    sandbox.faults().fail_next(
        Operation::VcfRefreshAccessToken,
        1,
        StatusCode::BAD_REQUEST,
        None,
    );
    let started = Instant::now();
    loop {
        let token = vcf.access_token().await.expect("a token throughout");
        if token.expose_secret() != first.expose_secret() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not renewed after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 1);
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        2,
        "the refused refresh token was replaced by a login"
    );
    assert_eq!(vcf.stats().waited, 1, "only the first login was waited for");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn at_rollover_no_reader_waits() {
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::from_secs(4))
        .start()
        .await
        .expect("the sandbox starts");
    sandbox.faults().delay_next(
        Operation::VcfRefreshAccessToken,
        10,
        Duration::from_millis(500),
    );
    let vcf = good(
        &sandbox,
        SessionOptions::default()
            .skew(Duration::from_millis(500))
            .refresh_ahead(Duration::from_millis(1500)),
    );
    vcf.access_token().await.expect("the first login");
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let vcf = vcf.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(3) {
                    vcf.access_token().await.expect("a token");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.expect("a reader");
    }
    let stats = vcf.stats();
    assert!(stats.refreshes >= 1, "the token rolled over: {stats:?}");
    assert_eq!(
        stats.waited, 1,
        "only the first login was waited for: {stats:?}"
    );
}

#[tokio::test]
async fn logout_is_final_and_can_be_retried() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    let vcf = good(&sandbox, SessionOptions::default());
    vcf.access_token().await.expect("a token");
    sandbox.faults().fail_next(
        Operation::VcfInvalidateRefreshToken,
        1,
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
    );
    vcf.logout().await.expect_err("the DELETE failed");
    let err = vcf.access_token().await.expect_err("closed");
    assert_eq!(err.kind(), ErrorKind::Closed);
    vcf.logout()
        .await
        .expect("the retry invalidates the refresh token");
    assert_eq!(sandbox.requests(Operation::VcfInvalidateRefreshToken), 2);
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        1,
        "no login after logout"
    );
}

#[tokio::test]
async fn an_sddc_manager_clock_two_hours_behind_costs_no_refreshes() {
    let sandbox = Sandbox::builder()
        .clock_offset_secs(-2 * 3600)
        .start()
        .await
        .expect("the sandbox starts");
    let vcf = good(&sandbox, SessionOptions::default());
    let first = vcf.access_token().await.expect("a token");
    for _ in 0..50 {
        let token = vcf.access_token().await.expect("a token");
        assert_eq!(token.expose_secret(), first.expose_secret());
    }
    let stats = vcf.stats();
    assert_eq!((stats.logins, stats.refreshes), (1, 0), "{stats:?}");
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 0);
}
