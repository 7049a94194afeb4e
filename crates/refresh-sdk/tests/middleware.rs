//! `BearerAuth` and `TransportPolicy` as `reqwest_middleware` layers, over
//! real HTTP on loopback.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Extensions;
use refresh_loopback::{Loopback, Reply, Request};
use refresh_sdk::middleware::{BearerAuth, TransportPolicy};
use refresh_sdk::{
    AccessToken, AccessTokenSource, Error, ErrorKind, ExposeSecret, RetryPolicy, TokenFuture,
    TransportOptions,
};
use reqwest::header::AUTHORIZATION;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// Hands out `token-N`; a report of the current token moves to `N + 1`
/// (unless `renews` is off, like a source that cannot renew early).
#[derive(Debug)]
struct Rotating {
    current: Mutex<u32>,
    renews: bool,
    fails: bool,
    origin: Option<String>,
    invalidations: AtomicUsize,
}

impl Rotating {
    fn new(origin: Option<String>) -> Rotating {
        Rotating {
            current: Mutex::new(0),
            renews: true,
            fails: false,
            origin,
            invalidations: AtomicUsize::new(0),
        }
    }
}

impl AccessTokenSource for Rotating {
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            if self.fails {
                return Err(Error::custom(
                    ErrorKind::Auth,
                    "the credentials were refused",
                ));
            }
            let n = *self.current.lock().expect("token lock");
            Ok(AccessToken::new(format!("token-{n}")))
        })
    }

    fn invalidate(&self, rejected: &AccessToken) {
        let mut current = self.current.lock().expect("token lock");
        if self.renews && rejected.expose_secret() == format!("token-{current}") {
            *current += 1;
            self.invalidations.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn origin(&self) -> Option<String> {
        self.origin.clone()
    }
}

/// Accepts `Bearer token-N` for `N >= accept_from`, else 401.
fn guarded(accept_from: u32) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |request| {
        let accepted = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer token-")?.parse::<u32>().ok())
            .is_some_and(|n| n >= accept_from);
        if accepted {
            Reply::json(200, serde_json::json!({ "elements": [] }))
        } else {
            Reply::json(401, serde_json::json!({ "errorCode": "UNAUTHORIZED" }))
                .header("www-authenticate", "Bearer")
        }
    }
}

/// Records what the next layer is handed: whether the header is marked
/// sensitive, and the request's `Debug`.
#[derive(Default)]
struct Inspect {
    sensitive: AtomicBool,
    debug: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Middleware for Inspect {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if let Some(value) = request.headers().get(AUTHORIZATION) {
            self.sensitive.store(value.is_sensitive(), Ordering::SeqCst);
        }
        self.debug
            .lock()
            .expect("debug lock")
            .push(format!("{request:?} {:?}", request.headers()));
        next.run(request, extensions).await
    }
}

fn stack(auth: BearerAuth) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .with(TransportPolicy::new(&TransportOptions::default()))
        .build()
}

#[tokio::test]
async fn a_request_to_the_origin_carries_the_token_in_a_sensitive_header() {
    let server = Loopback::start(guarded(0)).await;
    let source = Arc::new(Rotating::new(Some(server.url())));
    let inspect = Arc::new(Inspect::default());
    let api = ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(source))
        .with_arc(inspect.clone())
        .build();
    let response = api
        .get(format!("{}/v1/domains", server.url()))
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(response.status(), 200);
    let seen = server.received();
    assert_eq!(seen[0].header("authorization"), Some("Bearer token-0"));
    assert!(inspect.sensitive.load(Ordering::SeqCst), "marked sensitive");
    for debug in inspect.debug.lock().expect("debug lock").iter() {
        assert!(!debug.contains("token-0"), "Debug shows the token: {debug}");
    }
}

#[tokio::test]
async fn requests_to_another_origin_get_no_token() {
    let ours = Loopback::start(guarded(0)).await;
    let theirs = Loopback::start(guarded(0)).await;
    let api = stack(BearerAuth::new(Arc::new(Rotating::new(Some(ours.url())))));
    let response = api
        .get(format!("{}/collect", theirs.url()))
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(response.status(), 401);
    assert_eq!(theirs.received()[0].header("authorization"), None);
    assert_eq!(ours.requests(), 0);
    // The same server under another host name is another origin too.
    let other_port = theirs.url().replace("127.0.0.1", "localhost");
    let response = api
        .get(format!("{other_port}/collect"))
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(response.status(), 401);
    assert!(
        theirs
            .received()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
}

#[tokio::test]
async fn a_source_without_an_origin_authorizes_nothing_unless_one_is_named() {
    let server = Loopback::start(guarded(0)).await;
    let api = stack(BearerAuth::new(Arc::new(Rotating::new(None))));
    let response = api.get(server.url()).send().await.expect("sent");
    assert_eq!(response.status(), 401);
    assert_eq!(server.received()[0].header("authorization"), None);

    let named = BearerAuth::for_origin(Arc::new(Rotating::new(None)), &server.url())
        .expect("a valid origin");
    let response = stack(named).get(server.url()).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    assert!(BearerAuth::for_origin(Arc::new(Rotating::new(None)), "no-scheme").is_err());
}

#[tokio::test]
async fn a_401_reports_the_token_and_sends_the_request_once_more_with_the_renewed_one() {
    let server = Loopback::start(guarded(1)).await;
    let source = Arc::new(Rotating::new(Some(server.url())));
    let api = stack(BearerAuth::new(source.clone()));
    // A POST too: a 401 says the request was not acted on.
    let response = api
        .post(format!("{}/v1/domains", server.url()))
        .json(&serde_json::json!({ "name": "sfo-w01" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let seen = server.received();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("authorization"), Some("Bearer token-0"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer token-1"));
    assert_eq!(seen[0].body, seen[1].body, "the same body is sent again");
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 1);
}

/// A redirect to another origin: reqwest drops the token on the way, so
/// that origin's 401 says nothing about it. The token is not reported and
/// the request is not sent again.
#[tokio::test]
async fn a_401_from_the_origin_a_redirect_led_to_leaves_the_token_alone() {
    let theirs = Loopback::start(guarded(0)).await;
    let login = format!("{}/login", theirs.url());
    let ours = Loopback::start(move |_| Reply::empty(302).header("location", &login)).await;
    let source = Arc::new(Rotating::new(Some(ours.url())));
    let response = stack(BearerAuth::new(source.clone()))
        .get(format!("{}/v1/domains", ours.url()))
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(response.status(), 401);
    assert_eq!(theirs.received()[0].header("authorization"), None);
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 0);
    assert_eq!(ours.requests(), 1, "not sent again");
}

/// A source that takes a second to hand out its token, like a session
/// logging in to a slow SDDC Manager.
#[derive(Debug)]
struct SlowLogin {
    origin: String,
}

impl AccessTokenSource for SlowLogin {
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(AccessToken::new("token-0"))
        })
    }

    fn origin(&self) -> Option<String> {
        Some(self.origin.clone())
    }
}

/// The deadline bounds the whole call: 1 s waiting for the token and a
/// server taking 1 s do not fit in 1.5 s, although each alone would.
#[tokio::test]
async fn waiting_for_the_token_counts_against_the_deadline() {
    let server = Loopback::start(|request| guarded(0)(request).after(Duration::from_secs(1))).await;
    let source = Arc::new(SlowLogin {
        origin: server.url(),
    });
    let policy = TransportOptions::default()
        .retry(RetryPolicy::no_retries().deadline(Duration::from_millis(1500)));
    let api = ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(source))
        .with(TransportPolicy::new(&policy))
        .build();
    let started = std::time::Instant::now();
    let outcome = api.get(format!("{}/v1/domains", server.url())).send().await;
    let elapsed = started.elapsed();
    match outcome {
        Err(reqwest_middleware::Error::Reqwest(err)) => assert!(err.is_timeout(), "{err}"),
        other => panic!("expected a timeout at the deadline, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_millis(1900),
        "cut at the 1.5 s deadline, not after the server's answer: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_second_401_is_returned_not_retried_again() {
    let server = Loopback::start(guarded(u32::MAX)).await;
    let source = Arc::new(Rotating::new(Some(server.url())));
    let response = stack(BearerAuth::new(source.clone()))
        .get(server.url())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
    assert_eq!(server.requests(), 2, "one re-send, no loop");
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_source_that_hands_out_the_same_token_again_gets_the_401_without_a_resend() {
    let server = Loopback::start(guarded(1)).await;
    let source = Arc::new(Rotating {
        renews: false,
        ..Rotating::new(Some(server.url()))
    });
    let response = stack(BearerAuth::new(source))
        .get(server.url())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn an_authorization_header_set_by_the_caller_is_left_alone() {
    let server = Loopback::start(guarded(0)).await;
    let api = stack(BearerAuth::new(Arc::new(Rotating::new(Some(server.url())))));
    api.get(server.url())
        .header(AUTHORIZATION, "Basic dXNlcjpwdw==")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        server.received()[0].header("authorization"),
        Some("Basic dXNlcjpwdw==")
    );
}

#[tokio::test]
async fn a_token_failure_is_a_middleware_error_holding_the_sdk_error_and_sends_nothing() {
    let server = Loopback::start(guarded(0)).await;
    let source = Rotating {
        fails: true,
        ..Rotating::new(Some(server.url()))
    };
    let err = stack(BearerAuth::new(Arc::new(source)))
        .get(server.url())
        .send()
        .await
        .expect_err("no token, no request");
    let reqwest_middleware::Error::Middleware(inner) = err else {
        panic!("expected a middleware error, got {err:?}");
    };
    let sdk = inner
        .downcast_ref::<Error>()
        .expect("the SDK's error inside");
    assert_eq!(sdk.kind(), ErrorKind::Auth);
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn the_policy_retries_a_get_after_502_but_never_a_post() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = Loopback::start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::empty(502)
        } else {
            Reply::json(200, serde_json::json!({}))
        }
    })
    .await;
    let options = TransportOptions::default().retry(
        RetryPolicy::default()
            .base_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(1)),
    );
    let api = ClientBuilder::new(reqwest::Client::new())
        .with(TransportPolicy::new(&options))
        .build();
    let response = api.get(server.url()).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests(), 2, "a GET is sent again after a 502");

    calls.store(0, Ordering::SeqCst);
    let response = api.post(server.url()).send().await.expect("sent");
    assert_eq!(
        response.status(),
        502,
        "a POST that may have been processed"
    );
    assert_eq!(server.requests(), 3, "not sent again");
}

#[tokio::test]
async fn the_policy_passes_a_large_success_body_through_whole() {
    let big = "x".repeat(3 * 1024 * 1024);
    let body = big.clone();
    let server = Loopback::start(move |_| Reply::new(200, "text/plain", body.clone())).await;
    let api = ClientBuilder::new(reqwest::Client::new())
        .with(TransportPolicy::new(
            &TransportOptions::default().max_response_bytes(1024),
        ))
        .build();
    let text = api
        .get(server.url())
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("read");
    assert_eq!(text.len(), big.len(), "the cap bounds error bodies only");
}
