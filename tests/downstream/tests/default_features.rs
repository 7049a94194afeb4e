//! What a service on the SDK's default features meets: `p12` is not one of
//! them (it would compile PKCS#12 crypto into every service), so the `.p12`
//! variables fail saying which feature to enable, never "not set", and never
//! quoting their values. This crate depends on `refresh-sdk` with default
//! features only; were `p12` enabled here, these tests would fail.

use refresh_sdk::{ErrorKind, F5Config};

const CANARY: &str = "CANARY-default-7d21";

#[test]
fn p12_variables_without_the_feature_say_which_feature_to_enable() {
    for variable in ["VOLT_API_P12_FILE", "VES_P12_CONTENT"] {
        // With and without the password: its absence is not the problem.
        for password in [None, Some(CANARY)] {
            let err = F5Config::from_lookup(|name| match name {
                "VOLT_API_URL" => Some("acme".to_owned()),
                "VES_P12_PASSWORD" => password.map(str::to_owned),
                name if name == variable => Some(format!("{CANARY}-value")),
                _ => None,
            })
            .expect_err("the p12 feature is off");
            assert_eq!(err.kind(), ErrorKind::Config);
            let shown = format!("{err}\n{err:?}");
            assert!(shown.contains(variable), "{shown}");
            assert!(
                shown.contains(r#"refresh-sdk = { features = ["p12"] }"#),
                "{shown}"
            );
            assert!(!shown.contains("not set"), "{shown}");
            assert!(!shown.contains(CANARY), "{shown}");
        }
    }
}

#[test]
fn an_api_token_needs_no_p12_feature() {
    let config = F5Config::from_lookup(|name| match name {
        "VOLT_API_URL" => Some("acme".to_owned()),
        "VOLT_API_TOKEN" => Some(CANARY.to_owned()),
        _ => None,
    })
    .expect("a token is enough");
    assert_eq!(config.base_url(), "https://acme.console.ves.volterra.io");
}
