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
        let doubling = 2u32.saturating_pow(n.saturating_sub(1).min(16));
        let cap = self.cap.min(LONGEST_LIFETIME);
        let doubled = self.base.saturating_mul(doubling).min(cap);
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

/// The renewal in flight: run step `kind` as flight `id`.
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
    /// After a logout nothing is served or started, and `cached` stays empty.
    closed: bool,
    cached: Option<Cached>,
    /// The grant held, and when it expires.
    grant: Option<(SecretString, Instant)>,
    pub(crate) flight: Option<Flight>,
    /// Flights started, for their ids.
    flights: u64,
    /// The last failure, for callers who find no token.
    error: Option<Error>,
    /// Transient failures in a row, and until when renewals wait for them.
    retry: Option<(u32, Instant)>,
    /// The last refresh failed transiently.
    stale_grant: bool,
    /// Refused attempts in a row, until when the credentials they presented
    /// wait, and which credentials those were.
    refused: Option<(u32, Instant, u64)>,
    /// When the refused logins were received, newest first, as many as the
    /// limit counts.
    refusals: VecDeque<Instant>,
    /// The credentials' generation: it changes when they do.
    credentials: u64,
    /// The generation of the last credentials a login succeeded with.
    proven: Option<u64>,
    /// Quick reports of successive tokens, and until when reports are not
    /// acted on.
    report_hold: Option<(u32, Instant)>,
    renewing_after_report: bool,
    /// When to look for changed credentials next.
    next_recheck: Option<Instant>,
}

/// What a read gets.
#[derive(Debug)]
pub(crate) enum Answer {
    Serve(AccessToken),
    /// Wait for the renewal in flight, until then at most (`None`: its end).
    Wait(Option<Instant>),
    Fail(Error),
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
    Renew(Option<Flight>),
}

impl State {
    /// A read at `now`, and the renewal it starts, if any.
    pub(crate) fn read(&mut self, rules: &Rules, now: Instant) -> (Answer, Option<Flight>) {
        if self.closed {
            return (Answer::Fail(closed(rules)), None);
        }
        self.cached.take_if(|cached| now >= cached.expires);
        if let Some(cached) = self.cached.take_if(|cached| cached.once) {
            return (Answer::Serve(cached.token), None);
        }
        let cached = self.cached.clone();
        // From its renewal time on (or with no token), a read starts a
        // renewal; from its serving time on, it waits for it: while a token
        // lives, at most `max_wait` from the renewal's start (the reader that
        // starts it waits at least once) and never past expiry.
        let due = cached.as_ref().is_none_or(|cached| now >= cached.renew_at);
        let start = due.then(|| self.start(rules, now)).flatten();
        let until = |c: &Cached, f: Flight| later(f.started, rules.max_wait).min(c.expires);
        let answer = match (cached, self.flight) {
            (Some(c), Some(f))
                if now >= c.serve_until && (start.is_some() || now < until(&c, f)) =>
            {
                Answer::Wait(Some(until(&c, f)))
            }
            (Some(cached), _) => Answer::Serve(cached.token),
            (None, Some(_)) => Answer::Wait(None),
            (None, None) => Answer::Fail(self.last_error(rules)),
        };
        (answer, start)
    }

    /// What a caller whose renewal failed with `error` gets: the cached
    /// token while it lives, else the error.
    pub(crate) fn fallback(&self, now: Instant, error: Error) -> Result<AccessToken, Error> {
        match &self.cached {
            Some(cached) if !cached.once && now < cached.expires => Ok(cached.token.clone()),
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
        let Some(flight) = self.flight.take_if(|flight| flight.id == id) else {
            // Not the flight this state runs: only its grant is dealt with.
            let result = step.result.map(|(token, _)| token).map_err(|(e, _)| e);
            return (After::Done(result), step.grant);
        };
        // Which credentials a login presented; the current ones are what
        // the loader last read, which the mechanism tells after each step.
        let presented = (flight.kind == Kind::Login).then_some(step.credentials);
        let retired = step.grant.and_then(|grant| {
            let expires = later(flight.step, rules.grant_lifetime);
            self.grant.replace((grant, expires)).map(|(old, _)| old)
        });
        let (token, life) = match step.result.and_then(|arrived| usable(rules, arrived)) {
            Ok(arrived) => arrived,
            Err((error, class)) => {
                let after = self.failed(rules, flight, now, jitter, error, class, presented);
                return (after, retired);
            }
        };
        // A usable token: the backoffs end, and it is served from now on
        // (of unknown lifetime: to its waiters, else to the next caller).
        self.error = None;
        self.retry = None;
        self.stale_grant = false;
        if let Some(presented) = presented {
            self.refused = None;
            self.proven = Some(presented);
        }
        if let Some(old) = &self.cached
            && !old.reported
            && now >= later(old.arrived, QUICK_REPORT)
        {
            // It lived long enough without a report: the server takes tokens.
            self.report_hold = None;
        }
        let after_report = std::mem::take(&mut self.renewing_after_report);
        let (from, lifetime, once) = match life {
            _ if self.closed => return (After::Done(Err(closed(rules))), retired),
            Life::Lasts { from, lifetime } => (from, lifetime, false),
            Life::Once if claimed => {
                self.cached = None;
                return (After::Done(Ok(token)), retired);
            }
            // Read before its schedule: served once, until it expires.
            Life::Once => (now, UNCLAIMED_HOLD, true),
        };
        let (expires, serve_until, renew_at) = rules.plan(from, lifetime, now);
        self.cached = Some(Cached {
            token: token.clone(),
            arrived: now,
            expires,
            serve_until,
            renew_at,
            once,
            after_report,
            reported: false,
        });
        (After::Done(Ok(token)), retired)
    }

    /// A step failed: back off as its class says, or (a refused grant) go on
    /// with a login. `presented`: the credentials a login presented, when
    /// known.
    #[allow(clippy::too_many_arguments)]
    fn failed(
        &mut self,
        rules: &Rules,
        flight: Flight,
        now: Instant,
        jitter: f64,
        error: Error,
        class: Class,
        presented: Option<u64>,
    ) -> After {
        let login = flight.kind == Kind::Login;
        // A refused login counts against the limit, from when its refusal
        // arrived (the server counted it no later); so does a login whose
        // answer is unknown while its credentials are unproven (or unknown,
        // as an abandoned login's are): it may have been refused.
        let unproven = presented.is_none_or(|presented| self.proven != Some(presented));
        if login
            && (class == Class::Refused || class == Class::Unknown && unproven)
            && let Some((max, _)) = rules.refused_limit
        {
            self.refusals.push_front(now);
            self.refusals
                .truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
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
                // Logins are held back: why says more than this refusal.
                return After::Done(Err(self.error.get_or_insert(error).clone()));
            }
            Class::Refused => {
                let refused = self.refused.map_or(0, |(n, ..)| n).saturating_add(1);
                // Jitter never brings the same credentials back sooner
                // than the base: that is the promise to the account.
                let wait = rules.refused.step(refused, jitter).max(rules.refused.base);
                let credentials = presented.unwrap_or(self.credentials);
                self.refused = Some((refused, later(now, wait), credentials));
            }
            Class::Transient | Class::Unknown => {
                let transient = self.retry.map_or(0, |(n, _)| n).saturating_add(1);
                let asked = error.retry_after().unwrap_or_default();
                let wait = TRANSIENT
                    .step(transient, jitter)
                    .max(asked.min(LONGEST_RETRY_AFTER));
                self.retry = Some((transient, later(now, wait)));
                self.stale_grant |= flight.kind == Kind::Refresh;
            }
        }
        self.error = Some(error.clone());
        After::Done(Err(error))
    }

    /// The flight `id` never started (there was no runtime to run it on):
    /// forget it.
    pub(crate) fn not_started(&mut self, id: u64) {
        self.flight.take_if(|flight| flight.id == id);
    }

    /// The flight `id` ended without a word (its runtime shut down): a
    /// failure whose answer is unknown, that says nothing of the grant.
    pub(crate) fn abandoned(&mut self, rules: &Rules, id: u64, now: Instant, error: Error) {
        if let Some(flight) = self.flight.take_if(|flight| flight.id == id) {
            let stale = self.stale_grant;
            self.failed(rules, flight, now, 1.0, error, Class::Unknown, None);
            self.stale_grant = stale;
        }
    }

    /// Whether flight `id` may run its next step: not after a logout, so
    /// that logout never starts a login. If not, the flight ends.
    pub(crate) fn proceed(&mut self, rules: &Rules, id: u64) -> Result<(), Error> {
        if self.closed && self.flight.take_if(|flight| flight.id == id).is_some() {
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
        let quick = now < later(cached.arrived, QUICK_REPORT);
        if !cached.reported && !quick {
            // It lived long enough without a report: the server takes
            // tokens, and this is a genuine revocation.
            self.report_hold = None;
        }
        if self.report_hold.is_some_and(|(_, until)| now < until) {
            cached.reported = true;
            return Reported::Held;
        }
        if cached.after_report && quick && !cached.reported {
            cached.reported = true;
            let reports = self.report_hold.map_or(0, |(n, _)| n).saturating_add(1);
            self.report_hold = Some((reports, later(now, REPORTED.step(reports, 1.0))));
            return Reported::Held;
        }
        self.cached = None;
        self.renewing_after_report = true;
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
        self.grant
            .take_if(|(held, _)| held.expose_secret() == grant.expose_secret());
    }

    /// The credentials changed: they are generation `generation` now.
    pub(crate) fn credentials_changed(&mut self, generation: u64) {
        self.credentials = generation;
    }

    /// Whether to look for changed credentials at `now`: while logins wait
    /// because these very credentials were refused (changed ones would be
    /// tried), at most once a second.
    pub(crate) fn recheck_due(&mut self, now: Instant) -> bool {
        let due = self.flight.is_none()
            && self.held(now)
            && self.next_recheck.is_none_or(|next| now >= next);
        if due {
            self.next_recheck = Some(later(now, Duration::from_secs(1)));
        }
        due
    }

    /// The token readers may take without asking the policy, and until
    /// when: the cached token until it is due for renewal (or, while a
    /// renewal runs or renewals are held back, until it must no longer be
    /// served without one).
    pub(crate) fn published(&self, rules: &Rules, now: Instant) -> Option<(AccessToken, Instant)> {
        let cached = self.cached.as_ref().filter(|cached| !cached.once)?;
        let until = if self.flight.is_some() {
            cached.serve_until
        } else if now >= cached.renew_at && self.next_kind(rules, now).is_none() {
            // Due, but renewals are held back: ask again when the backoff
            // ends, or in a second while logins are.
            let retry = self.retry.map(|(_, at)| at).filter(|at| *at > now);
            retry.unwrap_or_else(|| later(now, Duration::from_secs(1)))
        } else {
            cached.renew_at
        };
        Some((cached.token.clone(), until.min(cached.serve_until)))
    }

    /// Starts a renewal at `now`, if none runs and one may.
    fn start(&mut self, rules: &Rules, now: Instant) -> Option<Flight> {
        if self.flight.is_some() {
            return None;
        }
        let kind = self.next_kind(rules, now)?;
        self.flights += 1;
        self.flight = Some(Flight {
            id: self.flights,
            kind,
            started: now,
            step: now,
        });
        self.flight
    }

    /// What a renewal at `now` would be, if one may start.
    fn next_kind(&self, rules: &Rules, now: Instant) -> Option<Kind> {
        if self.closed || self.retry.is_some_and(|(_, at)| now < at) {
            return None;
        }
        let grant = self.grant.as_ref().is_some_and(|(_, expires)| {
            later(now, rules.skew.min(rules.grant_lifetime / 4)) < *expires
        });
        let login = self.login_allowed(rules, now);
        // A grant that failed transiently while no token is left is not
        // waited on for the rest of its life: a login may do better.
        let stale = self.stale_grant && self.cached.as_ref().is_none_or(|c| now >= c.expires);
        match (grant, login) {
            (true, true) if stale => Some(Kind::Login),
            (true, _) => Some(Kind::Refresh),
            (false, login) => login.then_some(Kind::Login),
        }
    }

    /// Whether logins wait because these very credentials were refused.
    fn held(&self, now: Instant) -> bool {
        self.refused
            .is_some_and(|(_, until, credentials)| credentials == self.credentials && now < until)
    }

    fn login_allowed(&self, rules: &Rules, now: Instant) -> bool {
        let limited = rules.refused_limit.is_some_and(|(max, window)| {
            let recent = self.refusals.iter().filter(|&&at| now < later(at, window));
            recent.count() >= usize::try_from(max).unwrap_or(usize::MAX)
        });
        !limited && !self.held(now)
    }

    /// The last failure, or why logins are held back when none is known.
    fn last_error(&self, rules: &Rules) -> Error {
        let held = "logins are held back after refused logins, to keep the account from locking";
        let held = || Error::new(ErrorKind::Auth, held).for_service(rules.service);
        self.error.clone().unwrap_or_else(held)
    }
}

/// The error of a closed cache.
fn closed(rules: &Rules) -> Error {
    let message = "the session was logged out; build a new one to log in again";
    Error::new(ErrorKind::Closed, message).for_service(rules.service)
}

/// A new token, if it can go in an `Authorization` header at all;
/// if not, a transient failure: it is never served.
fn usable(rules: &Rules, new: (AccessToken, Life)) -> Result<(AccessToken, Life), (Error, Class)> {
    let text = new.0.expose_secret();
    if !text.is_empty() && HeaderValue::from_str(text).is_ok() {
        return Ok(new);
    }
    let message = "the server sent an access token that is empty or not a valid HTTP header value";
    let error = Error::new(ErrorKind::InvalidResponse, message).for_service(rules.service);
    Err((error, Class::Transient))
}

impl Rules {
    /// When a token of `lifetime` from `from`, received at `now`, expires,
    /// stops being served without waiting and is renewed: served until
    /// `exp − s` (`s = min(skew, L/4)`), renewed in the background from
    /// `exp − clamp(ahead, s, L/2)`, where `ahead` is a quarter of the
    /// lifetime but at least `2s`: a renewal that started only when serving
    /// stops would make every reader at the rollover wait.
    fn plan(&self, from: Instant, lifetime: Duration, now: Instant) -> (Instant, Instant, Instant) {
        let lifetime = lifetime.min(LONGEST_LIFETIME);
        let (from, lifetime) = if later(from, lifetime) <= now {
            (now, self.min_lifetime)
        } else {
            (from, lifetime)
        };
        let expires = later(from, lifetime);
        let skew = self.skew.min(lifetime / 4);
        let ahead = self
            .refresh_ahead
            .unwrap_or_else(|| (lifetime / 4).max(skew.saturating_mul(2)))
            .min(lifetime / 2)
            .max(skew);
        let serve_until = earlier(expires, skew, now);
        (expires, serve_until, earlier(expires, ahead, now))
    }
}
