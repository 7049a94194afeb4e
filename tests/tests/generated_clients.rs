//! The generated clients over real HTTP on loopback: what they send (method,
//! path, content type, JSON body, auth header) and how they decode every
//! documented response.

use refresh_loopback::{Loopback, Reply};
use serde_json::json;

const F5_PATH: &str = "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token";

fn f5_client(server: &Loopback) -> f5xc_bfdp::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        "APIToken test-api-token"
            .parse()
            .expect("a valid header value"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a reqwest client");
    f5xc_bfdp::Client::new_with_client(&server.url(), http, None)
}

fn vcf_client(server: &Loopback) -> vcf_tokens::Client {
    vcf_tokens::Client::new_with_client(&server.url(), reqwest::Client::new(), None)
}

fn pipeline(name: &str) -> f5xc_bfdp::types::RefreshTokenRequest {
    f5xc_bfdp::types::RefreshTokenRequest {
        product_name: Some(name.to_string()),
    }
}

#[tokio::test]
async fn f5_refresh_token_sends_the_documented_request_and_decodes_the_result() {
    let result_text = r#"{"token":"t-123"}"#;
    let server = Loopback::always(Reply::json(200, json!({ "result": result_text }))).await;

    let response = f5_client(&server)
        .refresh_token(&pipeline("pipe-a"))
        .await
        .expect("200");

    assert_eq!(response.status(), 200);
    assert_eq!(response.into_inner().result.as_deref(), Some(result_text));
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, F5_PATH);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("authorization"),
        Some("APIToken test-api-token")
    );
    assert_eq!(request.json(), json!({ "product_name": "pipe-a" }));
}

#[tokio::test]
async fn f5_every_documented_error_status_carries_its_string_body() {
    for status in [401u16, 403, 404, 409, 429, 500, 503, 504] {
        let server = Loopback::always(Reply::json(status, json!("vendor says no"))).await;

        let error = f5_client(&server)
            .refresh_token(&pipeline("pipe-a"))
            .await
            .expect_err("an error status is an error");

        match error {
            f5xc_bfdp::Error::ErrorResponse(value) => {
                assert_eq!(value.status(), status);
                assert_eq!(value.into_inner(), "vendor says no");
            }
            other => panic!("{status}: expected a documented error response, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn vcf_create_token_sends_credentials_and_decodes_the_pair() {
    let server = Loopback::always(Reply::json(
        201,
        json!({ "accessToken": "access-1", "refreshToken": { "id": "refresh-1" } }),
    ))
    .await;
    let spec = vcf_tokens::types::TokenCreationSpec {
        username: Some("admin@local".into()),
        password: Some("pw".into()),
        ..Default::default()
    };

    let pair = vcf_client(&server)
        .create_token(&spec)
        .await
        .expect("201")
        .into_inner();

    assert_eq!(pair.access_token.as_deref(), Some("access-1"));
    assert_eq!(
        pair.refresh_token.and_then(|r| r.id).as_deref(),
        Some("refresh-1")
    );
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/tokens");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({ "username": "admin@local", "password": "pw" })
    );
}

#[tokio::test]
async fn vcf_refresh_sends_the_id_as_a_json_string_and_decodes_the_token() {
    let server = Loopback::always(Reply::json(200, json!("access-2"))).await;

    let token = vcf_client(&server)
        .refresh_access_token("abc")
        .await
        .expect("200");

    assert_eq!(token.into_inner(), "access-2");
    let request = server.single_request();
    assert_eq!(request.method, "PATCH");
    assert_eq!(request.path, "/v1/tokens/access-token/refresh");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        &request.body[..],
        br#""abc""#,
        "the body is a JSON string, with quotes"
    );
}

#[tokio::test]
async fn vcf_invalidate_sends_the_id_as_a_json_string_and_accepts_204() {
    let server = Loopback::always(Reply::empty(204)).await;

    let response = vcf_client(&server)
        .invalidate_refresh_token("abc")
        .await
        .expect("204");

    assert_eq!(response.status(), 204);
    let request = server.single_request();
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.path, "/v1/tokens/refresh-token");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(&request.body[..], br#""abc""#);
}

fn vcf_error_body() -> serde_json::Value {
    json!({
        "errorCode": "TOKEN_NOT_FOUND",
        "errorType": "NOT_FOUND",
        "message": "Refresh token not found",
        "remediationMessage": "Create a new token pair",
        "referenceToken": "REF123",
        "arguments": ["a"],
        "causes": [{ "message": "expired", "type": "TokenExpired" }],
        "context": { "component": "tokens" },
        "label": "Not found",
        "remediationUrl": "https://example.invalid/kb",
        "nestedErrors": [{ "message": "inner", "nestedErrors": [{ "errorCode": "DEEP" }] }]
    })
}

fn assert_vcf_error(error: vcf_tokens::Error<vcf_tokens::types::Error>, status: u16) {
    let vcf_tokens::Error::ErrorResponse(value) = error else {
        panic!("{status}: expected a documented error response, got {error:?}")
    };
    assert_eq!(value.status(), status);
    let body = value.into_inner();
    assert_eq!(body.error_code.as_deref(), Some("TOKEN_NOT_FOUND"));
    assert_eq!(body.error_type.as_deref(), Some("NOT_FOUND"));
    assert_eq!(body.message.as_deref(), Some("Refresh token not found"));
    assert_eq!(
        body.remediation_message.as_deref(),
        Some("Create a new token pair")
    );
    assert_eq!(body.reference_token.as_deref(), Some("REF123"));
    assert_eq!(body.arguments, ["a"]);
    assert_eq!(body.causes[0].type_.as_deref(), Some("TokenExpired"));
    assert_eq!(body.context["component"], "tokens");
    assert_eq!(body.label.as_deref(), Some("Not found"));
    assert_eq!(
        body.remediation_url.as_deref(),
        Some("https://example.invalid/kb")
    );
    assert_eq!(
        body.nested_errors[0].nested_errors[0].error_code.as_deref(),
        Some("DEEP"),
        "nested errors decode recursively"
    );
}

#[tokio::test]
async fn vcf_refresh_documented_errors_decode_the_error_body() {
    for status in [400u16, 404, 500] {
        let server = Loopback::always(Reply::json(status, vcf_error_body())).await;
        let error = vcf_client(&server)
            .refresh_access_token("abc")
            .await
            .expect_err("error");
        assert_vcf_error(error, status);
    }
}

#[tokio::test]
async fn vcf_create_token_documented_errors_decode_the_error_body() {
    for status in [400u16, 500] {
        let server = Loopback::always(Reply::json(status, vcf_error_body())).await;
        let error = vcf_client(&server)
            .create_token(&Default::default())
            .await
            .expect_err("error");
        assert_vcf_error(error, status);
    }
}

#[tokio::test]
async fn an_undocumented_status_is_an_unexpected_response_with_its_status() {
    let server = Loopback::always(Reply::json(418, json!("teapot"))).await;
    let error = vcf_client(&server)
        .invalidate_refresh_token("abc")
        .await
        .expect_err("error");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(418));
    assert!(matches!(error, vcf_tokens::Error::UnexpectedResponse(_)));
}
