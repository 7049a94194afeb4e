//! Loopback HTTP servers for the integration tests: each test scripts the
//! answers and reads back what the server received.
#![allow(dead_code)]

pub mod pki;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// 0 for the first request the server received.
    pub index: usize,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The body as a JSON string (VCF sends the refresh token id that way).
    pub fn json_string(&self) -> Option<String> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What the server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        let mut headers = Vec::new();
        if !content_type.is_empty() {
            headers.push(("content-type".to_owned(), content_type.to_owned()));
        }
        Reply {
            status,
            headers,
            body: body.into(),
            delay: None,
        }
    }

    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string())
    }

    pub fn empty(status: u16) -> Reply {
        Reply::new(status, "", Bytes::new())
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

/// A server on 127.0.0.1 that answers with `handler` and records requests.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("request log lock").clone()
    }

    pub fn hits(&self) -> usize {
        self.received.lock().expect("request log lock").len()
    }

    pub fn hits_on(&self, path: &str) -> usize {
        self.received().iter().filter(|r| r.path == path).count()
    }
}

pub async fn serve(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> TestServer {
    let handler: Arc<Handler> = Arc::new(handler);
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let handler = Arc::clone(&handler);
        let log = Arc::clone(&log);
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let seen = {
                let mut log = log.lock().expect("request log lock");
                let seen = Received {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers.clone(),
                    body,
                    at: Instant::now(),
                    index: log.len(),
                };
                log.push(seen.clone());
                seen
            };
            let reply = handler(&seen);
            if let Some(delay) = reply.delay {
                tokio::time::sleep(delay).await;
            }
            let mut response = axum::response::Response::new(Body::from(reply.body));
            *response.status_mut() = StatusCode::from_u16(reply.status).expect("valid test status");
            for (name, value) in reply.headers {
                response.headers_mut().append(
                    HeaderName::from_bytes(name.as_bytes()).expect("valid test header name"),
                    HeaderValue::from_str(&value).expect("valid test header value"),
                );
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("test server runs");
    });
    TestServer {
        addr,
        url: format!("http://{addr}"),
        received,
        task,
    }
}

/// A server that answers every connection with `raw` bytes and closes it, for
/// responses axum would not send (no Content-Length, endless bodies).
pub async fn serve_raw(raw: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let raw = Arc::new(raw);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let raw = Arc::clone(&raw);
            tokio::spawn(async move {
                let mut buffer = [0u8; 16 * 1024];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(&raw).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

/// An address on 127.0.0.1 where nothing listens.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

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
