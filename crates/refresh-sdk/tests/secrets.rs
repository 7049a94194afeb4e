//! One canary value used as every kind of secret, through every public type
//! and error path; it must never show in Debug, Display, error chains or
//! traces.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use refresh_loopback::{Loopback, Reply};
use refresh_sdk::f5xc::{ClientCertificate, F5Config, F5Credentials};
use refresh_sdk::vcf::{SessionOptions, VcfCredentials, VcfSession};
use refresh_sdk::{AccessTokenSource, ExposeSecret, RetryPolicy, SecretString};
use serde_json::json;

const CANARY: &str = "CANARY-5e1f0a7b";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn debug(&mut self, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{value:?}"));
        self.0.push(format!("{value:#?}"));
    }

    fn error(&mut self, err: &refresh_sdk::Error) {
        self.debug(err);
        self.0.push(err.to_string());
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            self.0.push(inner.to_string());
            self.0.push(format!("{inner:?}"));
            source = inner.source();
        }
    }

    fn result<T: std::fmt::Debug>(&mut self, result: &refresh_sdk::Result<T>) {
        match result {
            Ok(value) => self.debug(value),
            Err(err) => self.error(err),
        }
    }
}

#[tokio::test]
async fn the_canary_never_appears() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber in this binary");
    let mut seen = Seen::default();
    let transport = quick_transport()
        .retry(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(5))
                .max_delay(Duration::from_millis(10)),
        )
        .allow_unverified_tls(true);
    seen.debug(&transport);

    // F5 XC: the API token is the canary; the server answers every shape.
    let token_result = format!("\"{CANARY}-token\"");
    let result_body = token_result.clone();
    let f5 = Loopback::start(move |r| match r.index {
        0 => Reply::json(200, json!({ "result": result_body.clone() })),
        1 => Reply::json(200, json!({ "result": 5, "echo": CANARY })),
        2 => Reply::new(200, "application/json", format!("{{\"result\": \"{CANARY}")),
        3 => Reply::json(503, json!("busy")),
        4 => Reply::json(401, json!({"message": "denied"})),
        5 => Reply::new(403, "text/html", "<html>no</html>"),
        6 => Reply::empty(429).header("retry-after", "600"),
        7 | 8 => Reply::json(200, json!({"result": "{}"})).after(Duration::from_secs(10)),
        _ => Reply::json(200, json!({"result": "{}"})),
    })
    .await;
    let credentials = F5Credentials::api_token(CANARY);
    seen.debug(&credentials);
    let config = F5Config::new(&f5.url(), credentials)
        .expect("config")
        .transport(transport.clone());
    seen.debug(&config);
    let client = refresh_sdk::F5Client::new(config).expect("client");
    seen.debug(&client);
    seen.debug(client.raw());
    let pipeline = client.pipeline("p");
    seen.debug(&pipeline);

    let token = client.refresh_token("p").await.expect("token");
    assert_eq!(
        token.secret().expose_secret(),
        token_result,
        "the canary went through"
    );
    seen.debug(&token);
    seen.result(&token.parse_json::<u32>());
    seen.result(&token.parse_json::<serde_json::Value>().map(|_| ()));
    // Indices 1 to 6 (the 503 is retried into the 401).
    for _ in 0..5 {
        seen.result(&client.refresh_token("p").await);
    }
    seen.result(&client.refresh_token("").await);
    let slow = refresh_sdk::F5Client::new(
        F5Config::new(&f5.url(), F5Credentials::api_token(CANARY))
            .expect("config")
            .transport(
                transport
                    .clone()
                    .attempt_timeout(Duration::from_millis(100)),
            ),
    )
    .expect("client");
    seen.result(&slow.refresh_token("p").await);
    seen.result(&slow.refresh_token("p").await);
    seen.result(&pipeline.access_token().await.map(|_| ()));
    seen.debug(&pipeline);
    let authorization = f5.received()[0]
        .header("authorization")
        .map(str::to_owned)
        .expect("sent");
    assert_eq!(authorization, format!("APIToken {CANARY}"));

    // The pipeline source holding canary tokens: cached, invalidated,
    // renewed after a retried 503, and failing into its backoff.
    let pipelines = Loopback::start(|r| match r.index {
        0 | 2 => Reply::json(
            200,
            json!({ "result": format!("{CANARY}-pipeline-{}", r.index) }),
        ),
        _ => Reply::json(503, json!("busy")),
    })
    .await;
    let reused = f5_client(&pipelines.url(), CANARY, transport.clone())
        .pipeline("p")
        .reuse_for(Duration::from_secs(3600));
    let first = reused.access_token().await;
    seen.result(&first);
    seen.debug(&reused);
    reused.invalidate(&first.expect("a pipeline token"));
    let second = reused.access_token().await;
    seen.result(&second);
    assert!(
        second
            .expect("a token after one retried 503")
            .expose_secret()
            .starts_with(CANARY),
        "the canary went through the pipeline source"
    );
    seen.debug(&reused);
    seen.debug(&reused.stats());
    let failing = f5_client(&pipelines.url(), CANARY, transport.clone()).pipeline("p");
    seen.result(&failing.access_token().await);
    seen.result(&failing.access_token().await);
    seen.debug(&failing);

    // F5 XC configuration paths.
    seen.result(&refresh_sdk::F5Client::new(
        F5Config::new("acme", F5Credentials::api_token(format!("{CANARY}\n"))).expect("config"),
    ));
    seen.result(&ClientCertificate::from_pem(
        CANARY.as_bytes(),
        CANARY.as_bytes().to_vec().into(),
    ));
    let password = SecretString::from(CANARY);
    seen.result(&ClientCertificate::from_p12(CANARY.as_bytes(), &password));
    let garbage =
        std::env::temp_dir().join(format!("refresh-sdk-canary-{}.p12", std::process::id()));
    std::fs::write(&garbage, b"not a p12").expect("temp file");
    let garbage_path = garbage.to_string_lossy().into_owned();
    for token in [None, Some(CANARY)] {
        let path = garbage_path.clone();
        seen.result(&F5Config::from_lookup(move |name| match name {
            "VOLT_API_URL" => Some("acme".into()),
            "VOLT_API_TOKEN" => token.map(str::to_owned),
            "VOLT_API_P12_FILE" => Some(path.clone()),
            "VES_P12_PASSWORD" => Some(CANARY.into()),
            _ => None,
        }));
    }
    let _ = std::fs::remove_file(&garbage);

    // VCF: the password, access tokens and refresh-token ids are canaries.
    let vcf = Loopback::start(|r| match (r.method.as_str(), r.path.as_str(), r.index) {
        ("POST", _, i) if i < 3 => Reply::json(
            201,
            json!({"accessToken": format!("{CANARY}-access"), "refreshToken": {"id": format!("{CANARY}-refresh")}}),
        ),
        ("POST", _, _) => Reply::json(400, json!({"message": "Invalid credentials", "referenceToken": "REF"})),
        ("PATCH", _, i) if i % 2 == 0 => Reply::json(404, json!({"message": "gone"})),
        ("PATCH", _, _) => Reply::new(500, "text/plain", "oops"),
        ("DELETE", _, _) => Reply::new(500, "text/html", "<p>down</p>"),
        _ => Reply::empty(404),
    })
    .await;
    let credentials = VcfCredentials::new("admin", CANARY);
    seen.debug(&credentials);
    let vcf_client = vcf_client(&vcf.url(), transport.clone());
    seen.debug(&vcf_client);
    seen.debug(vcf_client.raw());
    let pair = vcf_client.create_token(&credentials).await;
    seen.result(&pair);
    let pair = pair.expect("pair");
    assert_eq!(
        pair.refresh_token.expose_secret(),
        format!("{CANARY}-refresh")
    );
    seen.result(&vcf_client.refresh_access_token(&pair.refresh_token).await);
    seen.result(&vcf_client.refresh_access_token(&pair.refresh_token).await);
    seen.result(
        &vcf_client
            .invalidate_refresh_token(&pair.refresh_token)
            .await,
    );
    let session = VcfSession::new(vcf_client.clone(), credentials.clone())
        .with_options(SessionOptions::default().assumed_access_lifetime(Duration::ZERO));
    seen.debug(&session);
    for _ in 0..4 {
        seen.result(&session.access_token().await);
        seen.debug(&session);
    }
    seen.result(&session.with_access_token(|_| ()).await);
    session.invalidate(&refresh_sdk::AccessToken::new(CANARY));
    seen.debug(&session.stats());
    seen.debug(&refresh_sdk::AccessToken::new(CANARY));
    seen.debug(&refresh_sdk::AccessToken::from(SecretString::from(CANARY)));
    seen.result(&session.logout().await);
    seen.result(&VcfSession::from_lookup(|name| match name {
        "VCF_SDDC_MANAGER_HOST" => Some("ftp://not-http".into()),
        _ => Some(CANARY.into()),
    }));
    seen.result(&VcfSession::from_lookup(|name| match name {
        "VCF_SDDC_MANAGER_HOST" => Some("vcf.example".into()),
        "VCF_ALLOW_UNVERIFIED_TLS" => Some("false".into()),
        "VCF_SDDC_MANAGER_USERNAME" => Some("admin".into()),
        _ => Some(CANARY.into()),
    }));
    assert!(
        vcf.received()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(CANARY)),
        "the canary password reached the server"
    );

    // The other SDDC Manager calls: BearerAuth and the transport policy in
    // `api_client()`, and `authorization()`. Every token is a canary, and
    // the endpoint rejects them all, so the 401 path runs too.
    let api = Loopback::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/tokens") => Reply::json(
            201,
            json!({"accessToken": format!("{CANARY}-a{}", r.index), "refreshToken": {"id": format!("{CANARY}-r")}}),
        ),
        ("PATCH", _) => Reply::json(200, json!(format!("{CANARY}-b{}", r.index))),
        ("DELETE", _) => Reply::empty(204),
        _ => Reply::json(401, json!({"errorCode": "UNAUTHORIZED"})).header("www-authenticate", "Bearer"),
    })
    .await;
    let session = VcfSession::new(
        common::vcf_client(&api.url(), transport.clone()),
        credentials.clone(),
    );
    let header = session.authorization().await.expect("a header value");
    seen.debug(&header);
    let client = session.api_client();
    seen.debug(&client);
    let request = client.get(format!("{}/v1/domains", api.url()));
    seen.debug(&request);
    let response = request.send().await.expect("an answer");
    seen.debug(&response);
    assert_eq!(response.status(), 401);
    let err = client
        .get(format!("{}/v1/domains", api.url()))
        .timeout(Duration::from_nanos(1))
        .send()
        .await;
    if let Err(err) = &err {
        seen.debug(err);
        seen.0.push(err.to_string());
    }
    let bearer_sent = api
        .received()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter(|h| h.starts_with(&format!("Bearer {CANARY}")))
        .count();
    assert!(
        bearer_sent >= 2,
        "the canary tokens reached the endpoint ({bearer_sent})"
    );
    seen.debug(&session);
    seen.result(&session.logout().await);

    let traces =
        String::from_utf8(capture.0.lock().expect("capture lock").clone()).expect("UTF-8 traces");
    assert!(
        traces.contains("refresh_sdk.operation"),
        "traces were captured: {traces}"
    );
    assert!(traces.contains("retrying"), "retries were traced");
    assert!(
        traces.contains("VCF token renewal failed"),
        "the session's failed renewals were traced"
    );
    assert!(
        traces.contains("F5 XC token renewal failed"),
        "the pipeline source's failed requests were traced"
    );
    for (i, text) in seen.0.iter().enumerate() {
        assert!(
            !text.contains(CANARY),
            "output {i} shows the canary: {text}"
        );
    }
    assert!(!traces.contains(CANARY), "traces show the canary");
    // Several clients skip verification; the warning is given once.
    assert_eq!(
        traces.matches("verification is disabled").count(),
        1,
        "{traces}"
    );
    assert!(
        seen.0.len() > 60,
        "every path was exercised ({} outputs)",
        seen.0.len()
    );
}
