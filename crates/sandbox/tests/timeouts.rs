//! Slow and stuck clients: a deadline on each request's headers and body,
//! and a shutdown that never waits on a client.

mod common;

use std::time::{Duration, Instant};

use refresh_sandbox::{Method, Operation, SHUTDOWN_GRACE, Sandbox, ViolationKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A raw connection that has sent `bytes` and then stalls.
async fn stalled(sandbox: &Sandbox, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(sandbox.local_addr())
        .await
        .expect("connects");
    stream.write_all(bytes.as_bytes()).await.expect("sent");
    stream
}

/// Everything the server sends until it closes the connection, and how long
/// that took; panics past `limit`.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut received))
        .await
        .expect("the sandbox closes the connection in time")
        .expect("read");
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn headers_that_never_end_get_the_connection_closed() {
    let sandbox = Sandbox::builder()
        .header_read_timeout(Duration::from_millis(300))
        .start()
        .await
        .expect("sandbox starts");
    let mut stream = stalled(&sandbox, "POST /v1/tokens HTTP/1.1\r\nHost: sandbox\r\n").await;
    let (answer, took) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(answer.is_empty(), "closed without an answer: {answer:?}");
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 0);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_the_documented_answer_and_a_close() {
    let sandbox = Sandbox::builder()
        .body_read_timeout(Duration::from_millis(300))
        .protected_route(Method::POST, "/v1/domains", serde_json::json!({}))
        .start()
        .await
        .expect("sandbox starts");
    let half = "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\":";

    let mut stream = stalled(
        &sandbox,
        &format!("POST /v1/tokens HTTP/1.1\r\nHost: sandbox\r\n{half}"),
    )
    .await;
    let (answer, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let violations = sandbox.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, ViolationKind::InvalidJson);
    assert!(
        violations[0].detail.contains("did not arrive"),
        "{violations:?}"
    );

    let mut stream = stalled(
        &sandbox,
        &format!("POST /v1/domains HTTP/1.1\r\nHost: sandbox\r\n{half}"),
    )
    .await;
    let (answer, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn shutdown_does_not_wait_for_stuck_clients() {
    // The default timeouts (10 s, 30 s): only the shutdown's own deadline
    // can end this in time, and `refresh sandbox` promises an exit within
    // 2 s of a signal.
    assert!(SHUTDOWN_GRACE <= Duration::from_secs(1));
    let sandbox = Sandbox::builder()
        .with_sddc_samples()
        .start()
        .await
        .expect("sandbox starts");
    let mut in_headers = stalled(&sandbox, "GET /v1/domains HTTP/1.1\r\nHost: sandbox\r\n").await;
    let mut in_body = stalled(
        &sandbox,
        "POST /v1/tokens HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await;
    // Let the server pick both up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = sandbox.vcf_url();

    let started = Instant::now();
    tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), sandbox.shutdown())
        .await
        .expect("shutdown returns after its grace period, stuck clients or not");
    assert!(started.elapsed() < SHUTDOWN_GRACE + Duration::from_millis(500));
    for stream in [&mut in_headers, &mut in_body] {
        read_to_close(stream, Duration::from_secs(1)).await;
    }
    let refused = reqwest::Client::new()
        .get(format!("{url}/v1/domains"))
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_within_the_grace() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    sandbox
        .faults()
        .delay_next(Operation::VcfCreateToken, 1, Duration::from_millis(300));
    let vcf = common::vcf(&sandbox);
    let credentials = common::good_credentials(&sandbox);
    let call = tokio::spawn(async move { vcf.create_token(&credentials).await.map(|_| ()) });
    while sandbox.requests(Operation::VcfCreateToken) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sandbox.shutdown().await;
    call.await
        .expect("the call finishes")
        .expect("answered 201 before the server stopped");
}

#[tokio::test]
async fn a_client_that_keeps_its_connection_gets_answers_within_the_deadline() {
    let sandbox = Sandbox::builder()
        .header_read_timeout(Duration::from_secs(2))
        .start()
        .await
        .expect("sandbox starts");
    // Several requests, one connection (reqwest's pool), quicker than the
    // deadline each: the deadline is per request, not per connection.
    let vcf = common::vcf(&sandbox);
    for _ in 0..3 {
        vcf.create_token(&common::good_credentials(&sandbox))
            .await
            .expect("201");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    sandbox.assert_spec_clean();
}
