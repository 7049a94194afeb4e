//! TLS: a custom CA bundle, the explicit opt-out of verification, and the
//! F5 XC API certificate as the client identity (PEM and `.p12`), against
//! rustls servers on 127.0.0.1 with rcgen-made certificates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use refresh_sdk::f5xc::{ClientCertificate, F5Client, F5Config, F5Credentials};
use refresh_sdk::{ErrorKind, ExposeSecret, RetryPolicy, SecretString, TransportOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key: KeyPair,
    client_pem: String,
    client_der: Vec<u8>,
    client_key: KeyPair,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let client_key = KeyPair::generate().expect("client key");
    let client = CertificateParams::new(vec!["api-client.example".to_owned()])
        .expect("client params")
        .signed_by(&client_key, &issuer)
        .expect("client certificate");
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_der: server.der().clone(),
        server_key,
        client_pem: client.pem(),
        client_der: client.der().to_vec(),
        client_key,
    }
}

/// An HTTPS server on 127.0.0.1 answering every request with a pipeline
/// token; with `require_client_cert`, only clients with a certificate from
/// the test CA get through the handshake. Returns the URL and the count of
/// requests served.
async fn https_server(pki: &Pki, require_client_cert: bool) -> (String, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).expect("CA root");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.serialize_der()));
    let config = builder
        .with_single_cert(vec![pki.server_der.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("https://{}", listener.local_addr().expect("local address"));
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if read_request(&mut tls).await.is_none() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"result":"{\"token\":\"tls\"}"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, served)
}

/// Reads one request (headers and a Content-Length body) so the connection
/// closes cleanly after the answer.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return Some(());
            }
        }
    }
}

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

#[cfg(feature = "p12")]
fn p12_archive(pki: &Pki, password: &str) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = PrivateKey::from_der(&pki.client_key.serialize_der()).expect("PKCS#8 key");
    let chain = PrivateKeyChain::new(
        b"client".as_slice(),
        key,
        [
            Certificate::from_der(&pki.client_der).expect("client certificate"),
            Certificate::from_der(&pki.ca_der).expect("CA certificate"),
        ],
    );
    let mut store = KeyStore::new();
    store.add_entry("client", KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().expect("write p12")
}
