//! A test PKI (a CA, a server certificate for 127.0.0.1, a client
//! certificate) made with rcgen, and an HTTPS server on it, for the TLS and
//! API-certificate tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub server_der: CertificateDer<'static>,
    pub server_key: KeyPair,
    pub client_pem: String,
    pub client_der: Vec<u8>,
    pub client_key: KeyPair,
}

pub fn pki() -> Pki {
    pki_for("127.0.0.1", false)
}

/// A PKI whose server certificate is for `name`, signed by the test CA;
/// `expired` makes it valid in 2020 only.
pub fn pki_for(name: &str, expired: bool) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("server params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 12, 31);
    }
    let server = params
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
pub async fn https_server(pki: &Pki, require_client_cert: bool) -> (String, Arc<AtomicUsize>) {
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

/// The client certificate, its key and the CA as a `.p12` archive, as F5's
/// console downloads it.
#[cfg(feature = "p12")]
pub fn p12_archive(pki: &Pki, password: &str) -> Vec<u8> {
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
