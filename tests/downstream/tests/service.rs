//! The SDK from a downstream crate's tests: start the sandbox in three
//! lines, point the SDK at it, and get tokens.

use std::sync::Arc;

use refresh_sandbox::{ExposeSecret, Sandbox};
use refresh_sdk::{AccessTokenSource, F5Client, F5Config, F5Credentials, VcfSession};

#[tokio::test]
async fn a_service_gets_tokens_from_the_sandbox() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    let credentials = sandbox.credentials().clone();

    // The sandbox's configuration without touching the process environment.
    let vcf: Arc<dyn AccessTokenSource> =
        Arc::new(VcfSession::from_lookup(sandbox.vcf_env()).expect("configured"));
    let header = downstream_service::bearer(&vcf).await.expect("a VCF token");
    let token = header.strip_prefix("Bearer ").expect("a bearer header");
    assert!(
        sandbox.is_valid_access_token(token),
        "the sandbox issued it"
    );

    let f5 = F5Client::new(
        F5Config::new(
            &sandbox.f5xc_url(),
            F5Credentials::api_token(credentials.f5xc_api_token.expose_secret()),
        )
        .expect("a valid F5 config"),
    )
    .expect("an F5 client");
    let pipeline = &credentials.f5xc_pipelines[0];
    let result: serde_json::Value = f5
        .refresh_token(pipeline)
        .await
        .expect("a pipeline token")
        .parse_json()
        .expect("JSON text");
    assert!(result.is_object());

    sandbox.assert_spec_clean();
}
