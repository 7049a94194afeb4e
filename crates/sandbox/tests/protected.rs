//! Protected routes: "the rest of SDDC Manager" guarded by the sandbox's own
//! VCF access tokens, over loopback HTTP.

mod common;

use std::time::Duration;

use common::{create_pair, vcf};
use refresh_sandbox::{Method, Sandbox, ViolationKind};
use serde_json::{Value, json};

const DOMAINS: &str = "/v1/domains";

fn domains() -> Value {
    json!({ "elements": [{ "id": "d1", "name": "sfo-m01" }] })
}

async fn with_domains() -> Sandbox {
    Sandbox::builder()
        .protected_route(Method::GET, DOMAINS, domains())
        .start()
        .await
        .expect("sandbox starts")
}

/// An answer, read in full.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

async fn send(sandbox: &Sandbox, method: Method, path: &str, auth: Option<&str>) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("a method");
    let mut request =
        reqwest::Client::new().request(method, format!("{}{path}", sandbox.vcf_url()));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    Answer {
        status,
        headers,
        text,
    }
}

async fn get_domains(sandbox: &Sandbox, token: &str) -> Answer {
    send(
        sandbox,
        Method::GET,
        DOMAINS,
        Some(&format!("Bearer {token}")),
    )
    .await
}

/// A `401` with a VCF `Error` body whose message contains `reason`, a
/// Bearer challenge, and no trace of `token` anywhere in the answer.
fn assert_unauthorized(answer: &Answer, reason: &str, token: Option<&str>) {
    assert_eq!(answer.status, 401, "{}", answer.text);
    let challenge = answer
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("a WWW-Authenticate header");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(
        answer.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let error: vcf_tokens::types::Error =
        serde_json::from_str(&answer.text).expect("a VCF Error body");
    assert_eq!(error.error_code.as_deref(), Some("UNAUTHORIZED"));
    let message = error.message.expect("a message");
    assert!(message.contains(reason), "{message:?} says {reason:?}");
    assert!(error.remediation_message.is_some());
    if let Some(token) = token {
        assert!(!answer.text.contains(token), "the body echoes the token");
        for value in answer.headers.values() {
            assert!(
                !value.to_str().unwrap_or_default().contains(token),
                "a header echoes the token"
            );
        }
    }
}

#[tokio::test]
async fn a_live_token_gets_the_canned_body_and_no_violation() {
    let sandbox = with_domains().await;
    let (access, _) = create_pair(&sandbox).await;

    let answer = get_domains(&sandbox, &access).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let body: Value = serde_json::from_str(&answer.text).expect("JSON");
    assert_eq!(body, domains());

    // The query is ignored for matching; the scheme is case-insensitive.
    let answer = send(
        &sandbox,
        Method::GET,
        &format!("{DOMAINS}?limit=1"),
        Some(&format!("bearer {access}")),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    assert_eq!(sandbox.check_spec_clean(), Ok(()));
    assert_eq!(
        sandbox.validated_requests(),
        1,
        "only createToken was checked against the specs"
    );
}

#[tokio::test]
async fn a_missing_header_or_another_scheme_gets_401() {
    let sandbox = with_domains().await;
    let (access, _) = create_pair(&sandbox).await;

    let missing = send(&sandbox, Method::GET, DOMAINS, None).await;
    assert_unauthorized(&missing, "no Authorization header", None);
    assert_eq!(
        missing
            .headers
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..]),
        "no token was presented, so no error code (RFC 6750)"
    );

    for auth in [
        format!("Basic {access}"),
        format!("APIToken {access}"),
        access.clone(),
        "Bearer".to_owned(),
        "Bearer   ".to_owned(),
    ] {
        let answer = send(&sandbox, Method::GET, DOMAINS, Some(&auth)).await;
        assert_unauthorized(&answer, "not `Bearer <access token>`", Some(&access));
    }
    assert!(sandbox.check_spec_clean().is_ok());
}

#[tokio::test]
async fn unknown_tokens_get_401() {
    let sandbox = with_domains().await;
    let other = Sandbox::start_default().await.expect("another sandbox");
    let (foreign, _) = create_pair(&other).await;
    let (access, _) = create_pair(&sandbox).await;
    let mut tampered = access.clone();
    tampered.push('x');

    for token in ["garbage-token-1234", "a.b.c", &foreign, &tampered] {
        let answer = get_domains(&sandbox, token).await;
        assert_unauthorized(&answer, "unknown", Some(token));
        assert_eq!(
            answer.headers.get("www-authenticate").map(|v| v.as_bytes()),
            Some(&br#"Bearer error="invalid_token""#[..])
        );
    }
}

#[tokio::test]
async fn an_expired_token_gets_401() {
    // A zero lifetime: the token's `exp` is its `iat`, already past by the
    // sandbox's clock, with no waiting.
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::ZERO)
        .protected_route(Method::GET, DOMAINS, domains())
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&sandbox).await;
    assert!(!sandbox.is_valid_access_token(&access));
    assert_unauthorized(
        &get_domains(&sandbox, &access).await,
        "expired",
        Some(&access),
    );

    // A token issued with a lifetime again is accepted.
    sandbox
        .faults()
        .set_access_token_ttl(Duration::from_secs(3600));
    let (fresh, _) = create_pair(&sandbox).await;
    assert_eq!(get_domains(&sandbox, &fresh).await.status, 200);
}

#[tokio::test]
async fn expiry_follows_the_sandboxs_clock_offset() {
    // An SDDC Manager two hours behind issues 1 h tokens whose `exp` is an
    // hour in the real past; by its own clock they are live.
    let behind = Sandbox::builder()
        .clock_offset_secs(-2 * 3600)
        .protected_route(Method::GET, DOMAINS, domains())
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&behind).await;
    assert!(jwt_exp(&access) < now(), "expired by the real clock");
    assert!(behind.is_valid_access_token(&access));
    assert_eq!(get_domains(&behind, &access).await.status, 200);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

fn jwt_exp(token: &str) -> u64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    claims["exp"].as_u64().expect("exp")
}

#[tokio::test]
async fn invalidating_a_refresh_token_kills_the_access_tokens_it_brought() {
    let sandbox = with_domains().await;
    let (first, refresh) = create_pair(&sandbox).await;
    let refreshed = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("refresh")
        .into_inner();
    let (other, _) = create_pair(&sandbox).await;
    assert_eq!(get_domains(&sandbox, &first).await.status, 200);

    vcf(&sandbox)
        .invalidate_refresh_token(&refresh)
        .await
        .expect("invalidate");

    for token in [&first, &refreshed] {
        assert!(!sandbox.is_valid_access_token(token));
        assert_unauthorized(
            &get_domains(&sandbox, token).await,
            "invalidated",
            Some(token),
        );
    }
    assert!(
        sandbox.is_valid_access_token(&other),
        "another pair's token"
    );
    assert_eq!(get_domains(&sandbox, &other).await.status, 200);
    assert!(sandbox.check_spec_clean().is_ok());
}

#[tokio::test]
async fn revoked_tokens_get_401_and_a_token_refreshed_afterwards_is_accepted() {
    let sandbox = with_domains().await;
    let (access, refresh) = create_pair(&sandbox).await;
    assert_eq!(get_domains(&sandbox, &access).await.status, 200);

    sandbox.faults().revoke_access_tokens();

    assert!(!sandbox.is_valid_access_token(&access));
    assert_unauthorized(
        &get_domains(&sandbox, &access).await,
        "revoked",
        Some(&access),
    );

    let renewed = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("the refresh token survives a revocation")
        .into_inner();
    assert!(sandbox.is_valid_access_token(&renewed));
    assert_eq!(get_domains(&sandbox, &renewed).await.status, 200);
    let (logged_in, _) = create_pair(&sandbox).await;
    assert_eq!(get_domains(&sandbox, &logged_in).await.status, 200);
    assert_unauthorized(
        &get_domains(&sandbox, &access).await,
        "revoked",
        Some(&access),
    );
}

#[tokio::test]
async fn no_401_echoes_the_token() {
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::ZERO)
        .protected_route(Method::GET, DOMAINS, domains())
        .start()
        .await
        .expect("sandbox starts");
    let (expired, _) = create_pair(&sandbox).await;
    sandbox
        .faults()
        .set_access_token_ttl(Duration::from_secs(3600));
    let (invalidated, refresh) = create_pair(&sandbox).await;
    vcf(&sandbox)
        .invalidate_refresh_token(&refresh)
        .await
        .expect("invalidate");
    let (revoked, _) = create_pair(&sandbox).await;
    sandbox.faults().revoke_access_tokens();

    for (token, reason) in [
        ("secret-garbage-token", "unknown"),
        (expired.as_str(), "expired"),
        (invalidated.as_str(), "invalidated"),
        (revoked.as_str(), "revoked"),
    ] {
        let answer = get_domains(&sandbox, token).await;
        assert_unauthorized(&answer, reason, Some(token));
        // Not even a recognisable piece of a JWT (its signature).
        let tail = token.rsplit('.').next().unwrap_or(token);
        assert!(!answer.text.contains(tail), "{}", answer.text);
    }
}

#[tokio::test]
async fn several_routes_and_methods_answer_their_own_bodies() {
    let sandbox = Sandbox::builder()
        .protected_route(Method::GET, DOMAINS, domains())
        .protected_route(Method::POST, DOMAINS, json!({ "id": "task-1" }))
        .protected_route(Method::GET, "/v1/clusters", json!({ "elements": [] }))
        .protected_route(Method::GET, "/v1/clusters", json!({ "elements": [1] }))
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&sandbox).await;
    let bearer = format!("Bearer {access}");
    for (method, path, expected) in [
        (Method::GET, DOMAINS, domains()),
        (Method::POST, DOMAINS, json!({ "id": "task-1" })),
        (Method::GET, "/v1/clusters", json!({ "elements": [1] })),
    ] {
        let answer = send(&sandbox, method.clone(), path, Some(&bearer)).await;
        assert_eq!(answer.status, 200, "{method} {path}");
        let body: Value = serde_json::from_str(&answer.text).expect("JSON");
        assert_eq!(body, expected, "{method} {path}: the last declaration wins");
    }
    assert!(sandbox.check_spec_clean().is_ok());
}

#[tokio::test]
async fn an_undeclared_method_on_a_declared_path_gets_405_with_allow() {
    let sandbox = Sandbox::builder()
        .protected_route(Method::GET, DOMAINS, domains())
        .protected_route(Method::DELETE, DOMAINS, json!({}))
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&sandbox).await;

    let answer = send(
        &sandbox,
        Method::PUT,
        DOMAINS,
        Some(&format!("Bearer {access}")),
    )
    .await;
    assert_eq!(answer.status, 405);
    assert_eq!(
        answer.headers.get("allow").map(|v| v.as_bytes()),
        Some(&b"GET, DELETE"[..])
    );
    let error: vcf_tokens::types::Error =
        serde_json::from_str(&answer.text).expect("a VCF Error body");
    assert!(error.message.is_some());
    assert_eq!(sandbox.route_requests(Method::GET, DOMAINS), 0);
    assert_eq!(sandbox.route_requests(Method::PUT, DOMAINS), 0);
    assert!(
        sandbox.check_spec_clean().is_ok(),
        "the specs do not cover this path"
    );
}

#[tokio::test]
async fn undeclared_paths_are_still_violations() {
    let sandbox = with_domains().await;
    let (access, _) = create_pair(&sandbox).await;
    let bearer = format!("Bearer {access}");
    let validated = sandbox.validated_requests();

    for path in ["/v1/system", "/v1/domains/", "/v1/domains/d1"] {
        let answer = send(&sandbox, Method::GET, path, Some(&bearer)).await;
        assert_eq!(answer.status, 404, "{path}: exact match only");
        let mut violations = sandbox.take_violations();
        assert_eq!(violations.len(), 1, "{path}: {violations:?}");
        let violation = violations.remove(0);
        assert_eq!(violation.kind, ViolationKind::UnknownPath);
        assert_eq!(violation.path, path);
        assert_eq!(violation.operation, None);
    }
    assert_eq!(sandbox.validated_requests(), validated + 3);
    assert_eq!(sandbox.route_requests(Method::GET, DOMAINS), 0);
}

#[tokio::test]
async fn counters_count_every_request_and_the_401s() {
    let sandbox = Sandbox::builder()
        .protected_route(Method::GET, DOMAINS, domains())
        .protected_route(Method::POST, DOMAINS, json!({}))
        .protected_route(Method::GET, "/v1/hosts", json!({}))
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&sandbox).await;

    for _ in 0..3 {
        assert_eq!(get_domains(&sandbox, &access).await.status, 200);
    }
    assert_eq!(send(&sandbox, Method::GET, DOMAINS, None).await.status, 401);
    assert_eq!(get_domains(&sandbox, "nope").await.status, 401);
    let bearer = format!("Bearer {access}");
    assert_eq!(
        send(&sandbox, Method::POST, DOMAINS, Some(&bearer))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&sandbox, Method::PATCH, DOMAINS, Some(&bearer))
            .await
            .status,
        405
    );

    assert_eq!(sandbox.route_requests(Method::GET, DOMAINS), 5);
    assert_eq!(sandbox.route_rejections(Method::GET, DOMAINS), 2);
    assert_eq!(sandbox.route_requests(Method::POST, DOMAINS), 1);
    assert_eq!(sandbox.route_rejections(Method::POST, DOMAINS), 0);
    assert_eq!(sandbox.route_requests(Method::GET, "/v1/hosts"), 0);
    assert_eq!(sandbox.route_requests(Method::PATCH, DOMAINS), 0);
    assert_eq!(sandbox.route_requests(Method::GET, "/v1/never"), 0);
    assert_eq!(sandbox.route_rejections(Method::GET, "/v1/never"), 0);
}

#[tokio::test]
async fn unusable_routes_are_refused_at_start() {
    for (method, path) in [
        (Method::GET, "/v1/tokens"),
        (Method::POST, "/v1/tokens"),
        (
            Method::GET,
            "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
        ),
        (Method::GET, "v1/domains"),
        (Method::GET, "/v1/domains?limit=1"),
    ] {
        let started = Sandbox::builder()
            .protected_route(method.clone(), path, json!({}))
            .start()
            .await;
        match started {
            Err(refresh_sandbox::Error::ProtectedRoute(detail)) => {
                assert!(detail.contains(path), "{detail}");
            }
            other => panic!("{method} {path}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn revoke_before_next_revokes_at_the_route_request_itself() {
    let sandbox = with_domains().await;
    let (access, refresh) = create_pair(&sandbox).await;
    sandbox.faults().revoke_before_next(Method::GET, DOMAINS, 1);
    // Still live until the route's next request arrives.
    assert!(sandbox.is_valid_access_token(&access));
    assert_unauthorized(
        &get_domains(&sandbox, &access).await,
        "revoked",
        Some(&access),
    );
    let renewed = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("the refresh token survives")
        .into_inner();
    // Only the next one: the renewed token goes through.
    assert_eq!(get_domains(&sandbox, &renewed).await.status, 200);
    assert_eq!(sandbox.route_rejections(Method::GET, DOMAINS), 1);
}
