//! Starting and stopping, the way a downstream service's test does.

mod common;

use refresh_sandbox::Sandbox;

#[tokio::test]
async fn three_line_start_serves_both_apis() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let vcf_url = sandbox.vcf_url();
    let f5xc_url = sandbox.f5xc_url();

    assert!(sandbox.local_addr().ip().is_loopback());
    assert_eq!(vcf_url, f5xc_url, "one listener serves both APIs");
    common::create_pair(&sandbox).await;
    common::f5xc(&sandbox)
        .refresh_token(&common::pipeline("example"))
        .await
        .expect("F5 on the same listener");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let url = sandbox.vcf_url();
    sandbox.shutdown().await;
    let error = reqwest::Client::new()
        .post(format!("{url}/v1/tokens"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_are_independent() {
    let first = Sandbox::start_default().await.expect("first starts");
    let second = Sandbox::start_default().await.expect("second starts");
    assert_ne!(first.local_addr(), second.local_addr());
    let (access, refresh) = common::create_pair(&first).await;
    assert!(
        !second.is_valid_access_token(&access),
        "keys are per sandbox"
    );
    let error = common::vcf(&second)
        .refresh_access_token(&refresh)
        .await
        .expect_err("the other sandbox does not know the id");
    assert_eq!(common::error_status(&error), 404);
}

#[test]
fn starting_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let started = futures_executor_block_on(Sandbox::start_default());
    assert!(matches!(started, Err(refresh_sandbox::Error::NoRuntime)));
}

/// Polls a future to completion on this thread without any runtime.
fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}
