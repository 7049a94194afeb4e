//! The bearer layer by its public paths, as a service that builds its own
//! client stack uses it: `refresh_sdk::middleware::{BearerAuth,
//! TransportPolicy}` over an `Arc<dyn AccessTokenSource>`, and the trait's
//! `origin` and `invalidate`.

use std::sync::Arc;

use refresh_sandbox::{Method, Operation, Sandbox};
use refresh_sdk::middleware::{BearerAuth, TransportPolicy};
use refresh_sdk::{AccessTokenSource, TransportOptions, VcfSession};

#[tokio::test]
async fn a_stack_of_its_own_carries_the_token_and_renews_it_once() {
    let sandbox = Sandbox::builder()
        .protected_route(
            Method::GET,
            "/v1/domains",
            serde_json::json!({ "elements": [] }),
        )
        .start()
        .await
        .expect("the sandbox starts");
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configured");
    let source: Arc<dyn AccessTokenSource> = Arc::new(vcf.clone());
    assert_eq!(source.origin().as_deref(), Some(vcf.base_url()));

    let api = reqwest_middleware::ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(BearerAuth::new(Arc::clone(&source)))
        .with(TransportPolicy::new(&TransportOptions::default()))
        .build();
    let url = format!("{}/v1/domains", vcf.base_url());
    assert_eq!(api.get(&url).send().await.expect("sent").status(), 200);

    sandbox.faults().revoke_access_tokens();
    assert_eq!(api.get(&url).send().await.expect("sent").status(), 200);
    assert_eq!(sandbox.route_rejections(Method::GET, "/v1/domains"), 1);
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 1);

    // Reporting a token that is no longer served does nothing.
    let current = source.access_token().await.expect("a token");
    source.invalidate(&refresh_sdk::AccessToken::new("not-the-current-one"));
    assert_eq!(vcf.stats().invalidations, 1);
    assert!(vcf.authorization().await.expect("a header").is_sensitive());
    drop(current);
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}

/// The transport's public paths as a service names them, and a failed
/// request of its own stack in the SDK's words: the origin and the cause,
/// nothing of the path or query.
#[tokio::test]
async fn a_stack_of_its_own_reads_its_failures_as_the_sdk_does() {
    use refresh_sdk::middleware::into_error;
    use refresh_sdk::transport::{RetryPolicy, TransportOptions, USER_AGENT};

    assert!(USER_AGENT.starts_with("refresh-sdk/"), "{USER_AGENT}");
    let options = TransportOptions::default().retry(RetryPolicy::no_retries());
    let api = reqwest_middleware::ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(TransportPolicy::new(&options))
        .build();
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port")
        .local_addr()
        .expect("its address");
    let err = api
        .get(format!("http://{closed}/v1/domains?filter=secret"))
        .send()
        .await
        .expect_err("nothing listens");
    let err = into_error(err);
    assert_eq!(err.kind(), refresh_sdk::ErrorKind::Transport, "{err:?}");
    // A service matches on the cause rather than on the words.
    assert!(
        matches!(
            err.transport_cause(),
            Some(refresh_sdk::error::TransportCause::Refused)
        ),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("http://{closed}: connection refused")),
        "{shown}"
    );
    assert!(
        !shown.contains("/v1/domains") && !shown.contains("secret"),
        "{shown}"
    );
}
