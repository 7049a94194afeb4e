//! Generated client for the F5 Distributed Cloud (F5 XC) AI Data BFDP
//! refresh-token API: `POST /api/ai_data/bfdp/namespaces/system/bfdp/refresh_token`
//! issues a token for a named data pipeline.
//!
//! The code is generated at build time by `sdk-codegen` from
//! `specs/f5xc-bfdp.yaml`; a reviewable copy is checked in as
//! `generated/client.rs`. Most services want the `refresh-sdk` facade, which
//! adds authentication, retries, limits and typed errors around this client.
//!
//! The raw client sends what the spec describes and nothing more: add the
//! `Authorization: APIToken <token>` header yourself.
//!
//! The client parses each operation's URL once, when it is built.
//! [`Client::with_inner`] copies it with another executor ([`Inner`]),
//! sharing those URLs and the `reqwest::Client`: cheap enough to do per
//! call, as the facade does.
//!
//! ```no_run
//! use f5xc_bfdp::{Client, types::RefreshTokenRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut headers = reqwest::header::HeaderMap::new();
//! headers.insert("authorization", "APIToken my-api-token".parse()?);
//! let http = reqwest::Client::builder().default_headers(headers).build()?;
//! let client = Client::new_with_client("https://acme.console.ves.volterra.io", http, None);
//! let request = RefreshTokenRequest { product_name: Some("my-pipeline".into()) };
//! let response = client.refresh_token(&request).await?;
//! println!("{} bytes of token JSON", response.result.as_deref().unwrap_or("").len());
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
/// f5xc-bfdp = { path = "../refresh-sdk/crates/f5xc-bfdp", features = ["mock"] }  # or git = "..."
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
