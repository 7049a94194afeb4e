//! Optional TLS with a self-signed certificate generated at start.

mod common;

use common::{good_credentials, pipeline};
use refresh_sandbox::{ExposeSecret, Sandbox};

fn trusting_client(sandbox: &Sandbox) -> reqwest::Client {
    let pem = sandbox.ca_pem().expect("a TLS sandbox has a certificate");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("valid PEM")])
        .build()
        .expect("a reqwest client")
}

#[tokio::test]
async fn tls_sandbox_serves_both_apis_to_a_client_trusting_its_ca() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("sandbox starts");
    assert!(sandbox.vcf_url().starts_with("https://127.0.0.1:"));

    let vcf =
        vcf_tokens::Client::new_with_client(&sandbox.vcf_url(), trusting_client(&sandbox), None);
    let pair = vcf
        .create_token(&good_credentials(&sandbox))
        .await
        .expect("createToken over verified TLS")
        .into_inner();
    assert!(pair.access_token.is_some());

    let response = trusting_client(&sandbox)
        .post(format!(
            "{}/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
            sandbox.f5xc_url()
        ))
        .header(
            "authorization",
            format!(
                "APIToken {}",
                sandbox.credentials().f5xc_api_token.expose_secret()
            ),
        )
        .json(&pipeline("example"))
        .send()
        .await
        .expect("F5 over verified TLS");
    assert_eq!(response.status().as_u16(), 200);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn the_certificate_is_valid_for_localhost_too() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("sandbox starts");
    // `localhost` could resolve to ::1, where the sandbox does not listen:
    // pin it to 127.0.0.1 and check only that the name verifies.
    let client = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(sandbox.ca_pem().expect("pem").as_bytes())
                .expect("valid PEM"),
        ])
        .resolve("localhost", sandbox.local_addr())
        .build()
        .expect("client");
    let response = client
        .post(format!(
            "https://localhost:{}/v1/tokens",
            sandbox.local_addr().port()
        ))
        .json(&good_credentials(&sandbox))
        .send()
        .await
        .expect("the certificate names localhost");
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("sandbox starts");
    let client = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .expect("client");
    let error = client
        .post(format!("{}/v1/tokens", sandbox.vcf_url()))
        .json(&good_credentials(&sandbox))
        .send()
        .await
        .expect_err("an untrusted self-signed certificate is rejected");
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn an_unverified_tls_client_connects() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("sandbox starts");
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let response = client
        .post(format!("{}/v1/tokens", sandbox.vcf_url()))
        .json(&good_credentials(&sandbox))
        .send()
        .await
        .expect("verification is off");
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn plain_sandbox_has_no_certificate() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    assert!(sandbox.ca_pem().is_none());
    assert!(sandbox.vcf_url().starts_with("http://127.0.0.1:"));
}
