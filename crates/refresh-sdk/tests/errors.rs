//! Every error kind, over real HTTP on loopback.

mod common;

use std::time::Duration;

use common::*;
use refresh_loopback::{Loopback, Reply, refused_url};
use refresh_sdk::error::MAX_SNIPPET_BYTES;
use refresh_sdk::{ErrorKind, RetryPolicy, Service, TransportOptions, VendorDetail};
use serde_json::json;

fn no_retries() -> TransportOptions {
    TransportOptions::default().retry(RetryPolicy::no_retries())
}

async fn f5_error(reply: Reply) -> refresh_sdk::Error {
    let server = Loopback::start(move |_| reply.clone()).await;
    let client = f5_client(&server.url(), "api-token-0123", no_retries());
    client
        .refresh_token("pipeline")
        .await
        .expect_err("the server answers an error")
}

#[tokio::test]
async fn f5_documented_error_statuses_map_to_kinds_with_the_vendor_text() {
    for (status, kind) in [
        (401, ErrorKind::Auth),
        (403, ErrorKind::Auth),
        (404, ErrorKind::NotFound),
        (409, ErrorKind::Conflict),
        (429, ErrorKind::RateLimited),
        (500, ErrorKind::Server),
        (503, ErrorKind::Server),
        (504, ErrorKind::Server),
    ] {
        let err = f5_error(Reply::json(status, json!("vendor says no"))).await;
        assert_eq!(err.kind(), kind, "{status}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(err.service(), Some(Service::F5Xc));
        assert_eq!(err.operation(), Some("refresh_token"));
        assert_eq!(
            err.vendor_detail(),
            Some(&VendorDetail::Text("vendor says no".into()))
        );
        let shown = err.to_string();
        assert!(shown.contains("F5 XC refresh_token failed"), "{shown}");
        assert!(shown.contains("vendor says no"), "{shown}");
    }
}

#[tokio::test]
async fn auth_errors_say_what_to_check() {
    let err = f5_error(Reply::json(401, json!("denied"))).await;
    assert!(
        err.hint().is_some_and(|h| h.contains("VOLT_API_TOKEN")),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("VOLT_API_TOKEN"),
        "the hint is not in Display: {err}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn undocumented_client_error_is_bad_request_with_status() {
    let err = f5_error(Reply::new(400, "text/plain", "bad field")).await;
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    match err.vendor_detail() {
        Some(VendorDetail::Unparsed(snippet)) => assert_eq!(snippet.text, "bad field"),
        other => panic!("expected a snippet, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_bodies_keep_the_status_and_kind() {
    let cases = [
        (
            "json object",
            Reply::json(401, json!({"code": 16, "message": "token expired"})),
            "token expired",
        ),
        (
            "text/plain",
            Reply::new(401, "text/plain", "plain denial"),
            "plain denial",
        ),
        (
            "html from a proxy",
            Reply::new(401, "text/html", "<html><body>Proxy says no</body></html>"),
            "Proxy says no",
        ),
        ("empty body", Reply::empty(401), ""),
    ];
    for (case, reply, text) in cases {
        let err = f5_error(reply).await;
        assert_eq!(err.kind(), ErrorKind::Auth, "{case}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(401), "{case}");
        match err.vendor_detail() {
            Some(VendorDetail::Unparsed(snippet)) => {
                assert!(snippet.text.contains(text), "{case}: {snippet:?}")
            }
            other => panic!("{case}: expected a snippet, got {other:?}"),
        }
    }
    // The same for undocumented statuses and for VCF's documented ones.
    let server =
        Loopback::start(|_| Reply::new(500, "text/html", "<h1>Bad gateway config</h1>")).await;
    let vcf = vcf_client(&server.url(), no_retries());
    let err = vcf
        .create_token(&refresh_sdk::VcfCredentials::new("admin", "pw"))
        .await
        .expect_err("500");
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    assert!(err.to_string().contains("Bad gateway config"), "{err}");
}

#[tokio::test]
async fn large_error_bodies_become_bounded_snippets() {
    let err = f5_error(Reply::new(502, "text/html", "x".repeat(100_000))).await;
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(err.is_retryable());
    match err.vendor_detail() {
        Some(VendorDetail::Unparsed(snippet)) => {
            assert_eq!(snippet.text.len(), MAX_SNIPPET_BYTES);
            assert!(snippet.truncated);
        }
        other => panic!("expected a snippet, got {other:?}"),
    }
    assert!(err.to_string().len() < 2 * 1024, "Display stays short");
}

#[tokio::test]
async fn vcf_error_objects_are_decoded() {
    let body = json!({
        "errorCode": "TOKEN_CREATE_FAILED",
        "message": "Invalid credentials",
        "remediationMessage": "Check the user name and password",
        "referenceToken": "REF123",
    });
    let server = Loopback::start(move |_| Reply::json(400, body.clone())).await;
    let vcf = vcf_client(&server.url(), no_retries());
    let err = vcf
        .create_token(&refresh_sdk::VcfCredentials::new("admin", "pw"))
        .await
        .expect_err("400");
    assert_eq!(
        err.kind(),
        ErrorKind::Auth,
        "a wrong password is an authentication failure"
    );
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("VCF_SDDC_MANAGER_PASSWORD")),
        "{err:?}"
    );
    match err.vendor_detail() {
        Some(VendorDetail::Vcf(detail)) => {
            assert_eq!(detail.message.as_deref(), Some("Invalid credentials"));
            assert_eq!(detail.error_code.as_deref(), Some("TOKEN_CREATE_FAILED"));
            assert_eq!(
                detail.remediation_message.as_deref(),
                Some("Check the user name and password")
            );
            assert_eq!(detail.reference_token.as_deref(), Some("REF123"));
        }
        other => panic!("expected VCF detail, got {other:?}"),
    }
    let shown = err.to_string();
    for part in [
        "Invalid credentials",
        "TOKEN_CREATE_FAILED",
        "Check the user name",
        "REF123",
    ] {
        assert!(shown.contains(part), "{part} missing in {shown}");
    }
    assert!(!shown.contains('\n'), "one line: {shown}");
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("VCF_SDDC_MANAGER_PASSWORD")),
        "{err:?}"
    );
}

#[tokio::test]
async fn vcf_refresh_of_an_unknown_token_is_not_found() {
    let server = Loopback::start(|_| {
        Reply::json(
            404,
            json!({"message": "Refresh token not found", "errorCode": "NOT_FOUND"}),
        )
    })
    .await;
    let vcf = vcf_client(&server.url(), no_retries());
    let err = vcf
        .refresh_access_token(&"id".into())
        .await
        .expect_err("404");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.operation(), Some("refresh_access_token"));
}

#[tokio::test]
async fn undecodable_success_body_is_invalid_response_with_status() {
    for reply in [
        Reply::new(200, "text/html", "<html>login page</html>"),
        Reply::json(200, json!({"result": 42})),
        Reply::json(200, json!({})),
    ] {
        let err = f5_error(reply).await;
        assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    }
}

#[tokio::test]
async fn unexpected_success_status_and_bare_text_tokens_are_tolerated() {
    let server = Loopback::start(|r| match r.path.as_str() {
        "/v1/tokens" => Reply::json(
            200,
            json!({"accessToken": "a1", "refreshToken": {"id": "r1"}}),
        ),
        "/v1/tokens/access-token/refresh" => Reply::new(200, "text/plain", "a2\n"),
        _ => Reply::empty(200),
    })
    .await;
    let vcf = vcf_client(&server.url(), no_retries());
    use refresh_sdk::ExposeSecret;
    let pair = vcf
        .create_token(&refresh_sdk::VcfCredentials::new("admin", "pw"))
        .await
        .expect("200 is fine");
    assert_eq!(pair.access_token.expose_secret(), "a1");
    let access = vcf
        .refresh_access_token(&pair.refresh_token)
        .await
        .expect("bare text token");
    assert_eq!(access.expose_secret(), "a2");
    vcf.invalidate_refresh_token(&pair.refresh_token)
        .await
        .expect("200 instead of 204 is fine");
}

#[tokio::test]
async fn timeout_is_its_own_kind() {
    let transport = no_retries().attempt_timeout(Duration::from_millis(200));
    let server = Loopback::start(|_| {
        Reply::json(200, json!({"result": "{}"})).after(Duration::from_secs(10))
    })
    .await;
    let client = f5_client(&server.url(), "api-token-0123", transport);
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("times out");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn connection_failure_is_transport() {
    let url = refused_url().await;
    let client = f5_client(&url, "api-token-0123", no_retries());
    let err = client
        .refresh_token("pipeline")
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(err.status(), None);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn empty_product_name_is_rejected_before_sending() {
    let server = Loopback::start(|_| Reply::json(200, json!({"result": "{}"}))).await;
    let client = f5_client(&server.url(), "api-token-0123", no_retries());
    for name in ["", "   "] {
        let err = client.refresh_token(name).await.expect_err("empty name");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.attempts(), 0);
    }
    assert_eq!(server.requests(), 0);
}

#[test]
fn configuration_problems_are_config_errors() {
    let err = refresh_sdk::F5Config::from_lookup(|_| None).expect_err("nothing set");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("VOLT_API_URL"), "{err}");
    let err =
        refresh_sdk::F5Config::from_lookup(|name| (name == "VOLT_API_URL").then(|| "acme".into()))
            .expect_err("no credentials");
    assert!(err.to_string().contains("VOLT_API_TOKEN"), "{err}");
    for bad in [
        "ftp://acme.example",
        "https://acme.example/?x=1",
        "acme corp",
        "",
    ] {
        let err = refresh_sdk::f5xc::normalize_base_url(bad).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
    }
    let err = refresh_sdk::VcfConfig::from_lookup(|name| match name {
        "VCF_SDDC_MANAGER_HOST" => Some("vcf.example".into()),
        "VCF_ALLOW_UNVERIFIED_TLS" => Some("maybe".into()),
        _ => None,
    })
    .expect_err("not a boolean");
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = refresh_sdk::VcfSession::from_lookup(|name| {
        (name == "VCF_SDDC_MANAGER_HOST").then(|| "vcf.example".into())
    })
    .expect_err("no credentials");
    assert!(
        err.to_string().contains("VCF_SDDC_MANAGER_USERNAME"),
        "{err}"
    );
    let err = TransportOptions::default().ca_bundle_pem("not pem");
    let err = refresh_sdk::VcfClient::new(
        refresh_sdk::VcfConfig::new("vcf.example")
            .expect("host")
            .transport(err),
    )
    .expect_err("bad CA bundle");
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// Plain HTTP to a host that is not loopback is refused when the client is
/// built, so no request (and no credential) ever leaves; the opt-in from the
/// environment survives a later `.transport(..)`. No network traffic: the
/// hosts are never contacted.
#[test]
fn plain_http_to_a_remote_host_is_refused_unless_the_caller_opts_in() {
    let env = |insecure: Option<&'static str>| {
        move |name: &str| match name {
            "VCF_SDDC_MANAGER_HOST" => Some("http://sddc-manager.lab.example".to_owned()),
            "VCF_ALLOW_INSECURE_HTTP" => insecure.map(str::to_owned),
            _ => None,
        }
    };
    let config = refresh_sdk::VcfConfig::from_lookup(env(None)).expect("a valid address");
    let err = refresh_sdk::VcfClient::new(config).expect_err("clear text to a remote host");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("VCF_ALLOW_INSECURE_HTTP"), "{err}");
    assert!(!err.to_string().contains("lab.example"), "{err}");

    let config = refresh_sdk::VcfConfig::from_lookup(env(Some("true"))).expect("valid");
    // Options that do not mention plain HTTP keep the environment's opt-in.
    let config =
        config.transport(TransportOptions::default().attempt_timeout(Duration::from_secs(5)));
    assert!(refresh_sdk::VcfClient::new(config.clone()).is_ok());
    // Options that do, win.
    let config = config.transport(TransportOptions::default().allow_insecure_http(false));
    assert!(refresh_sdk::VcfClient::new(config).is_err());

    let config = refresh_sdk::VcfConfig::from_lookup(env(Some("perhaps"))).expect_err("not a flag");
    assert!(
        config.to_string().contains("VCF_ALLOW_INSECURE_HTTP"),
        "{config}"
    );

    // Loopback needs no opt-in: the sandbox and tests.
    for local in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        let config = refresh_sdk::VcfConfig::new(local).expect("valid");
        assert!(refresh_sdk::VcfClient::new(config).is_ok(), "{local}");
    }
}

/// `VCF_ALLOW_UNVERIFIED_TLS` read from the environment survives options
/// given afterwards (the CLI's `--timeout`, say).
#[test]
fn the_environments_tls_setting_survives_later_transport_options() {
    let config = refresh_sdk::VcfConfig::from_lookup(|name| match name {
        "VCF_SDDC_MANAGER_HOST" => Some("vcf.example".into()),
        "VCF_ALLOW_UNVERIFIED_TLS" => Some("true".into()),
        _ => None,
    })
    .expect("valid")
    .transport(TransportOptions::default().attempt_timeout(Duration::from_secs(5)));
    assert!(
        format!("{config:?}").contains("allow_unverified_tls: true"),
        "{config:?}"
    );
}

/// The same for F5 XC, and `VOLT_API_CA_CERT` read from the environment is
/// kept by options that do not name a CA bundle.
#[test]
fn f5_plain_http_needs_the_opt_in_and_environment_settings_survive_options() {
    let config = refresh_sdk::F5Config::new(
        "http://tenant.example",
        refresh_sdk::F5Credentials::api_token("t"),
    )
    .expect("a valid address");
    let err = refresh_sdk::F5Client::new(config).expect_err("clear text to a remote host");
    assert!(
        err.to_string().contains("VOLT_ALLOW_INSECURE_HTTP"),
        "{err}"
    );

    let config = refresh_sdk::F5Config::from_lookup(|name| match name {
        "VOLT_API_URL" => Some("http://tenant.example".into()),
        "VOLT_API_TOKEN" => Some("t".into()),
        "VOLT_ALLOW_INSECURE_HTTP" => Some("yes".into()),
        _ => None,
    })
    .expect("valid")
    .transport(TransportOptions::default().attempt_timeout(Duration::from_secs(5)));
    assert!(refresh_sdk::F5Client::new(config).is_ok());
}

/// VCF's `notifications` (as VMware's 9.1 client models them) reach the
/// error: on its one line, and with `{:#}` one indented line each.
#[tokio::test]
async fn vcf_notifications_are_shown_with_their_remediations() {
    let server = Loopback::start(|_| {
        Reply::json(
            400,
            json!({
                "errorCode": "PASSWORD_EXPIRED",
                "message": "The password has expired.",
                "notifications": [
                    {
                        "severity": "ERROR",
                        "message": "The password of admin expired\non 2026-11-01.",
                        "impactMessage": "Logins fail.",
                        "remediations": [
                            { "message": "Reset the password.", "link": "https://kb.example/reset" }
                        ]
                    },
                    { "severity": "WARNING", "message": "Two accounts expire soon." }
                ]
            }),
        )
    })
    .await;
    let err = vcf_client(&server.url(), no_retries())
        .create_token(&refresh_sdk::VcfCredentials::new("admin", "pw"))
        .await
        .expect_err("400");
    let notifications = err.vendor_detail().expect("detail").notifications();
    assert_eq!(notifications.len(), 2);
    assert_eq!(notifications[0].severity.as_deref(), Some("ERROR"));
    assert_eq!(
        notifications[0].remediations[0].link.as_deref(),
        Some("https://kb.example/reset")
    );

    let line = err.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    for part in [
        "ERROR: The password of admin expired on 2026-11-01.",
        "impact: Logins fail.",
        "remediation: Reset the password. <https://kb.example/reset>",
        "WARNING: Two accounts expire soon.",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }

    let lines: Vec<String> = format!("{err:#}").lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(!lines[0].contains("Two accounts"), "{lines:?}");
    assert!(
        lines[1].starts_with("  - ERROR: The password of admin expired"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "  - WARNING: Two accounts expire soon.");
}
