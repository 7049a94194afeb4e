//! F5 XC's `PipelineTokenSource` as a table of scenarios on tokio's paused
//! clock, over real HTTP on loopback (`refresh_loopback`).
//!
//! Each row scripts the `refresh_token` endpoint (status, delay,
//! `Retry-After` per request), schedules callers (some with their own
//! timeouts), invalidations, clock advances and the drop of the source, and
//! states what must come out: the POSTs the server saw, each caller's
//! outcome and `stats()`.
//!
//! The server's n-th answer carries the token `T<n>`, so an outcome names
//! the POST it came from. The jittered backoff (80–100 % of each step) is the
//! only randomness: no row depends on where in that band a delay falls.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{F5_PATH, f5_client, quick_transport};
use refresh_loopback::{Loopback, Reply, Request};
use refresh_sdk::{
    AccessToken, AccessTokenSource, ErrorKind, ExposeSecret, PipelineStats, PipelineTokenSource,
    RetryPolicy, TransportOptions,
};
use serde_json::json;
use tokio::time::Instant;

// ------------------------------------------------------------ the server

/// One scripted answer of the endpoint.
#[derive(Clone, Copy, Debug)]
struct Ans {
    status: u16,
    delay_ms: u64,
    retry_after: Option<&'static str>,
}

const fn ok() -> Ans {
    Ans {
        status: 200,
        delay_ms: 0,
        retry_after: None,
    }
}

const fn fail(status: u16) -> Ans {
    Ans {
        status,
        delay_ms: 0,
        retry_after: None,
    }
}

impl Ans {
    /// The same answer, `ms` milliseconds after the request arrived.
    const fn late(mut self, ms: u64) -> Ans {
        self.delay_ms = ms;
        self
    }

    const fn retry_after(mut self, value: &'static str) -> Ans {
        self.retry_after = Some(value);
        self
    }
}

/// The `result` text of the token called `label`: JSON carrying the token,
/// as F5 XC documents it.
fn token_text(label: &str) -> String {
    json!({ "token": format!("secret-{label}") }).to_string()
}

fn label(token: &AccessToken) -> String {
    let value: serde_json::Value =
        serde_json::from_str(token.expose_secret()).expect("the result is JSON");
    value["token"]
        .as_str()
        .and_then(|t| t.strip_prefix("secret-"))
        .expect("a scripted token")
        .to_owned()
}

/// Answers request `n` (from 0) with `script[n]`, the last answer repeating
/// (an empty script answers a token at once).
fn endpoint(script: Vec<Ans>) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |request| {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", F5_PATH),
            "only refresh_token is called"
        );
        let ans = script
            .get(request.index)
            .or(script.last())
            .copied()
            .unwrap_or(ok());
        let reply = if ans.status == 200 {
            let label = format!("T{}", request.index + 1);
            Reply::json(200, json!({ "result": token_text(&label) }))
        } else {
            Reply::json(ans.status, json!(format!("scripted {}", ans.status)))
        };
        let reply = match ans.retry_after {
            Some(value) => reply.header("retry-after", value),
            None => reply,
        };
        reply.after(Duration::from_millis(ans.delay_ms))
    }
}

// ------------------------------------------------------------ the table

/// What the test does, in order.
#[derive(Clone, Debug)]
enum Step {
    /// `n` callers named `who` call `access_token()` at once, each giving up
    /// after its timeout in ms, if any. They run in the background.
    Read(&'static str, usize, Option<u64>),
    /// One caller reads every `every` ms, `times` times, awaiting each read.
    Poll(&'static str, u64, usize),
    /// Let this many milliseconds of virtual time pass.
    Sleep(u64),
    /// Report the token `T<n>` (by its text) as rejected, through the trait.
    Invalidate(&'static str),
    /// Drop the test's source: the last clone once the callers are done.
    DropSource,
}

use Step::*;

const fn read(who: &'static str) -> Step {
    Read(who, 1, None)
}

const S: u64 = 1000;

#[derive(Clone, Debug, PartialEq)]
enum Out {
    Token(&'static str),
    /// Any token (the caller's outcomes are each a token).
    AnyToken,
    Error(ErrorKind),
    Cancelled,
}

use Out::{AnyToken, Cancelled, Error as Fails, Token};

#[derive(Clone, Debug)]
struct Expect {
    /// POSTs the server saw.
    posts: usize,
    /// `stats()` (taken before the source is dropped, in a row that drops
    /// it): requests, failed, waited, invalidations.
    stats: [u64; 4],
    outcomes: Vec<(&'static str, Out)>,
}

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    script: Vec<Ans>,
    /// `reuse_for` this many ms; none: the default, no reuse.
    reuse_ms: Option<u64>,
    /// Transport retries (3 attempts, quick backoff) instead of one attempt.
    retries: bool,
    steps: Vec<Step>,
    expect: Expect,
}

fn row(name: &'static str, script: Vec<Ans>, steps: Vec<Step>, expect: Expect) -> Scenario {
    Scenario {
        name,
        script,
        reuse_ms: None,
        retries: false,
        steps,
        expect,
    }
}

impl Scenario {
    fn reuse(mut self, ms: u64) -> Self {
        self.reuse_ms = Some(ms);
        self
    }

    fn retries(mut self) -> Self {
        self.retries = true;
        self
    }
}

fn expect(posts: usize, stats: [u64; 4], outcomes: Vec<(&'static str, Out)>) -> Expect {
    Expect {
        posts,
        stats,
        outcomes,
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        // ---- coalescing
        row(
            "50 concurrent callers share one POST",
            vec![ok().late(200)],
            vec![Read("c", 50, None), Sleep(S)],
            expect(1, [1, 0, 50, 0], vec![("c", Token("T1"))]),
        ),
        row(
            "eight callers whose 300 ms timeouts end before a 400 ms POST: one POST, the next caller gets its token, the one after sends another",
            vec![ok().late(400)],
            vec![Read("c", 8, Some(300)), Sleep(500), read("d"), Sleep(10), read("e"), Sleep(S)],
            expect(
                2,
                [2, 0, 9, 0],
                vec![("c", Cancelled), ("d", Token("T1")), ("e", Token("T2"))],
            ),
        ),
        row(
            "a caller arriving while an abandoned POST is in flight joins it",
            vec![ok().late(400)],
            vec![Read("c", 8, Some(300)), Sleep(350), read("d"), Sleep(S)],
            expect(1, [1, 0, 9, 0], vec![("c", Cancelled), ("d", Token("T1"))]),
        ),
        row(
            "a token nobody received is kept for the next caller only 30 s",
            vec![ok().late(400)],
            vec![Read("c", 2, Some(100)), Sleep(31 * S), read("d"), Sleep(S)],
            expect(2, [2, 0, 3, 0], vec![("c", Cancelled), ("d", Token("T2"))]),
        ),
        // ---- no reuse by default
        row(
            "without reuse_for, sequential calls each send a POST",
            vec![ok().late(50)],
            vec![Poll("p", S, 5)],
            expect(5, [5, 0, 5, 0], vec![("p", AnyToken)]),
        ),
        // ---- reuse_for
        row(
            "reuse_for 100 s: served from the cache, renewed in the background from 75 s, no reader waits for the renewal",
            vec![ok(), ok().late(2 * S)],
            vec![
                read("a"),
                Sleep(70 * S),
                read("b"),
                Sleep(6 * S),
                read("c"),
                Sleep(S),
                Read("d", 10, None),
                Sleep(2 * S),
                read("e"),
                Sleep(10),
            ],
            expect(
                2,
                [2, 0, 1, 0],
                vec![
                    ("a", Token("T1")),
                    ("b", Token("T1")),
                    ("c", Token("T1")),
                    ("d", Token("T1")),
                    ("e", Token("T2")),
                ],
            ),
        )
        .reuse(100 * S),
        row(
            "reuse_for 100 s: renewals failing with 503 serve the cached token until 100 s, without a POST during backoff; then the error",
            vec![ok(), fail(503)],
            vec![
                read("a"),
                Sleep(80 * S),
                read("b"),
                Sleep(100),
                Read("c", 10, None),
                Sleep(S),
                read("d"),
                Sleep(25 * S),
                read("e"),
                Sleep(10),
            ],
            expect(
                4,
                [4, 3, 2, 0],
                vec![
                    ("a", Token("T1")),
                    ("b", Token("T1")),
                    ("c", Token("T1")),
                    ("d", Token("T1")),
                    ("e", Fails(ErrorKind::Server)),
                ],
            ),
        )
        .reuse(100 * S),
        // ---- failures and backoff
        row(
            "a failure with no token reaches all ten waiters; callers during the backoff get it at once and send nothing",
            vec![fail(503).late(100), ok()],
            vec![
                Read("c", 10, None),
                Sleep(150),
                Read("d", 10, None),
                Sleep(400),
                read("e"),
                Sleep(10),
            ],
            expect(
                2,
                [2, 1, 11, 0],
                vec![
                    ("c", Fails(ErrorKind::Server)),
                    ("d", Fails(ErrorKind::Server)),
                    ("e", Token("T2")),
                ],
            ),
        ),
        row(
            "a 401 backs off from 1 s doubling, not from 250 ms",
            vec![fail(401)],
            vec![
                read("a"),
                Sleep(500),
                read("b"),
                Sleep(600),
                read("c"),
                Sleep(1200),
                read("d"),
                Sleep(S),
                read("e"),
                Sleep(10),
            ],
            expect(
                3,
                [3, 3, 3, 0],
                vec![
                    ("a", Fails(ErrorKind::Auth)),
                    ("b", Fails(ErrorKind::Auth)),
                    ("c", Fails(ErrorKind::Auth)),
                    ("d", Fails(ErrorKind::Auth)),
                    ("e", Fails(ErrorKind::Auth)),
                ],
            ),
        ),
        row(
            "an unknown pipeline (404) backs off like refused credentials, not every few seconds",
            vec![fail(404), ok()],
            vec![read("a"), Sleep(500), read("b"), Sleep(600), read("c"), Sleep(10)],
            expect(
                2,
                [2, 1, 2, 0],
                vec![
                    ("a", Fails(ErrorKind::NotFound)),
                    ("b", Fails(ErrorKind::NotFound)),
                    ("c", Token("T2")),
                ],
            ),
        ),
        row(
            "a 403 is refused credentials too",
            vec![fail(403), ok()],
            vec![read("a"), Sleep(500), read("b"), Sleep(600), read("c"), Sleep(10)],
            expect(
                2,
                [2, 1, 2, 0],
                vec![
                    ("a", Fails(ErrorKind::Auth)),
                    ("b", Fails(ErrorKind::Auth)),
                    ("c", Token("T2")),
                ],
            ),
        ),
        row(
            "a 429 with Retry-After 2^64-1 (transport retries on): no panic, the error, a backoff clamped to 60 s",
            vec![fail(429).retry_after("18446744073709551615"), ok()],
            vec![read("a"), Sleep(30 * S), read("b"), Sleep(31 * S), read("c"), Sleep(10)],
            expect(
                2,
                [2, 1, 2, 0],
                vec![
                    ("a", Fails(ErrorKind::RateLimited)),
                    ("b", Fails(ErrorKind::RateLimited)),
                    ("c", Token("T2")),
                ],
            ),
        )
        .retries(),
        row(
            "a 429's Retry-After of 5 s is a floor over the 250 ms backoff",
            vec![fail(429).retry_after("5"), ok()],
            vec![read("a"), Sleep(3 * S), read("b"), Sleep(3 * S), read("c"), Sleep(10)],
            expect(
                2,
                [2, 1, 2, 0],
                vec![
                    ("a", Fails(ErrorKind::RateLimited)),
                    ("b", Fails(ErrorKind::RateLimited)),
                    ("c", Token("T2")),
                ],
            ),
        ),
        row(
            "transport retries inside one POST count once",
            vec![fail(503), ok()],
            vec![read("a"), Sleep(S)],
            expect(2, [1, 0, 1, 0], vec![("a", Token("T2"))]),
        )
        .retries(),
        // ---- invalidate
        row(
            "invalidate the cached token: five readers after it share one POST; a second report of it does nothing",
            vec![ok().late(100)],
            vec![
                read("a"),
                Sleep(S),
                Invalidate("T1"),
                Read("b", 5, None),
                Sleep(S),
                Invalidate("T1"),
                read("c"),
                Sleep(10),
            ],
            expect(
                2,
                [2, 0, 6, 1],
                vec![("a", Token("T1")), ("b", Token("T2")), ("c", Token("T2"))],
            ),
        )
        .reuse(100 * S),
        row(
            "invalidate another token: nothing changes",
            vec![ok()],
            vec![read("a"), Sleep(S), Invalidate("T9"), read("b"), Sleep(10)],
            expect(1, [1, 0, 1, 0], vec![("a", Token("T1")), ("b", Token("T1"))]),
        )
        .reuse(100 * S),
        row(
            "invalidate during a background renewal: readers join that renewal, no second POST",
            vec![ok(), ok().late(2 * S)],
            vec![
                read("a"),
                Sleep(80 * S),
                read("b"),
                Sleep(500),
                Invalidate("T1"),
                Read("c", 5, None),
                Sleep(3 * S),
            ],
            expect(
                2,
                [2, 0, 6, 1],
                vec![("a", Token("T1")), ("b", Token("T1")), ("c", Token("T2"))],
            ),
        )
        .reuse(100 * S),
        // ---- ownership
        row(
            "dropping the last clone while a POST is in flight: no panic, its task ends",
            vec![ok().late(2 * S)],
            vec![Read("c", 3, Some(100)), Sleep(200), DropSource, Sleep(3 * S)],
            expect(1, [1, 0, 3, 0], vec![("c", Cancelled)]),
        ),
    ]
}

// ------------------------------------------------------------ the runner

type Log = Arc<Mutex<Vec<(&'static str, Duration, Out)>>>;

fn outcome(result: refresh_sdk::Result<AccessToken>) -> Out {
    match result {
        Ok(token) => Out::Token(Box::leak(label(&token).into_boxed_str())),
        Err(err) => {
            let shown = format!("{err} {err:#} {err:?}");
            assert!(
                !shown.contains("secret-"),
                "an error shows a token: {shown}"
            );
            Out::Error(err.kind())
        }
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn run(scenario: &Scenario) -> Result<(), String> {
    let origin = Instant::now();
    let server = Loopback::start(endpoint(scenario.script.clone())).await;
    let transport = if scenario.retries {
        quick_transport()
    } else {
        TransportOptions::default().retry(RetryPolicy::no_retries())
    };
    // The server's task, and what earlier rows left behind.
    let baseline = alive_tasks();
    let mut source: Option<PipelineTokenSource> = Some({
        let source = f5_client(&server.url(), "api-token", transport).pipeline("p");
        match scenario.reuse_ms {
            Some(ms) => source.reuse_for(Duration::from_millis(ms)),
            None => source,
        }
    });
    let mut stats_at_drop = None;
    let mut alive_after_drop = None;
    let log: Log = Arc::default();
    let mut tasks = Vec::new();
    for step in scenario.steps.clone() {
        let current = || source.clone().expect("the source was dropped");
        match step {
            Read(who, n, timeout) => {
                for _ in 0..n {
                    let source = current();
                    let log = Arc::clone(&log);
                    tasks.push(tokio::spawn(async move {
                        let out = match timeout {
                            Some(ms) => {
                                match tokio::time::timeout(
                                    Duration::from_millis(ms),
                                    source.access_token(),
                                )
                                .await
                                {
                                    Ok(result) => outcome(result),
                                    Err(_) => Out::Cancelled,
                                }
                            }
                            None => outcome(source.access_token().await),
                        };
                        drop(source);
                        log.lock()
                            .expect("log lock")
                            .push((who, origin.elapsed(), out));
                    }));
                }
                tokio::task::yield_now().await;
            }
            Poll(who, every, times) => {
                let source = current();
                for _ in 0..times {
                    let out = outcome(source.access_token().await);
                    log.lock()
                        .expect("log lock")
                        .push((who, origin.elapsed(), out));
                    tokio::time::sleep(Duration::from_millis(every)).await;
                }
            }
            Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Invalidate(name) => {
                let rejected = AccessToken::new(token_text(name));
                // Through the trait object, as middleware would.
                let source: Arc<dyn AccessTokenSource> = Arc::new(current());
                source.invalidate(&rejected);
            }
            DropSource => {
                stats_at_drop = source.as_ref().map(PipelineTokenSource::stats);
                source = None;
                // Well before the POST would be answered.
                tokio::time::sleep(Duration::from_millis(10)).await;
                alive_after_drop = Some(alive_tasks());
            }
        }
    }
    for task in tasks {
        task.await
            .map_err(|err| format!("{}: a caller panicked: {err}", scenario.name))?;
    }
    let mut problems = Vec::new();
    let stats = match (&source, stats_at_drop) {
        (Some(source), _) => source.stats(),
        (None, Some(stats)) => stats,
        (None, None) => PipelineStats::default(),
    };
    if let Some(alive) = alive_after_drop
        && alive > baseline
    {
        // The POST's task and its connections should be gone: only the
        // server's task (and earlier rows' leftovers, which can only have
        // ended) may still run.
        problems.push(format!(
            "{alive} tasks alive 10 ms after the drop, {baseline} before the source was made"
        ));
    }
    let received = server.received();
    if received.len() != scenario.expect.posts {
        problems.push(format!(
            "{} POSTs, expected {}",
            received.len(),
            scenario.expect.posts
        ));
    }
    let got = [
        stats.requests,
        stats.failed,
        stats.waited,
        stats.invalidations,
    ];
    if got != scenario.expect.stats {
        problems.push(format!(
            "stats (requests, failed, waited, invalidations) {got:?}, expected {:?}",
            scenario.expect.stats
        ));
    }
    let log = log.lock().expect("log lock").clone();
    for (who, want) in &scenario.expect.outcomes {
        let got: Vec<&(&str, Duration, Out)> = log.iter().filter(|(w, ..)| w == who).collect();
        if got.is_empty() {
            problems.push(format!("{who}: no outcome"));
        }
        let wrong = got.iter().find(|(_, _, out)| match want {
            AnyToken => !matches!(out, Out::Token(_)),
            want => out != want,
        });
        if let Some((_, at, out)) = wrong {
            problems.push(format!("{who}: {out:?} at {at:?}, expected {want:?}"));
        }
    }
    for (who, ..) in log.iter() {
        if !scenario.expect.outcomes.iter().any(|(w, _)| w == who) {
            problems.push(format!("{who}: outcome not checked by the row"));
        }
    }
    drop(source);
    drop(server);
    // Let this row's connections close before the next row counts tasks.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}:\n    {}",
            scenario.name,
            problems.join("\n    ")
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn pipeline_scenarios() {
    let table = scenarios();
    assert!(table.len() >= 12, "the table has {} rows", table.len());
    let mut failures = Vec::new();
    for scenario in &table {
        if let Err(problem) = run(scenario).await {
            failures.push(problem);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
