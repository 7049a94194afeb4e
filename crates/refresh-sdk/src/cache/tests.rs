//! The policy as a table of scenarios and as a property over random event
//! sequences. Each row is a list of `(milliseconds, event, what comes out)`;
//! what comes out is written as text, so a row reads as the rule it states.

use std::time::Duration;

use proptest::prelude::*;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::policy::{After, Answer, Reported, State};
use super::{Backoff, Class, Kind, Life, Rules, Step};
use crate::error::{Error, ErrorKind, Service};
use crate::source::AccessToken;

const S: u64 = 1000;
const MIN: u64 = 60 * S;

/// VCF's defaults: skew 60 s, max_wait 1 s, refused logins 5 min apart and
/// 2 in 15 min.
fn vcf() -> Rules {
    let seconds = Duration::from_secs;
    Rules {
        service: Service::Vcf,
        skew: seconds(60),
        refresh_ahead: None,
        max_wait: seconds(1),
        refused: Backoff {
            base: seconds(300),
            cap: seconds(300),
        },
        refused_limit: Some((2, seconds(900))),
        grant_lifetime: seconds(24 * 3600),
        min_lifetime: seconds(10),
    }
}

/// F5's: no skew, refused requests 1 s doubling to 60 s, no limit.
fn f5() -> Rules {
    Rules {
        service: Service::F5Xc,
        skew: Duration::ZERO,
        max_wait: Duration::ZERO,
        refused: Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        },
        refused_limit: None,
        grant_lifetime: Duration::ZERO,
        min_lifetime: Duration::ZERO,
        ..vcf()
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Read,
    /// The flight's step brought this token, living this many seconds, and
    /// (a login's) a grant named after it.
    Login(&'static str, u64),
    /// ... this token, without a grant (a refresh, an F5 POST).
    Got(&'static str, u64),
    /// ... an F5 token of unknown lifetime; whether a caller waited for it.
    Once(&'static str, bool),
    /// ... a failure with this status, classed so.
    Fail(u16, Class),
    /// ... a 503 with this `Retry-After`.
    FailAfter(Duration),
    /// ... a login whose access token cannot be a header, with its grant.
    BadToken,
    /// ... a refresh whose access token is empty.
    Empty,
    /// ... no answer: a timeout after the request was sent.
    Lost,
    /// ... this token, living this many seconds counted from this many
    /// milliseconds (when its request was sent), without a grant.
    GotSent(&'static str, u64, u64),
    /// The flight's task ended without a word.
    Abandon,
    /// Whether the flight may take its next step.
    Proceed,
    /// The grant the cache holds.
    Grant,
    Invalidate(&'static str),
    Close,
    Credentials(u64),
    /// What lock-free reads may take, and until when.
    Published,
}

use Ev::*;

fn kind_of(status: u16) -> ErrorKind {
    match status {
        400 | 401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        0 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::InvalidResponse,
    }
}

fn failure(status: u16) -> Error {
    Error::new(kind_of(status), format!("scripted {status}"))
        .with_status(StatusCode::from_u16(status).ok())
}

fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Login => "login",
        Kind::Refresh => "refresh",
    }
}

struct Run {
    state: State,
    rules: Rules,
    base: Instant,
    credentials: u64,
}

impl Run {
    fn new(rules: Rules) -> Self {
        Run {
            state: State::default(),
            rules,
            base: Instant::now(),
            credentials: 0,
        }
    }

    fn ms(&self, at: Instant) -> u128 {
        at.duration_since(self.base).as_millis()
    }

    fn finish(&mut self, now: Instant, step: Step) -> String {
        let Some(flight) = self.state.flight else {
            return "no flight".to_owned();
        };
        let (after, retired) = self
            .state
            .finished(&self.rules, flight.id, now, 1.0, step, true);
        let mut out = match after {
            After::Next(next) => format!("next {}", kind(next)),
            After::Done(Ok(token)) => format!("ok {}", token.expose_secret()),
            After::Done(Err(error)) => format!("err {:?}", error.kind()),
        };
        if let Some(grant) = retired {
            out.push_str(&format!(" retire {}", grant.expose_secret()));
        }
        out
    }

    fn step(&mut self, at: u64, event: Ev) -> String {
        let now = self.base + Duration::from_millis(at);
        let ok = |token: &str, seconds: u64, grant: bool| Step {
            result: Ok((
                AccessToken::new(token),
                Life::Lasts {
                    from: now,
                    lifetime: Duration::from_secs(seconds),
                },
            )),
            grant: grant.then(|| SecretString::from(format!("G{token}"))),
            credentials: 0,
        };
        let credentials = self.credentials;
        let with = |step: Step| Step {
            credentials,
            ..step
        };
        match event {
            Read => {
                let (answer, start) = self.state.read(&self.rules, now);
                let mut out = match answer {
                    Answer::Serve(token) => format!("serve {}", token.expose_secret()),
                    Answer::Wait(Some(until)) => format!("wait {}", self.ms(until)),
                    Answer::Wait(None) => "wait".to_owned(),
                    Answer::Fail(error) => format!("fail {:?}", error.kind()),
                };
                if let Some(start) = start {
                    out.push_str(&format!(" +{}", kind(start.kind)));
                }
                out
            }
            Login(token, seconds) => self.finish(now, with(ok(token, seconds, true))),
            Got(token, seconds) => self.finish(now, with(ok(token, seconds, false))),
            Once(token, claimed) => {
                let Some(flight) = self.state.flight else {
                    return "no flight".to_owned();
                };
                let step = Step {
                    result: Ok((AccessToken::new(token), Life::Once)),
                    grant: None,
                    credentials,
                };
                match self
                    .state
                    .finished(&self.rules, flight.id, now, 1.0, step, claimed)
                {
                    (After::Done(Ok(token)), _) => format!("ok {}", token.expose_secret()),
                    (other, _) => format!("{other:?}"),
                }
            }
            Fail(status, class) => self.finish(
                now,
                Step {
                    result: Err((failure(status), class)),
                    grant: None,
                    credentials,
                },
            ),
            FailAfter(wait) => self.finish(
                now,
                Step {
                    result: Err((failure(503).with_retry_after(Some(wait)), Class::Transient)),
                    grant: None,
                    credentials,
                },
            ),
            BadToken => self.finish(now, with(ok("bad\u{7f}token", 3600, true))),
            Empty => self.finish(now, with(ok("", 3600, false))),
            Lost => self.finish(
                now,
                Step {
                    result: Err((failure(0), Class::Unknown)),
                    grant: None,
                    credentials,
                },
            ),
            GotSent(token, seconds, sent) => self.finish(
                now,
                Step {
                    result: Ok((
                        AccessToken::new(token),
                        Life::Lasts {
                            from: self.base + Duration::from_millis(sent),
                            lifetime: Duration::from_secs(seconds),
                        },
                    )),
                    grant: None,
                    credentials,
                },
            ),
            Abandon => match self.state.flight {
                Some(flight) => {
                    let error = Error::new(ErrorKind::Transport, "abandoned");
                    self.state.abandoned(&self.rules, flight.id, now, error);
                    "abandoned".to_owned()
                }
                None => "no flight".to_owned(),
            },
            Proceed => match self.state.flight {
                Some(flight) => match self.state.proceed(&self.rules, flight.id) {
                    Ok(()) => "proceed".to_owned(),
                    Err(error) => format!("stop {:?}", error.kind()),
                },
                None => "no flight".to_owned(),
            },
            Grant => match self.state.grant() {
                Some(grant) => format!("grant {}", grant.expose_secret()),
                None => "no grant".to_owned(),
            },
            Published => match self.state.published(&self.rules, now) {
                Some((token, until)) => {
                    format!(
                        "published {} until {}",
                        token.expose_secret(),
                        self.ms(until)
                    )
                }
                None => "nothing published".to_owned(),
            },
            Invalidate(token) => {
                match self
                    .state
                    .invalidate(&self.rules, now, &AccessToken::new(token))
                {
                    Reported::Ignored => "ignored".to_owned(),
                    Reported::Held => "held".to_owned(),
                    Reported::Renew(None) => "renew".to_owned(),
                    Reported::Renew(Some(start)) => format!("renew +{}", kind(start.kind)),
                }
            }
            Close => format!("closed, flight {}", self.state.close()),
            Credentials(generation) => {
                self.credentials = generation;
                self.state.credentials_changed(generation);
                String::new()
            }
        }
    }
}

type Row = (&'static str, Rules, Vec<(u64, Ev, &'static str)>);

fn with(rules: Rules, edit: impl FnOnce(&mut Rules)) -> Rules {
    let mut rules = rules;
    edit(&mut rules);
    rules
}

fn table() -> Vec<Row> {
    let transient = Class::Transient;
    let refused = Class::Refused;
    let grant_refused = Class::GrantRefused;
    vec![
        // ---- serving and renewing
        (
            "a first read logs in and waits; later reads are served from the cache",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Read, "wait"),
                (300, Login("L1", 3600), "ok L1"),
                (400, Read, "serve L1"),
            ],
        ),
        (
            "a quarter of the lifetime before expiry, a read starts a refresh in the background and is served; nobody waits",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (45 * MIN - 1, Read, "serve L1"),
                (45 * MIN, Read, "serve L1 +refresh"),
                (45 * MIN + 1, Read, "serve L1"),
                (45 * MIN + 500, Got("R1", 3600), "ok R1"),
                (45 * MIN + 501, Read, "serve R1"),
            ],
        ),
        (
            "a 3 s token: skew shrinks to a quarter, refresh-ahead to half; a skew larger than the lifetime does too",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3), "ok L1"),
                (1499, Read, "serve L1"),
                (1500, Read, "serve L1 +refresh"),
            ],
        ),
        (
            "refresh_ahead is kept between the skew and half the lifetime",
            with(vcf(), |r| {
                r.refresh_ahead = Some(Duration::from_secs(24 * 3600))
            }),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (30 * MIN - 1, Read, "serve L1"),
                (30 * MIN, Read, "serve L1 +refresh"),
            ],
        ),
        (
            "a grant near its end is not refreshed: a login replaces it, and the old grant is retired",
            with(vcf(), |r| r.grant_lifetime = Duration::from_secs(2 * 3600)),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (45 * MIN, Read, "serve L1 +refresh"),
                (45 * MIN, Got("R1", 3600), "ok R1"),
                (90 * MIN, Read, "serve R1 +refresh"),
                (90 * MIN, Got("R2", 3600), "ok R2"),
                (135 * MIN, Read, "serve R2 +login"),
                (135 * MIN, Login("L2", 3600), "ok L2 retire GL1"),
            ],
        ),
        (
            "a token already over on arrival is kept the minimum lifetime, not renewed per read",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 0), "ok L1"),
                (4999, Read, "serve L1"),
                (5000, Read, "serve L1 +refresh"),
            ],
        ),
        // ---- waiting at most max_wait (issue 15 rows 4 and 5)
        (
            "past exp - skew, a reader waits for the renewal at most max_wait; once it has run that long, readers get the cached token at once",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 20), "ok L1"),
                (15 * S, Read, "wait 16000 +refresh"),
                (15 * S + 500, Read, "wait 16000"),
                (16 * S, Read, "serve L1"),
                (19 * S, Read, "serve L1"),
                (20 * S, Read, "wait"),
                (27 * S, Got("R1", 20), "ok R1"),
            ],
        ),
        (
            "the wait never runs past the token's expiry",
            with(vcf(), |r| r.max_wait = Duration::from_secs(30)),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 20), "ok L1"),
                (18 * S, Read, "wait 20000 +refresh"),
            ],
        ),
        (
            "a renewal failing while the token lives: callers get the token, never the error; after the backoff the next read retries",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 10), "ok L1"),
                (8 * S, Read, "wait 9000 +refresh"),
                (8 * S + 100, Fail(503, transient), "err Server"),
                (8 * S + 101, Read, "serve L1"),
                (8 * S + 350, Read, "wait 9350 +refresh"),
                (8 * S + 400, Fail(503, transient), "err Server"),
                (9 * S + 999, Read, "wait 10000 +refresh"),
                (10 * S, Read, "wait"),
            ],
        ),
        // ---- failures without a token (issue 9)
        (
            "no token and the server down: the error, at once during the backoff, which doubles to 4 s",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (100, Fail(503, transient), "err Server"),
                (200, Read, "fail Server"),
                (350, Read, "wait +login"),
                (350, Fail(503, transient), "err Server"),
                (849, Read, "fail Server"),
                (850, Read, "wait +login"),
            ],
        ),
        (
            "a Retry-After of 2^64-1 s holds renewals back a minute, no more, and does not panic",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, FailAfter(Duration::MAX), "err Server"),
                (60 * S - 1, Read, "fail Server"),
                (60 * S, Read, "wait +login"),
            ],
        ),
        // ---- refused logins (issue 15 rows 1-3)
        (
            "a refused login: the same credentials again only after 5 min; every caller meanwhile gets the Auth error at once",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (100, Fail(400, refused), "err Auth"),
                (200, Read, "fail Auth"),
                (5 * MIN + 99, Read, "fail Auth"),
                (5 * MIN + 100, Read, "wait +login"),
            ],
        ),
        (
            "at most 2 refused logins in any 15 min",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Fail(401, refused), "err Auth"),
                (5 * MIN, Read, "wait +login"),
                (5 * MIN, Fail(403, refused), "err Auth"),
                (10 * MIN, Read, "fail Auth"),
                (15 * MIN - 1, Read, "fail Auth"),
                (15 * MIN, Read, "wait +login"),
                (15 * MIN, Fail(400, refused), "err Auth"),
                (20 * MIN - 1, Read, "fail Auth"),
                (20 * MIN, Read, "wait +login"),
            ],
        ),
        (
            "transient failures between refusals neither reset nor shorten the refused backoff or the limit",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Fail(400, refused), "err Auth"),
                (5 * MIN, Read, "wait +login"),
                (5 * MIN, Fail(503, transient), "err Server"),
                (5 * MIN + 250, Read, "wait +login"),
                (5 * MIN + 250, Fail(400, refused), "err Auth"),
                (5 * MIN + 500, Read, "fail Auth"),
                (10 * MIN + 250, Read, "fail Auth"),
                (15 * MIN - 1, Read, "fail Auth"),
                (15 * MIN, Read, "wait +login"),
            ],
        ),
        (
            "changed credentials after one refusal are tried at once",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Fail(400, refused), "err Auth"),
                (S, Read, "fail Auth"),
                (2 * S, Credentials(1), ""),
                (2 * S, Read, "wait +login"),
                (2 * S, Login("L1", 3600), "ok L1"),
            ],
        ),
        (
            "after two refusals, changed credentials wait for the limit all the same",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Fail(400, refused), "err Auth"),
                (S, Credentials(1), ""),
                (S, Read, "wait +login"),
                (S, Fail(400, refused), "err Auth"),
                (2 * S, Credentials(2), ""),
                (2 * S, Read, "fail Auth"),
                (15 * MIN, Read, "wait +login"),
            ],
        ),
        (
            "a successful login clears the backoff of its credentials",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Fail(400, refused), "err Auth"),
                (S, Credentials(1), ""),
                (S, Read, "wait +login"),
                (S, Login("L1", 3600), "ok L1"),
                (2 * S, Invalidate("L1"), "renew +refresh"),
                (2 * S, Fail(404, grant_refused), "next login"),
                (2 * S, Login("L2", 3600), "ok L2"),
            ],
        ),
        // ---- refresh tokens (issue 9, issue 15 row 6)
        (
            "a refused refresh token is given up for a login in the same flight; nobody sees the refusal",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 40), "ok L1"),
                (45 * S, Read, "wait +refresh"),
                (45 * S, Fail(404, grant_refused), "next login"),
                (45 * S, Login("L2", 40), "ok L2"),
            ],
        ),
        (
            "a refused refresh token while logins are held back: the flight ends with the login's error",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Credentials(1), ""),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Fail(404, grant_refused), "next login"),
                (S, Fail(400, refused), "err Auth"),
                (2 * S, Read, "fail Auth"),
            ],
        ),
        (
            "refreshes failing transiently: once the token has expired the next renewal is a login, and the old grant is retired",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 40), "ok L1"),
                (31 * S, Read, "wait 32000 +refresh"),
                (31 * S, Fail(503, transient), "err Server"),
                (41 * S, Read, "wait +login"),
                (41 * S, Login("L2", 40), "ok L2 retire GL1"),
            ],
        ),
        (
            "that login refused: the refresh token is kept and used again, and callers get the refusal",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 40), "ok L1"),
                (31 * S, Read, "wait 32000 +refresh"),
                (31 * S, Fail(503, transient), "err Server"),
                (41 * S, Read, "wait +login"),
                (41 * S, Fail(400, refused), "err Auth"),
                (42 * S, Read, "wait +refresh"),
                (42 * S, Got("R1", 40), "ok R1"),
            ],
        ),
        (
            "a 429 on the refresh keeps the refresh token while the access token lives",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 40), "ok L1"),
                (31 * S, Read, "wait 32000 +refresh"),
                (31 * S, Fail(429, transient), "err RateLimited"),
                (33 * S, Read, "wait 34000 +refresh"),
            ],
        ),
        // ---- unusable tokens (issue 15 row 8)
        (
            "a token that cannot be a header is never served: a transient failure, its refresh token kept for the next renewal",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, BadToken, "err InvalidResponse"),
                (100, Read, "fail InvalidResponse"),
                (250, Read, "wait +refresh"),
                (250, Got("R1", 3600), "ok R1"),
            ],
        ),
        // ---- reports of rejected tokens (issue 9 row 8, issue 15 row 7)
        (
            "a report of the served token renews at once; of another token, or again, nothing",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Invalidate("X"), "ignored"),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Invalidate("L1"), "ignored"),
                (S, Read, "wait"),
                (S + 100, Got("R1", 3600), "ok R1"),
            ],
        ),
        (
            "a server that rejects every token: the successor reported within 5 s is kept, reports are not acted on for 5 s, doubling",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (10 * S, Invalidate("L1"), "renew +refresh"),
                (10 * S, Got("R1", 3600), "ok R1"),
                (11 * S, Invalidate("R1"), "held"),
                (11 * S, Read, "serve R1"),
                (15 * S, Invalidate("R1"), "held"),
                (16 * S, Invalidate("R1"), "renew +refresh"),
                (16 * S, Got("R2", 3600), "ok R2"),
                (17 * S, Invalidate("R2"), "held"),
                (26 * S, Invalidate("R2"), "held"),
                (27 * S, Invalidate("R2"), "renew +refresh"),
            ],
        ),
        (
            "a token that lives 5 s without a report resets the doubling",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Got("R1", 3600), "ok R1"),
                (2 * S, Invalidate("R1"), "held"),
                (7 * S, Invalidate("R1"), "renew +refresh"),
                (7 * S, Got("R2", 3600), "ok R2"),
                (20 * S, Invalidate("R2"), "renew +refresh"),
                (20 * S, Got("R3", 3600), "ok R3"),
                (21 * S, Invalidate("R3"), "held"),
                (26 * S, Invalidate("R3"), "renew +refresh"),
            ],
        ),
        // ---- logout (issue 9 row 7)
        (
            "after logout nothing is served or started; a flight that lands files its grant and tells its waiters Closed",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Close, "closed, flight true"),
                (0, Read, "fail Closed"),
                (100, Login("L1", 3600), "err Closed"),
                (200, Read, "fail Closed"),
                (300, Invalidate("L1"), "ignored"),
            ],
        ),
        (
            "a refused refresh token after logout does not log in",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Close, "closed, flight true"),
                (S, Fail(404, grant_refused), "err NotFound"),
            ],
        ),
        // ---- found in review: each row failed before its fix
        (
            "a login with no answer while the credentials are unproven counts against the limit: it may have been refused",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (30 * S, Lost, "err Timeout"),
                (30 * S + 250, Read, "wait +login"),
                (60 * S, Fail(400, refused), "err Auth"),
                (6 * MIN, Read, "fail Auth"),
                (15 * MIN + 30 * S, Read, "wait +login"),
            ],
        ),
        (
            "once credentials have been accepted, a login with no answer does not count",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Fail(404, grant_refused), "next login"),
                (31 * S, Lost, "err Timeout"),
                (32 * S, Read, "wait +login"),
                (62 * S, Lost, "err Timeout"),
                (63 * S, Read, "wait +login"),
                (93 * S, Lost, "err Timeout"),
                (97 * S, Read, "wait +login"),
            ],
        ),
        (
            "a flight whose task died is a failure with an unknown answer, not a free retry",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (100, Abandon, "abandoned"),
                (100, Read, "fail Transport"),
                (350, Read, "wait +login"),
                (400, Fail(400, refused), "err Auth"),
                (500, Credentials(1), ""),
                (500, Read, "fail Auth"),
            ],
        ),
        (
            "the 15 min window counts from when a refusal arrived, not from when its login was sent",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (50 * S, Fail(400, refused), "err Auth"),
                (5 * MIN + 50 * S, Read, "wait +login"),
                (5 * MIN + 50 * S, Fail(400, refused), "err Auth"),
                (15 * MIN, Read, "fail Auth"),
                (15 * MIN + 50 * S - 1, Read, "fail Auth"),
                (15 * MIN + 50 * S, Read, "wait +login"),
            ],
        ),
        (
            "the login after failed refreshes counts against the limit, and is held when it is spent; the refresh token is used meanwhile",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 40), "ok L1"),
                (S, Credentials(1), ""),
                (31 * S, Read, "wait 32000 +refresh"),
                (31 * S, Fail(503, transient), "err Server"),
                (41 * S, Read, "wait +login"),
                (41 * S, Fail(400, refused), "err Auth"),
                (42 * S, Read, "wait +refresh"),
                (42 * S, Fail(503, transient), "err Server"),
                (43 * S, Credentials(2), ""),
                (43 * S, Read, "wait +login"),
                (43 * S, Fail(400, refused), "err Auth"),
                (44 * S, Read, "wait +refresh"),
                (44 * S, Fail(503, transient), "err Server"),
                (45 * S, Credentials(3), ""),
                (45 * S, Read, "wait +refresh"),
            ],
        ),
        (
            "a refused refresh token while logins are held back: no login, the refresh token dropped, callers get the refusal",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 40), "ok L1"),
                (31 * S, Read, "wait 32000 +refresh"),
                (31 * S, Fail(503, transient), "err Server"),
                (41 * S, Read, "wait +login"),
                (41 * S, Fail(400, refused), "err Auth"),
                (42 * S, Read, "wait +refresh"),
                (42 * S, Fail(404, grant_refused), "err Auth"),
                (42 * S, Grant, "no grant"),
                (43 * S, Read, "fail Auth"),
            ],
        ),
        (
            "a login that replaces a refused refresh token does not restart readers' max_wait",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 20), "ok L1"),
                (15 * S, Read, "wait 16000 +refresh"),
                (15 * S + 900, Fail(404, grant_refused), "next login"),
                (16 * S, Read, "serve L1"),
            ],
        ),
        (
            "a token that lived 5 s without a report ends a report hold",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Got("R1", 3600), "ok R1"),
                (2 * S, Invalidate("R1"), "held"),
                (7 * S, Invalidate("R1"), "renew +refresh"),
                (7 * S, Got("R2", 3600), "ok R2"),
                (8 * S, Invalidate("R2"), "held"),
                (9 * S, Read, "serve R2"),
                (10 * S, Credentials(0), ""),
                (17 * S, Invalidate("R2"), "held"),
                (18 * S, Invalidate("R2"), "renew +refresh"),
                (18 * S, Got("R3", 3600), "ok R3"),
                (30 * S, Invalidate("R3"), "renew +refresh"),
            ],
        ),
        (
            "the report hold doubles up to a minute, no more",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (0, Invalidate("L1"), "renew +refresh"),
                (0, Got("R1", 3600), "ok R1"),
                (0, Invalidate("R1"), "held"),
                (5 * S, Invalidate("R1"), "renew +refresh"),
                (5 * S, Got("R2", 3600), "ok R2"),
                (5 * S, Invalidate("R2"), "held"),
                (15 * S, Invalidate("R2"), "renew +refresh"),
                (15 * S, Got("R3", 3600), "ok R3"),
                (15 * S, Invalidate("R3"), "held"),
                (35 * S, Invalidate("R3"), "renew +refresh"),
                (35 * S, Got("R4", 3600), "ok R4"),
                (35 * S, Invalidate("R4"), "held"),
                (75 * S, Invalidate("R4"), "renew +refresh"),
                (75 * S, Got("R5", 3600), "ok R5"),
                (75 * S, Invalidate("R5"), "held"),
                (135 * S - 1, Invalidate("R5"), "held"),
                (135 * S, Invalidate("R5"), "renew +refresh"),
            ],
        ),
        (
            "a report while a background renewal runs: the token is served no more, readers wait for that renewal",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (45 * MIN, Read, "serve L1 +refresh"),
                (45 * MIN, Invalidate("L1"), "renew"),
                (45 * MIN, Read, "wait"),
                (45 * MIN + 100, Got("R1", 3600), "ok R1"),
            ],
        ),
        (
            "an empty token from a refresh is never served (a failed refresh: once no token is left, a login); after logout the flight takes no step",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (S, Invalidate("L1"), "renew +refresh"),
                (S, Empty, "err InvalidResponse"),
                (S, Read, "fail InvalidResponse"),
                (2 * S, Read, "wait +login"),
                (2 * S, Close, "closed, flight true"),
                (2 * S, Proceed, "stop Closed"),
                (2 * S, Read, "fail Closed"),
                (2 * S, Grant, "grant GL1"),
            ],
        ),
        (
            "a login that lands after logout files its grant for logout to invalidate",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Proceed, "proceed"),
                (0, Close, "closed, flight true"),
                (100, Login("L1", 3600), "err Closed"),
                (100, Grant, "grant GL1"),
            ],
        ),
        (
            "a lifetime counts from when the request was sent, not when the answer came",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (30 * S, GotSent("L1", 40, 0), "ok L1"),
                (30 * S, Published, "published L1 until 30000"),
                (30 * S, Read, "wait 31000 +login"),
            ],
        ),
        (
            "lock-free reads go to the policy at the renewal time, and while renewals are held back at most once a second",
            vcf(),
            vec![
                (0, Read, "wait +login"),
                (0, Login("L1", 3600), "ok L1"),
                (0, Published, "published L1 until 2700000"),
                (45 * MIN, Read, "serve L1 +refresh"),
                (45 * MIN, Published, "published L1 until 3540000"),
                (45 * MIN, Fail(503, transient), "err Server"),
                (45 * MIN + 100, Published, "published L1 until 2700250"),
                (45 * MIN + 100, Read, "serve L1"),
                (45 * MIN + 300, Read, "serve L1 +refresh"),
                (45 * MIN + 300, Fail(404, grant_refused), "next login"),
                (45 * MIN + 300, Fail(400, refused), "err Auth"),
                (45 * MIN + 400, Published, "published L1 until 2701400"),
                (45 * MIN + 400, Read, "serve L1"),
            ],
        ),
        // ---- F5 (its own rules through the same policy)
        (
            "F5: a token of unknown lifetime goes to its waiters only; one nobody received is kept 30 s for the next caller",
            f5(),
            vec![
                (0, Read, "wait +login"),
                (100, Once("T1", true), "ok T1"),
                (200, Read, "wait +login"),
                (300, Once("T2", false), "ok T2"),
                (400, Read, "serve T2"),
                (500, Read, "wait +login"),
                (600, Once("T3", false), "ok T3"),
                (30 * S + 600, Read, "wait +login"),
            ],
        ),
        (
            "F5 reuse_for 100 s: served to the end of the period, renewed from its last quarter",
            f5(),
            vec![
                (0, Read, "wait +login"),
                (0, Got("T1", 100), "ok T1"),
                (75 * S - 1, Read, "serve T1"),
                (75 * S, Read, "serve T1 +login"),
                (75 * S, Fail(503, transient), "err Server"),
                (99 * S, Read, "serve T1 +login"),
                (99 * S, Fail(503, transient), "err Server"),
                (99 * S + 100, Read, "serve T1"),
                (100 * S, Read, "wait +login"),
                (100 * S, Fail(503, transient), "err Server"),
                (100 * S + 1, Read, "fail Server"),
            ],
        ),
        (
            "F5: a refused POST backs off 1 s doubling to 60 s, and a 503 between does not restart the doubling",
            f5(),
            vec![
                (0, Read, "wait +login"),
                (0, Fail(401, refused), "err Auth"),
                (999, Read, "fail Auth"),
                (S, Read, "wait +login"),
                (S, Fail(503, transient), "err Server"),
                (S + 250, Read, "wait +login"),
                (S + 250, Fail(404, refused), "err NotFound"),
                (3 * S + 249, Read, "fail NotFound"),
                (3 * S + 250, Read, "wait +login"),
            ],
        ),
    ]
}

#[test]
fn the_policy_table() {
    let mut failures = Vec::new();
    let rows = table();
    for (name, rules, steps) in rows {
        let mut run = Run::new(rules);
        for (i, (at, event, want)) in steps.into_iter().enumerate() {
            let got = run.step(at, event);
            if got != want {
                failures.push(format!(
                    "{name}\n    step {i} at {at} ms, {event:?}: got {got:?}, expected {want:?}"
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn backoff_doubles_within_its_band_and_never_overflows() {
    let backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
    };
    assert_eq!(backoff.step(1, 1.0), Duration::from_secs(1));
    assert_eq!(backoff.step(1, 0.0), Duration::from_millis(800));
    assert_eq!(backoff.step(3, 1.0), Duration::from_secs(4));
    assert_eq!(backoff.step(u32::MAX, 1.0), Duration::from_secs(60));
    assert_eq!(
        super::policy::later(Instant::now(), Duration::MAX)
            .checked_duration_since(Instant::now())
            .map(|d| d > Duration::from_secs(9 * 365 * 24 * 3600)),
        Some(true)
    );
}

// ------------------------------------------------------------ properties

/// One random event: how long before it, what it is, and a choice for it.
#[derive(Clone, Debug)]
struct Random {
    advance: u64,
    event: u8,
    pick: u8,
}

fn random() -> impl Strategy<Value = Random> {
    let advance = prop::sample::select(vec![
        0,
        1,
        10,
        250,
        999,
        S,
        5 * S,
        61 * S,
        5 * MIN,
        15 * MIN,
    ]);
    (advance, 0u8..11, any::<u8>()).prop_map(|(advance, event, pick)| Random {
        advance,
        event,
        pick,
    })
}

/// What the property harness knows of one token: when it stops being
/// servable, and whether it may still be served at all.
struct Known {
    label: String,
    expires: Instant,
    gone: bool,
    once: bool,
}

/// A harness of its own, beside the policy: it keeps what a service and
/// an SDDC Manager would see (tokens handed out, logins sent and refused) and
/// checks the promises against that after every event.
struct Harness {
    rules: Rules,
    state: State,
    now: Instant,
    jitter: f64,
    credentials: u64,
    proven: Option<u64>,
    tokens: u32,
    latest: Option<Known>,
    /// The flight: its id, its step's kind, and the credentials it presents.
    running: Option<(u64, Kind, u64)>,
    closed: bool,
    /// When refusals (or logins whose answer never came, with unproven
    /// credentials) reached us, and the last refusal's credentials.
    refusals: Vec<Instant>,
    last_refused: Option<(Instant, u64)>,
}

impl Harness {
    fn valid_token(&self) -> bool {
        self.latest
            .as_ref()
            .is_some_and(|k| !k.gone && self.now < k.expires)
    }

    fn started(&mut self, id: u64, kind: Kind) -> Result<(), TestCaseError> {
        prop_assert!(!self.closed, "a renewal started after logout");
        if kind == Kind::Login
            && let Some((at, credentials)) = self.last_refused
            && credentials == self.credentials
        {
            let gap = self.now.duration_since(at);
            prop_assert!(
                gap >= self.rules.refused.base,
                "refused credentials again after {gap:?}"
            );
        }
        self.running = Some((id, kind, self.credentials));
        Ok(())
    }

    fn read(&mut self) -> Result<(), TestCaseError> {
        let (answer, start) = self.state.read(&self.rules, self.now);
        if let Some(start) = start {
            prop_assert!(self.running.is_none(), "a second renewal started");
            self.started(start.id, start.kind)?;
        }
        match answer {
            Answer::Serve(token) => {
                prop_assert!(HeaderOk::ok(&token), "served an unusable token");
                prop_assert!(!self.closed, "served after logout");
                let now = self.now;
                let known = self
                    .latest
                    .as_mut()
                    .filter(|k| k.label == token.expose_secret());
                prop_assert!(known.is_some(), "served a token that is not the latest");
                if let Some(known) = known {
                    prop_assert!(now < known.expires, "served an expired token");
                    prop_assert!(!known.gone, "served a token given up");
                    if known.once {
                        known.gone = true;
                    }
                }
            }
            Answer::Fail(_) => {
                prop_assert!(
                    self.closed || !self.valid_token(),
                    "an error while an unexpired token exists"
                );
            }
            Answer::Wait(until) => {
                prop_assert!(
                    self.state.flight.is_some(),
                    "a wait with nothing to wait for"
                );
                if let (Some(until), Some(known)) = (until, &self.latest) {
                    prop_assert!(until <= known.expires.max(self.now), "a wait past expiry");
                }
            }
        }
        Ok(())
    }

    /// The flight's step ends with `result`.
    fn finish(&mut self, pick: u8, what: u8) -> Result<(), TestCaseError> {
        let Some((id, kind, credentials)) = self.running else {
            return Ok(());
        };
        self.tokens += 1;
        let label = format!("T{}", self.tokens);
        let lives = [0u64, 3, 10, 60, 3600];
        let life = lives[usize::from(pick) % lives.len()];
        let once = self.rules.grant_lifetime.is_zero() && pick.is_multiple_of(2);
        let claimed = pick % 4 < 2;
        let lasting = |token: &str| {
            Ok((
                AccessToken::new(token),
                Life::Lasts {
                    from: self.now,
                    lifetime: Duration::from_secs(life),
                },
            ))
        };
        let (result, grant) = match (what, kind) {
            (0, _) if once => (Ok((AccessToken::new(label.clone()), Life::Once)), false),
            (0, _) => (lasting(&label), kind == Kind::Login),
            (1, _) => (Err((failure(503), Class::Transient)), false),
            (2, Kind::Login) => (Err((failure(400), Class::Refused)), false),
            (2, Kind::Refresh) => (Err((failure(404), Class::GrantRefused)), false),
            (3, _) => (Err((failure(0), Class::Unknown)), false),
            _ => (lasting("bad\ntoken"), kind == Kind::Login),
        };
        let arrived = match &result {
            Ok((token, life)) if HeaderOk::ok(token) => Some(match life {
                Life::Lasts { lifetime, .. } => Known {
                    label: label.clone(),
                    expires: self.now
                        + if lifetime.is_zero() {
                            self.rules.min_lifetime
                        } else {
                            *lifetime
                        },
                    gone: false,
                    once: false,
                },
                Life::Once => Known {
                    label: label.clone(),
                    expires: self.now + Duration::from_secs(30),
                    gone: claimed,
                    once: true,
                },
            }),
            _ => None,
        };
        let class = result.as_ref().err().map(|(_, class)| *class);
        let step = Step {
            result,
            grant: grant.then(|| SecretString::from(format!("G{label}"))),
            credentials,
        };
        let (after, _) = self
            .state
            .finished(&self.rules, id, self.now, self.jitter, step, claimed);
        if kind == Kind::Login {
            match class {
                Some(Class::Refused) => {
                    self.refusals.push(self.now);
                    self.last_refused = Some((self.now, credentials));
                }
                Some(Class::Unknown) if self.proven != Some(credentials) => {
                    self.refusals.push(self.now);
                }
                None if arrived.is_some() => self.proven = Some(credentials),
                _ => {}
            }
        }
        match after {
            After::Next(next) => {
                self.running = None;
                self.started(id, next)?;
            }
            After::Done(outcome) => {
                self.running = None;
                match &outcome {
                    Ok(token) => {
                        prop_assert!(HeaderOk::ok(token), "delivered an unusable token");
                        prop_assert!(!self.closed, "delivered after logout");
                    }
                    Err(error) if !self.closed => {
                        let fallback = self.state.fallback(self.now, error.clone());
                        prop_assert!(
                            fallback.is_ok() || !self.valid_token(),
                            "a failed renewal's error while a token lives"
                        );
                    }
                    Err(_) => {}
                }
                if arrived.is_some() && !self.closed {
                    self.latest = arrived;
                }
            }
        }
        Ok(())
    }

    fn invalidate(&mut self, pick: u8) -> Result<(), TestCaseError> {
        let label = match (pick % 2, &self.latest) {
            (0, Some(known)) => known.label.clone(),
            _ => "X".to_owned(),
        };
        if let Reported::Renew(start) =
            self.state
                .invalidate(&self.rules, self.now, &AccessToken::new(label))
        {
            if let Some(known) = &mut self.latest {
                known.gone = true;
            }
            if let Some(start) = start {
                prop_assert!(self.running.is_none(), "a second renewal started");
                self.started(start.id, start.kind)?;
            }
        }
        Ok(())
    }

    /// What lock-free reads may take is the latest token, before its end.
    fn published(&self) -> Result<(), TestCaseError> {
        if let Some((token, until)) = self.state.published(&self.rules, self.now) {
            prop_assert!(!self.closed, "published after logout");
            let known = self
                .latest
                .as_ref()
                .filter(|k| k.label == token.expose_secret());
            prop_assert!(
                known.is_some_and(|k| !k.gone && until <= k.expires),
                "published a token past its end"
            );
        }
        Ok(())
    }
}

fn check(rules: Rules, events: Vec<Random>, jitter: f64) -> Result<(), TestCaseError> {
    let mut h = Harness {
        rules,
        state: State::default(),
        now: Instant::now(),
        jitter,
        credentials: 0,
        proven: None,
        tokens: 0,
        latest: None,
        running: None,
        closed: false,
        refusals: Vec::new(),
        last_refused: None,
    };
    for event in events {
        h.now += Duration::from_millis(event.advance);
        match event.event {
            0..=2 => h.read()?,
            3..=7 => h.finish(event.pick, event.event - 3)?,
            8 => h.invalidate(event.pick)?,
            9 if event.pick % 8 == 0 => {
                h.closed = true;
                h.state.close();
            }
            9 if event.pick % 8 == 1 => {
                if let Some((id, kind, credentials)) = h.running.take() {
                    let error = Error::new(ErrorKind::Transport, "abandoned");
                    h.state.abandoned(&h.rules, id, h.now, error);
                    if kind == Kind::Login && h.proven != Some(credentials) {
                        h.refusals.push(h.now);
                    }
                }
            }
            _ => {
                h.credentials += 1;
                h.state.credentials_changed(h.credentials);
            }
        }
        h.published()?;
    }
    if let Some((max, window)) = h.rules.refused_limit {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        for refused in h.refusals.windows(max + 1) {
            let span = refused[max].duration_since(refused[0]);
            prop_assert!(span >= window, "{} refused logins within {span:?}", max + 1);
        }
    }
    Ok(())
}

struct HeaderOk;

impl HeaderOk {
    fn ok(token: &AccessToken) -> bool {
        let text = token.expose_secret();
        !text.is_empty() && reqwest::header::HeaderValue::from_str(text).is_ok()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn vcf_invariants_hold_for_any_events(events in prop::collection::vec(random(), 1..200), jitter in 0.0..1.0f64) {
        check(vcf(), events, jitter)?;
    }

    #[test]
    fn f5_invariants_hold_for_any_events(events in prop::collection::vec(random(), 1..200), jitter in 0.0..1.0f64) {
        check(f5(), events, jitter)?;
    }
}
