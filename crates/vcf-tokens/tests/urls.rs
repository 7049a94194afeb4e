//! The client parses its operations' URLs once, when it is built
//! (`sdk-codegen`'s URL rewrite), and sends no `api-version` header: the
//! requests still go to the base URL's path, again and again; a copy made
//! with `with_inner` sends through its own executor to the same URLs; and
//! a base URL that does not parse fails every call with reqwest's builder
//! error, as before the rewrite, without panicking.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use httpmock::Method::{DELETE, PATCH, POST};
use vcf_tokens::progenitor_client::OperationInfo;
use vcf_tokens::types::TokenCreationSpec;
use vcf_tokens::{Client, ClientInfo as _, Error, Exec};

/// An executor that counts the requests it sends.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

impl Exec for Counting {
    fn exec<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        _info: &'a OperationInfo,
    ) -> Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(client.execute(request))
    }
}

fn credentials() -> TokenCreationSpec {
    TokenCreationSpec {
        api_key: Some("key".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_operation_goes_under_the_base_urls_path_each_time_without_api_version() {
    let server = httpmock::MockServer::start_async().await;
    let create = server.mock(|when, then| {
        when.method(POST)
            .path("/sddc/v1/tokens")
            .header_missing("api-version");
        then.status(201).json_body(serde_json::json!({}));
    });
    let refresh = server.mock(|when, then| {
        when.method(PATCH)
            .path("/sddc/v1/tokens/access-token/refresh")
            .header_missing("api-version");
        then.status(200).json_body(serde_json::json!("access"));
    });
    let invalidate = server.mock(|when, then| {
        when.method(DELETE)
            .path("/sddc/v1/tokens/refresh-token")
            .header_missing("api-version");
        then.status(204);
    });
    let base = format!("{}/sddc", server.base_url());
    let client = Client::new_with_client(&base, reqwest::Client::new(), None);

    // Twice each: a call clones its parsed URL and leaves it for the next.
    for _ in 0..2 {
        client.create_token(&credentials()).await.expect("201");
        let access = client.refresh_access_token("r").await.expect("200");
        assert_eq!(access.into_inner(), "access");
        client.invalidate_refresh_token("r").await.expect("204");
    }

    create.assert_calls_async(2).await;
    refresh.assert_calls_async(2).await;
    invalidate.assert_calls_async(2).await;
    assert_eq!(client.baseurl(), base);
}

#[tokio::test]
async fn a_copy_with_another_executor_sends_to_the_same_urls_through_it() {
    let server = httpmock::MockServer::start_async().await;
    let refresh = server.mock(|when, then| {
        when.method(PATCH).path("/v1/tokens/access-token/refresh");
        then.status(200).json_body(serde_json::json!("access"));
    });
    let client = Client::new_with_client(&server.base_url(), reqwest::Client::new(), None);
    let counting = Arc::new(Counting::default());

    let copy = client.with_inner(Some(counting.clone()));
    copy.refresh_access_token("r")
        .await
        .expect("200 for the copy");
    client
        .refresh_access_token("r")
        .await
        .expect("200 for the original");

    assert_eq!(copy.baseurl(), client.baseurl());
    assert!(client.inner().is_none(), "the original keeps its own inner");
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        1,
        "only the copy's call goes through its executor"
    );
    refresh.assert_calls_async(2).await;
}

#[tokio::test]
async fn a_base_url_that_does_not_parse_fails_each_call_as_a_builder_error() {
    // Not a URL; a URL reqwest refuses (no host); nothing at all.
    for base in ["not a url", "mailto:admin@vcf.example", ""] {
        let counting = Arc::new(Counting::default());
        let client = Client::new_with_client(base, reqwest::Client::new(), None)
            .with_inner(Some(counting.clone()));
        assert_eq!(client.baseurl(), base);
        for _ in 0..2 {
            match client.create_token(&credentials()).await {
                Err(Error::CommunicationError(error)) => {
                    assert!(error.is_builder(), "{base:?}: {error:?}")
                }
                other => panic!("{base:?}: expected reqwest's builder error, got {other:?}"),
            }
            match client.invalidate_refresh_token("r").await {
                Err(Error::CommunicationError(error)) => {
                    assert!(error.is_builder(), "{base:?}: {error:?}")
                }
                other => panic!("{base:?}: expected reqwest's builder error, got {other:?}"),
            }
        }
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            0,
            "{base:?}: nothing sent"
        );
    }
}
