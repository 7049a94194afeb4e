//! `VcfSession` as a table of scenarios on tokio's paused clock.
//!
//! Each row scripts an SDDC Manager on loopback (answers, delays, token
//! lifetimes, its clock's offset from ours), schedules callers (some with
//! their own timeouts), reports and logouts between clock advances, and
//! states what must come out: the requests the server saw per operation, each
//! caller's outcome, the refresh-token ids invalidated and `stats()`.
//!
//! Virtual time makes hours of token life run in milliseconds and every run
//! the same; the session reads JWT times against a wall clock that moves with
//! it. The jittered backoff (80–100 % of each step) is the only randomness:
//! no row depends on where in that band a delay falls.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use refresh_loopback::Loopback;
use refresh_sdk::vcf::{SessionOptions, VcfCredentials, VcfSession};
use refresh_sdk::{
    AccessToken, AccessTokenSource, ErrorKind, ExposeSecret, RetryPolicy, TransportOptions,
    VcfClient, VcfConfig,
};
use serde_json::json;
use tokio::time::Instant;

// ------------------------------------------------------------ the server

/// How a token looks.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A JWT with `exp` this many seconds after the server's now, and `iat`.
    Jwt(i64),
    /// A JWT with `exp` but no `iat`.
    JwtNoIat(i64),
    /// A JWT without `exp`.
    NoExp,
    /// Not a JWT.
    Opaque,
}

/// One scripted answer.
#[derive(Clone, Debug)]
enum Ans {
    Token(Shape),
    Fail(u16, Option<&'static str>),
    Late(u64, Box<Ans>),
}

const fn tok(seconds: i64) -> Ans {
    Ans::Token(Shape::Jwt(seconds))
}

const fn fail(status: u16) -> Ans {
    Ans::Fail(status, None)
}

impl Ans {
    /// The same answer, `ms` milliseconds later.
    fn late(self, ms: u64) -> Ans {
        Ans::Late(ms, Box::new(self))
    }
}

/// What the server answers, per operation. Each list is used in order and
/// its last answer repeats; an empty list answers a one-hour JWT (or 204).
#[derive(Clone, Debug, Default)]
struct Script {
    login: Vec<Ans>,
    refresh: Vec<Ans>,
    delete: Vec<Ans>,
    /// The server's clock minus ours, in seconds.
    offset: i64,
    /// Every token operation answers 503 until this much virtual time has
    /// passed.
    down_for: Option<Duration>,
    /// Its answers carry an unreadable `Date` instead of its clock's.
    no_date: bool,
}

#[derive(Default)]
struct Seen {
    requests: [usize; 3],
    login_times: Vec<Duration>,
    /// When logins answered 400, 401 or 403 arrived.
    refused_times: Vec<Duration>,
    live: HashSet<String>,
    deleted: Vec<String>,
}

const LOGIN: usize = 0;
const REFRESH: usize = 1;
const DELETE: usize = 2;

/// The wall clock both sides read: a fixed date plus the virtual time passed.
#[derive(Clone, Copy)]
struct Clock {
    origin: Instant,
}

impl Clock {
    const BASE: Duration = Duration::from_secs(1_900_000_000);

    fn wall(self) -> SystemTime {
        UNIX_EPOCH + Self::BASE + self.origin.elapsed()
    }

    /// The server's wall clock, `offset` seconds off ours.
    fn server(self, offset: i64) -> SystemTime {
        let off = Duration::from_secs(offset.unsigned_abs());
        if offset < 0 {
            self.wall() - off
        } else {
            self.wall() + off
        }
    }
}

fn jwt(subject: &str, claims: serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload = claims;
    payload["sub"] = json!(subject);
    format!(
        "{}.{}.sig",
        b64.encode(r#"{"alg":"none"}"#),
        b64.encode(payload.to_string())
    )
}

fn token_text(shape: Shape, name: &str, server_now: i64) -> String {
    match shape {
        Shape::Jwt(life) => jwt(name, json!({"iat": server_now, "exp": server_now + life})),
        Shape::JwtNoIat(life) => jwt(name, json!({"exp": server_now + life})),
        Shape::NoExp => jwt(name, json!({"iat": server_now})),
        Shape::Opaque => format!("opaque-{name}"),
    }
}

/// What a caller's token was called by the server: `L2` is the access token
/// of the second login request, `R1` of the first refresh request.
fn label(token: &str) -> String {
    if let Some(name) = token.strip_prefix("opaque-") {
        return name.to_owned();
    }
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("a test JWT payload");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("test JWT claims");
    claims["sub"].as_str().expect("a subject").to_owned()
}

struct Reply {
    status: u16,
    body: serde_json::Value,
    retry_after: Option<&'static str>,
    delay: Duration,
}

fn pick(list: &[Ans], index: usize, default: Ans) -> Ans {
    list.get(index).or(list.last()).cloned().unwrap_or(default)
}

fn answer(script: &Script, clock: Clock, seen: &mut Seen, op: usize, body: &[u8]) -> Reply {
    seen.requests[op] += 1;
    let n = seen.requests[op];
    if op == LOGIN {
        seen.login_times.push(clock.origin.elapsed());
    }
    let id: String = serde_json::from_slice(body).unwrap_or_default();
    let mut ans = match op {
        LOGIN => pick(&script.login, n - 1, tok(3600)),
        REFRESH => pick(&script.refresh, n - 1, tok(3600)),
        _ => pick(&script.delete, n - 1, Ans::Token(Shape::Opaque)),
    };
    if op == DELETE {
        seen.deleted.push(id.clone());
    }
    if script
        .down_for
        .is_some_and(|down| clock.origin.elapsed() < down)
    {
        ans = fail(503);
    }
    let mut delay = Duration::ZERO;
    while let Ans::Late(ms, inner) = ans {
        delay += Duration::from_millis(ms);
        ans = *inner;
    }
    let server_now = i64::try_from(
        clock
            .wall()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("seconds fit")
        + script.offset;
    if op == LOGIN && matches!(ans, Ans::Fail(400 | 401 | 403, _)) {
        seen.refused_times.push(clock.origin.elapsed());
    }
    let (status, body) = match ans {
        Ans::Fail(status, _) => (
            status,
            json!({
                "message": format!("scripted {status}"),
                "errorCode": if op == LOGIN && status == 400 { "TOKEN_CREATION_FAILED" } else { "SCRIPTED" },
            }),
        ),
        Ans::Token(shape) => match op {
            LOGIN => {
                let refresh = format!("RT{n}");
                seen.live.insert(refresh.clone());
                (
                    201,
                    json!({
                        "accessToken": token_text(shape, &format!("L{n}"), server_now),
                        "refreshToken": {"id": refresh},
                    }),
                )
            }
            REFRESH if !seen.live.contains(&id) => (
                404,
                json!({"message": "Refresh token not found", "errorCode": "TOKEN_NOT_FOUND"}),
            ),
            REFRESH => (200, json!(token_text(shape, &format!("R{n}"), server_now))),
            _ if seen.live.remove(&id) => (204, serde_json::Value::Null),
            _ => (404, json!({"message": "Refresh token not found"})),
        },
        Ans::Late(..) => unreachable!("unwrapped above"),
    };
    let retry_after = match pick(
        match op {
            LOGIN => &script.login,
            REFRESH => &script.refresh,
            _ => &script.delete,
        },
        n - 1,
        tok(0),
    ) {
        Ans::Fail(_, retry_after) => retry_after,
        _ => None,
    };
    Reply {
        status,
        body,
        retry_after,
        delay,
    }
}

struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
    _loopback: Loopback,
}

async fn start_server(script: Script, clock: Clock) -> Server {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = Arc::clone(&seen);
    let loopback = Loopback::start(move |request| {
        let op = match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/v1/tokens") => LOGIN,
            ("PATCH", "/v1/tokens/access-token/refresh") => REFRESH,
            ("DELETE", "/v1/tokens/refresh-token") => DELETE,
            (method, path) => panic!("unexpected request {method} {path}"),
        };
        let reply = {
            let mut seen = log.lock().expect("server log lock");
            answer(&script, clock, &mut seen, op, &request.body)
        };
        let mut response = if reply.body.is_null() {
            refresh_loopback::Reply::empty(reply.status)
        } else {
            refresh_loopback::Reply::json(reply.status, reply.body)
        };
        // Its own clock, as an HTTP server dates every answer: as it reads
        // once the delay has passed (the paused clock wakes the delay's
        // sleep at its exact end).
        let date = if script.no_date {
            "unknown".to_owned()
        } else {
            httpdate::fmt_http_date(clock.server(script.offset) + reply.delay)
        };
        response = response.header("date", &date);
        if let Some(wait) = reply.retry_after {
            response = response.header("retry-after", wait);
        }
        response.after(reply.delay)
    })
    .await;
    Server {
        url: loopback.url(),
        seen,
        _loopback: loopback,
    }
}

// ------------------------------------------------------------ the table

/// What the test does, in order.
#[derive(Clone, Debug)]
enum Step {
    /// `n` callers named `who` call `access_token()` at once, each giving up
    /// after its timeout, if any. They run in the background.
    Read(&'static str, usize, Option<u64>),
    /// One caller reads every `every` ms, `times` times, awaiting each read.
    Poll(&'static str, u64, usize),
    /// Let this many milliseconds of virtual time pass.
    Sleep(u64),
    /// Report the token a caller got under this label as rejected.
    Invalidate(&'static str),
    /// `logout()`, given up after the timeout, if any; awaited.
    Logout(&'static str, Option<u64>),
}

use Step::*;

const fn read(who: &'static str) -> Step {
    Read(who, 1, None)
}

const S: u64 = 1000;
const MIN: u64 = 60 * S;

#[derive(Clone, Debug, PartialEq)]
enum Out {
    Token(&'static str),
    Error(ErrorKind),
    Cancelled,
    Done,
    /// Polls fail until a first token, which arrives by this virtual time.
    FirstTokenBy(u64),
    /// Every read fails, whatever the error.
    NoToken,
}

use Out::{Cancelled, Done, Error as Fails, Token};

#[derive(Clone, Debug, Default)]
struct Expect {
    /// Requests the server saw: logins, refreshes, deletes.
    requests: [usize; 3],
    /// `stats()`: logins, refreshes, failed renewals, waited, invalidations.
    stats: Option<[u64; 5]>,
    outcomes: Vec<(&'static str, Out)>,
    /// Refresh-token ids the server was asked to invalidate, in order.
    deleted: Vec<&'static str>,
    /// The longest time between two login requests.
    max_login_gap: Option<u64>,
    /// The shortest time between two login requests.
    min_login_gap: Option<u64>,
    /// Refused logins (those answered 400, 401 or 403) at least this far
    /// apart, and at most 2 in any window of the second length.
    refused_gaps: Option<(u64, u64)>,
}

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    script: Script,
    options: fn(SessionOptions) -> SessionOptions,
    /// Transport retries (3 attempts, quick backoff) instead of one attempt.
    retries: bool,
    steps: Vec<Step>,
    expect: Expect,
}

fn same(options: SessionOptions) -> SessionOptions {
    options
}

fn row(name: &'static str, script: Script, steps: Vec<Step>, expect: Expect) -> Scenario {
    Scenario {
        name,
        script,
        options: same,
        retries: false,
        steps,
        expect,
    }
}

impl Scenario {
    fn options(mut self, options: fn(SessionOptions) -> SessionOptions) -> Self {
        self.options = options;
        self
    }

    fn retries(mut self) -> Self {
        self.retries = true;
        self
    }
}

fn script(login: Vec<Ans>, refresh: Vec<Ans>) -> Script {
    Script {
        login,
        refresh,
        ..Script::default()
    }
}

fn expect(requests: [usize; 3], stats: [u64; 5], outcomes: Vec<(&'static str, Out)>) -> Expect {
    Expect {
        requests,
        stats: Some(stats),
        outcomes,
        ..Expect::default()
    }
}

impl Expect {
    fn deleted(mut self, ids: Vec<&'static str>) -> Self {
        self.deleted = ids;
        self
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        // ---- the basics
        row(
            "a first read logs in; later reads are served from the cache",
            Script::default(),
            vec![read("a"), Sleep(S), Read("b", 5, None), Sleep(S)],
            expect([1, 0, 0], [1, 0, 0, 1, 0], vec![("a", Token("L1")), ("b", Token("L1"))]),
        ),
        row(
            "a session nobody reads sends nothing, and renews on the next read",
            Script::default(),
            vec![read("a"), Sleep(3 * 60 * MIN), read("b"), Sleep(S)],
            expect([1, 1, 0], [1, 1, 0, 2, 0], vec![("a", Token("L1")), ("b", Token("R1"))]),
        ),
        // ---- row 1: callers cancelled by their own timeouts
        row(
            "row 1: eight callers whose 300 ms timeouts end before a 400 ms login: one login, and the next caller is served",
            script(vec![tok(3600).late(400)], vec![]),
            vec![Read("c", 8, Some(300)), Sleep(500), read("d"), Sleep(S)],
            expect(
                [1, 0, 0],
                [1, 0, 0, 8, 0],
                vec![("c", Cancelled), ("d", Token("L1"))],
            ),
        ),
        row(
            "row 1: a caller arriving while an abandoned login is in flight joins it",
            script(vec![tok(3600).late(400)], vec![]),
            vec![Read("c", 8, Some(300)), Sleep(350), read("d"), Sleep(S)],
            expect(
                [1, 0, 0],
                [1, 0, 0, 9, 0],
                vec![("c", Cancelled), ("d", Token("L1"))],
            ),
        ),
        // ---- row 2: absurd numbers from the server
        row(
            "row 2: a 503 with Retry-After 2^64-1 on the login: no panic, the error, a backoff of at most a minute",
            script(
                vec![Ans::Fail(503, Some("18446744073709551615")), tok(3600)],
                vec![],
            ),
            vec![read("a"), Sleep(S), read("b"), Sleep(61 * S), read("c"), Sleep(S)],
            expect(
                [2, 0, 0],
                [2, 0, 1, 2, 0],
                vec![
                    ("a", Fails(ErrorKind::Server)),
                    ("b", Fails(ErrorKind::Server)),
                    ("c", Token("L2")),
                ],
            ),
        )
        .retries(),
        // ---- row 3: what may have been processed is not sent again
        row(
            "row 3: a 504 on createToken is not sent again (it may have made a token pair)",
            script(vec![fail(504), tok(3600)], vec![]),
            vec![read("a"), Sleep(300), read("b"), Sleep(S)],
            expect(
                [2, 0, 0],
                [2, 0, 1, 2, 0],
                vec![("a", Fails(ErrorKind::Server)), ("b", Token("L2"))],
            ),
        )
        .retries(),
        row(
            "row 3: a 504 on refreshAccessToken is retried (it only mints an access token); the retry counts once",
            script(vec![tok(40)], vec![fail(504), tok(3600)]),
            vec![read("a"), Sleep(31 * S), read("b"), Sleep(S)],
            expect([1, 2, 0], [1, 1, 0, 2, 0], vec![("a", Token("L1")), ("b", Token("R2"))]),
        )
        .retries(),
        // ---- row 4: static stability
        row(
            "row 4: refreshes failing with 503 reach no caller while the token lives; once it has expired, the next renewal is a login, and the refresh token it supersedes is invalidated",
            script(vec![tok(40)], vec![fail(503)]),
            vec![
                read("a"),
                Sleep(31 * S),
                read("b"),
                Sleep(S),
                read("c"),
                Sleep(9 * S),
                read("d"),
                Sleep(S),
            ],
            expect(
                [2, 2, 1],
                [2, 2, 2, 4, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Token("L1")),
                    ("c", Token("L1")),
                    ("d", Token("L2")),
                ],
            )
            .deleted(vec!["RT1"]        ),
        ),
        row(
            "row 4: while the session backs off, a stale token is served at once and nothing is sent",
            script(vec![tok(40)], vec![fail(503)]),
            vec![read("a"), Sleep(31 * S), read("b"), Sleep(100), Read("c", 20, None), Sleep(50)],
            expect(
                [1, 1, 0],
                [1, 1, 1, 2, 0],
                vec![("a", Token("L1")), ("b", Token("L1")), ("c", Token("L1"))],
            ),
        ),
        row(
            "row 4: with the token expired and the server down, callers get the error at once",
            script(vec![tok(40)], vec![fail(503)]),
            vec![read("a"), Sleep(45 * S), read("b"), Sleep(10), Read("c", 10, None), Sleep(10)],
            expect(
                [1, 1, 0],
                [1, 1, 1, 2, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Fails(ErrorKind::Server)),
                    ("c", Fails(ErrorKind::Server)),
                ],
            ),
        ),
        {
            let mut expect = Expect {
                outcomes: vec![("p", Out::FirstTokenBy(25 * S))],
                max_login_gap: Some(4 * S + 100),
                ..Expect::default()
            };
            expect.requests = [usize::MAX, 0, 0];
            row(
                "row 4: down for 20 s: retries back off at most 4 s, and a caller gets a token within 5 s of the recovery",
                Script {
                    down_for: Some(Duration::from_secs(20)),
                    ..Script::default()
                },
                vec![Poll("p", 100, 300)],
                expect,
            )
        },
        row(
            "row 4: a refresh that times out (30 s per attempt) is not a caller's error while the token lives",
            script(vec![tok(200)], vec![tok(3600).late(60 * S)]),
            vec![read("a"), Sleep(151 * S), Read("b", 3, None), Sleep(40 * S)],
            expect(
                [1, 1, 0],
                [1, 1, 1, 4, 0],
                vec![("a", Token("L1")), ("b", Token("L1"))],
            ),
        ),
        row(
            "issue 15 row 4: readers past the skew while a slow refresh fails: cancelled ones cancel only their wait, the others wait at most max_wait for it, later ones get the cached token at once, and nobody gets the error",
            script(vec![tok(20)], vec![fail(503).late(2 * S)]),
            vec![
                read("a"),
                Sleep(15 * S),
                Read("c", 3, Some(300)),
                Sleep(500),
                read("d"),
                Sleep(S),
                read("e"),
                Sleep(3 * S),
            ],
            expect(
                [1, 1, 0],
                [1, 1, 1, 5, 0],
                vec![
                    ("a", Token("L1")),
                    ("c", Cancelled),
                    ("d", Token("L1")),
                    ("e", Token("L1")),
                ],
            ),
        ),
        // ---- refused refresh tokens
        row(
            "a refresh token refused with 400, 401 or 403 is given up for a login, not retried until it runs out",
            script(vec![tok(40)], vec![fail(400), fail(401), fail(403)]),
            vec![
                read("a"),
                Sleep(45 * S),
                read("b"),
                Sleep(45 * S),
                read("c"),
                Sleep(45 * S),
                read("d"),
                Sleep(S),
            ],
            expect(
                [4, 3, 0],
                [4, 3, 0, 4, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Token("L2")),
                    ("c", Token("L3")),
                    ("d", Token("L4")),
                ],
            ),
        ),
        row(
            "a refresh answered 429 keeps its refresh token: the next renewal refreshes again (readers past the skew wait up to max_wait for each, and get the cached token when one fails)",
            script(vec![tok(40)], vec![fail(429), tok(40)]),
            vec![read("a"), Sleep(31 * S), read("b"), Sleep(2 * S), read("c"), Sleep(S), read("d"), Sleep(S)],
            expect(
                [1, 2, 0],
                [1, 2, 1, 3, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Token("L1")),
                    ("c", Token("R2")),
                    ("d", Token("R2")),
                ],
                    ),
        ),
        // ---- row 5: clocks and lifetimes
        row(
            "row 5: a server clock 2 h behind ours costs no refreshes (lifetime = exp - iat)",
            Script {
                offset: -2 * 3600,
                ..Script::default()
            },
            vec![Poll("p", S, 50)],
            expect([1, 0, 0], [1, 0, 0, 1, 0], vec![("p", Token("L1"))]),
        ),
        row(
            "row 5: no iat, a server clock 2 h behind ours: exp less its Date is the lifetime, no refreshes",
            Script {
                login: vec![Ans::Token(Shape::JwtNoIat(3600))],
                offset: -2 * 3600,
                ..Script::default()
            },
            vec![Poll("p", S, 50)],
            expect([1, 0, 0], [1, 0, 0, 1, 0], vec![("p", Token("L1"))]),
        ),
        row(
            "row 5: no iat, a server clock a day ahead: a 60 s token is not served past its minute",
            Script {
                login: vec![Ans::Token(Shape::JwtNoIat(60))],
                refresh: vec![Ans::Token(Shape::JwtNoIat(60))],
                offset: 24 * 3600,
                ..Script::default()
            },
            vec![read("a"), Sleep(61 * S), read("b"), Sleep(S)],
            expect(
                [1, 1, 0],
                [1, 1, 0, 2, 0],
                vec![("a", Token("L1")), ("b", Token("R1"))],
            ),
        ),
        row(
            "row 5: no iat, no readable Date and an exp already past by our clock: kept for the 10 s minimum, not renewed per read",
            Script {
                login: vec![Ans::Token(Shape::JwtNoIat(3600))],
                refresh: vec![Ans::Token(Shape::JwtNoIat(3600))],
                offset: -2 * 3600,
                no_date: true,
                ..Script::default()
            },
            vec![Poll("p", S, 20)],
            // Renewed in the background at half of the 10 s (twice the
            // 2.5 s skew): only the first read, which found no token, waits.
            expect([1, 3, 0], [1, 3, 0, 1, 0], vec![("p", Out::FirstTokenBy(0))]),
        ),
        row(
            "row 5: a 3 s token with the default 60 s skew is renewed in the background about every second, not on every read, and no reader waits for it (2 s of life counted, a quarter of it as skew, half as refresh-ahead)",
            script(vec![tok(3)], vec![tok(3)]),
            vec![Poll("p", 70, 143)],
            expect([1, 9, 0], [1, 9, 0, 1, 0], vec![("p", Out::FirstTokenBy(0))]),
        ),
        row(
            "row 5: a skew larger than the lifetime shrinks to a quarter of it; the renewal starts at half of it, so nobody waits",
            script(vec![tok(120)], vec![]),
            vec![read("a"), Sleep(60 * S), read("b"), Sleep(40 * S), read("c"), Sleep(S)],
            expect(
                [1, 1, 0],
                [1, 1, 0, 1, 0],
                vec![("a", Token("L1")), ("b", Token("L1")), ("c", Token("R1"))],
            ),
        )
        .options(|o| o.skew(Duration::from_secs(600))),
        row(
            "row 5: a JWT without exp lives the assumed hour and is renewed ahead at 45 min",
            script(vec![Ans::Token(Shape::NoExp)], vec![]),
            vec![
                read("a"),
                Sleep(44 * MIN),
                read("b"),
                Sleep(2 * MIN),
                read("c"),
                Sleep(S),
                read("d"),
                Sleep(S),
            ],
            expect(
                [1, 1, 0],
                [1, 1, 0, 1, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Token("L1")),
                    ("c", Token("L1")),
                    ("d", Token("R1")),
                ],
            ),
        ),
        row(
            "row 5: an opaque token lives the assumed lifetime",
            script(vec![Ans::Token(Shape::Opaque)], vec![Ans::Token(Shape::Opaque)]),
            vec![read("a"), Sleep(7 * MIN), read("b"), Sleep(2 * MIN + 30 * S), read("c"), Sleep(S)],
            expect(
                [1, 1, 0],
                [1, 1, 0, 2, 0],
                vec![("a", Token("L1")), ("b", Token("L1")), ("c", Token("R1"))],
            ),
        )
        .options(|o| o.assumed_access_lifetime(Duration::from_secs(10 * 60))),
        // ---- row 6: refused credentials
        row(
            "row 6: a wrong password: 50 concurrent callers share one login, 10 more calls in 0.5 s send nothing",
            script(vec![fail(400)], vec![]),
            vec![Read("c", 50, None), Sleep(10), Poll("d", 50, 10)],
            expect(
                [1, 0, 0],
                [1, 0, 1, 50, 0],
                vec![("c", Fails(ErrorKind::Auth)), ("d", Fails(ErrorKind::Auth))],
            ),
        ),
        row(
            "issue 15 row 1: a wrong password, read every 100 ms for 40 s: one refused login, the same password not tried again for 5 min, every caller gets the Auth error at once",
            script(vec![fail(400)], vec![]),
            vec![Poll("p", 100, 400)],
            expect([1, 0, 0], [1, 0, 1, 1, 0], vec![("p", Fails(ErrorKind::Auth))]),
        ),
        {
            let mut row = row(
                "issue 15 row 1: at most 2 refused logins in any 15 min, 5 min apart, however often callers ask (30 min of reads)",
                script(vec![fail(401)], vec![]),
                vec![Poll("p", S, 30 * 60)],
                // At 0, 5, 15 and 20 min: each 5 min after the last, none
                // while two fall in the last 15 min.
                expect([4, 0, 0], [4, 0, 4, 4, 0], vec![("p", Fails(ErrorKind::Auth))]),
            );
            row.expect.min_login_gap = Some(5 * MIN);
            row.expect.refused_gaps = Some((5 * MIN, 15 * MIN));
            row
        },
        {
            let mut row = row(
                "issue 15 row 2: 503s between the refusals neither reset nor shorten the refused backoff or the limit",
                script(
                    vec![fail(400), fail(503), fail(503), fail(400), fail(503), fail(400)],
                    vec![],
                ),
                vec![Poll("p", S, 20 * 60)],
                // 400 at 0; 503, 503, 400 from 5 min; 503, 400 from 15 min;
                // the next only at 20 min, when the one after 5 min leaves
                // the window.
                expect([6, 0, 0], [6, 0, 6, 6, 0], vec![("p", Out::NoToken)]),
            );
            row.expect.refused_gaps = Some((5 * MIN, 15 * MIN));
            row
        },
        row(
            "row 6: a 403 is refused credentials too, with the vendor's detail kept",
            script(vec![fail(403)], vec![]),
            vec![read("a"), Sleep(500), read("b"), Sleep(600), read("c"), Sleep(10)],
            expect(
                [1, 0, 0],
                [1, 0, 1, 1, 0],
                vec![
                    ("a", Fails(ErrorKind::Auth)),
                    ("b", Fails(ErrorKind::Auth)),
                    ("c", Fails(ErrorKind::Auth)),
                ],
            ),
        ),
        // ---- row 7: logout is final
        row(
            "row 7: after logout, reads fail with Closed and send nothing",
            Script::default(),
            vec![read("a"), Sleep(10), Logout("l", None), read("b"), Sleep(S)],
            expect(
                [1, 0, 1],
                [1, 0, 0, 1, 0],
                vec![("a", Token("L1")), ("l", Done), ("b", Fails(ErrorKind::Closed))],
            )
            .deleted(vec!["RT1"]),
        ),
        row(
            "row 7: a failed DELETE keeps the refresh token, so logout can be retried",
            Script {
                delete: vec![fail(500), Ans::Token(Shape::Opaque)],
                ..Script::default()
            },
            vec![read("a"), Sleep(10), Logout("l1", None), Logout("l2", None), read("b"), Sleep(10)],
            expect(
                [1, 0, 2],
                [1, 0, 0, 1, 0],
                vec![
                    ("a", Token("L1")),
                    ("l1", Fails(ErrorKind::Server)),
                    ("l2", Done),
                    ("b", Fails(ErrorKind::Closed)),
                ],
            )
            .deleted(vec!["RT1", "RT1"]),
        ),
        row(
            "row 7: logout waits for a login already sent and invalidates its refresh token",
            script(vec![tok(3600).late(400)], vec![]),
            vec![read("a"), Sleep(100), Logout("l", None), Sleep(S)],
            expect(
                [1, 0, 1],
                [1, 0, 0, 1, 0],
                vec![("a", Fails(ErrorKind::Closed)), ("l", Done)],
            )
            .deleted(vec!["RT1"]),
        ),
        row(
            "row 7: logout of a session never read sends nothing and never logs in",
            Script::default(),
            vec![Logout("l", None), Logout("l2", None), read("a"), Sleep(S)],
            expect(
                [0, 0, 0],
                [0, 0, 0, 0, 0],
                vec![("l", Done), ("l2", Done), ("a", Fails(ErrorKind::Closed))],
            ),
        ),
        row(
            "row 7: a logout cancelled during its DELETE keeps the refresh token for the next one",
            Script {
                delete: vec![Ans::Token(Shape::Opaque).late(S)],
                ..Script::default()
            },
            vec![read("a"), Sleep(10), Logout("l1", Some(300)), Sleep(2 * S), Logout("l2", None)],
            expect(
                [1, 0, 2],
                [1, 0, 0, 1, 0],
                vec![("a", Token("L1")), ("l1", Cancelled), ("l2", Done)],
            )
            .deleted(vec!["RT1", "RT1"]),
        ),
        row(
            "row 7: logout during a background renewal waits for it, then invalidates",
            script(vec![tok(40)], vec![tok(40).late(2 * S)]),
            vec![
                read("a"),
                Sleep(21 * S),
                read("b"),
                Sleep(500),
                Logout("l", None),
                read("c"),
                Sleep(S),
            ],
            expect(
                [1, 1, 1],
                [1, 1, 0, 1, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Token("L1")),
                    ("l", Done),
                    ("c", Fails(ErrorKind::Closed)),
                ],
            )
            .deleted(vec!["RT1"]),
        )
        .options(|o| o.refresh_ahead(Duration::from_secs(20))),
        row(
            "row 7: a background refresh that finds its token gone after logout does not log in",
            script(vec![tok(40)], vec![fail(404).late(2 * S)]),
            vec![
                read("a"),
                Sleep(21 * S),
                read("b"),
                Sleep(500),
                Logout("l", None),
                read("c"),
                Sleep(3 * S),
            ],
            expect(
                [1, 1, 0],
                [1, 1, 1, 1, 0],
                vec![
                    ("a", Token("L1")),
                    ("b", Token("L1")),
                    ("l", Done),
                    ("c", Fails(ErrorKind::Closed)),
                ],
            ),
        )
        .options(|o| o.refresh_ahead(Duration::from_secs(20))),
        // ---- row 8: tokens the server rejects
        row(
            "row 8: invalidate the current token: it is not served again and one refresh starts",
            Script::default(),
            vec![read("a"), Sleep(10), Invalidate("L1"), read("b"), Sleep(10), Invalidate("L1"), read("c"), Sleep(10)],
            expect(
                [1, 1, 0],
                [1, 1, 0, 2, 1],
                vec![("a", Token("L1")), ("b", Token("R1")), ("c", Token("R1"))],
            ),
        ),
        row(
            "row 8: reports while the renewal is in flight, and of an older token, do nothing",
            script(vec![], vec![tok(3600).late(500)]),
            vec![
                read("a"),
                Sleep(10),
                Invalidate("L1"),
                Sleep(100),
                Invalidate("L1"),
                read("b"),
                Sleep(S),
                Invalidate("L1"),
                read("c"),
                Sleep(10),
            ],
            expect(
                [1, 1, 0],
                [1, 1, 0, 2, 1],
                vec![("a", Token("L1")), ("b", Token("R1")), ("c", Token("R1"))],
            ),
        ),
        row(
            "row 8: invalidate when the refresh token is gone: refresh answers 404, then a login",
            script(vec![], vec![fail(404)]),
            vec![read("a"), Sleep(10), Invalidate("L1"), read("b"), Sleep(S)],
            expect(
                [2, 1, 0],
                [2, 1, 0, 2, 1],
                vec![("a", Token("L1")), ("b", Token("L2"))],
            ),
        ),
        row(
            "row 8: invalidate during a background refresh: the rejected token stops, callers wait for that refresh",
            script(vec![tok(40)], vec![tok(40).late(2 * S)]),
            vec![
                read("a"),
                Sleep(21 * S),
                read("b"),
                Sleep(500),
                Invalidate("L1"),
                read("c"),
                Sleep(3 * S),
            ],
            expect(
                [1, 1, 0],
                [1, 1, 0, 2, 1],
                vec![("a", Token("L1")), ("b", Token("L1")), ("c", Token("R1"))],
            ),
        )
        .options(|o| o.refresh_ahead(Duration::from_secs(20))),
        // ---- row 9: refresh ahead
        row(
            "row 9: through three hours of rollovers with a 1 s refresh, no reader waits after the first login",
            script(vec![], vec![tok(3600).late(S)]),
            vec![Poll("p", 10 * S, 1080)],
            expect([1, 3, 0], [1, 3, 0, 1, 0], vec![("p", Token("*"))]),
        ),
        row(
            "row 9: a 4 min token, no longer than four skews, is renewed ahead too: with a 5 s refresh no reader waits after the first login",
            script(vec![tok(240)], vec![tok(240).late(5 * S)]),
            vec![Poll("p", 10 * S, 90)],
            expect([1, 7, 0], [1, 7, 0, 1, 0], vec![("p", Token("*"))]),
        ),
        // ---- combinations
        row(
            "a refresh fails, then answers 404, then the session logs in",
            script(vec![tok(40)], vec![fail(503), fail(404)]),
            vec![read("a"), Sleep(31 * S), read("b"), Sleep(S), read("c"), Sleep(S)],
            expect(
                [2, 2, 0],
                [2, 2, 1, 3, 0],
                vec![("a", Token("L1")), ("b", Token("L1")), ("c", Token("L2"))],
            ),
        ),
        row(
            "a refresh token near its end is replaced by a login",
            Script::default(),
            vec![Poll("p", 10 * MIN, 30)],
            expect([2, 4, 1], [2, 4, 0, 1, 0], vec![("p", Token("*"))]).deleted(vec!["RT1"]),
        )
        .options(|o| o.refresh_token_lifetime(Duration::from_secs(2 * 3600))),
        row(
            "transport retries inside one refresh count once",
            script(vec![tok(40)], vec![fail(503), fail(503), tok(3600)]),
            vec![read("a"), Sleep(31 * S), read("b"), Sleep(S)],
            expect([1, 3, 0], [1, 1, 0, 2, 0], vec![("a", Token("L1")), ("b", Token("R3"))]),
        )
        .retries(),
    ]
}

// ------------------------------------------------------------ the runner

type Log = Arc<Mutex<Vec<(&'static str, Duration, Out, Option<AccessToken>)>>>;

fn outcome(result: refresh_sdk::Result<AccessToken>) -> (Out, Option<AccessToken>) {
    match result {
        Ok(token) => (
            Out::Token(Box::leak(label(token.expose_secret()).into_boxed_str())),
            Some(token),
        ),
        Err(err) => {
            // Refresh-token ids are RT<n>; tokens are JWTs (eyJ...) or opaque-.
            let shown = format!("{err} {err:?}");
            let leaks = shown.contains("eyJ")
                || shown.contains("opaque-")
                || shown
                    .as_bytes()
                    .windows(3)
                    .any(|w| w[0] == b'R' && w[1] == b'T' && w[2].is_ascii_digit());
            assert!(!leaks, "an error shows a secret: {shown}");
            (Out::Error(err.kind()), None)
        }
    }
}

async fn run(scenario: Scenario) -> Result<(), String> {
    let clock = Clock {
        origin: Instant::now(),
    };
    let server = start_server(scenario.script.clone(), clock).await;
    let retry = if scenario.retries {
        RetryPolicy::default()
            .base_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(50))
    } else {
        RetryPolicy::no_retries()
    };
    let client = VcfClient::new(
        VcfConfig::new(&server.url)
            .expect("a loopback URL")
            .transport(TransportOptions::default().retry(retry)),
    )
    .expect("a client");
    let options = (scenario.options)(SessionOptions::default().wall_clock(move || clock.wall()));
    let session = VcfSession::new(client, VcfCredentials::new("admin", "pw")).with_options(options);
    let log: Log = Arc::default();
    let mut tasks = Vec::new();
    let mut tokens: BTreeMap<String, AccessToken> = BTreeMap::new();
    for step in scenario.steps.clone() {
        match step {
            Read(who, n, timeout) => {
                for _ in 0..n {
                    let session = session.clone();
                    let log = Arc::clone(&log);
                    tasks.push(tokio::spawn(async move {
                        let (out, token) = match timeout {
                            Some(ms) => match tokio::time::timeout(
                                Duration::from_millis(ms),
                                session.access_token(),
                            )
                            .await
                            {
                                Ok(result) => outcome(result),
                                Err(_) => (Out::Cancelled, None),
                            },
                            None => outcome(session.access_token().await),
                        };
                        log.lock().expect("log lock").push((
                            who,
                            clock.origin.elapsed(),
                            out,
                            token,
                        ));
                    }));
                }
                tokio::task::yield_now().await;
            }
            Poll(who, every, times) => {
                for _ in 0..times {
                    let (out, token) = outcome(session.access_token().await);
                    log.lock()
                        .expect("log lock")
                        .push((who, clock.origin.elapsed(), out, token));
                    tokio::time::sleep(Duration::from_millis(every)).await;
                }
            }
            Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Invalidate(name) => {
                for (_, _, _, token) in log.lock().expect("log lock").iter() {
                    if let Some(token) = token {
                        tokens.insert(label(token.expose_secret()), token.clone());
                    }
                }
                let token = tokens
                    .get(name)
                    .unwrap_or_else(|| panic!("{}: no caller got {name}", scenario.name));
                // Through the trait, as middleware would.
                AccessTokenSource::invalidate(&session, token);
            }
            Logout(who, timeout) => {
                let out = match timeout {
                    Some(ms) => {
                        match tokio::time::timeout(Duration::from_millis(ms), session.logout())
                            .await
                        {
                            Ok(Ok(())) => Done,
                            Ok(Err(err)) => Out::Error(err.kind()),
                            Err(_) => Cancelled,
                        }
                    }
                    None => match session.logout().await {
                        Ok(()) => Done,
                        Err(err) => Out::Error(err.kind()),
                    },
                };
                log.lock()
                    .expect("log lock")
                    .push((who, clock.origin.elapsed(), out, None));
            }
        }
    }
    for task in tasks {
        task.await.expect("a caller task");
    }
    check(&scenario, &session, &server, &log)
}

fn check(
    scenario: &Scenario,
    session: &VcfSession,
    server: &Server,
    log: &Log,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let expect = &scenario.expect;
    let seen = server.seen.lock().expect("server log lock");
    let requests = if expect.requests[LOGIN] == usize::MAX {
        [usize::MAX, seen.requests[REFRESH], seen.requests[DELETE]]
    } else {
        seen.requests
    };
    if requests != expect.requests {
        problems.push(format!(
            "requests (logins, refreshes, deletes) {:?}, expected {:?}",
            seen.requests, expect.requests
        ));
    }
    let stats = session.stats();
    let got = [
        stats.logins,
        stats.refreshes,
        stats.failed_renewals,
        stats.waited,
        stats.invalidations,
    ];
    if let Some(want) = expect.stats
        && got != want
    {
        problems.push(format!(
            "stats (logins, refreshes, failed, waited, invalidations) {got:?}, expected {want:?}"
        ));
    }
    if !expect.deleted.is_empty() || seen.requests[DELETE] > 0 {
        let want: Vec<String> = expect.deleted.iter().map(|s| s.to_string()).collect();
        if seen.deleted != want {
            problems.push(format!("deleted {:?}, expected {want:?}", seen.deleted));
        }
    }
    if let Some(gap) = expect.min_login_gap {
        let shortest = seen
            .login_times
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .unwrap_or(Duration::MAX);
        if shortest < Duration::from_millis(gap) {
            problems.push(format!(
                "logins {shortest:?} apart, expected at least {gap} ms"
            ));
        }
    }
    if let Some((gap, window)) = expect.refused_gaps {
        let refused = &seen.refused_times;
        if refused
            .windows(2)
            .any(|w| w[1] - w[0] < Duration::from_millis(gap))
        {
            problems.push(format!(
                "refused logins at {refused:?}, expected {gap} ms apart"
            ));
        }
        if refused
            .windows(3)
            .any(|w| w[2] - w[0] < Duration::from_millis(window))
        {
            problems.push(format!(
                "refused logins at {refused:?}: 3 inside {window} ms"
            ));
        }
    }
    if let Some(gap) = expect.max_login_gap {
        let longest = seen
            .login_times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        if longest > Duration::from_millis(gap) {
            problems.push(format!(
                "logins {longest:?} apart, expected at most {gap} ms"
            ));
        }
    }
    let log = log.lock().expect("log lock");
    let mut covered = HashSet::new();
    for (who, want) in &expect.outcomes {
        covered.insert(*who);
        let got: Vec<(Duration, Out)> = log
            .iter()
            .filter(|(w, ..)| w == who)
            .map(|(_, at, out, _)| (*at, out.clone()))
            .collect();
        if got.is_empty() {
            problems.push(format!("{who}: no outcome"));
            continue;
        }
        match want {
            Out::FirstTokenBy(by) => {
                let first = got.iter().position(|(_, out)| matches!(out, Out::Token(_)));
                match first {
                    Some(i) if got[i].0 <= Duration::from_millis(*by) => {
                        if let Some((at, out)) = got[i..]
                            .iter()
                            .find(|(_, out)| !matches!(out, Out::Token(_)))
                        {
                            problems.push(format!("{who}: {out:?} at {at:?} after a token"));
                        }
                    }
                    Some(i) => problems.push(format!(
                        "{who}: first token at {:?}, expected by {by} ms",
                        got[i].0
                    )),
                    None => problems.push(format!("{who}: never got a token: {:?}", got.last())),
                }
            }
            Out::NoToken => {
                if let Some((at, out)) = got.iter().find(|(_, out)| !matches!(out, Out::Error(_))) {
                    problems.push(format!("{who}: {out:?} at {at:?}, expected no token"));
                }
            }
            Out::Token("*") => {
                if let Some((at, out)) = got.iter().find(|(_, out)| !matches!(out, Out::Token(_))) {
                    problems.push(format!("{who}: {out:?} at {at:?}, expected tokens"));
                }
            }
            want => {
                if let Some((at, out)) = got.iter().find(|(_, out)| out != want) {
                    problems.push(format!("{who}: {out:?} at {at:?}, expected {want:?}"));
                }
            }
        }
    }
    for (who, ..) in log.iter() {
        if covered.insert(who) {
            problems.push(format!("{who}: outcome not checked by the row"));
        }
    }
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

#[test]
fn session_scenarios() {
    let table = scenarios();
    assert!(table.len() >= 25, "the table has {} rows", table.len());
    let mut failures = Vec::new();
    for scenario in table {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a paused tokio runtime");
        if let Err(problem) = runtime.block_on(run(scenario)) {
            failures.push(problem);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
