//! Per-call overhead: the facade's F5 `refresh_token` and VCF
//! `refresh_access_token`, and the raw generated clients, each against a
//! hand-written reqwest request with serde decoding of the same call, to
//! the same in-process loopback server, with the same client settings; and
//! a `GET` through `VcfSession::api_client()` (the bearer header from the
//! session's cached token, the transport policy) against the same `GET`
//! made with reqwest alone, its `Authorization: Bearer` header built per
//! request (`get/raw`, `get/api_client`).
//!
//! The server runs on a thread and runtime of its own; every client runs on
//! the bench's main thread (a current-thread runtime), so the client's work
//! can be told apart from the server's. Each figure is printed as a ratio to
//! the hand-written call (target: ≤ 1.05):
//!
//! - criterion's per-call wall time of each client (one after another);
//! - interleaved rounds (the eight clients taking turns, each ratio taken
//!   within a round, median over the rounds): wall time, the client
//!   thread's CPU time, and the client and server threads' CPU time
//!   (`/proc/<thread>/schedstat`, user and kernel);
//! - instruction counts: each client in its own process under
//!   `valgrind --tool=callgrind`, counting the client thread's instructions
//!   in the measured calls, and those plus the server thread's meanwhile.
//!   They move by well under 1 % between runs, so they are the figures to
//!   compare on a shared machine; time is what they do not show (cache
//!   misses, the kernel). Skipped when `valgrind` cannot be run.
//!
//! `OVERHEAD_MEASURE=criterion,rounds,callgrind` (any subset) picks the
//! measurements; all run by default.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use refresh_sdk::vcf::VcfConfig;
use refresh_sdk::{
    ExposeSecret, F5Client, F5Config, F5Credentials, SecretString, TransportOptions, VcfClient,
    VcfCredentials, VcfSession,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::runtime::Runtime;

const F5_PATH: &str = "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token";
const VCF_PATH: &str = "/v1/tokens/access-token/refresh";
/// VCF's `createToken`, for the session's one login.
const VCF_LOGIN_PATH: &str = "/v1/tokens";
/// The SDDC Manager call the `get/*` clients make.
const GET_PATH: &str = "/v1/system";
const API_TOKEN: &str = "bench-api-token";
/// The facade's defaults, given to the other two clients too.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(30);

/// Every client measured, in the order the rounds interleave them.
const VARIANTS: [&str; 8] = [
    "f5/raw",
    "f5/generated",
    "f5/facade",
    "vcf/raw",
    "vcf/generated",
    "vcf/facade",
    "get/raw",
    "get/api_client",
];

/// The APIs, each with its `raw` client and the layers compared with it.
const APIS: [(&str, &[&str]); 3] = [
    ("f5", &["generated", "facade"]),
    ("vcf", &["generated", "facade"]),
    ("get", &["api_client"]),
];

/// Interleaved rounds, and calls per client per round.
const ROUNDS: usize = 150;
const CALLS_PER_ROUND: u32 = 200;

/// Instruction counts: processes per client, calls counted in each, and the
/// uncounted calls before them (connection, pools, lazy statics).
const CALLGRIND_RUNS: usize = 3;
const CALLGRIND_CALLS: u32 = 2_000;
const CALLGRIND_WARM_UP: u32 = 200;
/// Set in the child process: `<variant>:<calls>`.
const CHILD_ENV: &str = "OVERHEAD_CALLGRIND_CHILD";

/// Per-call figures of every sample, by series name.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &str, value: f64) {
    SAMPLES
        .lock()
        .expect("samples lock")
        .entry(name.to_owned())
        .or_default()
        .push(value);
}

fn samples(name: &str) -> Vec<f64> {
    let mut values = SAMPLES
        .lock()
        .expect("samples lock")
        .get(name)
        .cloned()
        .unwrap_or_default();
    values.sort_by(f64::total_cmp);
    values
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    values.get((last as f64 * q).round() as usize).copied()
}

/// The loopback server, on a thread and runtime of its own, so none of its
/// work runs on (or is counted against) the client's thread.
struct Server {
    base: String,
    /// The server thread's `schedstat`, for its CPU time.
    schedstat: Option<std::path::PathBuf>,
    /// Opens a counted window: the server runs inside `counted_serving`
    /// until the receiver given fires, and says so on the reply channel.
    windows: tokio::sync::mpsc::UnboundedSender<(
        tokio::sync::oneshot::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    )>,
}

impl Server {
    fn spawn() -> Server {
        let (sender, receiver) = std::sync::mpsc::channel();
        let (windows, mut requests) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("server".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the server's runtime");
                let listener = runtime
                    .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                    .expect("bind a port on 127.0.0.1");
                let addr = listener.local_addr().expect("the listener has an address");
                runtime.spawn(async move {
                    axum::serve(listener, app()).await.expect("the server runs")
                });
                // `/proc/thread-self` names this thread as `<pid>/task/<tid>`.
                let schedstat = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .map(|task| Path::new("/proc").join(task).join("schedstat"));
                sender
                    .send((format!("http://{addr}"), schedstat))
                    .expect("the bench waits for the address");
                // The server's tasks run while the thread waits in
                // `block_on`, counted or not.
                while let Some((stop, entered)) = runtime.block_on(requests.recv()) {
                    counted_serving(&runtime, stop, entered);
                }
            })
            .expect("the server thread starts");
        let (base, schedstat) = receiver.recv().expect("the server's address");
        Server {
            base,
            schedstat,
            windows,
        }
    }

    /// Runs `calls` with the server's work inside `counted_serving`.
    fn counted<T>(&self, calls: impl FnOnce() -> T) -> T {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (entered, inside) = std::sync::mpsc::channel();
        self.windows
            .send((stopped, entered))
            .expect("the server thread runs");
        inside.recv().expect("the server enters the window");
        let output = calls();
        stop.send(())
            .expect("the server waits for the end of the window");
        output
    }
}

/// The only server code callgrind counts (`--toggle-collect`).
#[inline(never)]
fn counted_serving(
    runtime: &Runtime,
    stop: tokio::sync::oneshot::Receiver<()>,
    entered: std::sync::mpsc::Sender<()>,
) {
    let _ = entered.send(());
    let _ = runtime.block_on(stop);
}

/// An access token of the size and shape SDDC Manager issues (an HS256
/// JWT of about 420 characters, as in VCF's API reference), valid until
/// 2100: the session logs in once and then serves it from its cache.
fn access_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        r#"{"jti":"6049ed6e-05c7-45dd-a188-a5a2cfe66da4","iat":1574224397,"sub":"administrator@vsphere.local","iss":"vcf-auth","aud":"sddc-services","nbf":1574224397,"exp":4102444800,"user":"administrator@vsphere.local","name":"administrator@vsphere.local","scope":["ADMIN"]}"#,
    );
    format!("{header}.{claims}.9y1U0iS4sgUQ_0vlFAaQ2eQ8zCFMoMEjXXdHpjTOqPc")
}

fn app() -> axum::Router {
    let pair = serde_json::json!({
        "accessToken": access_token(),
        "refreshToken": { "id": "refresh-token-id" },
    });
    axum::Router::new()
        .route(
            VCF_LOGIN_PATH,
            post(move || {
                let pair = pair.clone();
                async move { (axum::http::StatusCode::CREATED, Json(pair)) }
            }),
        )
        .route(
            GET_PATH,
            // Both `get/*` clients must send the token.
            get(|headers: axum::http::HeaderMap| async move {
                if headers.contains_key(AUTHORIZATION) {
                    Json(serde_json::json!({ "version": "5.2.1.0-24307856", "fipsMode": false }))
                        .into_response()
                } else {
                    axum::http::StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        )
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
        )
}

/// The runtime every client runs on: the calling thread only.
fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client's runtime")
}

/// The redirect policy the facade gives its own `reqwest::Client`
/// (`transport::same_origin_redirects`, crate-private): redirects within
/// the same origin only, at most 5.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            let next = attempt.url();
            first.scheme() == next.scheme()
                && first.host_str() == next.host_str()
                && first.port_or_known_default() == next.port_or_known_default()
        });
        if !same_origin || attempt.previous().len() > 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// The `get/raw` client: every setting `transport::build_http_client`
/// gives the session's client (user agent, connect timeout, timeout, no
/// default headers, same-origin redirects).
fn reqwest_api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(refresh_sdk::transport::USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .redirect(same_origin_redirects())
        .build()
        .expect("the reqwest client builds")
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

/// The `GET` call's answer, decoded by both `get/*` clients.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SystemInfo {
    version: String,
    fips_mode: bool,
}

/// The eight clients, each ready to make its one call.
struct Clients {
    facade_f5: F5Client,
    generated_f5: f5xc_bfdp::Client,
    raw_f5: reqwest::Client,
    f5_url: String,
    f5_body: f5xc_bfdp::types::RefreshTokenRequest,
    facade_vcf: VcfClient,
    generated_vcf: vcf_tokens::Client,
    raw_vcf: reqwest::Client,
    vcf_url: String,
    refresh: SecretString,
    /// Kept, as a service keeps it: built once from a session that has
    /// already logged in.
    api_client: refresh_sdk::ApiClient,
    raw_api: reqwest::Client,
    /// The token `get/raw` sends: the session's, as a service holding one
    /// would.
    raw_token: String,
    get_url: String,
}

impl Clients {
    /// Builds the clients and logs the session in; must run on the client
    /// runtime, where their connection pools then live.
    async fn new(base: &str) -> Clients {
        let session = VcfSession::new(
            VcfClient::new(VcfConfig::new(base).expect("valid config"))
                .expect("the VCF client builds"),
            VcfCredentials::new("administrator@vsphere.local", "bench-password"),
        );
        let raw_token = session
            .access_token()
            .await
            .expect("the session logs in")
            .expose_secret()
            .to_owned();
        Clients {
            facade_f5: F5Client::new(
                F5Config::new(base, F5Credentials::api_token(API_TOKEN))
                    .expect("valid config")
                    .transport(TransportOptions::default()),
            )
            .expect("the F5 client builds"),
            generated_f5: f5xc_bfdp::Client::new_with_client(base, reqwest_client(true), None),
            raw_f5: reqwest_client(true),
            f5_url: format!("{base}{F5_PATH}"),
            f5_body: f5xc_bfdp::types::RefreshTokenRequest {
                product_name: Some("p".to_owned()),
            },
            facade_vcf: VcfClient::new(VcfConfig::new(base).expect("valid config"))
                .expect("the VCF client builds"),
            generated_vcf: vcf_tokens::Client::new_with_client(base, reqwest_client(false), None),
            raw_vcf: reqwest_client(false),
            vcf_url: format!("{base}{VCF_PATH}"),
            refresh: SecretString::from("refresh-token-id"),
            api_client: session.api_client(),
            raw_api: reqwest_api_client(),
            raw_token,
            get_url: format!("{base}{GET_PATH}"),
        }
    }

    /// The hand-written F5 call: what a careful caller would write by hand.
    async fn raw_f5(&self) -> String {
        let response = self
            .raw_f5
            .post(&self.f5_url)
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

    async fn raw_vcf(&self) -> String {
        let response = self
            .raw_vcf
            .patch(&self.vcf_url)
            .header(ACCEPT, "application/json")
            .json("refresh-token-id")
            .send()
            .await
            .expect("the raw VCF call");
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.expect("the raw VCF body");
        serde_json::from_slice::<String>(&body).expect("the VCF JSON")
    }

    /// The `GET` as a service writes it with reqwest alone: the bearer
    /// header built per request from the token it holds, marked sensitive
    /// as the SDK's is.
    async fn raw_get(&self) -> SystemInfo {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.raw_token))
            .expect("a valid header value");
        authorization.set_sensitive(true);
        let response = self
            .raw_api
            .get(&self.get_url)
            .header(AUTHORIZATION, authorization)
            .send()
            .await
            .expect("the raw GET");
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.expect("the raw GET's body");
        serde_json::from_slice::<SystemInfo>(&body).expect("the GET's JSON")
    }

    /// The same `GET` through the session's API client.
    async fn api_client_get(&self) -> SystemInfo {
        let response = self
            .api_client
            .get(&self.get_url)
            .send()
            .await
            .expect("the API client's GET");
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.expect("the API client's body");
        serde_json::from_slice::<SystemInfo>(&body).expect("the GET's JSON")
    }

    /// `calls` calls of `variant`, one after another.
    async fn run(&self, variant: &str, calls: u32) {
        macro_rules! repeat {
            ($call:expr) => {
                for _ in 0..calls {
                    black_box($call);
                }
            };
        }
        match variant {
            "f5/raw" => repeat!(self.raw_f5().await),
            "f5/generated" => repeat!(
                self.generated_f5
                    .refresh_token(&self.f5_body)
                    .await
                    .expect("the generated F5 call")
            ),
            "f5/facade" => repeat!(
                self.facade_f5
                    .refresh_token("p")
                    .await
                    .expect("the facade F5 call")
            ),
            "vcf/raw" => repeat!(self.raw_vcf().await),
            "vcf/generated" => repeat!(
                self.generated_vcf
                    .refresh_access_token("refresh-token-id")
                    .await
                    .expect("the generated VCF call")
            ),
            "vcf/facade" => repeat!(
                self.facade_vcf
                    .refresh_access_token(&self.refresh)
                    .await
                    .expect("the facade VCF call")
            ),
            "get/raw" => repeat!(self.raw_get().await),
            "get/api_client" => repeat!(self.api_client_get().await),
            other => panic!("no client {other:?}"),
        }
    }
}

/// CPU time a thread has used, user and kernel: the first field of its
/// `schedstat` (Linux, nanoseconds on CPU); `None` where there is none.
fn cpu_time(schedstat: &Path) -> Option<Duration> {
    let stat = std::fs::read_to_string(schedstat).ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The client's and the server's CPU time so far.
fn cpu_times(server: &Server) -> Option<(Duration, Duration)> {
    let client = cpu_time(Path::new("/proc/thread-self/schedstat"))?;
    let server = cpu_time(server.schedstat.as_deref()?)?;
    Some((client, server))
}

fn criterion_benches(c: &mut Criterion, runtime: &Runtime, clients: &Clients) {
    for (api, _) in APIS {
        let mut group = c.benchmark_group(format!("{api}_overhead"));
        for variant in VARIANTS.iter().filter(|v| v.starts_with(api)) {
            group.bench_function(*variant, |b| {
                b.iter_custom(|iters| {
                    let calls = u32::try_from(iters).expect("fewer than 2^32 iterations");
                    let started = Instant::now();
                    runtime.block_on(clients.run(variant, calls));
                    started.elapsed()
                })
            });
        }
        group.finish();
    }
}

/// Criterion measures the clients one after another, so drift on a shared
/// machine lands in its ratios. These rounds interleave the clients and
/// take each ratio within a round, between calls made moments apart.
fn interleaved_rounds(runtime: &Runtime, clients: &Clients, server: &Server) {
    let calls = f64::from(CALLS_PER_ROUND);
    let per_call = |elapsed: Duration| elapsed.as_nanos() as f64 / calls;
    for _ in 0..ROUNDS {
        let mut wall = BTreeMap::new();
        let mut cpu = BTreeMap::new();
        let mut cpu_both = BTreeMap::new();
        for variant in VARIANTS {
            let cpu_before = cpu_times(server);
            let started = Instant::now();
            runtime.block_on(clients.run(variant, CALLS_PER_ROUND));
            wall.insert(variant, per_call(started.elapsed()));
            if let (Some(before), Some(after)) = (cpu_before, cpu_times(server)) {
                let client = after.0.saturating_sub(before.0);
                let server = after.1.saturating_sub(before.1);
                cpu.insert(variant, per_call(client));
                cpu_both.insert(variant, per_call(client + server));
            }
        }
        record_round("wall", &wall);
        record_round("cpu", &cpu);
        record_round("cpu+server", &cpu_both);
    }
}

/// Records one round's per-call figures and each layer's ratio to the raw
/// call of the same round.
fn record_round(measure: &str, per_call: &BTreeMap<&str, f64>) {
    for (variant, &value) in per_call {
        record(&format!("{measure}/{variant}"), value);
        let api = variant.split('/').next().expect("api/layer");
        if let Some(raw) = per_call.get(format!("{api}/raw").as_str()) {
            record(&format!("{measure}/ratio/{variant}"), value / raw);
        }
    }
}

/// Each client in its own process under callgrind, `CALLGRIND_RUNS` times,
/// interleaved; records instructions per call. Returns why not, if skipped.
fn instruction_counts() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|err| format!("no path to the bench: {err}"))?;
    let dir = std::env::temp_dir().join(format!("overhead-callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|err| format!("cannot create {dir:?}: {err}"))?;
    let result = (|| {
        for run in 0..CALLGRIND_RUNS {
            let mut client = BTreeMap::new();
            let mut both = BTreeMap::new();
            for variant in VARIANTS {
                let name = format!("{run}-{}", variant.replace('/', "-"));
                let counts = callgrind_child(&exe, &dir, &name, variant)?;
                let calls = f64::from(CALLGRIND_CALLS);
                client.insert(variant, counts.client as f64 / calls);
                both.insert(variant, counts.both as f64 / calls);
            }
            record_round("instructions", &client);
            record_round("instructions+server", &both);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Instructions counted in one child process.
struct Counts {
    /// On the client's thread, inside `counted_calls`.
    client: u64,
    /// That, and the server's thread inside `counted_serving` meanwhile.
    both: u64,
}

/// Runs one child under callgrind and returns the instructions it counted.
fn callgrind_child(exe: &Path, dir: &Path, name: &str, variant: &str) -> Result<Counts, String> {
    let out = dir.join(name);
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        // Count only between entering and leaving these functions, on the
        // thread that does so: the client's calls on the main thread, the
        // server's work on its own thread during those calls.
        .arg("--collect-atstart=no")
        .arg("--toggle-collect=*counted_calls*")
        .arg("--toggle-collect=*counted_serving*")
        .arg("--separate-threads=yes")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .env(CHILD_ENV, format!("{variant}:{CALLGRIND_CALLS}"))
        // Without fast bins, glibc's malloc does not consolidate them at
        // moments that depend on the heap's history, which otherwise moves
        // a process's count by up to 2 % from one run to the next.
        .env("GLIBC_TUNABLES", "glibc.malloc.mxfast=0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|err| format!("cannot run valgrind: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "valgrind failed on {variant}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // One profile per thread: `<name>-01` is the main thread, the client's.
    let mut counts = Counts { client: 0, both: 0 };
    let entries = std::fs::read_dir(dir).map_err(|err| format!("cannot list {dir:?}: {err}"))?;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(thread) = file
            .to_str()
            .and_then(|file| file.strip_prefix(name)?.strip_prefix('-'))
        else {
            continue;
        };
        let profile = std::fs::read_to_string(entry.path())
            .map_err(|err| format!("cannot read {:?}: {err}", entry.path()))?;
        let total: u64 = profile
            .lines()
            .find_map(|line| {
                line.strip_prefix("summary:")
                    .or(line.strip_prefix("totals:"))
            })
            .and_then(|total| total.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| format!("no instruction total in {:?}", entry.path()))?;
        if thread == "01" {
            counts.client = total;
        }
        counts.both += total;
    }
    if counts.client == 0 {
        return Err(format!(
            "nothing counted on the client's thread for {variant}"
        ));
    }
    Ok(counts)
}

/// The child process: warms the client up, then makes the counted calls.
fn callgrind_child_main(spec: &str) {
    let (variant, calls) = spec.split_once(':').expect("<variant>:<calls>");
    let calls: u32 = calls.parse().expect("a call count");
    let server = Server::spawn();
    let runtime = client_runtime();
    let clients = runtime.block_on(Clients::new(&server.base));
    runtime.block_on(clients.run(variant, CALLGRIND_WARM_UP));
    server.counted(|| counted_calls(&runtime, &clients, variant, calls));
}

/// The only code callgrind counts (`--toggle-collect`); not inlined, so the
/// symbol exists.
#[inline(never)]
fn counted_calls(runtime: &Runtime, clients: &Clients, variant: &str, calls: u32) {
    runtime.block_on(clients.run(variant, calls));
}

fn print_ratios(callgrind: &Result<(), String>) {
    println!("\n== per-call overhead, layer/raw (target ≤ 1.05) ==");
    println!(
        "   rounds: median of {ROUNDS} per-round ratios, (its quartiles), [medians of the first and second half]"
    );
    println!("   callgrind: median of {CALLGRIND_RUNS} runs, (min..max)");
    let series = [
        ("wall", "wall time, interleaved rounds", "ns"),
        ("cpu", "client thread CPU time, interleaved rounds", "ns"),
        (
            "cpu+server",
            "client and server threads' CPU time, interleaved rounds",
            "ns",
        ),
        (
            "instructions",
            "client thread instructions, callgrind",
            "Ir",
        ),
        (
            "instructions+server",
            "client and server threads' instructions, callgrind",
            "Ir",
        ),
    ];
    for (measure, label, unit) in series {
        println!("-- {label}");
        let counted = measure.starts_with("instructions");
        if counted && let Err(why) = callgrind {
            println!("   skipped: {why}");
            continue;
        }
        for (api, layers) in APIS {
            for layer in layers {
                let variant = format!("{api}/{layer}");
                let in_order = SAMPLES
                    .lock()
                    .expect("samples lock")
                    .get(&format!("{measure}/ratio/{variant}"))
                    .cloned()
                    .unwrap_or_default();
                let ratios = samples(&format!("{measure}/ratio/{variant}"));
                let Some(ratio) = quantile(&ratios, 0.5) else {
                    continue;
                };
                let spread = if counted {
                    format!(
                        "({:.3}..{:.3})",
                        quantile(&ratios, 0.0).unwrap_or(f64::NAN),
                        quantile(&ratios, 1.0).unwrap_or(f64::NAN)
                    )
                } else {
                    let (first, second) = in_order.split_at(in_order.len() / 2);
                    let half = |half: &[f64]| {
                        let mut half = half.to_vec();
                        half.sort_by(f64::total_cmp);
                        quantile(&half, 0.5).unwrap_or(f64::NAN)
                    };
                    format!(
                        "({:.3}..{:.3}) [{:.3} {:.3}]",
                        quantile(&ratios, 0.25).unwrap_or(f64::NAN),
                        quantile(&ratios, 0.75).unwrap_or(f64::NAN),
                        half(first),
                        half(second)
                    )
                };
                let verdict = if ratio <= 1.05 { "met" } else { "NOT met" };
                println!(
                    "{api:>5} {layer:<10}/raw = {ratio:.3} {spread}  {:.0} vs {:.0} {unit} per call; {verdict}",
                    quantile(&samples(&format!("{measure}/{variant}")), 0.5).unwrap_or(f64::NAN),
                    quantile(&samples(&format!("{measure}/{api}/raw")), 0.5).unwrap_or(f64::NAN),
                );
            }
        }
    }
}

/// Whether `measure` (`criterion`, `rounds` or `callgrind`) runs: all do,
/// unless `OVERHEAD_MEASURE` lists some (comma-separated).
fn runs(measure: &str) -> bool {
    std::env::var("OVERHEAD_MEASURE")
        .map(|list| list.split(',').any(|m| m.trim() == measure))
        .unwrap_or(true)
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        callgrind_child_main(&spec);
        return;
    }
    let server = Server::spawn();
    let runtime = client_runtime();
    let clients = runtime.block_on(Clients::new(&server.base));
    if runs("criterion") {
        let mut criterion = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(30)
            .configure_from_args();
        criterion_benches(&mut criterion, &runtime, &clients);
        criterion.final_summary();
    }
    if runs("rounds") {
        interleaved_rounds(&runtime, &clients, &server);
    }
    let callgrind = if runs("callgrind") {
        instruction_counts()
    } else {
        Err("not in OVERHEAD_MEASURE".to_owned())
    };
    print_ratios(&callgrind);
}
