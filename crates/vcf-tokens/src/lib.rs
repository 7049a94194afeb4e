//! Generated client for the VMware Cloud Foundation (VCF) SDDC Manager Tokens
//! API: create an access and refresh token pair (`POST /v1/tokens`), refresh
//! the access token (`PATCH /v1/tokens/access-token/refresh`) and invalidate
//! the refresh token (`DELETE /v1/tokens/refresh-token`).
//!
//! The code is generated at build time by `sdk-codegen` from
//! `specs/vcf-tokens.yaml`; a reviewable copy is checked in as
//! `generated/client.rs`. Most services want the `refresh-sdk` facade and its
//! `VcfSession`, which keeps a valid access token cached and refreshes it.
//!
//! The client parses each operation's URL once, when it is built.
//! [`Client::with_inner`] copies it with another executor ([`Inner`]),
//! sharing those URLs and the `reqwest::Client`: cheap enough to do per
//! call, as the facade does.
//!
//! ```no_run
//! use vcf_tokens::{Client, types::TokenCreationSpec};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new_with_client("https://sfo-vcf01.rainpole.io", reqwest::Client::new(), None);
//! let spec = TokenCreationSpec {
//!     username: Some("administrator@vsphere.local".into()),
//!     password: Some("secret".into()),
//!     ..Default::default()
//! };
//! let pair = client.create_token(&spec).await?.into_inner();
//! let refresh_id = pair.refresh_token.and_then(|r| r.id).unwrap_or_default();
//! let access_token = client.refresh_access_token(&refresh_id).await?.into_inner();
//! client.invalidate_refresh_token(&refresh_id).await?;
//! # let _ = access_token;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `schemars`: `schemars::JsonSchema` on every type in `types`, for
//!   comparing the types with the spec (off by default, so services that only
//!   call the API do not compile `schemars`).
//! - `mock`: typed `httpmock` helpers in `mock`, for downstream unit tests.

#![deny(missing_docs)]

pub use progenitor_client;

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

pub use generated::*;

/// Typed [`httpmock`] helpers for this API, generated from the same spec as
/// the client (feature `mock`): `MockServerExt` adds one method per
/// operation to [`httpmock::MockServer`], whose `When`/`Then` wrappers accept
/// only the spec's request body types and documented responses.
///
/// Meant for a downstream service's unit tests:
/// ```toml
/// [dev-dependencies]
/// vcf-tokens = { path = "../refresh-sdk/crates/vcf-tokens", features = ["mock"] }  # or git = "..."
/// httpmock = "0.9"
/// ```
#[cfg(feature = "mock")]
#[allow(missing_docs, clippy::all)]
pub mod mock {
    include!(concat!(env!("OUT_DIR"), "/httpmock.rs"));
}

#[cfg(test)]
mod tests {
    use super::Client;

    #[test]
    fn a_copy_shares_the_parsed_urls_instead_of_parsing_again() {
        let client = Client::new_with_client("https://api.example", reqwest::Client::new(), None);
        let copy = client.with_inner(None);
        assert!(std::sync::Arc::ptr_eq(&client.urls, &copy.urls));
    }
}
