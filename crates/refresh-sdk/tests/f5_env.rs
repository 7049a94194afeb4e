//! F5 XC configuration from the environment as F5's own tooling sets it: a
//! `.p12` API certificate given as base64 content (`VES_P12_CONTENT`) and a
//! CA bundle file (`VOLT_API_CA_CERT`), against a rustls server on 127.0.0.1
//! that trusts only clients with a certificate from its test CA. Errors name
//! the variable and never its value.

mod common;

use std::sync::atomic::Ordering;

use common::pki::{https_server, p12_archive, pki};
use refresh_loopback::{Loopback, Reply};
use refresh_sdk::f5xc::{F5Client, F5Config};
use refresh_sdk::{ErrorKind, ExposeSecret, RetryPolicy};

/// Never to be shown: used as the `.p12` content and password in error tests.
const CANARY: &str = "CANARY-p12-9c4e";

/// A lookup over `pairs`, as `F5Config::from_lookup` takes it.
fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    }
}

/// A file in the temp directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("refresh-sdk-f5-env-{}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("write a temp file");
        TempFile(path)
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The error's message, source chain and Debug form, for checking that no
/// value leaks.
fn everything_shown(err: &refresh_sdk::Error) -> String {
    let mut shown = format!("{err}\n{err:?}\n{err:#?}");
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        shown.push_str(&format!("\n{inner}\n{inner:?}"));
        source = inner.source();
    }
    shown
}

#[cfg(feature = "p12")]
#[tokio::test]
async fn a_base64_p12_and_a_ca_file_from_the_environment_reach_a_mutual_tls_server() {
    use base64::Engine as _;
    let pki = pki();
    let (url, served) = https_server(&pki, true).await;
    let p12 = p12_archive(&pki, "p12-password");
    // Wrapped at 76 columns, as `base64` prints it without `-w0`.
    let encoded = base64::engine::general_purpose::STANDARD.encode(&p12);
    let wrapped = encoded
        .as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(wrapped.contains('\n'), "the archive spans several lines");
    let ca = TempFile::new("ca.pem", pki.ca_pem.as_bytes());
    let env = vec![
        ("VOLT_API_URL", format!("{url}/api")),
        ("VES_P12_CONTENT", wrapped.clone()),
        ("VES_P12_PASSWORD", "p12-password".to_owned()),
        ("VOLT_API_CA_CERT", ca.path()),
    ];

    let config =
        F5Config::from_lookup(lookup(env.clone())).expect("configured from the environment");
    // The Debug form shows neither the archive nor its password.
    let debug = format!("{config:?}");
    assert!(!debug.contains(&encoded[..40]), "{debug}");
    assert!(!debug.contains("p12-password"), "{debug}");
    // Keep the CA bundle from VOLT_API_CA_CERT; only the retries change.
    let options = config
        .transport_options()
        .clone()
        .retry(RetryPolicy::no_retries());
    let client = F5Client::new(config.transport(options)).expect("client");
    let token = client
        .refresh_token("p")
        .await
        .expect("the .p12 identity and the CA bundle are accepted");
    assert_eq!(token.secret().expose_secret(), r#"{"token":"tls"}"#);
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // Control: without VOLT_API_CA_CERT the test CA is unknown and the
    // handshake fails before any request.
    let without_ca = env
        .into_iter()
        .filter(|(name, _)| *name != "VOLT_API_CA_CERT")
        .collect();
    let config = F5Config::from_lookup(lookup(without_ca)).expect("configured");
    let options = config
        .transport_options()
        .clone()
        .retry(RetryPolicy::no_retries());
    let err = F5Client::new(config.transport(options))
        .expect("client")
        .refresh_token("p")
        .await
        .expect_err("the server's CA is not trusted");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[cfg(feature = "p12")]
#[test]
fn ves_p12_content_that_is_not_base64_is_named_without_its_value() {
    let bad = format!("{CANARY}!*not base64*");
    let err = F5Config::from_lookup(lookup(vec![
        ("VOLT_API_URL", "acme".to_owned()),
        ("VES_P12_CONTENT", bad),
        ("VES_P12_PASSWORD", CANARY.to_owned()),
    ]))
    .expect_err("not base64");
    assert_eq!(err.kind(), ErrorKind::Config);
    let shown = everything_shown(&err);
    assert!(shown.contains("VES_P12_CONTENT is not base64"), "{shown}");
    assert!(!shown.contains("CANARY"), "{shown}");
    assert!(!shown.contains("p12-9c4e"), "{shown}");
}

#[cfg(feature = "p12")]
#[test]
fn ves_p12_content_that_is_base64_but_no_archive_is_named_without_its_value() {
    use base64::Engine as _;
    let content = base64::engine::general_purpose::STANDARD.encode(CANARY);
    for password in [None, Some(CANARY)] {
        let mut env = vec![
            ("VOLT_API_URL", "acme".to_owned()),
            ("VES_P12_CONTENT", content.clone()),
        ];
        env.extend(password.map(|p| ("VES_P12_PASSWORD", p.to_owned())));
        let err = F5Config::from_lookup(lookup(env)).expect_err("no archive");
        assert_eq!(err.kind(), ErrorKind::Config);
        let shown = everything_shown(&err);
        let expected = match password {
            None => "VES_P12_CONTENT is set but VES_P12_PASSWORD is not",
            Some(_) => "cannot open the .p12 API certificate",
        };
        assert!(shown.contains(expected), "{shown}");
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains(&content), "{shown}");
    }
}

/// Each variable that names a file, given a value that is no file (here a
/// token pasted into the wrong variable): the error names the variable and
/// never quotes its value.
#[test]
fn a_file_that_cannot_be_read_names_the_variable_not_its_value() {
    let pasted = format!("{CANARY}-pasted-token");
    let cert = [
        ("VOLT_API_CERT", pasted.clone()),
        ("VOLT_API_KEY", pasted.clone()),
    ];
    for (variable, pairs) in [
        (
            "VOLT_API_CA_CERT",
            vec![
                ("VOLT_API_TOKEN", "token".to_owned()),
                ("VOLT_API_CA_CERT", pasted.clone()),
            ],
        ),
        ("VOLT_API_CERT", cert.to_vec()),
        #[cfg(feature = "p12")]
        (
            "VOLT_API_P12_FILE",
            vec![
                ("VOLT_API_P12_FILE", pasted.clone()),
                ("VES_P12_PASSWORD", "password".to_owned()),
            ],
        ),
    ] {
        let mut pairs = pairs;
        pairs.push(("VOLT_API_URL", "acme".to_owned()));
        let err = F5Config::from_lookup(lookup(pairs)).expect_err("no such file");
        assert_eq!(err.kind(), ErrorKind::Config, "{variable}");
        let shown = everything_shown(&err);
        assert!(shown.contains(variable), "{variable}: {shown}");
        assert!(!shown.contains(CANARY), "{variable}: {shown}");
    }
}

/// A token pasted with its line's end still attached is sent without it.
#[tokio::test]
async fn an_api_token_is_sent_without_surrounding_whitespace() {
    let server =
        Loopback::start(|_| Reply::json(200, serde_json::json!({"result": "{\"token\":\"t\"}"})))
            .await;
    let config = F5Config::from_lookup(lookup(vec![
        ("VOLT_API_URL", server.url()),
        ("VOLT_API_TOKEN", " token-1234\n".to_owned()),
    ]))
    .expect("configured");
    F5Client::new(config)
        .expect("a client")
        .refresh_token("pipeline")
        .await
        .expect("a token");
    assert_eq!(
        server.received()[0].header("authorization"),
        Some("APIToken token-1234")
    );
}

#[test]
fn a_token_with_a_ca_file_is_configured_and_blank_p12_content_is_unset() {
    let pki = pki();
    let ca = TempFile::new("token-ca.pem", pki.ca_pem.as_bytes());
    let config = F5Config::from_lookup(lookup(vec![
        ("VOLT_API_URL", "acme".to_owned()),
        ("VOLT_API_TOKEN", CANARY.to_owned()),
        // Blank is unset: the token is used, not an empty archive.
        ("VES_P12_CONTENT", "  ".to_owned()),
        ("VOLT_API_CA_CERT", ca.path()),
    ]))
    .expect("configured");
    assert_eq!(config.base_url(), "https://acme.console.ves.volterra.io");
    assert!(!format!("{config:?}").contains(CANARY));
}

/// `VOLT_API_TOKEN_FILE`: the token is read from the file once, when the
/// configuration is read, without one trailing line break; rewriting the
/// file later does not change what the client sends.
#[tokio::test]
async fn an_api_token_file_is_read_once_without_its_trailing_line_break() {
    let server =
        Loopback::start(|_| Reply::json(200, serde_json::json!({"result": "{\"token\":\"t\"}"})))
            .await;
    let file = TempFile::new("token-file", b"token-from-file\r\n");
    let config = F5Config::from_lookup(lookup(vec![
        ("VOLT_API_URL", server.url()),
        ("VOLT_API_TOKEN_FILE", file.path()),
    ]))
    .expect("configured");
    assert!(!format!("{config:?}").contains("token-from-file"));
    std::fs::write(&file.0, "rotated-token").expect("rewrite");
    let client = F5Client::new(config).expect("a client");
    client.refresh_token("pipeline").await.expect("a token");
    client.refresh_token("pipeline").await.expect("a token");
    let received = server.received();
    for request in &received {
        assert_eq!(
            request.header("authorization"),
            Some("APIToken token-from-file"),
            "read once, when configured"
        );
    }
    assert_eq!(received.len(), 2);

    // A new configuration reads the rotated token.
    let config = F5Config::from_lookup(lookup(vec![
        ("VOLT_API_URL", server.url()),
        ("VOLT_API_TOKEN_FILE", file.path()),
    ]))
    .expect("configured");
    F5Client::new(config)
        .expect("a client")
        .refresh_token("pipeline")
        .await
        .expect("a token");
    assert_eq!(
        server.received()[2].header("authorization"),
        Some("APIToken rotated-token")
    );
}

/// A secret given both as a value and as a file is an error naming both
/// variables and neither value; an unreadable `_FILE` names its variable.
#[test]
fn a_secret_and_its_file_both_set_or_an_unreadable_file_is_named() {
    let file = TempFile::new("both", CANARY.as_bytes());
    for (plain, file_variable, extra) in [
        ("VOLT_API_TOKEN", "VOLT_API_TOKEN_FILE", None),
        (
            "VES_P12_PASSWORD",
            "VES_P12_PASSWORD_FILE",
            Some(("VES_P12_CONTENT", "AAAA".to_owned())),
        ),
    ] {
        let mut env = vec![
            ("VOLT_API_URL", "acme".to_owned()),
            (plain, CANARY.to_owned()),
            (file_variable, file.path()),
        ];
        env.extend(extra);
        let err = F5Config::from_lookup(lookup(env)).expect_err("both set");
        assert_eq!(err.kind(), ErrorKind::Config);
        let shown = everything_shown(&err);
        assert!(
            shown.contains(&format!("both {plain} and {file_variable} are set")),
            "{shown}"
        );
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains(&file.path()), "{shown}");
    }

    let pasted = format!("/nonexistent/{CANARY}");
    for (variable, extra) in [
        ("VOLT_API_TOKEN_FILE", None),
        #[cfg(feature = "p12")]
        (
            "VES_P12_PASSWORD_FILE",
            Some(("VES_P12_CONTENT", "AAAA".to_owned())),
        ),
    ] {
        let mut env = vec![
            ("VOLT_API_URL", "acme".to_owned()),
            (variable, pasted.clone()),
        ];
        env.extend(extra);
        let err = F5Config::from_lookup(lookup(env)).expect_err("no such file");
        assert_eq!(err.kind(), ErrorKind::Config, "{variable}");
        let shown = everything_shown(&err);
        assert!(
            shown.contains(&format!("the file named by {variable}")),
            "{shown}"
        );
        assert!(!shown.contains(CANARY), "{shown}");
    }
}

/// `VES_P12_PASSWORD_FILE` opens a `.p12` as `VES_P12_PASSWORD` does: the
/// archive's password, less one trailing line break, and a wrong one fails.
#[cfg(feature = "p12")]
#[test]
fn a_p12_password_file_opens_the_archive() {
    use base64::Engine as _;
    let pki = pki();
    let p12 = p12_archive(&pki, "p12-password");
    let content = base64::engine::general_purpose::STANDARD.encode(&p12);
    let file = TempFile::new("p12-password", b"p12-password\n");
    let env = |path: String| {
        lookup(vec![
            ("VOLT_API_URL", "acme".to_owned()),
            ("VES_P12_CONTENT", content.clone()),
            ("VES_P12_PASSWORD_FILE", path),
        ])
    };
    let config = F5Config::from_lookup(env(file.path())).expect("the password opens it");
    assert!(!format!("{config:?}").contains("p12-password"));

    std::fs::write(&file.0, "p12-password\n\n").expect("rewrite");
    let err = F5Config::from_lookup(env(file.path())).expect_err("a second line break is kept");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("VES_P12_PASSWORD"), "{err}");
}
