//! The rest of SDDC Manager through `VcfSession::api_client()`, against the
//! sandbox's protected routes: the token on every call, a rejected token
//! renewed once and the call sent again.

use std::sync::Arc;

use refresh_sandbox::{Method, Operation, Sandbox};
use refresh_sdk::VcfSession;
use serde_json::{Value, json};

const DOMAINS: &str = "/v1/domains";

async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .protected_route(
            Method::GET,
            DOMAINS,
            json!({ "elements": [{ "name": "sfo-m01" }] }),
        )
        .protected_route(Method::POST, DOMAINS, json!({ "id": "task-1" }))
        .start()
        .await
        .expect("the sandbox starts")
}

/// A GET, then a POST after the sandbox revoked every access token: a 401
/// says the request was not acted on, so even a POST is renewed and sent
/// once more.
async fn post_with_a_revoked_token(sandbox: &Sandbox, vcf: &VcfSession) {
    let api = vcf.api_client();
    let url = format!("{}{DOMAINS}", vcf.base_url());
    assert_eq!(api.get(&url).send().await.expect("sent").status(), 200);

    sandbox.faults().revoke_access_tokens();
    let response = api
        .post(&url)
        .json(&json!({ "name": "sfo-w01" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "renewed and sent again");
    assert_eq!(sandbox.route_rejections(Method::POST, DOMAINS), 1);
    assert_eq!(sandbox.route_requests(Method::POST, DOMAINS), 2);
}

#[tokio::test]
async fn a_service_lists_domains_in_three_lines() {
    let sandbox = sandbox().await;

    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    let api = vcf.api_client();
    let domains: Value = api
        .get(format!("{}{DOMAINS}", vcf.base_url()))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");

    assert_eq!(domains["elements"][0]["name"], "sfo-m01");
    assert_eq!(sandbox.route_requests(Method::GET, DOMAINS), 1);
    assert_eq!(sandbox.route_rejections(Method::GET, DOMAINS), 0);
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1);
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_revoked_token_is_renewed_and_the_call_sent_once_more() {
    let sandbox = sandbox().await;
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    post_with_a_revoked_token(&sandbox, &vcf).await;
    let stats = vcf.stats();
    assert_eq!(
        (stats.invalidations, stats.refreshes, stats.logins),
        (1, 1, 1)
    );
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_on_one_token_make_one_renewal() {
    let sandbox = sandbox().await;
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    let api = vcf.api_client();
    let url = Arc::new(format!("{}{DOMAINS}", vcf.base_url()));
    assert_eq!(
        api.get(url.as_str()).send().await.expect("sent").status(),
        200
    );

    sandbox.faults().revoke_access_tokens();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let api = api.clone();
            let url = Arc::clone(&url);
            tokio::spawn(async move { api.get(url.as_str()).send().await.map(|r| r.status()) })
        })
        .collect();
    for call in calls {
        let status = call.await.expect("the task").expect("sent");
        assert_eq!(status, 200);
    }
    assert_eq!(
        sandbox.requests(Operation::VcfRefreshAccessToken),
        1,
        "one renewal for every 401 on the same token"
    );
    assert_eq!(vcf.stats().invalidations, 1);
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1);
    let rejected = sandbox.route_rejections(Method::GET, DOMAINS);
    assert!((1..=50).contains(&rejected), "{rejected}");
    assert_eq!(
        sandbox.route_requests(Method::GET, DOMAINS),
        1 + 50 + rejected,
        "each rejected call was sent exactly once more"
    );
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn the_authorization_header_is_sensitive_and_accepted() {
    let sandbox = sandbox().await;
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    let value = vcf.authorization().await.expect("a header");
    assert!(value.is_sensitive());
    assert!(!format!("{value:?}").contains("Bearer"));
    let response = reqwest::Client::new()
        .get(format!("{}{DOMAINS}", vcf.base_url()))
        .header(reqwest::header::AUTHORIZATION, value)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    vcf.logout().await.expect("logout");
}

/// The token and the transport policy share one copy of the request: with
/// no retries configured, a rejected token is still renewed and the call
/// sent once more.
#[tokio::test]
async fn without_retries_a_revoked_token_is_still_renewed_and_sent_once_more() {
    use refresh_sdk::{RetryPolicy, TransportOptions, VcfClient, VcfConfig, VcfCredentials};

    let sandbox = sandbox().await;
    let lookup = sandbox.vcf_env();
    let config = VcfConfig::from_lookup(&lookup)
        .expect("configuration")
        .transport(TransportOptions::default().retry(RetryPolicy::no_retries()));
    let client = VcfClient::new(config).expect("client");
    let vcf = VcfSession::new(
        client,
        VcfCredentials::from_lookup(&lookup).expect("credentials"),
    );
    post_with_a_revoked_token(&sandbox, &vcf).await;
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}

/// Every failure of a call reads as the SDK's error, so `?` works in a
/// function returning `refresh_sdk::Result`: reqwest's own (an error status,
/// a body that is not JSON) naming the origin only, and a request that
/// cannot be built, before anything is sent, without its URL or value.
#[tokio::test]
async fn every_failure_of_a_call_is_the_sdks_error_and_shows_no_url() {
    use refresh_sdk::ErrorKind;

    let sandbox = sandbox().await;
    let vcf = VcfSession::from_lookup(sandbox.vcf_env()).expect("configuration");
    let api = vcf.api_client();
    let missing = format!("{}/v1/no-such-thing?secret=query", vcf.base_url());

    async fn domains(api: &refresh_sdk::ApiClient, url: &str) -> refresh_sdk::Result<Value> {
        Ok(api
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
    let err = domains(&api, &missing).await.expect_err("no such route");
    // A path of neither spec, on purpose.
    let provoked = sandbox.take_violations();
    assert_eq!(provoked.len(), 1, "{provoked:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains(vcf.base_url()), "{shown}");
    for hidden in ["secret", "no-such-thing"] {
        assert!(!shown.contains(hidden), "shows {hidden}: {shown}");
    }

    let before = sandbox.route_requests(Method::GET, DOMAINS);
    for (case, request) in [
        (
            "a URL that does not parse",
            api.get("http://[secret::query"),
        ),
        (
            "a header value that cannot be sent",
            api.get(format!("{}{DOMAINS}", vcf.base_url()))
                .header("x-note", "secret\nvalue"),
        ),
    ] {
        let err = request.send().await.expect_err(case);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}: {err:?}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("could not be built"), "{case}: {shown}");
        assert!(!shown.contains("secret"), "{case}: {shown}");
    }
    assert_eq!(
        sandbox.route_requests(Method::GET, DOMAINS),
        before,
        "nothing was sent"
    );
    vcf.logout().await.expect("logout");
    sandbox.assert_spec_clean();
}
