//! A stand-in for a service that calls SDDC Manager and F5 XC: it holds
//! token sources behind `Arc<dyn AccessTokenSource>` and asks them for a
//! token on every call.

use std::sync::Arc;

use refresh_sdk::{AccessTokenSource, ExposeSecret};

/// The `Authorization` header value for the next call to SDDC Manager.
pub async fn bearer(source: &Arc<dyn AccessTokenSource>) -> refresh_sdk::Result<String> {
    let token = source.access_token().await?;
    Ok(format!("Bearer {}", token.expose_secret()))
}
