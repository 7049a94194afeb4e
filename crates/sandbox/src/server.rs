//! The one handler behind every path: route by the specs, check the request,
//! apply a queued fault, then the API's semantics, then check the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::net::Connection;
use crate::spec::{Failure, OperationSpec, Route};
use crate::{Fault, Operation, Shared, Violation, ViolationKind, jwt};

/// Bodies past this size are not read: the specs' bodies are tiny.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// An answer, and whether a test asked for it (then an undocumented status
/// is not the sandbox's fault).
struct Answer {
    response: Response,
    injected: bool,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer {
            response,
            injected: false,
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(connection): Extension<Connection>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // A client that stalls mid-body gets an answer, and its connection
    // closed, rather than holding a task until it gives up.
    let body = match tokio::time::timeout(
        shared.body_read_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(BodyFailure::Unreadable),
        Err(_) => Err(BodyFailure::TimedOut(shared.body_read_timeout)),
    };
    let timed_out = matches!(body, Err(BodyFailure::TimedOut(_)));
    let response = dispatch(&shared, &connection, &parts, body).await;
    match timed_out {
        true => close(response),
        false => response,
    }
}

/// Answers a request whose body was read (or not).
async fn dispatch(
    shared: &Shared,
    connection: &Connection,
    parts: &axum::http::request::Parts,
    body: Result<Bytes, BodyFailure>,
) -> Response {
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let record = |operation: Option<Operation>, failure: Failure| {
        tracing::debug!(%method, %path, kind = ?failure.kind, detail = %failure.detail, "sandbox: spec violation");
        shared.lock().violations.push(Violation {
            method: method.to_string(),
            path: path.clone(),
            operation,
            kind: failure.kind,
            detail: failure.detail,
        });
    };

    // A declared protected route is outside the specs: neither checked nor
    // counted as validated, never a violation.
    if let Some(routes) = shared.protected.on_path(&path) {
        if let Err(BodyFailure::TimedOut(_)) = body {
            return vcf_error(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "The request's body did not arrive in time.",
                "Send the whole body without pausing.",
            );
        }
        return crate::routes::serve(shared, routes, &method, &path, &parts.headers);
    }

    shared.lock().validated += 1;
    let op = match shared.specs.route(&parts.method, &path) {
        Route::Operation(op) => op,
        Route::Unknown => {
            record(
                None,
                Failure {
                    kind: ViolationKind::UnknownPath,
                    detail: "no operation of either spec has this path".into(),
                },
            );
            let vcf = !path.starts_with("/api/");
            return error_response(vcf, StatusCode::NOT_FOUND, "No such resource.");
        }
        Route::WrongMethod { path_operations } => {
            let allowed: Vec<String> = path_operations
                .iter()
                .map(|op| op.method.to_string())
                .collect();
            record(
                None,
                Failure {
                    kind: ViolationKind::MethodNotAllowed,
                    detail: format!("the spec allows only {} on this path", allowed.join(", ")),
                },
            );
            let vcf = path_operations
                .first()
                .is_none_or(|first| first.operation.is_vcf());
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            return method_not_allowed(vcf, &allowed);
        }
    };

    *shared.lock().requests.entry(op.operation).or_insert(0) += 1;

    let checked = match body {
        Ok(bytes) => shared.specs.check_request(op, &parts.headers, &bytes),
        Err(BodyFailure::Unreadable) => Err(Failure {
            kind: ViolationKind::InvalidJson,
            detail: format!("the body could not be read or exceeds {MAX_BODY_BYTES} bytes"),
        }),
        Err(BodyFailure::TimedOut(after)) => Err(Failure {
            kind: ViolationKind::InvalidJson,
            detail: format!("the body did not arrive within {} ms", after.as_millis()),
        }),
    };
    let checked = checked.map_err(|failure| {
        let answer = violation_answer(op, failure.kind);
        record(Some(op.operation), failure);
        answer
    });

    let fault = shared
        .lock()
        .faults
        .get_mut(&op.operation)
        .and_then(|queue| queue.pop_front());
    let answer: Answer = match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let mut response = error_response(
                op.operation.is_vcf(),
                status,
                "Injected fault: the sandbox was asked to fail this request.",
            );
            if let Some(retry_after) = retry_after {
                set_retry_after(&mut response, retry_after);
            }
            Answer {
                response,
                injected: true,
            }
        }
        Some(Fault::Drop) => {
            connection.kill();
            // Never written: the connection refuses every write from now on.
            return StatusCode::NO_CONTENT.into_response();
        }
        Some(Fault::Body { status, body }) => Answer {
            response: (status, axum::Json(body)).into_response(),
            injected: true,
        },
        Some(Fault::Malformed) => Answer {
            response: malformed(op),
            injected: true,
        },
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            answer(shared, op, &parts.headers, checked).into()
        }
        Some(Fault::AccessToken(text)) => {
            let response = answer(shared, op, &parts.headers, checked);
            replace_access_token(op, response, |_| Some(text.expose_secret().to_owned()))
                .await
                .into()
        }
        Some(Fault::Backdated(ago)) => {
            let response = answer(shared, op, &parts.headers, checked);
            replace_access_token(op, response, |token| {
                let claims = shared.signer.verify(token)?;
                shared.signer.backdate(&claims, ago).ok()
            })
            .await
            .into()
        }
        None => answer(shared, op, &parts.headers, checked).into(),
    };

    let status = answer.response.status().as_u16();
    if !answer.injected && !op.documents(status) {
        let documented: Vec<String> = op.documented_statuses().map(|s| s.to_string()).collect();
        record(
            Some(op.operation),
            Failure {
                kind: ViolationKind::UndocumentedResponse,
                detail: format!(
                    "the sandbox answered {status}; the spec documents {}",
                    documented.join(", ")
                ),
            },
        );
    }
    answer.response
}

/// Why a request's body is not there.
#[derive(Clone, Copy, Debug)]
enum BodyFailure {
    /// Broken off, or past the size limit.
    Unreadable,
    /// Still arriving after this long.
    TimedOut(Duration),
}

/// The response, and the connection closed after it: what is left of the
/// request's body will not be read.
fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer to a request that passed (or failed) the spec checks.
fn answer(
    shared: &Shared,
    op: &OperationSpec,
    headers: &HeaderMap,
    checked: Result<Option<Value>, Response>,
) -> Response {
    let body = match checked {
        Ok(body) => body.unwrap_or(Value::Null),
        Err(response) => return response,
    };
    let result = match op.operation {
        Operation::F5xcRefreshToken => f5xc_refresh_token(shared, headers, body),
        Operation::VcfCreateToken => vcf_create_token(shared, body),
        Operation::VcfRefreshAccessToken => vcf_refresh_access_token(shared, body),
        Operation::VcfInvalidateRefreshToken => vcf_invalidate_refresh_token(shared, body),
    };
    result.unwrap_or_else(|error| {
        tracing::debug!(%error, "sandbox: internal failure");
        error_response(
            op.operation.is_vcf(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "The sandbox failed to issue a token.",
        )
    })
}

/// The documented answer to a request that violates the spec.
fn violation_answer(op: &OperationSpec, kind: ViolationKind) -> Response {
    match op.operation {
        Operation::VcfInvalidateRefreshToken => StatusCode::NO_CONTENT.into_response(),
        Operation::VcfCreateToken | Operation::VcfRefreshAccessToken => error_response(
            true,
            StatusCode::BAD_REQUEST,
            "The request does not match the API specification.",
        ),
        Operation::F5xcRefreshToken if kind == ViolationKind::MissingAuth => error_response(
            false,
            StatusCode::UNAUTHORIZED,
            "The request carries no credentials.",
        ),
        Operation::F5xcRefreshToken => error_response(
            false,
            StatusCode::NOT_FOUND,
            "The request does not name a pipeline in the documented format.",
        ),
    }
}

/// HTTP's answer to a method a path does not have: `405` with the methods it
/// has in `Allow`, in the API's error shape.
pub(crate) fn method_not_allowed(vcf: bool, allowed: &[&str]) -> Response {
    let mut response = error_response(
        vcf,
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not supported on this path.",
    );
    if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// An error in the API's shape: a VCF `Error` object or an F5 JSON string.
fn error_response(vcf: bool, status: StatusCode, message: &str) -> Response {
    if vcf {
        let code = match status.as_u16() {
            400 => "BAD_REQUEST",
            404 => "NOT_FOUND",
            500 => "INTERNAL_SERVER_ERROR",
            _ => "SANDBOX_ERROR",
        };
        let error = vcf_tokens::types::Error {
            error_code: Some(code.to_owned()),
            error_type: Some("ERROR".to_owned()),
            message: Some(message.to_owned()),
            reference_token: jwt::random_hex::<4>().ok().map(|s| s.to_uppercase()),
            ..Default::default()
        };
        (status, axum::Json(error)).into_response()
    } else {
        (status, axum::Json(message)).into_response()
    }
}

/// A VCF `Error` body with a code, message and remediation.
pub(crate) fn vcf_error(
    status: StatusCode,
    code: &str,
    message: &str,
    remediation: &str,
) -> Response {
    let error = vcf_tokens::types::Error {
        error_code: Some(code.to_owned()),
        error_type: Some("ERROR".to_owned()),
        message: Some(message.to_owned()),
        remediation_message: Some(remediation.to_owned()),
        reference_token: jwt::random_hex::<4>().ok().map(|s| s.to_uppercase()),
        ..Default::default()
    };
    (status, axum::Json(error)).into_response()
}

fn set_retry_after(response: &mut Response, after: Duration) {
    let seconds = after
        .as_secs()
        .saturating_add(u64::from(after.subsec_nanos() > 0));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
}

fn malformed(op: &OperationSpec) -> Response {
    let success = op
        .documented_statuses()
        .find(|s| (200..300).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(Bytes::from_static(
        b"{\"malformed\": \"the sandbox was asked to send a body that is not JSON",
    )));
    *response.status_mut() = success;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A token answer of `op` (`createToken`'s pair, `refreshAccessToken`'s
/// string) with its access token replaced by what `replace` makes of it
/// (`None` keeps it); any other answer as it is.
async fn replace_access_token(
    op: &OperationSpec,
    response: Response,
    replace: impl FnOnce(&str) -> Option<String>,
) -> Response {
    let field = match op.operation {
        Operation::VcfCreateToken => Some("accessToken"),
        Operation::VcfRefreshAccessToken => None,
        Operation::VcfInvalidateRefreshToken | Operation::F5xcRefreshToken => return response,
    };
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return error_response(
            true,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The sandbox failed to issue a token.",
        );
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let slot = match field {
        Some(name) => value.get_mut(name),
        None => Some(&mut value),
    };
    if let Some(slot) = slot
        && let Some(replaced) = slot.as_str().and_then(replace)
    {
        *slot = Value::String(replaced);
    }
    let Ok(body) = serde_json::to_vec(&value) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn secrets_equal(given: &str, expected: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes()).is_ok()
}

fn f5xc_refresh_token(
    shared: &Shared,
    headers: &HeaderMap,
    body: Value,
) -> Result<Response, crate::Error> {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("APIToken "))
        .is_some_and(|token| {
            secrets_equal(token, shared.credentials.f5xc_api_token.expose_secret())
        });
    if !authorized {
        return Ok(error_response(
            false,
            StatusCode::UNAUTHORIZED,
            "The API token is not valid; send `Authorization: APIToken <token>`.",
        ));
    }
    if let Some((max, per)) = shared.rate_limit {
        let now = Instant::now();
        let mut state = shared.lock();
        let (start, count) = match state.rate_window {
            Some((start, count)) if now.duration_since(start) < per => (start, count + 1),
            _ => (now, 1),
        };
        state.rate_window = Some((start, count));
        if count > max {
            let left = per.saturating_sub(now.duration_since(start));
            let mut response = error_response(
                false,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests; retry later.",
            );
            set_retry_after(&mut response, left.max(Duration::from_secs(1)));
            return Ok(response);
        }
    }
    let request: f5xc_bfdp::types::RefreshTokenRequest =
        serde_json::from_value(body).unwrap_or_default();
    let pipeline = request
        .product_name
        .filter(|name| shared.credentials.f5xc_pipelines.contains(name));
    let Some(pipeline) = pipeline else {
        return Ok(error_response(
            false,
            StatusCode::NOT_FOUND,
            "The pipeline named by product_name was not found.",
        ));
    };
    let ttl = shared.lock().access_ttl;
    let result = serde_json::json!({
        "token": jwt::random_hex::<32>()?,
        "product_name": pipeline,
        "expires_at": shared.signer.now().saturating_add(ttl.as_secs()),
    });
    let response = f5xc_bfdp::types::RefreshTokenResponse {
        result: Some(result.to_string()),
    };
    Ok((StatusCode::OK, axum::Json(response)).into_response())
}

fn vcf_create_token(shared: &Shared, body: Value) -> Result<Response, crate::Error> {
    let spec: vcf_tokens::types::TokenCreationSpec =
        serde_json::from_value(body).unwrap_or_default();
    let credentials = &shared.credentials;
    // Exactly one kind of credentials, as the spec describes them: a
    // request mixing kinds is refused like wrong credentials.
    let (valid, message, remediation) = match (
        &spec.username,
        &spec.password,
        &spec.api_key,
        &spec.id_token,
    ) {
        (username, Some(password), None, None) => (
            username.as_deref() == Some(credentials.vcf_username.as_str())
                && secrets_equal(password, credentials.vcf_password.expose_secret()),
            "Failed to create a token: the username or password is incorrect.",
            "Check the username and password and try again.",
        ),
        (None, None, Some(key), None) => (
            secrets_equal(key, credentials.vcf_api_key.expose_secret()),
            "Failed to create a token: the API key is incorrect.",
            "Check the API key and try again.",
        ),
        (None, None, None, Some(token)) => (
            secrets_equal(token, credentials.vcf_id_token.expose_secret()),
            "Failed to create a token: the identity token is incorrect.",
            "Check the identity token and try again.",
        ),
        _ => (
            false,
            "Failed to create a token: send a username and password, an API key or an identity token.",
            "Send exactly one kind of credentials.",
        ),
    };
    if !valid {
        return Ok(vcf_error(
            StatusCode::BAD_REQUEST,
            "TOKEN_CREATION_FAILED",
            message,
            remediation,
        ));
    }
    let (access_ttl, refresh_ttl) = {
        let state = shared.lock();
        (state.access_ttl, state.refresh_ttl)
    };
    let (access_token, claims) = shared.signer.issue(&credentials.vcf_username, access_ttl)?;
    let refresh_id = uuid::Builder::from_random_bytes(jwt::random_bytes::<16>()?)
        .into_uuid()
        .to_string();
    let expires = Instant::now().checked_add(refresh_ttl);
    let now = shared.signer.now();
    {
        let mut state = shared.lock();
        state.refresh_tokens.insert(
            refresh_id.clone(),
            // A TTL too large for `Instant` means "never expires".
            expires.unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400)),
        );
        state
            .access_tokens
            .record(claims.jti, claims.exp, &refresh_id, now);
    }
    let pair = vcf_tokens::types::TokenPair {
        access_token: Some(access_token),
        refresh_token: Some(vcf_tokens::types::RefreshToken {
            id: Some(refresh_id),
        }),
    };
    Ok((StatusCode::CREATED, axum::Json(pair)).into_response())
}

fn vcf_refresh_access_token(shared: &Shared, body: Value) -> Result<Response, crate::Error> {
    let id = body.as_str().unwrap_or_default();
    let known = {
        let mut state = shared.lock();
        let now = Instant::now();
        state.refresh_tokens.retain(|_, expires| *expires > now);
        state.refresh_tokens.contains_key(id)
    };
    if !known {
        return Ok(vcf_error(
            StatusCode::NOT_FOUND,
            "REFRESH_TOKEN_NOT_FOUND",
            "The refresh token is unknown, expired or invalidated.",
            "Create a new token pair with your credentials.",
        ));
    }
    let access_ttl = shared.lock().access_ttl;
    let (token, claims) = shared
        .signer
        .issue(&shared.credentials.vcf_username, access_ttl)?;
    let now = shared.signer.now();
    shared
        .lock()
        .access_tokens
        .record(claims.jti, claims.exp, id, now);
    Ok((StatusCode::OK, axum::Json(token)).into_response())
}

/// Forgets the refresh token and invalidates every access token it brought
/// (whether or not it was still known: an expired refresh token's access
/// tokens may outlive it).
fn vcf_invalidate_refresh_token(shared: &Shared, body: Value) -> Result<Response, crate::Error> {
    if let Some(id) = body.as_str() {
        let mut state = shared.lock();
        state.refresh_tokens.remove(id);
        state.access_tokens.invalidate_refresh(id);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
