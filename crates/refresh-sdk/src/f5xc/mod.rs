//! F5 Distributed Cloud (F5 XC) AI Data BFDP: pipeline tokens.
//!
//! ```no_run
//! # async fn run() -> refresh_sdk::Result<()> {
//! use refresh_sdk::ExposeSecret;
//! use refresh_sdk::f5xc::F5Client;
//!
//! // VOLT_API_URL=acme (or https://acme.console.ves.volterra.io[/api]),
//! // VOLT_API_TOKEN=... (or VOLT_API_P12_FILE + VES_P12_PASSWORD with the
//! // `p12` feature; see `F5Config::from_env`)
//! let f5 = F5Client::from_env()?;
//! let token = f5.refresh_token("my-pipeline").await?;
//! let parsed: serde_json::Value = token.parse_json()?;
//! # let _ = (token.secret().expose_secret(), parsed);
//! # Ok(())
//! # }
//! ```
//!
//! A service that needs the token per request holds a
//! [`PipelineTokenSource`] ([`F5Client::pipeline`]): one POST at a time,
//! shared by concurrent callers, and reuse only for as long as
//! [`reuse_for`](PipelineTokenSource::reuse_for) says.

mod config;
mod credentials;
mod f5_client;
mod pipeline;

pub use config::{CONSOLE_DOMAIN, F5Config, normalize_base_url};
pub use credentials::{ClientCertificate, F5Credentials};
pub use f5_client::{F5Client, PipelineToken};
pub use pipeline::{PipelineStats, PipelineTokenSource};

/// The generated F5 XC BFDP client, for callers who need the raw operation.
pub use f5xc_bfdp as client;

use crate::error::Service;

const SERVICE: Service = Service::F5Xc;
