//! `VcfSession::access_token()` and `VcfSession::with_access_token()` on a
//! fresh cached token (one thread, and two threads at once on one session or
//! on a session each, beside controls that only read a clock), a stampede of
//! 10,000 callers at expiry, 64 readers through several token rollovers with
//! a slow server, and the time `sdk-codegen` takes to generate each client.
//!
//! Prints: ns per cached read on one and two threads (targets: ≤ 100 ns, and
//! two threads no slower per call than one), the stampede's wall time,
//! waiters and refresh count (exactly one refresh, or the bench panics; with
//! the refresh served at once and held 100 ms at the server), the rollover's
//! read latencies and session stats (no read waits for a renewal after the
//! first login, or the bench panics), and codegen time per API (target:
//! < 1 s).
//!
//! `SESSION_BENCH` picks the parts to run, comma-separated, from `cached`,
//! `codegen`, `stampede`, `rollover` (default: all). `ROLLOVER_SECONDS`
//! (default 30) and `ROLLOVER_SKEW_MS` (default the session's 60 s) set the rollover's
//! length and the session's skew in it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use std::hint::black_box;

use criterion::Criterion;
use refresh_sandbox::{Operation, Sandbox};
use refresh_sdk::vcf::{SessionOptions, SessionStats, VcfCredentials, VcfSession};
use refresh_sdk::{ExposeSecret, VcfClient, VcfConfig};
use sdk_codegen::Api;

static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &str, elapsed: Duration, iters: u64) {
    SAMPLES
        .lock()
        .expect("samples lock")
        .entry(name.to_owned())
        .or_default()
        .push(elapsed.as_nanos() as f64 / iters as f64);
}

fn median(name: &str) -> Option<f64> {
    let samples = SAMPLES.lock().expect("samples lock");
    let mut values = samples.get(name)?.clone();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Polls a future once, outside any runtime: a fresh cached token must be
/// returned without waiting, so this measures the read path alone. Always
/// inlined: a call would move the whole future (a `memmove` of its state
/// machine) on every read, which `.await` in a caller does not.
#[inline(always)]
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a fresh cached token made the caller wait"),
    }
}

fn session(sandbox: &Sandbox, skew: Duration) -> VcfSession {
    let credentials = sandbox.credentials();
    let client = VcfClient::new(VcfConfig::new(&sandbox.vcf_url()).expect("valid config"))
        .expect("the VCF client builds");
    VcfSession::new(
        client,
        VcfCredentials::new(
            credentials.vcf_username.clone(),
            credentials.vcf_password.expose_secret(),
        ),
    )
    .with_options(SessionOptions::default().skew(skew))
}

const CACHED: [&str; 6] = [
    "access_token",
    "with_access_token",
    "access_token, own session",
    "with_access_token, own session",
    "control: std Instant::now",
    "control: tokio Instant::now",
];

fn cached_read(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let sandbox = runtime.block_on(async { Sandbox::start_default().await.expect("sandbox") });
    let sessions = [(); 2].map(|()| session(&sandbox, Duration::from_secs(60)));
    for session in &sessions {
        runtime
            .block_on(session.access_token())
            .expect("the first login");
    }
    // Each reader gets its thread's index (0 or 1) and reads either the one
    // shared session or a session of its own (two logins, two tokens: the
    // same code with nothing shared between the threads, so the difference
    // is what sharing costs). One closure per method, so that each is
    // called from one place and compiled as the one-session bench was.
    // `access_token()` hands out a shared clone; `with_access_token()` reads
    // the token in place (the closure takes its length, standing in for
    // formatting a header without allocating).
    let owned = |own: bool| {
        let sessions = &sessions;
        move |thread: usize| {
            let session = &sessions[thread * usize::from(own)];
            black_box(ready(session.access_token()).expect("a cached token"));
        }
    };
    let in_place = |own: bool| {
        let sessions = &sessions;
        move |thread: usize| {
            let session = &sessions[thread * usize::from(own)];
            black_box(ready(session.with_access_token(str::len)).expect("a cached token"));
        }
    };
    let (read_owned, own_owned) = (owned(false), owned(true));
    let (read_in_place, own_in_place) = (in_place(false), in_place(true));
    // The controls share nothing between threads: what their two-thread
    // ratio shows beyond 1.0 is the machine (two busy vCPUs), not the
    // session. The session reads tokio's clock, so that one is the fair
    // control; std's is the one the reads before the lifecycle engine used.
    let std_clock = |_| {
        black_box(Instant::now());
    };
    let tokio_clock = |_| {
        black_box(tokio::time::Instant::now());
    };
    let mut group = c.benchmark_group("cached_access_token");
    for (name, read) in CACHED.into_iter().zip([
        &read_owned as &(dyn Fn(usize) + Sync),
        &read_in_place,
        &own_owned,
        &own_in_place,
        &std_clock,
        &tokio_clock,
    ]) {
        group.bench_function(format!("{name}/1 thread"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    read(0);
                }
                let elapsed = started.elapsed();
                record(&format!("{name}/1 thread"), elapsed, iters);
                elapsed
            })
        });
        // Both threads make `iters` calls at once; the time per iteration is
        // the time per call each thread sees.
        group.bench_function(format!("{name}/2 threads"), |b| {
            b.iter_custom(|iters| {
                let start = Barrier::new(3);
                let started = std::thread::scope(|scope| {
                    for thread in 0..2 {
                        let start = &start;
                        scope.spawn(move || {
                            start.wait();
                            for _ in 0..iters {
                                read(thread);
                            }
                        });
                    }
                    start.wait();
                    Instant::now()
                });
                // Read after the scope has joined both threads.
                let elapsed = started.elapsed();
                record(&format!("{name}/2 threads"), elapsed, iters);
                elapsed
            })
        });
    }
    group.finish();
    for session in &sessions {
        let stats = session.stats();
        assert_eq!(
            (stats.logins, stats.refreshes, stats.waited),
            (1, 0, 1),
            "the cached reads were served by the first login's token alone"
        );
    }
    runtime.block_on(sandbox.shutdown());
}

fn print_cached() {
    println!("\n== cached read (medians; targets ≤ 100 ns, 2 threads ≤ 1 thread) ==");
    for name in CACHED {
        let control = name.starts_with("control");
        let one = median(&format!("{name}/1 thread"));
        let two = median(&format!("{name}/2 threads"));
        if let Some(one) = one {
            let verdict = match (control, one <= 100.0) {
                (true, _) => "control",
                (false, true) => "met",
                (false, false) => "NOT met",
            };
            println!("{name:<30} 1 thread : {one:.1} ns per call ({verdict})");
        }
        if let (Some(one), Some(two)) = (one, two) {
            let ratio = two / one;
            let verdict = match (control, ratio <= 1.0) {
                (true, _) => "control",
                (false, true) => "met",
                (false, false) => "NOT met",
            };
            println!(
                "{name:<30} 2 threads: {two:.1} ns per call per thread, {ratio:.3}× one thread ({verdict})"
            );
        }
    }
    // What two threads cost the in-place read beyond what they cost a bare
    // read of the same clock.
    let scaling = |name: &str| {
        Some(median(&format!("{name}/2 threads"))? / median(&format!("{name}/1 thread"))?)
    };
    if let (Some(read), Some(control)) = (
        scaling("with_access_token"),
        scaling("control: tokio Instant::now"),
    ) {
        let ratio = read / control;
        let verdict = if ratio <= 1.05 { "met" } else { "NOT met" };
        println!(
            "with_access_token two-thread ratio / tokio-clock control's: {read:.3} / {control:.3} = {ratio:.3} (target ≤ 1.05: {verdict})"
        );
    }
    // What sharing one session costs two threads, beyond the same reads on
    // a session each.
    for name in ["access_token", "with_access_token"] {
        if let (Some(shared), Some(own)) = (scaling(name), scaling(&format!("{name}, own session")))
        {
            println!(
                "{name} two-thread ratio, one shared session / a session per thread: {shared:.3} / {own:.3} = {:.3}",
                shared / own
            );
        }
    }
}

/// One stampede: `callers` tasks released together once the session counts
/// the token as expired, the server taking `server_delay` more for the
/// refresh. Returns the wall time to serve them all and the session's stats;
/// panics unless exactly one refresh reached the server.
async fn stampede(callers: usize, server_delay: Duration) -> (Duration, SessionStats) {
    // The sandbox's claims are whole seconds, so the session counts a 2 s
    // token as 1 s from when it asked (a 1 s token would count as 1 s and
    // could outlive its own `exp`).
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::from_secs(2))
        .start()
        .await
        .expect("the sandbox starts");
    let session = Arc::new(session(&sandbox, Duration::ZERO));
    let first = session.access_token().await.expect("the first login");
    let logged_in = Instant::now();
    // The refreshed token must outlive the stampede.
    sandbox
        .faults()
        .set_access_token_ttl(Duration::from_secs(3600));
    if !server_delay.is_zero() {
        sandbox
            .faults()
            .delay_next(Operation::VcfRefreshAccessToken, 1, server_delay);
    }
    // The lifetime as the session counts it (exp − iat, less the second a
    // whole-second iat may hide), from a moment no earlier than its request:
    // past this, with a zero skew, the session has no servable token.
    let token = first.expose_secret();
    let claims = refresh_sdk::jwt::expiry(token).zip(refresh_sdk::jwt::issued_at(token));
    let (exp, iat) = claims.expect("the sandbox issues JWTs with exp and iat");
    let lifetime = exp.duration_since(iat).expect("exp after iat") - Duration::from_secs(1);
    let stale_at = logged_in + lifetime + Duration::from_millis(20);
    // Nobody reads between the login and the release, so no background
    // refresh can start early.
    let barrier = Arc::new(tokio::sync::Barrier::new(callers + 1));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (session, barrier) = (Arc::clone(&session), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                session.access_token().await
            })
        })
        .collect();
    tokio::time::sleep_until(stale_at.into()).await;
    let released = Instant::now();
    barrier.wait().await;
    for task in tasks {
        task.await
            .expect("a caller panicked")
            .expect("every caller gets a token");
    }
    let elapsed = released.elapsed();
    let refreshes = sandbox.requests(Operation::VcfRefreshAccessToken);
    let logins = sandbox.requests(Operation::VcfCreateToken);
    sandbox.shutdown().await;
    let stats = session.stats();
    assert_eq!(
        (refreshes, logins, stats.refreshes, stats.logins),
        (1, 1, 1, 1),
        "stampede: {callers} callers at expiry must make exactly one refresh and no \
         new login (server saw {refreshes} refreshes, {logins} logins; {stats:?})"
    );
    (elapsed, stats)
}

/// The rollover run's settings: the sandbox's tokens live 8 s (counted as
/// 7 s: whole-second claims), so with the default skew (capped at 1.75 s, a
/// quarter of that) the session renews about every 3.5 s (half of 7 s), and
/// the server takes 500 ms for every refresh.
const ROLLOVER_TTL: Duration = Duration::from_secs(8);
const ROLLOVER_REFRESH_DELAY: Duration = Duration::from_millis(500);
const ROLLOVER_TASKS: usize = 64;
/// The session's skew in the rollover (`ROLLOVER_SKEW_MS`, default the
/// session's own 60 s, which a short token caps at a quarter of its life).
fn rollover_skew() -> Duration {
    let millis = std::env::var("ROLLOVER_SKEW_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000);
    Duration::from_millis(millis)
}

struct RolloverReport {
    duration: Duration,
    skew: Duration,
    /// Every read's latency, sorted, in ns.
    latencies: Vec<u64>,
    /// After the first login, and at the end.
    login: SessionStats,
    end: SessionStats,
    server_refreshes: u64,
}

/// 64 tasks call `access_token()` for `duration`, pausing 1 ms between
/// calls, while the token rolls over several times and each refresh takes
/// 500 ms at the server. Panics if a read fails, gets a token past its `exp`,
/// or (after the first login) waits for a renewal.
async fn rollover(duration: Duration, skew: Duration) -> RolloverReport {
    let sandbox = Sandbox::builder()
        .access_token_ttl(ROLLOVER_TTL)
        .start()
        .await
        .expect("the sandbox starts");
    // Far more than the run needs: every refresh is delayed.
    sandbox.faults().delay_next(
        Operation::VcfRefreshAccessToken,
        100_000,
        ROLLOVER_REFRESH_DELAY,
    );
    let session = Arc::new(session(&sandbox, skew));
    session.access_token().await.expect("the first login");
    let login = session.stats();
    let stop_at = Instant::now() + duration;
    let tasks: Vec<_> = (0..ROLLOVER_TASKS)
        .map(|_| {
            let session = Arc::clone(&session);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < stop_at {
                    let started = Instant::now();
                    let token = session.access_token().await;
                    latencies.push(started.elapsed().as_nanos() as u64);
                    let token = token.unwrap_or_else(|e| panic!("rollover: a read failed: {e}"));
                    let exp = refresh_sdk::jwt::expiry(token.expose_secret())
                        .expect("the sandbox issues JWTs");
                    assert!(
                        SystemTime::now() < exp,
                        "rollover: a read got a token past its exp"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a reader panicked"));
    }
    let end = session.stats();
    // A renewal started just before the stop reaches the server (and ends)
    // within the delay.
    tokio::time::sleep(ROLLOVER_REFRESH_DELAY + Duration::from_millis(200)).await;
    let server_refreshes = sandbox.requests(Operation::VcfRefreshAccessToken);
    sandbox.shutdown().await;
    latencies.sort_unstable();
    RolloverReport {
        duration,
        skew,
        latencies,
        login,
        end,
        server_refreshes,
    }
}

fn print_rollover(report: &RolloverReport) {
    let latencies = &report.latencies;
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
        Duration::from_nanos(latencies[index])
    };
    let slow = latencies.iter().filter(|&&ns| ns >= 100_000_000).count();
    println!(
        "\n== rollover: {ROLLOVER_TASKS} tasks reading access_token() for {:?}, 1 ms apart; \
         {}-s tokens; every refresh takes {ROLLOVER_REFRESH_DELAY:?} at the server; skew {:?} ==",
        report.duration,
        ROLLOVER_TTL.as_secs(),
        report.skew
    );
    println!(
        "reads: {}; latency p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}; reads ≥ 100 ms: {slow}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(0.999),
        Duration::from_nanos(*latencies.last().expect("reads"))
    );
    let (login, end) = (report.login, report.end);
    println!(
        "session: logins {}, refreshes {} (server saw {}), failed renewals {}; \
         waited {} at the first login, {} after it (must be 0)",
        end.logins,
        end.refreshes,
        report.server_refreshes,
        end.failed_renewals,
        login.waited,
        end.waited - login.waited
    );
}

/// Panics unless the rollover kept its promises: no read after the first
/// login waited for a renewal, one login, no failure.
fn check_rollover(report: &RolloverReport) {
    let (login, end, server_refreshes) = (report.login, report.end, report.server_refreshes);
    let waited = end.waited - login.waited;
    assert_eq!(
        waited, 0,
        "rollover: {waited} reads waited for a renewal after the first login \
         (refresh-ahead should renew in the background; {end:?})"
    );
    assert_eq!(
        (end.logins, end.failed_renewals, end.invalidations),
        (1, 0, 0),
        "rollover: one login, no failed renewal ({end:?})"
    );
    assert_eq!(
        server_refreshes, end.refreshes,
        "rollover: every refresh the session started reached the server"
    );
}

fn codegen(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let mut group = c.benchmark_group("codegen");
    group.sample_size(10);
    for api in Api::ALL {
        let spec = std::fs::read_to_string(root.join(api.spec_path())).expect("the spec");
        let name = format!("codegen/{}", api.package());
        group.bench_function(api.package(), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(sdk_codegen::client_source(api, &spec).expect("the client"));
                }
                let elapsed = started.elapsed();
                record(&name, elapsed, iters);
                elapsed
            })
        });
    }
    group.finish();
}

fn main() {
    let parts = std::env::var("SESSION_BENCH").unwrap_or_default();
    let run = |part: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == part);
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
    if run("cached") {
        cached_read(&mut criterion, &runtime);
    }
    if run("codegen") {
        codegen(&mut criterion);
    }
    criterion.final_summary();

    if run("cached") {
        print_cached();
    }

    // Stampedes and rollovers are one-off events, not loops criterion can
    // repeat.
    if run("stampede") {
        const CALLERS: usize = 10_000;
        const ROUNDS: usize = 5;
        // A loopback refresh takes well under a millisecond, less than
        // releasing 10,000 tasks on two workers: most callers then find the
        // new token already cached. With the refresh held 100 ms at the
        // server, every caller arrives while it is in flight.
        for delay in [Duration::ZERO, Duration::from_millis(100)] {
            let mut rounds: Vec<(Duration, SessionStats)> = (0..ROUNDS)
                .map(|_| runtime.block_on(stampede(CALLERS, delay)))
                .collect();
            rounds.sort_by_key(|(elapsed, _)| *elapsed);
            // Less the first login's wait.
            let waited: Vec<u64> = rounds.iter().map(|(_, s)| s.waited - 1).collect();
            println!(
                "\n== stampede: {CALLERS} concurrent access_token() at expiry, refresh held \
                 {delay:?} at the server, {ROUNDS} rounds =="
            );
            println!("refresh requests at the server: exactly 1 in every round (met)");
            println!("callers that waited for the refresh, per round: {waited:?}");
            println!(
                "wall time to serve all callers: median {:?}, min {:?}, max {:?}",
                rounds[ROUNDS / 2].0,
                rounds[0].0,
                rounds[ROUNDS - 1].0
            );
        }
    }

    if run("rollover") {
        let seconds = std::env::var("ROLLOVER_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        let report = runtime.block_on(rollover(Duration::from_secs(seconds), rollover_skew()));
        print_rollover(&report);
        check_rollover(&report);
    }

    if run("codegen") {
        println!("\n== codegen (medians; target < 1 s) ==");
        for api in Api::ALL {
            if let Some(ns) = median(&format!("codegen/{}", api.package())) {
                let verdict = if ns < 1e9 { "met" } else { "NOT met" };
                println!("{:<10} {:.1} ms ({verdict})", api.package(), ns / 1e6);
            }
        }
    }
}
