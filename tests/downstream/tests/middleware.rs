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
