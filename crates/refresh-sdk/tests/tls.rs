//! TLS: a custom CA bundle, the explicit opt-out of verification, and the
//! F5 XC API certificate as the client identity (PEM and `.p12`), against
//! rustls servers on 127.0.0.1 with rcgen-made certificates.

mod common;

use std::sync::atomic::Ordering;

#[cfg(feature = "p12")]
use common::pki::p12_archive;
use common::pki::{https_server, pki};
use refresh_sdk::f5xc::{ClientCertificate, F5Client, F5Config, F5Credentials};
use refresh_sdk::{ErrorKind, ExposeSecret, RetryPolicy, SecretString, TransportOptions};

fn transport() -> TransportOptions {
    TransportOptions::default().retry(RetryPolicy::no_retries())
}

fn client(url: &str, credentials: F5Credentials, transport: TransportOptions) -> F5Client {
    F5Client::new(
        F5Config::new(url, credentials)
            .expect("config")
            .transport(transport),
    )
    .expect("client")
}

#[tokio::test]
async fn a_custom_ca_bundle_is_trusted_and_unknown_cas_are_not() {
    let pki = pki();
    let (url, served) = https_server(&pki, false).await;
    let untrusted = client(&url, F5Credentials::api_token("t"), transport());
    let err = untrusted.refresh_token("p").await.expect_err("unknown CA");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(served.load(Ordering::SeqCst), 0);

    let trusted = client(
        &url,
        F5Credentials::api_token("t"),
        transport().ca_bundle_pem(pki.ca_pem.clone()),
    );
    let token = trusted.refresh_token("p").await.expect("trusted CA");
    assert_eq!(token.secret().expose_secret(), r#"{"token":"tls"}"#);
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

/// A certificate the client does not trust cannot become trusted by trying
/// again: the error names the cause and the connection is not retried.
#[tokio::test]
async fn an_untrusted_certificate_is_named_and_not_retried() {
    let pki = pki();
    let (url, _served) = https_server(&pki, false).await;
    let retrying = TransportOptions::default().retry(
        RetryPolicy::default()
            .max_attempts(4)
            .base_delay(std::time::Duration::from_millis(1)),
    );
    let err = client(&url, F5Credentials::api_token("t"), retrying)
        .refresh_token("p")
        .await
        .expect_err("unknown CA");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(err.attempts(), 1, "not retried: {err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("the server's certificate is not trusted: unknown issuer"),
        "{shown}"
    );
    assert!(
        err.hint().is_some_and(|h| h.contains("ca_bundle_file")),
        "{err:?}"
    );
}

#[tokio::test]
async fn skipping_verification_is_an_explicit_opt_in() {
    let pki = pki();
    let (url, served) = https_server(&pki, false).await;
    let lax = client(
        &url,
        F5Credentials::api_token("t"),
        transport().allow_unverified_tls(true),
    );
    lax.refresh_token("p").await.expect("verification skipped");
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // VCF reads the opt-in from its environment variable.
    let host = url.clone();
    let config = refresh_sdk::VcfConfig::from_lookup(move |name| match name {
        "VCF_SDDC_MANAGER_HOST" => Some(host.clone()),
        "VCF_ALLOW_UNVERIFIED_TLS" => Some("true".into()),
        _ => None,
    })
    .expect("config");
    assert!(
        format!("{config:?}").contains("allow_unverified_tls: true"),
        "{config:?}"
    );
}

#[tokio::test]
async fn the_api_certificate_is_the_client_identity() {
    let pki = pki();
    let (url, served) = https_server(&pki, true).await;
    let ca = transport().ca_bundle_pem(pki.ca_pem.clone());

    let anonymous = client(&url, F5Credentials::api_token("t"), ca.clone());
    let err = anonymous
        .refresh_token("p")
        .await
        .expect_err("client certificate required");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");

    let pem = ClientCertificate::from_pem(
        pki.client_pem.as_bytes(),
        pki.client_key.serialize_pem().into_bytes().into(),
    )
    .expect("PEM identity");
    let with_cert = client(&url, F5Credentials::Certificate(pem), ca.clone());
    with_cert
        .refresh_token("p")
        .await
        .expect("PEM identity accepted");
    assert_eq!(served.load(Ordering::SeqCst), 1);

    #[cfg(feature = "p12")]
    {
        let p12 = p12_archive(&pki, "p12-password");
        let password = SecretString::from("p12-password");
        let identity = ClientCertificate::from_p12(&p12, &password).expect("p12 identity");
        let with_p12 = client(&url, F5Credentials::Certificate(identity), ca.clone());
        with_p12
            .refresh_token("p")
            .await
            .expect(".p12 identity accepted");
        assert_eq!(served.load(Ordering::SeqCst), 2);

        let wrong = ClientCertificate::from_p12(&p12, &SecretString::from("wrong"))
            .expect_err("wrong password");
        assert_eq!(wrong.kind(), ErrorKind::Config);
        assert!(wrong.to_string().contains("VES_P12_PASSWORD"), "{wrong}");

        // And from the environment, as F5's tooling sets it.
        let path = std::env::temp_dir().join(format!("refresh-sdk-tls-{}.p12", std::process::id()));
        std::fs::write(&path, &p12).expect("write p12");
        let file = path.to_string_lossy().into_owned();
        let host = url.clone();
        let config = F5Config::from_lookup(move |name| match name {
            "VOLT_API_URL" => Some(format!("{host}/api")),
            "VOLT_API_P12_FILE" => Some(file.clone()),
            "VES_P12_PASSWORD" => Some("p12-password".into()),
            _ => None,
        })
        .expect("p12 from the environment");
        let _ = std::fs::remove_file(&path);
        let from_env = F5Client::new(config.transport(ca)).expect("client");
        from_env
            .refresh_token("p")
            .await
            .expect(".p12 from the environment accepted");
        assert_eq!(served.load(Ordering::SeqCst), 3);
    }
}
