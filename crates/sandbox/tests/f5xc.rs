//! F5 XC BFDP semantics, through the generated client over loopback HTTP.

mod common;

use std::time::Duration;

use common::{error_status, f5xc, f5xc_with_token, pipeline};
use refresh_sandbox::{Operation, Sandbox, ViolationKind};

#[tokio::test]
async fn refresh_token_returns_json_text_carrying_a_token() {
    let sandbox = Sandbox::builder()
        .f5xc_pipelines(["alpha", "beta"])
        .start()
        .await
        .expect("sandbox starts");

    let first = f5xc(&sandbox)
        .refresh_token(&pipeline("beta"))
        .await
        .expect("a known pipeline with the right token succeeds");

    assert_eq!(first.status().as_u16(), 200);
    let result = first.into_inner().result.expect("result is set");
    let inner: serde_json::Value = serde_json::from_str(&result).expect("result is JSON text");
    let token = inner["token"].as_str().expect("the JSON carries a token");
    assert_eq!(token.len(), 64);
    assert_eq!(inner["product_name"], "beta");
    assert!(inner["expires_at"].as_u64().is_some());

    let second = f5xc(&sandbox)
        .refresh_token(&pipeline("beta"))
        .await
        .expect("again")
        .into_inner()
        .result
        .expect("result");
    assert_ne!(result, second, "each refresh issues a new token");
    assert_eq!(sandbox.requests(Operation::F5xcRefreshToken), 2);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn wrong_api_token_gets_401_without_a_violation() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");

    let error = f5xc_with_token(&sandbox, "not-the-token")
        .refresh_token(&pipeline("example"))
        .await
        .expect_err("a wrong token is rejected");

    assert_eq!(error_status(&error), 401);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn wrong_authorization_scheme_gets_401() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
            sandbox.f5xc_url()
        ))
        .bearer_auth("sandbox-api-token")
        .json(&pipeline("example"))
        .send()
        .await
        .expect("the sandbox answers");
    assert_eq!(response.status().as_u16(), 401);
    let body: String = response.json().await.expect("a JSON string body");
    assert!(body.contains("APIToken"));
}

#[tokio::test]
async fn missing_authorization_gets_401_and_is_a_violation() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let client =
        f5xc_bfdp::Client::new_with_client(&sandbox.f5xc_url(), reqwest::Client::new(), None);

    let error = client
        .refresh_token(&pipeline("example"))
        .await
        .expect_err("no credentials");

    assert_eq!(error_status(&error), 401);
    let violations = sandbox.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, ViolationKind::MissingAuth);
    assert!(sandbox.violations().is_empty(), "take_violations clears");
}

#[tokio::test]
async fn unknown_pipeline_gets_404() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let error = f5xc(&sandbox)
        .refresh_token(&pipeline("no-such-pipeline"))
        .await
        .expect_err("unknown pipeline");
    assert_eq!(error_status(&error), 404);
    // A request without product_name is valid per the spec (no required
    // properties) and names no pipeline.
    let error = f5xc(&sandbox)
        .refresh_token(&Default::default())
        .await
        .expect_err("no pipeline named");
    assert_eq!(error_status(&error), 404);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sandbox = Sandbox::builder()
        .f5xc_rate_limit(2, Duration::from_secs(3600))
        .start()
        .await
        .expect("sandbox starts");
    let client = f5xc(&sandbox);
    for _ in 0..2 {
        client
            .refresh_token(&pipeline("example"))
            .await
            .expect("within the limit");
    }

    let error = client
        .refresh_token(&pipeline("example"))
        .await
        .expect_err("past the limit");

    match error {
        f5xc_bfdp::Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 429);
            let retry_after: u64 = response
                .headers()
                .get("retry-after")
                .expect("Retry-After is set")
                .to_str()
                .expect("ASCII")
                .parse()
                .expect("whole seconds");
            assert!((1..=3600).contains(&retry_after), "{retry_after}");
        }
        other => panic!("expected the documented 429, got {other:?}"),
    }
    sandbox.assert_spec_clean();
}
