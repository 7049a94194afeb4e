//! The one interface a service needs for tokens, whatever their source.

use std::future::Future;
use std::pin::Pin;

use secrecy::SecretString;

use crate::error::Result;

/// The future [`AccessTokenSource::access_token`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<SecretString>> + Send + 'a>>;

/// Something that hands out valid tokens: [`VcfSession`](crate::vcf::VcfSession)
/// and F5's [`PipelineTokenSource`](crate::f5xc::PipelineTokenSource).
///
/// Object safe, so a service can hold an `Arc<dyn AccessTokenSource>` and not
/// care which vendor is behind it.
///
/// ```
/// use std::sync::Arc;
/// use refresh_sdk::{AccessTokenSource, ExposeSecret};
///
/// async fn authorization(source: Arc<dyn AccessTokenSource>) -> refresh_sdk::Result<String> {
///     Ok(format!("Bearer {}", source.access_token().await?.expose_secret()))
/// }
/// ```
pub trait AccessTokenSource: Send + Sync + std::fmt::Debug {
    /// A valid token.
    fn access_token(&self) -> TokenFuture<'_>;
}
