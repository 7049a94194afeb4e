//! `BearerAuthLayer` around a tower service that sends over real HTTP on
//! loopback (reqwest inside), against the sandbox's protected routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use refresh_sandbox::{Method, Operation, Sandbox};
use refresh_sdk::VcfSession;
use refresh_sdk::middleware::BearerAuthLayer;
use tower_layer::Layer;
use tower_service::Service;

/// A tower HTTP client: `http::Request<String>` out over reqwest,
/// `http::Response<Bytes>` back. A URI without a host goes to `base`, as a
/// tonic channel sends to its one endpoint.
#[derive(Clone)]
struct HttpClient {
    client: reqwest::Client,
    base: String,
    /// Each request's `Debug`, as a tracing layer below would print it.
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpClient {
    fn new(base: &str) -> HttpClient {
        HttpClient {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            seen: Arc::default(),
        }
    }
}

impl Service<http::Request<String>> for HttpClient {
    type Response = http::Response<bytes::Bytes>;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, reqwest::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), reqwest::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<String>) -> Self::Future {
        self.seen
            .lock()
            .expect("seen lock")
            .push(format!("{request:?}"));
        if request.uri().host().is_none() {
            let full = format!("{}{}", self.base, request.uri());
            *request.uri_mut() = full.parse().expect("a full URI");
        }
        let client = self.client.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            let status = response.status();
            let body = response.bytes().await?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            Ok(out)
        })
    }
}

async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .protected_route(
            Method::POST,
            "/v1/domains",
            serde_json::json!({ "id": "task-1" }),
        )
        .start()
        .await
        .expect("sandbox")
}

fn post(uri: &str) -> http::Request<String> {
    http::Request::post(uri)
        .header("content-type", "application/json")
        .body(r#"{"name": "sfo-w01"}"#.to_owned())
        .expect("a request")
}

#[tokio::test]
async fn the_layer_authorizes_and_sends_once_more_after_a_401() {
    let sandbox = sandbox().await;
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    let http = HttpClient::new(vcf.base_url());
    let seen = Arc::clone(&http.seen);
    let mut service = BearerAuthLayer::new(Arc::new(vcf.clone())).layer(http);
    let url = format!("{}/v1/domains", vcf.base_url());
    let response = service.call(post(&url)).await.expect("sent");
    assert_eq!(response.status(), 200);
    let token = vcf.access_token().await.expect("the token");
    let shown = seen.lock().expect("seen lock").join("\n");
    assert!(shown.contains("authorization"), "{shown}");
    assert!(
        !shown.contains(refresh_sdk::ExposeSecret::expose_secret(&token)),
        "a request's Debug shows the token: {shown}"
    );

    sandbox.faults().revoke_access_tokens();
    // A relative URI, as tonic sends: it counts as the layer's origin.
    let response = service.call(post("/v1/domains")).await.expect("sent");
    assert_eq!(response.status(), 200, "renewed and sent again");
    assert_eq!(sandbox.route_rejections(Method::POST, "/v1/domains"), 1);
    assert_eq!(sandbox.route_requests(Method::POST, "/v1/domains"), 3);
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 1);
    assert_eq!(vcf.stats().invalidations, 1);
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn without_resend_the_401_is_reported_and_handed_back() {
    let sandbox = sandbox().await;
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    let http = HttpClient::new(vcf.base_url());
    let mut service = BearerAuthLayer::new(Arc::new(vcf.clone()))
        .without_resend()
        .layer(http);
    vcf.access_token().await.expect("login");
    sandbox.faults().revoke_access_tokens();
    let response = service.call(post("/v1/domains")).await.expect("sent");
    assert_eq!(response.status(), 401);
    assert_eq!(sandbox.route_requests(Method::POST, "/v1/domains"), 1);
    assert_eq!(vcf.stats().invalidations, 1, "the token was reported");
    // The next request gets the renewed token.
    let response = service.call(post("/v1/domains")).await.expect("sent");
    assert_eq!(response.status(), 200);
    vcf.logout().await.expect("logout");
}

#[tokio::test]
async fn another_origin_gets_no_token() {
    let ours = sandbox().await;
    let theirs = sandbox().await;
    let vcf = VcfSession::from_lookup(ours.vcf_env()).expect("configuration");
    let http = HttpClient::new(vcf.base_url());
    let mut service = BearerAuthLayer::new(Arc::new(vcf.clone())).layer(http);
    let response = service
        .call(post(&format!("{}/v1/domains", theirs.vcf_url())))
        .await
        .expect("sent");
    assert_eq!(response.status(), 401, "no token crossed to another origin");
    assert_eq!(
        ours.requests(Operation::VcfCreateToken),
        0,
        "no login for it either"
    );

    // A relative URI counts as the origin only while its `Host` header, if
    // any, names the origin.
    let authority = |url: &str| {
        let url = reqwest::Url::parse(url).expect("a sandbox URL");
        format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port().expect("a port")
        )
    };
    let with_host = |host: &str| {
        let mut request = post("/v1/domains");
        request
            .headers_mut()
            .insert(http::header::HOST, host.parse().expect("a Host value"));
        request
    };
    let response = service
        .call(with_host(&authority(&theirs.vcf_url())))
        .await
        .expect("sent");
    assert_eq!(response.status(), 401, "Host names another origin");
    assert_eq!(ours.requests(Operation::VcfCreateToken), 0);
    let response = service
        .call(with_host(&authority(&ours.vcf_url()).to_uppercase()))
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "Host names the origin");
    vcf.logout().await.expect("logout");
}
