//! Helpers for the workspace-level tests: a loopback HTTP server that
//! records each request and answers with a scripted response, so the
//! generated clients are tested over real HTTP rather than against a mock of
//! themselves.

#![deny(missing_docs)]

pub mod faulty;
pub mod schema_drift;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The HTTP method.
    pub method: Method,
    /// The path and query.
    pub uri: Uri,
    /// All request headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON; panics (in tests) when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The response the server sends to every request.
#[derive(Clone, Debug)]
pub struct Scripted {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: String,
}

impl Scripted {
    /// A JSON response.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Scripted {
            status,
            content_type: Some("application/json"),
            body: body.to_string(),
        }
    }

    /// A response without a body.
    pub fn empty(status: u16) -> Self {
        Scripted {
            status,
            content_type: None,
            body: String::new(),
        }
    }
}

/// A loopback server that records requests and answers with one scripted
/// response. Stops when dropped.
pub struct RecordingServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingServer {
    /// Starts a server on `127.0.0.1:0` answering every request with
    /// `response`.
    pub async fn start(response: Scripted) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = Arc::clone(&seen);
                let response = response.clone();
                async move {
                    seen.lock()
                        .expect("the request log is not poisoned")
                        .push(Recorded {
                            method,
                            uri,
                            headers,
                            body,
                        });
                    let mut builder = Response::builder()
                        .status(StatusCode::from_u16(response.status).expect("a valid status"));
                    if let Some(ct) = response.content_type {
                        builder = builder.header("content-type", ct);
                    }
                    builder
                        .body(Body::from(response.body))
                        .expect("a valid response")
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener has an address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the test server runs");
        });
        RecordingServer {
            addr,
            requests,
            task,
        }
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .expect("the request log is not poisoned")
            .clone()
    }

    /// The only request received; panics if there was not exactly one.
    pub fn single_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one request, got {requests:?}"
        );
        requests.into_iter().next().expect("one request")
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
