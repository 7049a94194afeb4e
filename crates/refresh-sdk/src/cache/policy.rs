//! The token cache's rules, as a pure function: the cache's [`State`], the
//! time, a jitter value and an event (a read, a renewal step's outcome, a
//! report of a rejected token, a logout, changed credentials) in; what to do
//! out (serve, wait until, start a refresh or a login, fail).
//!
//! No I/O, no clock and no randomness of its own: the mechanism in
//! [`super`] supplies all three, and the tests drive it with tables and
//! random event sequences.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Service};
use crate::source::AccessToken;

/// The longest span the cache plans with, so that no lifetime a server sends
/// (or a caller configures) can overflow an `Instant`.
pub(crate) const LONGEST_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// `at + by`, or as far as can be represented, never a panic.
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .or_else(|| at.checked_add(LONGEST_LIFETIME))
        .unwrap_or(at)
}

/// `at − by`, but not before `floor`.
fn earlier(at: Instant, by: Duration, floor: Instant) -> Instant {
    at.checked_sub(by).unwrap_or(floor).max(floor)
}

/// What a renewal step presents to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The grant the cache holds (VCF's refresh token).
    Refresh,
    /// The credentials (VCF's createToken, F5's refresh_token POST).
    Login,
}

/// How a step failed, as its loader tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Worth trying again soon: 5xx, 408, 429, transport, an unusable token.
    Transient,
    /// The server refused the credentials (or the request as such): the
    /// same ones get the same answer, and may lock an account.
    Refused,
    /// The server refused the grant: give it up and log in.
    GrantRefused,
    /// Transient, but the request may have reached the server (a timeout,
    /// a connection lost after sending): a login may have been refused.
    Unknown,
}

/// A doubling backoff: `base`, `2·base`, ... up to `cap`, each step
/// jittered down by up to a fifth so that many caches do not act in
/// lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The wait after the `n`th failure in a row (`jitter` in `[0, 1)`).
    pub(crate) fn step(self, n: u32, jitter: f64) -> Duration {
        let doubled = self
            .base
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)))
            .min(self.cap)
            .min(LONGEST_LIFETIME);
        doubled.mul_f64(0.8 + 0.2 * jitter.clamp(0.0, 1.0))
    }
}

/// After a transient failure: 250 ms doubling to 4 s.
const TRANSIENT: Backoff = Backoff {
    base: Duration::from_millis(250),
    cap: Duration::from_secs(4),
};
/// The longest a server's `Retry-After` holds renewals back.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A token reported within this long of its arrival, after the token
/// before it was reported too, says the server rejects every token...
const QUICK_REPORT: Duration = Duration::from_secs(5);
/// ...and then reports are not acted on for 5 s, doubling to a minute.
const REPORTED: Backoff = Backoff {
    base: Duration::from_secs(5),
    cap: Duration::from_secs(60),
};
/// How long a token of unknown lifetime that no caller received is kept for
/// the next caller: long enough for a caller that timed out to come back,
/// short enough that it is not handed out stale.
const UNCLAIMED_HOLD: Duration = Duration::from_secs(30);

/// The rules a cache follows: its vendor's timing and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Whose tokens, for the errors the policy makes.
    pub(crate) service: Service,
    /// How long before its expiry a token stops being served without
    /// waiting (at most a quarter of its lifetime).
    pub(crate) skew: Duration,
    /// How long before its expiry a token is renewed in the background;
    /// `None`: a quarter of its lifetime, at least twice the skew.
    pub(crate) refresh_ahead: Option<Duration>,
    /// The longest a caller that has a valid token waits for a renewal.
    pub(crate) max_wait: Duration,
    /// After refused credentials, before the same ones are tried again.
    pub(crate) refused: Backoff,
    /// At most this many refused logins in any window of this length.
    pub(crate) refused_limit: Option<(u32, Duration)>,
    /// How long a grant lives.
    pub(crate) grant_lifetime: Duration,
    /// How long a token whose lifetime is already over on arrival is kept:
    /// renewing it on every read would only load the server.
    pub(crate) min_lifetime: Duration,
}

/// How long a new token lasts, as its loader measured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    /// `lifetime` from `from` (on the monotonic clock).
    Lasts { from: Instant, lifetime: Duration },
    /// Unknown: the token goes to the callers waiting for it, no one else.
    Once,
}

/// A renewal step's result, as its loader reports it.
pub(crate) struct Step {
    pub(crate) result: Result<(AccessToken, Life), (Error, Class)>,
    /// A new grant, when the step got one (even if its token is unusable).
    pub(crate) grant: Option<SecretString>,
    /// Which credentials a login presented (see [`State::credentials`]).
    pub(crate) credentials: u64,
}

/// The token being served and its schedule.
#[derive(Clone, Debug)]
pub(crate) struct Cached {
    pub(crate) token: AccessToken,
    pub(crate) arrived: Instant,
    /// Never served from then on.
    pub(crate) expires: Instant,
    /// Served without waiting until then.
    pub(crate) serve_until: Instant,
    /// A read from then on starts a background renewal.
    pub(crate) renew_at: Instant,
    /// Of unknown lifetime: for the next caller only.
    pub(crate) once: bool,
    /// It replaced a token reported as rejected.
    pub(crate) after_report: bool,
    /// It was reported as rejected.
    pub(crate) reported: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flight {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    /// When the flight started: how long readers have waited for it.
    pub(crate) started: Instant,
    /// When its current step started: a grant it gets lives from then.
    pub(crate) step: Instant,
}

/// Everything the cache knows.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) closed: bool,
    pub(crate) cached: Option<Cached>,
    grant: Option<(SecretString, Instant)>,
    pub(crate) flight: Option<Flight>,
    flights: u64,
    /// The last failure, for callers who find no token.
    error: Option<Error>,
    transient: u32,
    retry_at: Option<Instant>,
    refused: u32,
    refused_until: Option<Instant>,
    /// The credentials last refused.
    refused_credentials: Option<u64>,
    /// When the refused logins were sent, newest last.
    refusals: VecDeque<Instant>,
    /// The credentials' generation: it changes when they do.
    credentials: u64,
    /// The generation of the last credentials a login succeeded with.
    proven: Option<u64>,
    /// The last refresh failed transiently.
    stale_grant: bool,
    reports: u32,
    report_hold: Option<Instant>,
    renewing_after_report: bool,
}

/// What a read gets.
#[derive(Debug)]
pub(crate) enum Answer {
    Serve(AccessToken),
    /// Wait for the renewal in flight, until then at most (`None`: its end).
    Wait(Option<Instant>),
    Fail(Error),
}

/// A renewal to start: run step `kind` as flight `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Start {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
}

/// What a flight does after a step.
#[derive(Debug)]
pub(crate) enum After {
    /// Go on with another step.
    Next(Kind),
    /// End, with this for its waiters.
    Done(Result<AccessToken, Error>),
}

/// What a report of a rejected token did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reported {
    /// Not the token served: nothing.
    Ignored,
    /// The server seems to reject every token: kept, not renewed now.
    Held,
    /// Served no more; a renewal started if one may.
    Renew(Option<Start>),
}

impl State {
    /// A read at `now`; `start` says whether a renewal to run came with it.
    pub(crate) fn read(&mut self, rules: &Rules, now: Instant) -> (Answer, Option<Start>) {
        if self.closed {
            return (Answer::Fail(closed(rules)), None);
        }
        if let Some(cached) = &self.cached {
            if now >= cached.expires {
                self.cached = None;
            } else if cached.once {
                let token = cached.token.clone();
                self.cached = None;
                return (Answer::Serve(token), None);
            } else if now < cached.serve_until {
                let token = cached.token.clone();
                let start = if now >= cached.renew_at && self.flight.is_none() {
                    self.start(rules, now)
                } else {
                    None
                };
                return (Answer::Serve(token), start);
            } else {
                // Due for renewal: wait for it a little, never past expiry.
                let (token, expires) = (cached.token.clone(), cached.expires);
                return match self.flight {
                    Some(flight) => {
                        let until = later(flight.started, rules.max_wait).min(expires);
                        if now < until {
                            (Answer::Wait(Some(until)), None)
                        } else {
                            (Answer::Serve(token), None)
                        }
                    }
                    None => match self.start(rules, now) {
                        Some(start) => {
                            let until = later(now, rules.max_wait).min(expires);
                            (Answer::Wait(Some(until)), Some(start))
                        }
                        None => (Answer::Serve(token), None),
                    },
                };
            }
        }
        if self.flight.is_some() {
            return (Answer::Wait(None), None);
        }
        match self.start(rules, now) {
            Some(start) => (Answer::Wait(None), Some(start)),
            None => (Answer::Fail(self.last_error(rules)), None),
        }
    }

    /// What a caller whose renewal failed with `error` gets: the cached
    /// token while it lives, else the error.
    pub(crate) fn fallback(&self, now: Instant, error: Error) -> Result<AccessToken, Error> {
        match &self.cached {
            Some(cached) if !self.closed && !cached.once && now < cached.expires => {
                Ok(cached.token.clone())
            }
            _ => Err(error),
        }
    }

    /// Step `id` of a flight ended at `now` with `step`; `claimed` says some
    /// caller waits for it. Returns what the flight does next and a grant
    /// the step superseded, to invalidate.
    pub(crate) fn finished(
        &mut self,
        rules: &Rules,
        id: u64,
        now: Instant,
        jitter: f64,
        step: Step,
        claimed: bool,
    ) -> (After, Option<SecretString>) {
        let Some(flight) = self.flight.filter(|f| f.id == id) else {
            // Not the flight this state runs: only its grant is dealt with.
            let result = step.result.map(|(token, _)| token).map_err(|(e, _)| e);
            return (After::Done(result), step.grant);
        };
        if flight.kind == Kind::Login {
            self.credentials = step.credentials;
        }
        let retired = step.grant.and_then(|grant| {
            let expires = later(flight.step, rules.grant_lifetime);
            self.grant.replace((grant, expires)).map(|(old, _)| old)
        });
        let result = step.result.and_then(|(token, life)| {
            if usable(&token) {
                Ok((token, life))
            } else {
                let error = Error::new(
                    ErrorKind::InvalidResponse,
                    "the server sent an access token that is empty or not a valid HTTP header value",
                )
                .for_service(rules.service);
                Err((error, Class::Transient))
            }
        });
        let after = match result {
            Ok((token, life)) => {
                self.flight = None;
                self.succeeded(rules, flight, now, token, life, claimed)
            }
            Err((error, class)) => {
                self.failed(rules, flight, now, jitter, error, class, step.credentials)
            }
        };
        (after, retired)
    }

    fn succeeded(
        &mut self,
        rules: &Rules,
        flight: Flight,
        now: Instant,
        token: AccessToken,
        life: Life,
        claimed: bool,
    ) -> After {
        self.error = None;
        self.transient = 0;
        self.retry_at = None;
        self.stale_grant = false;
        if flight.kind == Kind::Login {
            self.refused = 0;
            self.refused_until = None;
            self.proven = Some(self.credentials);
        }
        if let Some(old) = &self.cached
            && !old.reported
            && now >= later(old.arrived, QUICK_REPORT)
        {
            // It lived long enough without a report: the server takes tokens.
            self.reports = 0;
            self.report_hold = None;
        }
        let after_report = std::mem::take(&mut self.renewing_after_report);
        self.cached = match life {
            Life::Lasts { from, lifetime } => Some(plan(rules, token.clone(), from, lifetime, now)),
            Life::Once if claimed => None,
            // Read before its schedule: served once, until it expires.
            Life::Once => Some(Cached {
                once: true,
                ..plan(rules, token.clone(), now, UNCLAIMED_HOLD, now)
            }),
        }
        .map(|cached| Cached {
            after_report,
            ..cached
        });
        if self.closed {
            self.cached = None;
            return After::Done(Err(closed(rules)));
        }
        After::Done(Ok(token))
    }

    #[allow(clippy::too_many_arguments)]
    fn failed(
        &mut self,
        rules: &Rules,
        flight: Flight,
        now: Instant,
        jitter: f64,
        error: Error,
        class: Class,
        credentials: u64,
    ) -> After {
        match class {
            Class::GrantRefused => {
                self.grant = None;
                if !self.closed && self.login_allowed(rules, now) {
                    self.flight = Some(Flight {
                        kind: Kind::Login,
                        step: now,
                        ..flight
                    });
                    return After::Next(Kind::Login);
                }
                if self.error.is_none() {
                    self.error = Some(error);
                }
                self.flight = None;
                return After::Done(Err(self.last_error(rules)));
            }
            Class::Refused => {
                self.refused = self.refused.saturating_add(1);
                // Jitter never brings the same credentials back sooner
                // than the base: that is the promise to the account.
                let wait = rules
                    .refused
                    .step(self.refused, jitter)
                    .max(rules.refused.base);
                self.refused_until = Some(later(now, wait));
                self.refused_credentials = Some(credentials);
                if flight.kind == Kind::Login {
                    self.count_refusal(rules, now);
                }
            }
            Class::Transient | Class::Unknown => {
                // A login whose answer is unknown may have been refused:
                // while its credentials are unproven, it counts too.
                if class == Class::Unknown
                    && flight.kind == Kind::Login
                    && self.proven != Some(credentials)
                {
                    self.count_refusal(rules, now);
                }
                self.transient = self.transient.saturating_add(1);
                let asked = error
                    .retry_after()
                    .map_or(Duration::ZERO, |asked| asked.min(LONGEST_RETRY_AFTER));
                let wait = TRANSIENT.step(self.transient, jitter).max(asked);
                self.retry_at = Some(later(now, wait));
                if flight.kind == Kind::Refresh {
                    self.stale_grant = true;
                }
            }
        }
        self.flight = None;
        self.error = Some(error.clone());
        After::Done(Err(error))
    }

    /// Files a refused login, received at `now` (the server counted it no
    /// later), for the limit.
    fn count_refusal(&mut self, rules: &Rules, now: Instant) {
        if let Some((max, _)) = rules.refused_limit {
            self.refusals.push_back(now);
            while self.refusals.len() > usize::try_from(max).unwrap_or(usize::MAX) {
                self.refusals.pop_front();
            }
        }
    }

    /// The flight `id` never started (there was no runtime to run it on):
    /// forget it.
    pub(crate) fn not_started(&mut self, id: u64) {
        if self.flight.is_some_and(|f| f.id == id) {
            self.flight = None;
        }
    }

    /// The flight `id` ended without a word (its runtime shut down): a
    /// failure whose answer is unknown, that says nothing of the grant.
    pub(crate) fn abandoned(&mut self, rules: &Rules, id: u64, now: Instant, error: Error) {
        if let Some(flight) = self.flight.filter(|f| f.id == id) {
            let (credentials, stale) = (self.credentials, self.stale_grant);
            self.failed(rules, flight, now, 1.0, error, Class::Unknown, credentials);
            self.stale_grant = stale;
        }
    }

    /// Whether flight `id` may run its next step: not after a logout, so
    /// that logout never starts a login. If not, the flight ends.
    pub(crate) fn proceed(&mut self, rules: &Rules, id: u64) -> Result<(), Error> {
        if self.closed && self.flight.is_some_and(|f| f.id == id) {
            self.flight = None;
            return Err(closed(rules));
        }
        Ok(())
    }

    /// The server rejected `rejected` at `now`.
    pub(crate) fn invalidate(
        &mut self,
        rules: &Rules,
        now: Instant,
        rejected: &AccessToken,
    ) -> Reported {
        let Some(cached) = self
            .cached
            .as_mut()
            .filter(|c| c.token.expose_secret() == rejected.expose_secret() && now < c.expires)
        else {
            return Reported::Ignored;
        };
        if self.closed {
            return Reported::Ignored;
        }
        let quick = now < later(cached.arrived, QUICK_REPORT);
        if !cached.reported && !quick {
            // It lived long enough without a report: the server takes
            // tokens, and this is a genuine revocation.
            self.reports = 0;
            self.report_hold = None;
        }
        if self.report_hold.is_some_and(|hold| now < hold) {
            cached.reported = true;
            return Reported::Held;
        }
        if cached.after_report && quick && !cached.reported {
            cached.reported = true;
            self.reports = self.reports.saturating_add(1);
            self.report_hold = Some(later(now, REPORTED.step(self.reports, 1.0)));
            return Reported::Held;
        }
        self.cached = None;
        self.renewing_after_report = true;
        if self.flight.is_some() {
            return Reported::Renew(None);
        }
        Reported::Renew(self.start(rules, now))
    }

    /// Closes the cache for good: nothing is served or started after this.
    /// Returns whether a flight is still running (its grant, if it gets
    /// one, is filed for [`grant`](Self::grant)).
    pub(crate) fn close(&mut self) -> bool {
        self.closed = true;
        self.cached = None;
        self.flight.is_some()
    }

    /// The grant held, if any.
    pub(crate) fn grant(&self) -> Option<SecretString> {
        self.grant.as_ref().map(|(grant, _)| grant.clone())
    }

    /// Forgets `grant` if it is still the one held.
    pub(crate) fn forget_grant(&mut self, grant: &SecretString) {
        if self
            .grant
            .as_ref()
            .is_some_and(|(held, _)| held.expose_secret() == grant.expose_secret())
        {
            self.grant = None;
        }
    }

    /// The credentials changed: they are generation `generation` now.
    pub(crate) fn credentials_changed(&mut self, generation: u64) {
        self.credentials = generation;
    }

    /// Whether logins wait because these very credentials were refused, so
    /// that changed ones would be tried: the time to look for a change.
    pub(crate) fn login_held_for_credentials(&self, now: Instant) -> bool {
        self.flight.is_none()
            && self.refused_credentials == Some(self.credentials)
            && self.refused_until.is_some_and(|until| now < until)
    }

    /// The token readers may take without asking the policy, and until
    /// when: the cached token until it is due for renewal (or, while a
    /// renewal runs or renewals are held back, until it must no longer be
    /// served without one).
    pub(crate) fn published(&self, rules: &Rules, now: Instant) -> Option<(AccessToken, Instant)> {
        let cached = self.cached.as_ref().filter(|c| !c.once && !self.closed)?;
        let until = if self.flight.is_some() {
            cached.serve_until
        } else if now >= cached.renew_at && self.next_kind(rules, now).is_none() {
            // Due, but renewals are held back: ask again when the backoff
            // ends, or in a second while logins are.
            let retry = self.retry_at.filter(|at| *at > now);
            retry
                .unwrap_or_else(|| later(now, Duration::from_secs(1)))
                .min(cached.serve_until)
        } else {
            cached.renew_at.min(cached.serve_until)
        };
        Some((cached.token.clone(), until))
    }

    fn start(&mut self, rules: &Rules, now: Instant) -> Option<Start> {
        let kind = self.next_kind(rules, now)?;
        self.flights += 1;
        let id = self.flights;
        self.flight = Some(Flight {
            id,
            kind,
            started: now,
            step: now,
        });
        Some(Start { id, kind })
    }

    /// What a renewal at `now` would be, if one may start.
    fn next_kind(&self, rules: &Rules, now: Instant) -> Option<Kind> {
        if self.closed || self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        let grant = self.grant.as_ref().is_some_and(|(_, expires)| {
            later(now, rules.skew.min(rules.grant_lifetime / 4)) < *expires
        });
        let login = self.login_allowed(rules, now);
        let expired = self.cached.as_ref().is_none_or(|c| now >= c.expires);
        match (grant, login) {
            // A grant that failed transiently while no token is left is not
            // waited on for the rest of its life: a login may do better.
            (true, true) if expired && self.stale_grant => Some(Kind::Login),
            (true, _) => Some(Kind::Refresh),
            (false, true) => Some(Kind::Login),
            (false, false) => None,
        }
    }

    fn login_allowed(&self, rules: &Rules, now: Instant) -> bool {
        let same = self.refused_credentials == Some(self.credentials);
        if same && self.refused_until.is_some_and(|until| now < until) {
            return false;
        }
        match rules.refused_limit {
            Some((max, window)) => {
                let recent = self
                    .refusals
                    .iter()
                    .filter(|sent| now < later(**sent, window))
                    .count();
                u32::try_from(recent).unwrap_or(u32::MAX) < max
            }
            None => true,
        }
    }

    fn last_error(&self, rules: &Rules) -> Error {
        self.error.clone().unwrap_or_else(|| {
            Error::new(
                ErrorKind::Auth,
                "logins are held back after refused logins, to keep the account from locking",
            )
            .for_service(rules.service)
        })
    }
}

/// The error of a closed cache.
fn closed(rules: &Rules) -> Error {
    Error::new(
        ErrorKind::Closed,
        "the session was logged out; build a new one to log in again",
    )
    .for_service(rules.service)
}

/// Whether a token can go in an `Authorization` header at all.
fn usable(token: &AccessToken) -> bool {
    let text = token.expose_secret();
    !text.is_empty() && HeaderValue::from_str(text).is_ok()
}

/// When a token of `lifetime` from `from`, received at `now`, is served,
/// renewed and expired: served without waiting until `exp − s`
/// (`s = min(skew, L/4)`), renewed in the background from
/// `exp − clamp(ahead, s, L/2)`, where `ahead` is a quarter of the lifetime
/// but at least `2s`: a renewal that started only when serving stops would
/// make every reader at the rollover wait.
fn plan(
    rules: &Rules,
    token: AccessToken,
    from: Instant,
    lifetime: Duration,
    now: Instant,
) -> Cached {
    let lifetime = lifetime.min(LONGEST_LIFETIME);
    let (from, lifetime) = if later(from, lifetime) <= now {
        (now, rules.min_lifetime)
    } else {
        (from, lifetime)
    };
    let expires = later(from, lifetime);
    let skew = rules.skew.min(lifetime / 4);
    let ahead = rules
        .refresh_ahead
        .unwrap_or_else(|| (lifetime / 4).max(skew.saturating_mul(2)))
        .min(lifetime / 2)
        .max(skew);
    Cached {
        token,
        arrived: now,
        expires,
        serve_until: earlier(expires, skew, now),
        renew_at: earlier(expires, ahead, now),
        once: false,
        after_report: false,
        reported: false,
    }
}
