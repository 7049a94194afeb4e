//! Clients for the sandbox tests: the generated clients for well-formed
//! requests, raw reqwest for deliberately wrong ones.

#![allow(dead_code)]

use refresh_sandbox::{ExposeSecret, Sandbox};

pub fn vcf(sandbox: &Sandbox) -> vcf_tokens::Client {
    vcf_tokens::Client::new_with_client(&sandbox.vcf_url(), reqwest::Client::new(), None)
}

/// An F5 client that sends `Authorization: APIToken <token>`.
pub fn f5xc_with_token(sandbox: &Sandbox, token: &str) -> f5xc_bfdp::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("APIToken {token}")
            .parse()
            .expect("the token is a valid header value"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a reqwest client");
    f5xc_bfdp::Client::new_with_client(&sandbox.f5xc_url(), http, None)
}

/// An F5 client with the sandbox's own token.
pub fn f5xc(sandbox: &Sandbox) -> f5xc_bfdp::Client {
    f5xc_with_token(
        sandbox,
        sandbox.credentials().f5xc_api_token.expose_secret(),
    )
}

pub fn good_credentials(sandbox: &Sandbox) -> vcf_tokens::types::TokenCreationSpec {
    let credentials = sandbox.credentials();
    vcf_tokens::types::TokenCreationSpec {
        username: Some(credentials.vcf_username.clone()),
        password: Some(credentials.vcf_password.expose_secret().to_owned()),
        ..Default::default()
    }
}

pub fn pipeline(name: &str) -> f5xc_bfdp::types::RefreshTokenRequest {
    f5xc_bfdp::types::RefreshTokenRequest {
        product_name: Some(name.to_owned()),
    }
}

/// Creates a token pair with the sandbox's credentials; returns the access
/// token and the refresh token id.
pub async fn create_pair(sandbox: &Sandbox) -> (String, String) {
    let pair = vcf(sandbox)
        .create_token(&good_credentials(sandbox))
        .await
        .expect("createToken with the sandbox's credentials succeeds")
        .into_inner();
    let access = pair.access_token.expect("the pair has an access token");
    let refresh = pair
        .refresh_token
        .and_then(|r| r.id)
        .expect("the pair has a refresh token id");
    (access, refresh)
}

/// The status of a generated client's error, or a panic naming the error.
pub fn error_status<E: std::fmt::Debug>(error: &vcf_tokens::progenitor_client::Error<E>) -> u16 {
    error
        .status()
        .unwrap_or_else(|| panic!("expected an HTTP status, got {error:?}"))
        .as_u16()
}
