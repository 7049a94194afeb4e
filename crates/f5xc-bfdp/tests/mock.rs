//! The typed mock (`mock::MockServerExt`, feature `mock`) serves a call made
//! by the generated client over loopback HTTP, and its `When` matches the
//! request's method, path and typed body.

use f5xc_bfdp::mock::MockServerExt;
use f5xc_bfdp::types::{RefreshTokenRequest, RefreshTokenResponse};
use f5xc_bfdp::{Client, Error};

fn client(base_url: &str) -> Client {
    Client::new_with_client(base_url, reqwest::Client::new(), None)
}

#[tokio::test]
async fn typed_mock_serves_the_generated_clients_refresh_token() {
    let server = httpmock::MockServer::start_async().await;
    let request = RefreshTokenRequest {
        product_name: Some("pipeline-a".into()),
    };
    let response = RefreshTokenResponse {
        result: Some(r#"{"token":"t-1"}"#.into()),
    };
    let mock = server.refresh_token(|when, then| {
        when.body(&request);
        then.ok(&response);
    });

    let got = client(&server.base_url())
        .refresh_token(&request)
        .await
        .expect("the mock answers 200 with the typed body")
        .into_inner();

    assert_eq!(got, response);
    mock.assert_async().await;
}

#[tokio::test]
async fn typed_mock_documented_error_reaches_the_client_as_an_error_response() {
    let server = httpmock::MockServer::start_async().await;
    let mock = server.refresh_token(|when, then| {
        when.into_inner().header("authorization", "APIToken wrong");
        then.unauthorized("not authorized");
    });
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        "APIToken wrong".parse().expect("a valid header value"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a reqwest client");
    let client = Client::new_with_client(&server.base_url(), http, None);

    let error = client
        .refresh_token(&RefreshTokenRequest::default())
        .await
        .expect_err("401 is an error");

    match error {
        Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(response.into_inner(), "not authorized");
        }
        other => panic!("expected the documented 401 error body, got {other:?}"),
    }
    mock.assert_async().await;
}

#[tokio::test]
async fn typed_mock_does_not_match_another_body() {
    let server = httpmock::MockServer::start_async().await;
    let mock = server.refresh_token(|when, then| {
        when.body(&RefreshTokenRequest {
            product_name: Some("expected".into()),
        });
        then.ok(&RefreshTokenResponse::default());
    });

    let result = client(&server.base_url())
        .refresh_token(&RefreshTokenRequest {
            product_name: Some("other".into()),
        })
        .await;

    // httpmock answers an unmatched request with 404, which the spec
    // documents as an error.
    assert!(result.is_err(), "a different body must not match the mock");
    assert_eq!(mock.calls_async().await, 0);
}
