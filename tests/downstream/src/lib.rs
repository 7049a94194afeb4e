//! A stand-in for a service that calls SDDC Manager and F5 XC: it holds
//! token sources behind `Arc<dyn AccessTokenSource>` and asks them for a
//! token on every call, and reads SDDC Manager's inventory through the
//! session's API client.

use std::sync::Arc;

use refresh_sdk::{AccessTokenSource, ExposeSecret, VcfSession};

/// The `Authorization` header value for the next call to SDDC Manager.
pub async fn bearer(source: &Arc<dyn AccessTokenSource>) -> refresh_sdk::Result<String> {
    let token = source.access_token().await?;
    Ok(format!("Bearer {}", token.expose_secret()))
}

/// The part of a service that reads SDDC Manager's inventory: the session's
/// API client carries the token, and renews it once when SDDC Manager
/// answers 401.
#[derive(Clone)]
pub struct Inventory {
    vcf: VcfSession,
    api: refresh_sdk::ApiClient,
}

impl Inventory {
    /// The inventory of the SDDC Manager `vcf` logs in to.
    pub fn new(vcf: VcfSession) -> Inventory {
        let api = vcf.api_client();
        Inventory { vcf, api }
    }

    /// The names of the workload domains (`GET /v1/domains`); every
    /// failure, the body's and an error status included, as the SDK's
    /// error.
    pub async fn domain_names(&self) -> refresh_sdk::Result<Vec<String>> {
        let page: serde_json::Value = self
            .api
            .get(format!("{}/v1/domains", self.vcf.base_url()))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(page["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|domain| domain["name"].as_str().map(str::to_owned))
            .collect())
    }
}
