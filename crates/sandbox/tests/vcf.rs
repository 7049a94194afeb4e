//! VCF Tokens semantics, through the generated client over loopback HTTP.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{create_pair, error_status, good_credentials, vcf};
use refresh_sandbox::{ExposeSecret, Operation, Sandbox, ViolationKind};
use vcf_tokens::Error;

fn jwt_claims(token: &str) -> serde_json::Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has header.payload.signature");
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts[0])
            .expect("the header is base64url"),
    )
    .expect("the header is JSON");
    assert_eq!(header["alg"], "HS256");
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("the payload is base64url"),
    )
    .expect("the payload is JSON")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

#[tokio::test]
async fn create_token_returns_201_with_a_signed_jwt_and_a_refresh_id() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let before = now();

    let response = vcf(&sandbox)
        .create_token(&good_credentials(&sandbox))
        .await
        .expect("the sandbox's credentials are accepted");

    assert_eq!(response.status().as_u16(), 201);
    let pair = response.into_inner();
    let access = pair.access_token.expect("an access token");
    let refresh = pair
        .refresh_token
        .and_then(|r| r.id)
        .expect("a refresh token id");
    assert!(!refresh.is_empty());
    let claims = jwt_claims(&access);
    let exp = claims["exp"].as_u64().expect("exp is a number");
    // Default TTL 1 h; whole seconds, and the test may straddle a second.
    assert!(
        (before + 3600..=now() + 3600).contains(&exp),
        "exp {exp} is one hour after issue"
    );
    assert!(sandbox.is_valid_access_token(&access));
    assert!(!sandbox.is_valid_access_token("a.b.c"));
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn access_ttl_is_configurable() {
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::from_secs(120))
        .start()
        .await
        .expect("sandbox starts");
    let before = now();
    let (access, _) = create_pair(&sandbox).await;
    let exp = jwt_claims(&access)["exp"].as_u64().expect("exp");
    assert!((before + 120..=now() + 120).contains(&exp));
}

#[tokio::test]
async fn wrong_credentials_get_400_with_a_vcf_error_body() {
    let sandbox = Sandbox::builder()
        .vcf_username("alice")
        .vcf_password("right")
        .start()
        .await
        .expect("sandbox starts");
    let spec = vcf_tokens::types::TokenCreationSpec {
        username: Some("alice".into()),
        password: Some("wrong".into()),
        ..Default::default()
    };

    let error = vcf(&sandbox)
        .create_token(&spec)
        .await
        .expect_err("wrong password is rejected");

    match error {
        Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 400);
            let body = response.into_inner();
            assert_eq!(body.error_code.as_deref(), Some("TOKEN_CREATION_FAILED"));
            assert!(body.message.is_some() && body.remediation_message.is_some());
        }
        other => panic!("expected a documented 400 Error, got {other:?}"),
    }
    // Wrong credentials are a valid request: not a spec violation.
    sandbox.assert_spec_clean();
}

/// `createToken` takes an API key or an identity token instead of a username
/// and password; a wrong one, or two kinds in one request, is refused as a
/// wrong password is.
#[tokio::test]
async fn an_api_key_or_an_id_token_logs_in_and_a_wrong_or_mixed_one_gets_400() {
    let sandbox = Sandbox::builder()
        .vcf_api_key("key-1")
        .vcf_id_token("id-1")
        .start()
        .await
        .expect("sandbox starts");
    let credentials = sandbox.credentials();
    assert_eq!(credentials.vcf_api_key.expose_secret(), "key-1");
    assert_eq!(credentials.vcf_id_token.expose_secret(), "id-1");
    let spec =
        |api_key: Option<&str>, id_token: Option<&str>| vcf_tokens::types::TokenCreationSpec {
            api_key: api_key.map(str::to_owned),
            id_token: id_token.map(str::to_owned),
            ..Default::default()
        };
    for good in [spec(Some("key-1"), None), spec(None, Some("id-1"))] {
        let pair = vcf(&sandbox)
            .create_token(&good)
            .await
            .unwrap_or_else(|e| panic!("{good:?} is accepted: {e:?}"))
            .into_inner();
        let access = pair.access_token.expect("an access token");
        assert!(sandbox.is_valid_access_token(&access));
        assert_eq!(
            jwt_claims(&access)["sub"],
            credentials.vcf_username.as_str(),
            "the demo user's token"
        );
    }
    let mut mixed = good_credentials(&sandbox);
    mixed.api_key = Some("key-1".into());
    for bad in [
        spec(Some("key-2"), None),
        spec(None, Some("id-2")),
        spec(Some("id-1"), None),
        spec(None, Some("key-1")),
        spec(Some("key-1"), Some("id-1")),
        mixed,
    ] {
        match vcf(&sandbox).create_token(&bad).await {
            Err(Error::ErrorResponse(response)) => {
                assert_eq!(response.status().as_u16(), 400, "{bad:?}");
                assert_eq!(
                    response.into_inner().error_code.as_deref(),
                    Some("TOKEN_CREATION_FAILED"),
                    "{bad:?}"
                );
            }
            other => panic!("{bad:?}: expected a documented 400 Error, got {other:?}"),
        }
    }
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn refresh_returns_a_new_valid_access_token() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let (first, refresh) = create_pair(&sandbox).await;

    let response = vcf(&sandbox)
        .refresh_access_token(&refresh)
        .await
        .expect("a fresh refresh token works");

    assert_eq!(response.status().as_u16(), 200);
    let second = response.into_inner();
    assert_ne!(first, second, "a new token (its jti differs)");
    assert!(sandbox.is_valid_access_token(&second));
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 1);
    sandbox.assert_spec_clean();
}

async fn assert_refresh_404(sandbox: &Sandbox, id: &str) {
    let error = vcf(sandbox)
        .refresh_access_token(id)
        .await
        .expect_err("the refresh token must not work");
    match error {
        Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 404);
            assert_eq!(
                response.into_inner().error_code.as_deref(),
                Some("REFRESH_TOKEN_NOT_FOUND")
            );
        }
        other => panic!("expected a documented 404 Error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_refresh_token_gets_404() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    assert_refresh_404(&sandbox, "0b7bd8ba-4d33-4c8d-a5e0-0b1b2c0bf1c2").await;
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn expired_refresh_token_gets_404() {
    let sandbox = Sandbox::builder()
        .refresh_token_ttl(Duration::from_millis(1))
        .start()
        .await
        .expect("sandbox starts");
    let (_, refresh) = create_pair(&sandbox).await;
    // Not a synchronisation sleep: the token is past its 1 ms TTL afterwards
    // whatever the machine's load.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_refresh_404(&sandbox, &refresh).await;
}

#[tokio::test]
async fn expire_all_refresh_tokens_makes_existing_ids_404() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let (_, refresh) = create_pair(&sandbox).await;
    sandbox.faults().expire_all_refresh_tokens();
    assert_refresh_404(&sandbox, &refresh).await;
    // New pairs still work.
    let (_, fresh) = create_pair(&sandbox).await;
    vcf(&sandbox)
        .refresh_access_token(&fresh)
        .await
        .expect("a refresh token created afterwards works");
}

#[tokio::test]
async fn invalidate_answers_204_and_the_id_then_gets_404() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let (_, refresh) = create_pair(&sandbox).await;

    let response = vcf(&sandbox)
        .invalidate_refresh_token(&refresh)
        .await
        .expect("invalidate succeeds");

    assert_eq!(response.status().as_u16(), 204);
    assert_refresh_404(&sandbox, &refresh).await;
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn refresh_with_a_body_that_is_not_a_json_string_gets_400() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let (_, refresh) = create_pair(&sandbox).await;

    let response = reqwest::Client::new()
        .patch(format!(
            "{}/v1/tokens/access-token/refresh",
            sandbox.vcf_url()
        ))
        .json(&serde_json::json!({ "id": refresh }))
        .send()
        .await
        .expect("the sandbox answers");

    assert_eq!(response.status().as_u16(), 400);
    let body: vcf_tokens::types::Error = response.json().await.expect("a VCF Error body");
    assert!(body.message.is_some());
    let violations = sandbox.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, ViolationKind::BodySchema);
    assert_eq!(
        violations[0].operation,
        Some(Operation::VcfRefreshAccessToken)
    );
    assert!(
        !violations[0].detail.contains(&refresh),
        "violations never echo the body's values"
    );
    assert_eq!(
        error_status(
            &vcf(&sandbox)
                .refresh_access_token("")
                .await
                .expect_err("empty id is unknown")
        ),
        404
    );
}
