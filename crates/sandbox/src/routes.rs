//! Protected routes: "the rest of SDDC Manager" as a test declares it. Each
//! route answers a canned JSON body to a request bearing a live VCF access
//! token, and `401` with a VCF `Error` otherwise. These paths are outside
//! the specs, so their requests are neither checked against them nor
//! recorded as violations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::access::TokenStatus;
use crate::spec::{Route, Specs};
use crate::{Shared, server};

/// One declared method on a path, with its counters.
#[derive(Debug)]
pub(crate) struct ProtectedRoute {
    method: Method,
    body: Value,
    requests: AtomicU64,
    rejections: AtomicU64,
}

/// The declared routes by exact path.
#[derive(Debug, Default)]
pub(crate) struct ProtectedRoutes {
    by_path: HashMap<String, Vec<ProtectedRoute>>,
}

impl ProtectedRoutes {
    /// The routes a builder declared. A path must start with `/` and carry
    /// no query or fragment, and must not be a path of either spec (the
    /// spec's operations own those). Declaring a method and path again
    /// replaces the body.
    pub(crate) fn new(
        specs: &Specs,
        declared: Vec<(Method, String, Value)>,
    ) -> Result<ProtectedRoutes, crate::Error> {
        let mut by_path: HashMap<String, Vec<ProtectedRoute>> = HashMap::new();
        for (method, path, body) in declared {
            let unusable = |reason: &str| {
                Err(crate::Error::ProtectedRoute(format!(
                    "{method} {path}: {reason}"
                )))
            };
            if !path.starts_with('/') {
                return unusable("the path must start with /");
            }
            if path.contains(['?', '#']) {
                return unusable(
                    "the path must not carry a query or fragment (queries are ignored when matching)",
                );
            }
            if !matches!(specs.route(&method, &path), Route::Unknown) {
                return unusable("the path belongs to an operation of the specs");
            }
            let routes = by_path.entry(path).or_default();
            match routes.iter_mut().find(|route| route.method == method) {
                Some(route) => route.body = body,
                None => routes.push(ProtectedRoute {
                    method,
                    body,
                    requests: AtomicU64::new(0),
                    rejections: AtomicU64::new(0),
                }),
            }
        }
        Ok(ProtectedRoutes { by_path })
    }

    /// Every declared method and path, sorted by path, then method.
    pub(crate) fn list(&self) -> Vec<(Method, String)> {
        let mut list: Vec<(Method, String)> = self
            .by_path
            .iter()
            .flat_map(|(path, routes)| {
                routes
                    .iter()
                    .map(move |route| (route.method.clone(), path.clone()))
            })
            .collect();
        list.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        list
    }

    /// The declared methods of `path`, if it was declared at all.
    pub(crate) fn on_path(&self, path: &str) -> Option<&[ProtectedRoute]> {
        self.by_path.get(path).map(Vec::as_slice)
    }

    fn route(&self, method: &Method, path: &str) -> Option<&ProtectedRoute> {
        self.on_path(path)?
            .iter()
            .find(|route| route.method == *method)
    }

    /// Requests `method` `path` received; 0 for a route never declared.
    pub(crate) fn requests(&self, method: &Method, path: &str) -> u64 {
        self.route(method, path)
            .map_or(0, |route| route.requests.load(Ordering::SeqCst))
    }

    /// Requests `method` `path` answered `401`.
    pub(crate) fn rejections(&self, method: &Method, path: &str) -> u64 {
        self.route(method, path)
            .map_or(0, |route| route.rejections.load(Ordering::SeqCst))
    }
}

/// Why a request was not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejection {
    NoHeader,
    NotBearer,
    Token(TokenStatus),
}

impl Rejection {
    /// The message for the `Error` body. Names no part of the request: the
    /// header holds the token.
    fn message(self) -> &'static str {
        match self {
            Rejection::NoHeader => "The request carries no Authorization header.",
            Rejection::NotBearer => "The Authorization header is not `Bearer <access token>`.",
            Rejection::Token(TokenStatus::Unknown | TokenStatus::Live) => {
                "The access token is unknown: this SDDC Manager did not issue it."
            }
            Rejection::Token(TokenStatus::Expired) => "The access token has expired.",
            Rejection::Token(TokenStatus::Invalidated) => {
                "The access token was invalidated: its refresh token was invalidated."
            }
            Rejection::Token(TokenStatus::Revoked) => "The access token was revoked.",
        }
    }

    fn remediation(self) -> &'static str {
        match self {
            Rejection::NoHeader | Rejection::NotBearer => {
                "Send `Authorization: Bearer <access token>` with an access token from POST /v1/tokens."
            }
            Rejection::Token(TokenStatus::Expired | TokenStatus::Revoked) => {
                "Refresh the access token (PATCH /v1/tokens/access-token/refresh) or create a new token pair."
            }
            Rejection::Token(_) => "Create a new token pair with POST /v1/tokens.",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750): no error code when no
    /// token was presented, `invalid_token` when one was.
    fn challenge(self) -> HeaderValue {
        match self {
            Rejection::NoHeader | Rejection::NotBearer => HeaderValue::from_static("Bearer"),
            Rejection::Token(_) => HeaderValue::from_static("Bearer error=\"invalid_token\""),
        }
    }
}

/// Whether the request bears a live access token.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Rejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::NoHeader)?;
    let value = value.to_str().map_err(|_| Rejection::NotBearer)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(Rejection::NotBearer)?;
    let token = token.trim();
    // Auth schemes are case-insensitive (RFC 9110, section 11.1).
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Rejection::NotBearer);
    }
    match shared.access_token_status(token) {
        TokenStatus::Live => Ok(()),
        status => Err(Rejection::Token(status)),
    }
}

/// Serves a request to a declared path: `405` with `Allow` for a method not
/// declared on it, else `401` or the canned body. Counts the request (and a
/// rejection) before answering, so a test that has its answer sees it
/// counted.
pub(crate) fn serve(
    shared: &Shared,
    routes: &[ProtectedRoute],
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    let Some(route) = routes.iter().find(|route| route.method == *method) else {
        let allowed: Vec<&str> = routes.iter().map(|route| route.method.as_str()).collect();
        return server::method_not_allowed(true, &allowed);
    };
    route.requests.fetch_add(1, Ordering::SeqCst);
    shared.revoke_if_asked(method, path);
    match authorize(shared, headers) {
        Ok(()) => (StatusCode::OK, axum::Json(route.body.clone())).into_response(),
        Err(rejection) => {
            route.rejections.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(%method, %path, ?rejection, "sandbox: protected route rejected the request");
            let mut response = server::vcf_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                rejection.message(),
                rejection.remediation(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, rejection.challenge());
            response
        }
    }
}
