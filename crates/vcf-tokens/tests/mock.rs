//! The typed mock (`mock::MockServerExt`, feature `mock`) serves calls made
//! by the generated client over loopback HTTP, matching the JSON-string
//! bodies the spec describes.

use vcf_tokens::mock::MockServerExt;
use vcf_tokens::types::{Error as VcfError, RefreshToken, TokenCreationSpec, TokenPair};
use vcf_tokens::{Client, Error};

fn client(base_url: &str) -> Client {
    Client::new_with_client(base_url, reqwest::Client::new(), None)
}

#[tokio::test]
async fn typed_mocks_serve_create_refresh_and_invalidate() {
    let server = httpmock::MockServer::start_async().await;
    let credentials = TokenCreationSpec {
        username: Some("admin".into()),
        password: Some("pw".into()),
        ..Default::default()
    };
    let pair = TokenPair {
        access_token: Some("access-1".into()),
        refresh_token: Some(RefreshToken {
            id: Some("refresh-1".into()),
        }),
    };
    let create = server.create_token(|when, then| {
        when.body(&credentials);
        then.created(&pair);
    });
    let refresh = server.refresh_access_token(|when, then| {
        when.body("refresh-1");
        then.ok("access-2");
    });
    let invalidate = server.invalidate_refresh_token(|when, then| {
        when.body("refresh-1");
        then.no_content();
    });
    let client = client(&server.base_url());

    let got = client
        .create_token(&credentials)
        .await
        .expect("the mock answers 201")
        .into_inner();
    assert_eq!(got, pair);
    let access = client
        .refresh_access_token("refresh-1")
        .await
        .expect("the mock answers 200")
        .into_inner();
    assert_eq!(access, "access-2");
    client
        .invalidate_refresh_token("refresh-1")
        .await
        .expect("the mock answers 204");

    create.assert_async().await;
    refresh.assert_async().await;
    invalidate.assert_async().await;
}

#[tokio::test]
async fn typed_mock_not_found_reaches_the_client_as_a_vcf_error() {
    let server = httpmock::MockServer::start_async().await;
    let error_body = VcfError {
        error_code: Some("REFRESH_TOKEN_NOT_FOUND".into()),
        message: Some("gone".into()),
        ..Default::default()
    };
    server.refresh_access_token(|when, then| {
        when.body("stale");
        then.not_found(&error_body);
    });

    let error = client(&server.base_url())
        .refresh_access_token("stale")
        .await
        .expect_err("404 is an error");

    match error {
        Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 404);
            assert_eq!(response.into_inner(), error_body);
        }
        other => panic!("expected the documented 404 Error body, got {other:?}"),
    }
}
