//! The client parses its operation's URL once, when it is built
//! (`sdk-codegen`'s URL rewrite), and sends no `api-version` header: the
//! request still goes to the base URL's path, again and again; a copy made
//! with `with_inner` sends through its own executor to the same URL; and a
//! base URL that does not parse fails every call with reqwest's builder
//! error, as before the rewrite, without panicking.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use f5xc_bfdp::progenitor_client::OperationInfo;
use f5xc_bfdp::types::RefreshTokenRequest;
use f5xc_bfdp::{Client, ClientInfo as _, Error, Exec};
use httpmock::Method::POST;

const PATH: &str = "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token";

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

fn pipeline() -> RefreshTokenRequest {
    RefreshTokenRequest {
        product_name: Some("pipeline-a".into()),
    }
}

#[tokio::test]
async fn the_copy_and_the_original_call_under_the_base_urls_path_without_api_version() {
    let server = httpmock::MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(POST)
            .path(format!("/tenant{PATH}"))
            .header_missing("api-version");
        then.status(200)
            .json_body(serde_json::json!({ "result": "{}" }));
    });
    let base = format!("{}/tenant", server.base_url());
    let client = Client::new_with_client(&base, reqwest::Client::new(), None);
    let counting = Arc::new(Counting::default());
    let copy = client.with_inner(Some(counting.clone()));

    for _ in 0..2 {
        copy.refresh_token(&pipeline())
            .await
            .expect("200 for the copy");
        client
            .refresh_token(&pipeline())
            .await
            .expect("200 for the original");
    }

    mock.assert_calls_async(4).await;
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        2,
        "only the copy's calls go through its executor"
    );
    assert_eq!(copy.baseurl(), base);
    assert!(client.inner().is_none(), "the original keeps its own inner");
}

#[tokio::test]
async fn a_base_url_that_does_not_parse_fails_each_call_as_a_builder_error() {
    // Not a URL; a URL reqwest refuses (no host); nothing at all.
    for base in ["not a url", "mailto:admin@f5.example", ""] {
        let counting = Arc::new(Counting::default());
        let client = Client::new_with_client(base, reqwest::Client::new(), None)
            .with_inner(Some(counting.clone()));
        for _ in 0..2 {
            match client.refresh_token(&pipeline()).await {
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
