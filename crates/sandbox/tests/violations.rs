//! The violation recorder: wrong requests are answered with a documented
//! status and recorded; correct requests from the generated clients record
//! nothing.

mod common;

use common::{create_pair, f5xc, good_credentials, pipeline, vcf};
use refresh_sandbox::{ExposeSecret, Operation, Sandbox, ViolationKind};

const F5_PATH: &str = "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token";

fn only_violation(sandbox: &Sandbox) -> refresh_sandbox::Violation {
    let mut violations = sandbox.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    violations.remove(0)
}

#[tokio::test]
async fn every_operation_of_the_generated_clients_is_spec_clean() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let (_, refresh) = create_pair(&sandbox).await;
    vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("refresh");
    vcf(&sandbox)
        .invalidate_refresh_token(&refresh)
        .await
        .expect("invalidate");
    f5xc(&sandbox)
        .refresh_token(&pipeline("example"))
        .await
        .expect("f5");
    for operation in Operation::ALL {
        assert_eq!(sandbox.requests(operation), 1, "{operation}");
    }
    assert!(sandbox.check_spec_clean().is_ok());
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn wrong_method_is_recorded_and_answered_405_with_allow() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let http = reqwest::Client::new();

    let response = http
        .put(format!("{}/v1/tokens", sandbox.vcf_url()))
        .json(&good_credentials(&sandbox))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    let body: vcf_tokens::types::Error = response.json().await.expect("a VCF Error");
    assert!(body.message.is_some());
    let violation = only_violation(&sandbox);
    assert_eq!(violation.kind, ViolationKind::MethodNotAllowed);
    assert_eq!(violation.method, "PUT");
    assert!(violation.detail.contains("POST"));

    let response = http
        .get(format!("{}{F5_PATH}", sandbox.f5xc_url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    let _: String = response.json().await.expect("an F5 JSON string error");
    assert_eq!(
        only_violation(&sandbox).kind,
        ViolationKind::MethodNotAllowed
    );
}

#[tokio::test]
async fn missing_body_is_recorded() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .patch(format!(
            "{}/v1/tokens/access-token/refresh",
            sandbox.vcf_url()
        ))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 400);
    let violation = only_violation(&sandbox);
    assert_eq!(violation.kind, ViolationKind::MissingBody);
    assert_eq!(violation.operation, Some(Operation::VcfRefreshAccessToken));
}

#[tokio::test]
async fn object_where_a_string_is_expected_is_recorded() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .delete(format!("{}/v1/tokens/refresh-token", sandbox.vcf_url()))
        .json(&serde_json::json!({ "id": "x" }))
        .send()
        .await
        .expect("answered");
    // invalidateRefreshToken documents only 204, so that is the answer.
    assert_eq!(response.status().as_u16(), 204);
    let violation = only_violation(&sandbox);
    assert_eq!(violation.kind, ViolationKind::BodySchema);
    assert!(
        violation
            .detail
            .contains("expected a string, found an object")
    );
}

#[tokio::test]
async fn wrong_property_type_is_recorded() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/tokens", sandbox.vcf_url()))
        .json(&serde_json::json!({ "username": 42, "password": "p" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 400);
    let violation = only_violation(&sandbox);
    assert_eq!(violation.kind, ViolationKind::BodySchema);
    assert!(violation.detail.contains("body.username"), "{violation}");
}

#[tokio::test]
async fn wrong_content_type_is_recorded() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .post(format!("{}{F5_PATH}", sandbox.f5xc_url()))
        .header(
            "authorization",
            format!(
                "APIToken {}",
                sandbox.credentials().f5xc_api_token.expose_secret()
            ),
        )
        .header("content-type", "text/plain")
        .body(r#"{"product_name":"example"}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 404);
    let violation = only_violation(&sandbox);
    assert_eq!(violation.kind, ViolationKind::ContentType);
    assert_eq!(violation.operation, Some(Operation::F5xcRefreshToken));
}

#[tokio::test]
async fn body_that_is_not_json_is_recorded() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/tokens", sandbox.vcf_url()))
        .header("content-type", "application/json; charset=utf-8")
        .body("username=admin")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(only_violation(&sandbox).kind, ViolationKind::InvalidJson);
}

#[tokio::test]
async fn unknown_path_is_recorded() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let response = reqwest::Client::new()
        .get(format!("{}/v1/system", sandbox.vcf_url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 404);
    let violation = only_violation(&sandbox);
    assert_eq!(violation.kind, ViolationKind::UnknownPath);
    assert_eq!(violation.operation, None);
}

#[tokio::test]
async fn assert_spec_clean_panics_listing_the_violations() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    reqwest::Client::new()
        .get(format!("{}/nowhere", sandbox.vcf_url()))
        .send()
        .await
        .expect("answered");
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sandbox.assert_spec_clean();
    }))
    .expect_err("a violation makes it panic");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("GET /nowhere"), "{message}");
    assert_eq!(sandbox.take_violations().len(), 1, "provoked on purpose");
}

#[tokio::test]
async fn violations_and_debug_never_show_secrets() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let password = sandbox
        .credentials()
        .vcf_password
        .expose_secret()
        .to_owned();
    reqwest::Client::new()
        .post(format!("{}/v1/tokens", sandbox.vcf_url()))
        .header("content-type", "text/plain")
        .body(format!(r#"{{"username":"u","password":"{password}"}}"#))
        .send()
        .await
        .expect("answered");
    let shown = format!("{:?} {:?}", sandbox.violations(), sandbox);
    assert!(!shown.contains(&password), "{shown}");
    assert!(!shown.contains(sandbox.credentials().f5xc_api_token.expose_secret()));
    assert_eq!(sandbox.take_violations().len(), 1, "provoked on purpose");
}

#[tokio::test]
async fn the_report_counts_requests_and_separates_taken_from_unexpected_violations() {
    let dir = std::env::temp_dir().join(format!("sandbox-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sandbox = Sandbox::builder()
        .report_dir(&dir)
        .start()
        .await
        .expect("sandbox starts");
    let raw = reqwest::Client::new();
    let wrong = || {
        raw.patch(format!(
            "{}/v1/tokens/access-token/refresh",
            sandbox.vcf_url()
        ))
        .header("content-type", "application/json")
        .body(r#"{"id":"not a string"}"#)
        .send()
    };
    wrong().await.expect("answered");
    assert_eq!(
        sandbox.take_violations().len(),
        1,
        "provoked on purpose, then taken"
    );
    wrong().await.expect("answered");
    create_pair(&sandbox).await;
    assert_eq!(sandbox.validated_requests(), 3);
    sandbox.shutdown().await;

    let reports: Vec<_> = std::fs::read_dir(&dir)
        .expect("the report folder exists")
        .collect();
    assert_eq!(reports.len(), 1, "one report per sandbox");
    let path = reports[0].as_ref().expect("a report file").path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
    assert_eq!(report["validated"], 3);
    assert_eq!(report["expected_violations"], 1);
    let unexpected = report["violations"].as_array().expect("a list");
    assert_eq!(
        unexpected.len(),
        1,
        "the second wrong request was never taken: {report}"
    );
    assert!(
        unexpected[0]
            .as_str()
            .is_some_and(|v| v.contains("PATCH /v1/tokens/access-token/refresh"))
    );
    assert!(
        !report.to_string().contains("not a string"),
        "no request values in the report"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
