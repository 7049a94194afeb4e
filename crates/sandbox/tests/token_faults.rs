//! Faults that rewrite the access token of an otherwise normal answer:
//! `access_token_next` (any text, such as one with a control character) and
//! `backdate_next` (a JWT issued long before the request).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{create_pair, error_status, good_credentials, vcf};
use refresh_sandbox::{Method, Operation, Sandbox};

/// The `iat` and `exp` claims of a sandbox JWT.
fn times(token: &str) -> (u64, u64) {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    let claims: serde_json::Value = serde_json::from_slice(&payload).expect("JSON claims");
    let claim = |name: &str| claims[name].as_u64().expect("a numeric claim");
    (claim("iat"), claim("exp"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn access_token_next_replaces_a_pairs_access_token_and_keeps_its_refresh_token() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox
        .faults()
        .access_token_next(Operation::VcfCreateToken, 1, "bad\u{1}token");
    let pair = vcf(&sandbox)
        .create_token(&good_credentials(&sandbox))
        .await
        .expect("a 201 all the same")
        .into_inner();
    assert_eq!(pair.access_token.as_deref(), Some("bad\u{1}token"));
    let refresh = pair
        .refresh_token
        .and_then(|r| r.id)
        .expect("a refresh token id");
    // The refresh token that came with it is real.
    let access = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("the refresh token works")
        .into_inner();
    assert!(sandbox.is_valid_access_token(&access));
    assert!(!sandbox.is_valid_access_token("bad\u{1}token"));
    // One fault, used up: the next login is normal.
    assert_eq!(sandbox.faults().pending(Operation::VcfCreateToken), 0);
    let (next, _) = create_pair(&sandbox).await;
    assert!(sandbox.is_valid_access_token(&next));
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn access_token_next_replaces_a_refreshed_token() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let (_, refresh) = create_pair(&sandbox).await;
    sandbox
        .faults()
        .access_token_next(Operation::VcfRefreshAccessToken, 2, "two words");
    for _ in 0..2 {
        let access = vcf(&sandbox)
            .refresh_access_token(&refresh)
            .await
            .expect("a 200 all the same")
            .into_inner();
        assert_eq!(access, "two words");
    }
    let access = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("served normally afterwards")
        .into_inner();
    assert!(sandbox.is_valid_access_token(&access));
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_request_answered_without_a_token_uses_up_the_fault() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox
        .faults()
        .access_token_next(Operation::VcfCreateToken, 1, "never sent");
    let mut wrong = good_credentials(&sandbox);
    wrong.password = Some("wrong".to_owned());
    let error = vcf(&sandbox)
        .create_token(&wrong)
        .await
        .expect_err("a wrong password is refused as usual");
    assert_eq!(error_status(&error), 400);
    assert_eq!(sandbox.faults().pending(Operation::VcfCreateToken), 0);
    let (access, _) = create_pair(&sandbox).await;
    assert!(sandbox.is_valid_access_token(&access));
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn backdate_next_moves_iat_and_exp_back_and_the_sandbox_judges_by_them() {
    let sandbox = Sandbox::builder()
        .protected_route(
            Method::GET,
            "/v1/domains",
            serde_json::json!({ "elements": [] }),
        )
        .start()
        .await
        .expect("sandbox starts");
    let hour = 3600;
    sandbox
        .faults()
        .backdate_next(Operation::VcfCreateToken, 1, Duration::from_secs(hour - 30));
    let before = unix_now();
    let response = vcf(&sandbox)
        .create_token(&good_credentials(&sandbox))
        .await
        .expect("a 201");
    let after = unix_now();
    assert!(
        response.headers().contains_key("date"),
        "the answer is dated by the real clock"
    );
    let pair = response.into_inner();
    let access = pair.access_token.expect("an access token");
    let (iat, exp) = times(&access);
    assert_eq!(exp - iat, hour, "still an hour's token");
    assert!(
        (before - (hour - 30)..=after - (hour - 30)).contains(&iat),
        "issued an hour less 30 s ago: iat {iat}, now {before}..{after}"
    );
    assert!(
        sandbox.is_valid_access_token(&access),
        "30 s left: still live"
    );
    let domains = reqwest::Client::new()
        .get(format!("{}/v1/domains", sandbox.vcf_url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("sent");
    assert_eq!(domains.status(), 200, "a protected route accepts it");

    // Backdated past its lifetime, a refreshed token is born expired.
    let refresh = pair
        .refresh_token
        .and_then(|r| r.id)
        .expect("a refresh token id");
    sandbox.faults().backdate_next(
        Operation::VcfRefreshAccessToken,
        1,
        Duration::from_secs(hour + 60),
    );
    let stale = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("a 200")
        .into_inner();
    let (iat, exp) = times(&stale);
    assert_eq!(exp - iat, hour);
    assert!(exp < unix_now(), "expired a minute ago");
    assert!(!sandbox.is_valid_access_token(&stale));

    let fresh = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("served normally afterwards")
        .into_inner();
    let (iat, _) = times(&fresh);
    assert!(iat + 5 >= unix_now(), "issued now");
    sandbox.assert_spec_clean();
}
