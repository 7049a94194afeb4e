//! `refresh vcf api`'s request and response options: `-H`, `-i`, and the
//! CA file the SDDC Manager's certificate is checked against.

mod support;

use std::sync::Arc;

use refresh_loopback::{Loopback, Reply};
use refresh_sandbox::{Operation, Sandbox};
use serde_json::json;
use support::*;

/// An SDDC Manager that logs in anyone and answers `GET /v1/echo` with the
/// request's headers.
async fn echoing() -> Loopback {
    Loopback::start(
        |request| match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/v1/tokens") => Reply::json(
                201,
                json!({"accessToken": "access-1", "refreshToken": {"id": "refresh-1"}}),
            ),
            ("DELETE", "/v1/tokens/refresh-token") => Reply::empty(204),
            ("GET", "/v1/echo") => {
                let headers: serde_json::Map<String, serde_json::Value> = request
                    .headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            json!(String::from_utf8_lossy(value.as_bytes())),
                        )
                    })
                    .collect();
                Reply::json(200, serde_json::Value::Object(headers)).header("x-answer", "42")
            }
            _ => Reply::empty(404),
        },
    )
    .await
}

fn env(server: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("VCF_SDDC_MANAGER_HOST", server.url()),
        ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
        ("VCF_SDDC_MANAGER_PASSWORD", "pw".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_given_with_dash_h_are_sent_and_authorization_stays_the_sessions() {
    let server = echoing().await;
    let output = refresh(
        &[
            "vcf",
            "api",
            "GET",
            "/v1/echo",
            "-H",
            "Accept-Language: de",
            "--header",
            "X-Request-Id:  abc-1 ",
        ],
        &env(&server),
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let seen: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(seen["accept-language"], "de");
    assert_eq!(seen["x-request-id"], "abc-1");
    assert_eq!(seen["authorization"], "Bearer access-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_header_or_a_malformed_one_is_refused_before_anything_is_sent() {
    let server = echoing().await;
    for header in [
        "Authorization: Bearer mine",
        "authorization:x",
        "no colon",
        "Bad Name: x",
    ] {
        let output = refresh(
            &["vcf", "api", "GET", "/v1/echo", "-H", header],
            &env(&server),
        )
        .await;
        let message = stderr(&output);
        assert_eq!(code(&output), 2, "{header}: {message}");
        assert_eq!(message.lines().count(), 1, "{header}: {message}");
        assert!(message.contains("-H"), "{header}: {message}");
        assert!(
            !message.contains("mine"),
            "the value is not echoed: {message}"
        );
    }
    assert_eq!(server.requests(), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn include_prints_the_status_line_and_headers_before_the_body() {
    let server = echoing().await;
    let output = refresh(&["vcf", "api", "-i", "GET", "/v1/echo"], &env(&server)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{head}");
    assert!(lines.any(|line| line == "x-answer: 42"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).expect("the body follows");
    assert_eq!(body["authorization"], "Bearer access-1");
}

/// A self-signed SDDC Manager is trusted through its CA file, the safe
/// alternative to VCF_ALLOW_UNVERIFIED_TLS.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_sddc_manager_ca_cert_trusts_a_self_signed_sddc_manager() {
    let sandbox = Arc::new(
        Sandbox::builder()
            .tls(true)
            .start()
            .await
            .expect("a TLS sandbox"),
    );
    let env = vcf_env(&sandbox);
    let refused = refresh(&["vcf", "create-token"], &env).await;
    assert_eq!(code(&refused), 7, "untrusted: {}", stderr(&refused));

    let dir = std::env::temp_dir().join(format!("refresh-cli-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sandbox.ca_pem().expect("a CA")).expect("the CA file");
    let mut trusted_env = env.clone();
    trusted_env.push(("VCF_SDDC_MANAGER_CA_CERT", ca.display().to_string()));
    let trusted = refresh(&["vcf", "create-token"], &trusted_env).await;
    assert_eq!(code(&trusted), 0, "{}", stderr(&trusted));
    assert_eq!(stdout(&trusted).lines().count(), 2);
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1);

    let mut missing_env = env;
    missing_env.push((
        "VCF_SDDC_MANAGER_CA_CERT",
        dir.join("none.pem").display().to_string(),
    ));
    let missing = refresh(&["vcf", "create-token"], &missing_env).await;
    let message = stderr(&missing);
    assert_eq!(code(&missing), 2, "{message}");
    assert!(message.contains("VCF_SDDC_MANAGER_CA_CERT"), "{message}");
    assert!(
        !message.contains("none.pem"),
        "the value is not shown: {message}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
