//! A stand-in for a service that calls SDDC Manager and F5 XC: it holds
//! token sources behind `Arc<dyn AccessTokenSource>` and asks them for a
//! token on every call.

use std::future::Future;
use std::sync::Arc;

use refresh_sdk::{AccessTokenSource, ExposeSecret};

/// The `Authorization` header value for the next call to SDDC Manager.
pub async fn bearer(source: &Arc<dyn AccessTokenSource>) -> refresh_sdk::Result<String> {
    let token = source.access_token().await?;
    Ok(format!("Bearer {}", token.expose_secret()))
}

/// What a service does around each call to another SDDC Manager endpoint:
/// send it with the current token; when the server answers 401, report the
/// token and send once more with the renewed one. `send` gets the
/// `Authorization` value and returns the HTTP status.
pub async fn call_with_renewal<F, Fut>(
    source: &Arc<dyn AccessTokenSource>,
    send: F,
) -> refresh_sdk::Result<u16>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = u16>,
{
    let token = source.access_token().await?;
    let status = send(format!("Bearer {}", token.expose_secret())).await;
    if status != 401 {
        return Ok(status);
    }
    source.invalidate(&token);
    let renewed = source.access_token().await?;
    Ok(send(format!("Bearer {}", renewed.expose_secret())).await)
}
