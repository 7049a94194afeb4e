//! Shared helpers of the integration tests: clients for a loopback URL, fast
//! retries, test JWTs. The loopback server itself is `refresh_loopback`.
#![allow(dead_code)]

pub mod pki;

use std::time::Duration;

/// Fast retries, so tests that exercise them stay short.
pub fn quick_transport() -> refresh_sdk::TransportOptions {
    refresh_sdk::TransportOptions::default().retry(
        refresh_sdk::RetryPolicy::default()
            .base_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(50)),
    )
}

pub const F5_PATH: &str = "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token";

pub fn f5_client(
    url: &str,
    token: &str,
    transport: refresh_sdk::TransportOptions,
) -> refresh_sdk::F5Client {
    let config = refresh_sdk::F5Config::new(url, refresh_sdk::F5Credentials::api_token(token))
        .expect("valid F5 config")
        .transport(transport);
    refresh_sdk::F5Client::new(config).expect("F5 client builds")
}

pub fn vcf_client(url: &str, transport: refresh_sdk::TransportOptions) -> refresh_sdk::VcfClient {
    let config = refresh_sdk::VcfConfig::new(url)
        .expect("valid VCF config")
        .transport(transport);
    refresh_sdk::VcfClient::new(config).expect("VCF client builds")
}

/// An unsigned JWT whose `exp` is `seconds` from now.
pub fn jwt_expiring_in(seconds: i64, subject: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let payload = serde_json::json!({ "sub": subject, "exp": now + seconds });
    format!(
        "{}.{}.sig",
        engine.encode(r#"{"alg":"none"}"#),
        engine.encode(payload.to_string())
    )
}
