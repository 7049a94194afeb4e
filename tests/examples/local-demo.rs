//! Calls both generated clients against local loopback servers that answer
//! as the specs document. Stands in for `refresh demo` until the CLI lands.

use serde_json::json;
use workspace_tests::{RecordingServer, Scripted};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let f5 = RecordingServer::start(Scripted::json(
        200,
        json!({ "result": r#"{"token":"demo"}"# }),
    ))
    .await;
    let http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                "APIToken demo-token".parse()?,
            )]
            .into_iter()
            .collect(),
        )
        .build()?;
    let client = f5xc_bfdp::Client::new_with_client(&f5.url(), http, None);
    let request = f5xc_bfdp::types::RefreshTokenRequest {
        product_name: Some("demo-pipeline".into()),
    };
    let result = client
        .refresh_token(&request)
        .await?
        .into_inner()
        .result
        .unwrap_or_default();
    println!(
        "f5xc refresh_token: {} bytes of token JSON from {}",
        result.len(),
        f5.url()
    );

    let vcf = RecordingServer::start(Scripted::json(200, json!("new-access-token"))).await;
    let client = vcf_tokens::Client::new_with_client(&vcf.url(), reqwest::Client::new(), None);
    let token = client
        .refresh_access_token("demo-refresh-id")
        .await?
        .into_inner();
    println!(
        "vcf refreshAccessToken: a {}-character access token from {}",
        token.len(),
        vcf.url()
    );
    Ok(())
}
