//! VMware Cloud Foundation (VCF) SDDC Manager tokens, and [`VcfSession`],
//! which always has a valid access token at hand.
//!
//! ```no_run
//! # async fn run() -> refresh_sdk::Result<()> {
//! use refresh_sdk::vcf::{VcfClient, VcfCredentials};
//!
//! // VCF_SDDC_MANAGER_HOST=sfo-vcf01.rainpole.io
//! let vcf = VcfClient::from_env()?;
//! let credentials = VcfCredentials::new("administrator@vsphere.local", "secret");
//! let pair = vcf.create_token(&credentials).await?;
//! let access = vcf.refresh_access_token(&pair.refresh_token).await?;
//! vcf.invalidate_refresh_token(&pair.refresh_token).await?;
//! # let _ = access;
//! # Ok(())
//! # }
//! ```

mod config;
mod credentials;
mod errors;
mod options;
mod session;
mod vcf_client;

pub use config::{VcfConfig, normalize_host};
pub use credentials::VcfCredentials;
pub use options::SessionOptions;
pub use session::{SessionStats, VcfSession};
pub use vcf_client::{TokenPair, VcfClient};

/// The generated VCF Tokens client, for callers who need the raw operations.
pub use vcf_tokens as client;

use crate::error::Service;
// For the session engine (`session.rs`), which resolves logins itself.
use credentials::Login;

const SERVICE: Service = Service::Vcf;
