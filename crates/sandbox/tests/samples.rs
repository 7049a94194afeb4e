//! The sample SDDC Manager endpoints (`with_sddc_samples`): canned answers in
//! the shapes of the VCF 9.0.2 API, guarded like any protected route.

mod common;

use common::create_pair;
use refresh_sandbox::{Method, Sandbox, ViolationKind};
use serde_json::{Value, json};

const SAMPLES: [&str; 4] = ["/v1/clusters", "/v1/domains", "/v1/hosts", "/v1/system"];

async fn get(sandbox: &Sandbox, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", sandbox.vcf_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_samples_answer_a_live_token_in_the_vcf_shapes() {
    let sandbox = Sandbox::builder()
        .with_sddc_samples()
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&sandbox).await;

    for path in SAMPLES {
        let (status, body) = get(&sandbox, path, Some(&access)).await;
        assert_eq!(status, 200, "{path}: {body}");
        if path == "/v1/system" {
            assert!(body["id"].is_string(), "{body}");
            continue;
        }
        let elements = body["elements"].as_array().expect("a page of elements");
        let n = elements.len();
        assert!(n > 0, "{path}");
        assert_eq!(
            body["pageMetadata"],
            json!({ "pageNumber": 0, "pageSize": n, "totalElements": n, "totalPages": 1 }),
            "{path}"
        );
        for element in elements {
            assert!(element["id"].is_string(), "{path}: {element}");
        }
    }
    let (_, domains) = get(&sandbox, "/v1/domains", Some(&access)).await;
    let types: Vec<&str> = domains["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["type"].as_str())
        .collect();
    assert_eq!(types, ["MANAGEMENT", "VI"]);

    // Guarded like any declared route, and outside the specs.
    let (status, error) = get(&sandbox, "/v1/domains", None).await;
    assert_eq!(status, 401);
    assert_eq!(error["errorCode"], "UNAUTHORIZED");
    sandbox.faults().revoke_access_tokens();
    assert_eq!(get(&sandbox, "/v1/hosts", Some(&access)).await.0, 401);
    assert_eq!(sandbox.route_requests(Method::GET, "/v1/domains"), 3);
    assert_eq!(sandbox.route_rejections(Method::GET, "/v1/hosts"), 1);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_queried_list_gets_the_same_page() {
    let sandbox = Sandbox::builder()
        .with_sddc_samples()
        .start()
        .await
        .expect("sandbox starts");
    let (access, _) = create_pair(&sandbox).await;
    let (status, filtered) = get(&sandbox, "/v1/hosts?status=ASSIGNED&page=0", Some(&access)).await;
    assert_eq!(status, 200);
    assert_eq!(filtered, get(&sandbox, "/v1/hosts", Some(&access)).await.1);
}

#[tokio::test]
async fn a_default_sandbox_serves_no_samples() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    assert!(sandbox.protected_routes().is_empty());
    let (access, _) = create_pair(&sandbox).await;
    let (status, _) = get(&sandbox, "/v1/domains", Some(&access)).await;
    assert_eq!(
        status, 404,
        "a test sandbox answers only what its test declares"
    );
    let violations = sandbox.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, ViolationKind::UnknownPath);
}

#[tokio::test]
async fn a_declared_route_replaces_a_sample_whichever_comes_first() {
    let mine = json!({ "elements": [{ "id": "mine" }] });
    for samples_first in [true, false] {
        let mut builder = Sandbox::builder();
        if samples_first {
            builder = builder.with_sddc_samples();
        }
        builder = builder
            .protected_route(Method::GET, "/v1/domains", mine.clone())
            .protected_route(Method::POST, "/v1/domains", json!({ "id": "task-1" }))
            .protected_route(Method::GET, "/v1/network-pools", json!({ "elements": [] }));
        if !samples_first {
            builder = builder.with_sddc_samples();
        }
        let sandbox = builder.start().await.expect("sandbox starts");
        let (access, _) = create_pair(&sandbox).await;
        assert_eq!(get(&sandbox, "/v1/domains", Some(&access)).await.1, mine);
        assert_eq!(
            sandbox.protected_routes(),
            [
                (Method::GET, "/v1/clusters".to_owned()),
                (Method::GET, "/v1/domains".to_owned()),
                (Method::POST, "/v1/domains".to_owned()),
                (Method::GET, "/v1/hosts".to_owned()),
                (Method::GET, "/v1/network-pools".to_owned()),
                (Method::GET, "/v1/system".to_owned()),
            ]
        );
        sandbox.assert_spec_clean();
    }
}
