//! One token API over F5 Distributed Cloud (F5 XC) and VMware Cloud
//! Foundation (VCF), for Rust services.
//!
//! Add this one dependency and get a valid token without touching the
//! generated clients or `reqwest`. Around the generated clients (re-exported
//! as [`f5xc::client`] and [`vcf::client`]) the crate adds authentication, TLS
//! options, retries with backoff and `Retry-After`, timeouts, a response-size
//! cap, tracing spans, one typed [`Error`], and secrets that never show in
//! `Debug`, errors or logs.
//!
//! # F5 XC: a pipeline token
//!
//! ```no_run
//! # #[cfg(feature = "f5xc")]
//! # async fn run() -> refresh_sdk::Result<()> {
//! use refresh_sdk::f5xc::{F5Client, F5Config, F5Credentials};
//!
//! let config = F5Config::new("acme", F5Credentials::api_token("my-api-token"))?;
//! let f5 = F5Client::new(config)?; // or F5Client::from_env()?
//! let token = f5.refresh_token("my-pipeline").await?;
//! let json: serde_json::Value = token.parse_json()?;
//! # let _ = json;
//! # Ok(())
//! # }
//! ```
//!
//! # VCF: the token operations
//!
//! ```no_run
//! # #[cfg(feature = "vcf")]
//! # async fn run() -> refresh_sdk::Result<()> {
//! use refresh_sdk::vcf::{VcfClient, VcfConfig, VcfCredentials};
//!
//! let vcf = VcfClient::new(VcfConfig::new("sfo-vcf01.rainpole.io")?)?;
//! let pair = vcf
//!     .create_token(&VcfCredentials::new("administrator@vsphere.local", "secret"))
//!     .await?;
//! let access = vcf.refresh_access_token(&pair.refresh_token).await?;
//! vcf.invalidate_refresh_token(&pair.refresh_token).await?;
//! # let _ = access;
//! # Ok(())
//! # }
//! ```
//!
//! # VCF: `VcfSession` in a service
//!
//! ```no_run
//! # #[cfg(feature = "vcf")]
//! # async fn run() -> refresh_sdk::Result<()> {
//! use std::sync::Arc;
//! use refresh_sdk::{AccessTokenSource, ExposeSecret, vcf::VcfSession};
//!
//! // Built once at start-up, shared by every request handler.
//! let vcf = Arc::new(VcfSession::from_env()?);
//! let handler = {
//!     let vcf = Arc::clone(&vcf);
//!     async move {
//!         // Lock-free while fresh; one shared refresh when stale.
//!         let token = vcf.access_token().await?;
//!         let bearer = format!("Bearer {}", token.expose_secret());
//!         # let _ = bearer;
//!         Ok::<(), refresh_sdk::Error>(())
//!     }
//! };
//! tokio::spawn(handler);
//! let source: Arc<dyn AccessTokenSource> = vcf.clone();
//! # let _ = source;
//! vcf.logout().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! `f5xc` and `vcf` (both default) select the services; `p12` (opt-in: about
//! 70 more crates) reads F5 XC API certificates from `.p12` files and
//! `VES_P12_CONTENT`; `tower` adds `middleware::BearerAuthLayer`; `schemars`
//! derives `JsonSchema` on the generated types.

#![deny(missing_docs)]
// With neither service enabled only the shared types remain; their helpers
// have no caller then.
#![cfg_attr(not(any(feature = "f5xc", feature = "vcf")), allow(dead_code))]

#[cfg(feature = "vcf")]
mod api_client;
mod base_url;
#[cfg(any(feature = "f5xc", feature = "vcf"))]
mod cache;
#[cfg(any(feature = "f5xc", feature = "vcf"))]
mod env;
pub mod error;
mod http;
pub mod jwt;
pub mod middleware;
mod source;
mod text;
pub mod transport;

#[cfg(feature = "f5xc")]
pub mod f5xc;
#[cfg(feature = "vcf")]
pub mod vcf;

#[cfg(feature = "vcf")]
pub use api_client::{ApiClient, ApiRequest};
pub use error::{Error, ErrorKind, Result, Service, VendorDetail};
pub use secrecy::{ExposeSecret, SecretString};
pub use source::{AccessToken, AccessTokenSource, TokenFuture};
pub use transport::{RetryPolicy, TransportOptions};

#[cfg(feature = "f5xc")]
pub use f5xc::{
    F5Client, F5Config, F5Credentials, PipelineStats, PipelineToken, PipelineTokenSource,
};
#[cfg(feature = "vcf")]
pub use vcf::{SessionOptions, SessionStats, VcfClient, VcfConfig, VcfCredentials, VcfSession};

/// Compiles the README's examples as doctests.
#[cfg(all(doctest, feature = "f5xc", feature = "vcf"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
