//! Fault injection: each fault is consumed, in order, by the operation's
//! next requests, then the sandbox answers normally again.

mod common;

use std::time::{Duration, Instant};

use common::{create_pair, error_status, f5xc, good_credentials, pipeline, vcf};
use refresh_sandbox::{Operation, Sandbox, StatusCode};

#[tokio::test]
async fn fail_next_answers_the_status_n_times_with_retry_after() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox.faults().fail_next(
        Operation::F5xcRefreshToken,
        2,
        StatusCode::SERVICE_UNAVAILABLE,
        Some(Duration::from_millis(1500)),
    );
    let client = f5xc(&sandbox);

    for _ in 0..2 {
        match client.refresh_token(&pipeline("example")).await {
            Err(f5xc_bfdp::Error::ErrorResponse(response)) => {
                assert_eq!(response.status().as_u16(), 503);
                assert_eq!(
                    response.headers().get("retry-after").map(|v| v.as_bytes()),
                    Some(&b"2"[..]),
                    "Retry-After rounds up to whole seconds"
                );
            }
            other => panic!("expected the injected 503, got {other:?}"),
        }
    }
    client
        .refresh_token(&pipeline("example"))
        .await
        .expect("the third request is served normally");

    assert_eq!(sandbox.requests(Operation::F5xcRefreshToken), 3);
    assert_eq!(sandbox.faults().pending(Operation::F5xcRefreshToken), 0);
    // Injected statuses are the test's choice, not a sandbox violation.
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn faults_apply_only_to_their_operation() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox.faults().fail_next(
        Operation::VcfRefreshAccessToken,
        1,
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
    );
    let (_, refresh) = create_pair(&sandbox).await;

    let error = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect_err("the injected 500");
    assert_eq!(error_status(&error), 500);
    vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("served normally afterwards");
}

#[tokio::test]
async fn an_undocumented_injected_status_reaches_the_client_as_unexpected() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox.faults().fail_next(
        Operation::VcfCreateToken,
        1,
        StatusCode::TOO_MANY_REQUESTS,
        Some(Duration::from_secs(7)),
    );
    let error = vcf(&sandbox)
        .create_token(&good_credentials(&sandbox))
        .await
        .expect_err("the injected 429");
    match error {
        vcf_tokens::Error::UnexpectedResponse(response) => {
            assert_eq!(response.status().as_u16(), 429);
            assert_eq!(
                response.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"7"[..])
            );
        }
        other => panic!("expected an unexpected (undocumented) response, got {other:?}"),
    }
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn delay_next_delays_then_answers_normally() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let delay = Duration::from_millis(300);
    sandbox
        .faults()
        .delay_next(Operation::F5xcRefreshToken, 1, delay);

    let started = Instant::now();
    f5xc(&sandbox)
        .refresh_token(&pipeline("example"))
        .await
        .expect("a delayed answer is still a success");

    // A lower bound only: the answer cannot come before the delay.
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn delay_lets_a_client_timeout_fire() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox
        .faults()
        .delay_next(Operation::F5xcRefreshToken, 1, Duration::from_secs(30));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        "APIToken sandbox-api-token".parse().expect("header value"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let client = f5xc_bfdp::Client::new_with_client(&sandbox.f5xc_url(), http, None);

    match client.refresh_token(&pipeline("example")).await {
        Err(f5xc_bfdp::Error::CommunicationError(error)) => assert!(error.is_timeout()),
        other => panic!("expected a client timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_next_sends_a_success_status_with_a_body_that_is_not_json() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox
        .faults()
        .malformed_next(Operation::VcfCreateToken, 1);

    match vcf(&sandbox)
        .create_token(&good_credentials(&sandbox))
        .await
    {
        Err(vcf_tokens::Error::InvalidResponsePayload(_, _)) => {}
        other => panic!("expected an invalid payload, got {other:?}"),
    }
    create_pair(&sandbox).await;
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn drop_connection_next_closes_without_a_response() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox
        .faults()
        .drop_connection_next(Operation::F5xcRefreshToken, 1);
    let client = f5xc(&sandbox);

    match client.refresh_token(&pipeline("example")).await {
        Err(f5xc_bfdp::Error::CommunicationError(error)) => {
            assert!(error.status().is_none(), "no response: {error:?}");
            assert!(!error.is_timeout());
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    client
        .refresh_token(&pipeline("example"))
        .await
        .expect("the next request, on a new connection, is served");
    assert_eq!(sandbox.requests(Operation::F5xcRefreshToken), 2);
}

#[tokio::test]
async fn clear_drops_queued_faults() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let faults = sandbox.faults();
    faults.fail_next(
        Operation::VcfCreateToken,
        3,
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
    );
    assert_eq!(faults.pending(Operation::VcfCreateToken), 3);
    faults.clear();
    create_pair(&sandbox).await;
}
