//! Lists SDDC Manager domains through the session's API client, against a
//! local sandbox, including a token that SDDC Manager stops accepting.
//!
//! ```sh
//! cargo run -p refresh-sdk --example list_domains
//! ```
//!
//! Against a real SDDC Manager, build the session with
//! `VcfSession::from_env()` instead (VCF_SDDC_MANAGER_HOST,
//! VCF_SDDC_MANAGER_USERNAME, VCF_SDDC_MANAGER_PASSWORD).

use refresh_sandbox::{Method, Sandbox};
use refresh_sdk::VcfSession;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A stand-in for SDDC Manager: its Tokens API, and one more endpoint
    // that needs a live access token.
    let sandbox = Sandbox::builder()
        .protected_route(
            Method::GET,
            "/v1/domains",
            json!({ "elements": [{ "name": "sfo-m01", "type": "MANAGEMENT" }] }),
        )
        .start()
        .await?;

    // The three lines a service needs.
    let vcf = VcfSession::from_lookup(sandbox.vcf_env())?;
    let api = vcf.api_client();
    let domains: Value = api
        .get(format!("{}/v1/domains", vcf.base_url()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    for domain in domains["elements"].as_array().into_iter().flatten() {
        println!("domain {} ({})", domain["name"], domain["type"]);
    }

    // SDDC Manager drops its sessions: the next call gets a 401, the client
    // renews the token and sends the call once more, unseen by the caller.
    sandbox.faults().revoke_access_tokens();
    let status = api
        .get(format!("{}/v1/domains", vcf.base_url()))
        .send()
        .await?
        .status();
    let stats = vcf.stats();
    println!(
        "after a revoked token: HTTP {status}; {} login, {} refresh, {} rejected token reported",
        stats.logins, stats.refreshes, stats.invalidations
    );
    if !status.is_success() || stats.invalidations != 1 {
        return Err("the revoked token was not renewed".into());
    }

    // No refresh token left behind.
    vcf.logout().await?;
    Ok(())
}
