//! Per-call overhead: the facade's F5 `refresh_token` and VCF
//! `refresh_access_token`, and the raw generated clients, each against a
//! hand-written reqwest request with serde decoding of the same call, to
//! the same in-process loopback server, with the same client settings.
//!
//! Prints facade/raw and generated/raw, from the medians of the per-call
//! times measured in this run (the machines are shared and noisy, so only
//! ratios within one run are compared). Target: ≤ 1.05.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::{patch, post};
use std::hint::black_box;

use criterion::Criterion;
use refresh_sdk::vcf::VcfConfig;
use refresh_sdk::{F5Client, F5Config, F5Credentials, SecretString, TransportOptions, VcfClient};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};

const F5_PATH: &str = "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token";
const VCF_PATH: &str = "/v1/tokens/access-token/refresh";
const API_TOKEN: &str = "bench-api-token";
/// The facade's defaults, given to the other two clients too.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(30);

/// Per-call nanoseconds of every sample, by benchmark name.
static SAMPLES: Mutex<BTreeMap<&'static str, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, elapsed: Duration, iters: u64) {
    SAMPLES
        .lock()
        .expect("samples lock")
        .entry(name)
        .or_default()
        .push(elapsed.as_nanos() as f64 / iters as f64);
}

fn median(name: &str) -> Option<f64> {
    let samples = SAMPLES.lock().expect("samples lock");
    let mut values = samples.get(name)?.clone();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

async fn start_server() -> String {
    let app = axum::Router::new()
        .route(
            F5_PATH,
            post(|| async {
                Json(serde_json::json!({ "result": r#"{"token":"0123456789abcdef"}"# }))
            }),
        )
        .route(
            VCF_PATH,
            patch(|| async {
                Json(serde_json::json!(
                    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.c2ln"
                ))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port on 127.0.0.1");
    let addr = listener.local_addr().expect("the listener has an address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the server runs") });
    format!("http://{addr}")
}

/// The settings the facade gives its own `reqwest::Client`.
fn reqwest_client(authorization: bool) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if authorization {
        let mut value = HeaderValue::from_str(&format!("APIToken {API_TOKEN}")).expect("header");
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .user_agent(refresh_sdk::transport::USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the reqwest client builds")
}

#[derive(serde::Serialize)]
struct F5Request<'a> {
    product_name: &'a str,
}

#[derive(serde::Deserialize)]
struct F5Response {
    result: Option<String>,
}

/// The hand-written F5 call: what a careful caller would write by hand.
async fn raw_f5(client: &reqwest::Client, url: &str) -> String {
    let response = client
        .post(url)
        .header(ACCEPT, "application/json")
        .json(&F5Request { product_name: "p" })
        .send()
        .await
        .expect("the raw F5 call");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("the raw F5 body");
    serde_json::from_slice::<F5Response>(&body)
        .expect("the F5 JSON")
        .result
        .expect("a result")
}

async fn raw_vcf(client: &reqwest::Client, url: &str, refresh: &str) -> String {
    let response = client
        .patch(url)
        .header(ACCEPT, "application/json")
        .json(refresh)
        .send()
        .await
        .expect("the raw VCF call");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("the raw VCF body");
    serde_json::from_slice::<String>(&body).expect("the VCF JSON")
}

fn overhead(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let base = runtime.block_on(start_server());
    let facade_f5 = F5Client::new(
        F5Config::new(&base, F5Credentials::api_token(API_TOKEN))
            .expect("valid config")
            .transport(TransportOptions::default()),
    )
    .expect("the F5 client builds");
    let generated_f5 = f5xc_bfdp::Client::new_with_client(&base, reqwest_client(true), None);
    let raw_f5_client = reqwest_client(true);
    let f5_url = format!("{base}{F5_PATH}");
    let f5_body = f5xc_bfdp::types::RefreshTokenRequest {
        product_name: Some("p".to_owned()),
    };

    let facade_vcf = VcfClient::new(VcfConfig::new(&base).expect("valid config"))
        .expect("the VCF client builds");
    let generated_vcf = vcf_tokens::Client::new_with_client(&base, reqwest_client(false), None);
    let raw_vcf_client = reqwest_client(false);
    let vcf_url = format!("{base}{VCF_PATH}");
    let refresh = SecretString::from("refresh-token-id");

    // Runs `call` `iters` times on the runtime and records the per-call time.
    macro_rules! bench {
        ($group:expr, $name:literal, $call:expr) => {
            $group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let started = Instant::now();
                        for _ in 0..iters {
                            black_box($call);
                        }
                        let elapsed = started.elapsed();
                        record($name, elapsed, iters);
                        elapsed
                    })
                })
            });
        };
    }

    let mut group = c.benchmark_group("f5_refresh_token");
    bench!(group, "f5/raw", raw_f5(&raw_f5_client, &f5_url).await);
    bench!(
        group,
        "f5/generated",
        generated_f5
            .refresh_token(&f5_body)
            .await
            .expect("the generated F5 call")
    );
    bench!(
        group,
        "f5/facade",
        facade_f5
            .refresh_token("p")
            .await
            .expect("the facade F5 call")
    );
    group.finish();

    let mut group = c.benchmark_group("vcf_refresh_access_token");
    bench!(
        group,
        "vcf/raw",
        raw_vcf(&raw_vcf_client, &vcf_url, "refresh-token-id").await
    );
    bench!(
        group,
        "vcf/generated",
        generated_vcf
            .refresh_access_token("refresh-token-id")
            .await
            .expect("the generated VCF call")
    );
    bench!(
        group,
        "vcf/facade",
        facade_vcf
            .refresh_access_token(&refresh)
            .await
            .expect("the facade VCF call")
    );
    group.finish();

    // Criterion measures the three one after another, so drift on a shared
    // machine lands in the ratio. The ratios printed come from rounds that
    // interleave the three instead: 40 rounds of 200 calls each.
    macro_rules! round {
        ($name:literal, $call:expr) => {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..200 {
                    black_box($call);
                }
                record(concat!("interleaved/", $name), started.elapsed(), 200);
            })
        };
    }
    for _ in 0..40 {
        round!("f5/raw", raw_f5(&raw_f5_client, &f5_url).await);
        round!(
            "f5/generated",
            generated_f5.refresh_token(&f5_body).await.expect("call")
        );
        round!(
            "f5/facade",
            facade_f5.refresh_token("p").await.expect("call")
        );
        round!(
            "vcf/raw",
            raw_vcf(&raw_vcf_client, &vcf_url, "refresh-token-id").await
        );
        round!(
            "vcf/generated",
            generated_vcf
                .refresh_access_token("refresh-token-id")
                .await
                .expect("call")
        );
        round!(
            "vcf/facade",
            facade_vcf
                .refresh_access_token(&refresh)
                .await
                .expect("call")
        );
    }
}

fn print_ratios() {
    println!(
        "\n== per-call overhead (medians of 40 interleaved rounds of 200 calls; target ≤ 1.05) =="
    );
    for api in ["f5", "vcf"] {
        let raw = median(&format!("interleaved/{api}/raw"));
        for layer in ["generated", "facade"] {
            let other = median(&format!("interleaved/{api}/{layer}"));
            if let (Some(raw), Some(other)) = (raw, other) {
                let ratio = other / raw;
                let verdict = if ratio <= 1.05 { "met" } else { "NOT met" };
                println!(
                    "{api:>3} {layer:<9}/raw = {ratio:.3}  ({other:.0} ns vs {raw:.0} ns per call; {verdict})"
                );
            }
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    overhead(&mut criterion, &runtime);
    criterion.final_summary();
    print_ratios();
}
