//! [`SessionOptions`]: when a [`VcfSession`](super::VcfSession) renews, and
//! how long a VCF token lives (from its JWT claims and the response's
//! `Date`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use tokio::time::Instant;

use crate::cache::policy::LONGEST_LIFETIME;
use crate::cache::{Backoff, Life, Rules};
use crate::error::Service;
use crate::jwt;

/// When [`VcfSession`](super::VcfSession) renews, and the clock it reads JWT times against.
///
/// ```
/// use std::time::Duration;
/// use refresh_sdk::vcf::SessionOptions;
///
/// let options = SessionOptions::default()
///     .skew(Duration::from_secs(30))
///     .refresh_ahead(Duration::from_secs(10 * 60));
/// # let _ = options;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    skew: Duration,
    refresh_ahead: Option<Duration>,
    assumed_access_lifetime: Duration,
    min_lifetime: Duration,
    refresh_token_lifetime: Duration,
    max_wait: Duration,
    refused_logins: (u32, Duration),
    refused_login_backoff: Duration,
    wall_clock: WallClock,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            skew: Duration::from_secs(60),
            refresh_ahead: None,
            assumed_access_lifetime: Duration::from_secs(60 * 60),
            min_lifetime: Duration::from_secs(10),
            refresh_token_lifetime: Duration::from_secs(24 * 60 * 60),
            max_wait: Duration::from_secs(1),
            refused_logins: (2, Duration::from_secs(15 * 60)),
            refused_login_backoff: Duration::from_secs(5 * 60),
            wall_clock: WallClock(None),
        }
    }
}

/// `SystemTime::now`, or the clock a test gives.
#[derive(Clone)]
struct WallClock(Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>);

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "custom" } else { "system" })
    }
}

impl PartialEq for WallClock {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for WallClock {}

impl SessionOptions {
    /// How long before its expiry a token stops being served without waiting
    /// for a renewal (default 60 s; at most a quarter of the token's
    /// lifetime, so a short-lived token is still served most of its life).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// How long before its expiry a token is renewed in the background while
    /// callers keep being served (default: a quarter of the token's lifetime,
    /// 15 minutes of VCF's 60, and at least twice the skew, so that a short
    /// token is renewed before readers would have to wait). Kept between the
    /// skew and half the lifetime.
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.refresh_ahead = Some(ahead);
        self
    }

    /// The lifetime assumed for an access token that is not a JWT with `exp`
    /// (default 1 hour, as VCF documents).
    pub fn assumed_access_lifetime(mut self, lifetime: Duration) -> Self {
        self.assumed_access_lifetime = lifetime;
        self
    }

    /// How long a token is kept when its claims give it no time left at all,
    /// such as an `exp` already past and no `iat` (default 10 s).
    /// Renewing such a token on every call would only load the server; a
    /// token the server does reject is reported with
    /// [`VcfSession::invalidate`](super::VcfSession::invalidate).
    pub fn min_lifetime(mut self, lifetime: Duration) -> Self {
        self.min_lifetime = lifetime;
        self
    }

    /// The lifetime of a refresh token (default 24 hours, as VCF documents);
    /// near its end the session logs in again instead of refreshing.
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// The longest a caller that finds a still-valid token waits for a
    /// renewal that is due (default 1 s); it never waits past the token's
    /// expiry, and once a renewal has run this long, later callers get the
    /// cached token at once.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// At most `max` refused logins in any `window` (default 2 in 15
    /// minutes; `max` is at least 1). SDDC Manager locks a local account
    /// for 24 hours after 3 failed logins; the count is kept per session,
    /// so per process. A login whose answer never came (a timeout, a lost
    /// connection) counts too while its credentials have not yet been
    /// accepted: it may have been refused.
    pub fn refused_logins(mut self, max: u32, window: Duration) -> Self {
        self.refused_logins = (max, window);
        self
    }

    /// How long after a refused login the same credentials are tried again
    /// (default 5 minutes). Credentials that changed (a rotated
    /// `VCF_SDDC_MANAGER_PASSWORD_FILE`) are tried at once if
    /// [`refused_logins`](Self::refused_logins) leaves an attempt.
    pub fn refused_login_backoff(mut self, backoff: Duration) -> Self {
        self.refused_login_backoff = backoff;
        self
    }

    /// The wall clock a token's `exp` is compared with when it has no `iat`
    /// and its response no readable `Date` (default `SystemTime::now`).
    /// Tests that run on tokio's paused clock give one that moves with it.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use refresh_sdk::vcf::SessionOptions;
    ///
    /// let started = SystemTime::now();
    /// let origin = tokio::time::Instant::now();
    /// let options = SessionOptions::default().wall_clock(move || started + origin.elapsed());
    /// # let _ = options;
    /// ```
    pub fn wall_clock(mut self, now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.wall_clock = WallClock(Some(Arc::new(now)));
        self
    }

    fn now(&self) -> SystemTime {
        match &self.wall_clock.0 {
            Some(clock) => clock(),
            None => SystemTime::now(),
        }
    }
    /// The cache's rules for these options.
    pub(super) fn rules(&self) -> Rules {
        Rules {
            service: Service::Vcf,
            skew: self.skew,
            refresh_ahead: self.refresh_ahead,
            max_wait: self.max_wait,
            refused: Backoff {
                base: self.refused_login_backoff,
                cap: self.refused_login_backoff,
            },
            // A limit of 0 would never log in: at least one.
            refused_limit: Some((self.refused_logins.0.max(1), self.refused_logins.1)),
            grant_lifetime: self.refresh_token_lifetime,
            min_lifetime: self.min_lifetime,
        }
    }

    /// How long a token whose renewal was sent at `sent` and received at
    /// `received` lives, and from when, on the monotonic clock.
    ///
    /// With `exp` and `iat`, the lifetime is `exp − iat`, which needs no
    /// agreement between the server's clock and ours, counted from `sent`:
    /// the token cannot be older than the request. When the response has a
    /// `Date` (the server's clock as it answered), what `exp` leaves by it
    /// caps that, so an old token handed back is not served for a lifetime
    /// it no longer has. `iat` and `Date` are in whole seconds, so a second
    /// is not counted. Without either, what `exp` leaves by our wall clock
    /// counts from `received`; without `exp`, the assumed lifetime counts
    /// from `sent`. A token left no time at all is kept for the minimum
    /// lifetime (the cache's rule).
    pub(super) fn life(
        &self,
        token: &str,
        sent: Instant,
        received: Instant,
        date: Option<&HeaderValue>,
    ) -> Life {
        let second = Duration::from_secs(1);
        let Some(jwt::TimeClaims {
            exp: Some(exp),
            iat,
            iat_rounded,
        }) = jwt::claims(token)
        else {
            return Life::Lasts {
                from: sent,
                lifetime: self.assumed_access_lifetime,
            };
        };
        let issued = iat
            .and_then(|iat| exp.duration_since(iat).ok())
            .filter(|lifetime| !lifetime.is_zero())
            .map(|lifetime| {
                if iat_rounded {
                    lifetime.saturating_sub(second)
                } else {
                    lifetime
                }
            });
        let left_by_date = date
            .and_then(|date| date.to_str().ok())
            .and_then(|date| httpdate::parse_http_date(date).ok())
            .map(|server_now| {
                exp.duration_since(server_now)
                    .unwrap_or(Duration::ZERO)
                    .saturating_sub(second)
            });
        let (from, lifetime) = match (issued, left_by_date) {
            (Some(issued), Some(left)) => (sent, issued.min(left)),
            (Some(lifetime), None) | (None, Some(lifetime)) => (sent, lifetime),
            (None, None) => (
                received,
                exp.duration_since(self.now()).unwrap_or(Duration::ZERO),
            ),
        };
        Life::Lasts {
            from,
            lifetime: lifetime.min(LONGEST_LIFETIME),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("e30.{}.sig", b64.encode(claims))
    }

    #[test]
    fn a_lifetime_comes_from_the_claims_and_the_servers_date_not_our_clock() {
        let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let options = SessionOptions::default().wall_clock(move || now);
        let sent = Instant::now();
        let received = sent + Duration::from_millis(300);
        let date = |at: u64| {
            HeaderValue::from_str(&httpdate::fmt_http_date(
                UNIX_EPOCH + Duration::from_secs(at),
            ))
            .expect("an HTTP date")
        };
        let life = |claims: &str, date: Option<HeaderValue>| match options.life(
            &jwt(claims),
            sent,
            received,
            date.as_ref(),
        ) {
            Life::Lasts { from, lifetime } => (from == sent, lifetime.as_secs_f64()),
            Life::Once => panic!("a VCF token always has a lifetime"),
        };
        // Server two hours behind: exp is in our past, exp - iat is an hour,
        // less the second a whole-second iat may hide, counted from sending.
        let behind = 1_900_000_000 - 7200;
        let claims = format!(r#"{{"iat":{behind},"exp":{}}}"#, behind + 3600);
        assert_eq!(life(&claims, None), (true, 3599.0));
        // ... and its Date agrees with its iat: the same.
        assert_eq!(life(&claims, Some(date(behind))), (true, 3599.0));
        // An old token handed back (issued an hour and 50 s ago by the
        // server's own Date): what exp leaves by that Date, not exp - iat.
        assert_eq!(life(&claims, Some(date(behind + 3590))), (true, 9.0));
        // ... and one already past its exp by the Date: nothing left (the
        // cache then keeps it the minimum lifetime).
        assert_eq!(life(&claims, Some(date(behind + 4000))), (true, 0.0));
        // A fractional iat is exact.
        assert_eq!(
            life(r#"{"iat":1899999999.5,"exp":1900000009.5}"#, None),
            (true, 10.0)
        );
        // No iat: what exp leaves by our clock, from receipt.
        assert_eq!(life(r#"{"exp":1900000100}"#, None), (false, 100.0));
        // No iat but the response's Date (a server a day ahead): what exp
        // leaves by the server's clock, less the Date's rounding, from sending.
        assert_eq!(
            life(r#"{"exp":1900086460}"#, Some(date(1_900_086_400))),
            (true, 59.0)
        );
        // An unreadable Date is as none.
        assert_eq!(
            life(
                r#"{"exp":1900000100}"#,
                Some(HeaderValue::from_static("tomorrow"))
            ),
            (false, 100.0)
        );
        // No exp, or not a JWT: the assumed hour; a far exp is capped.
        assert_eq!(life(r#"{"iat":1}"#, None), (true, 3600.0));
        assert_eq!(life(r#"{"iat":0,"exp":1e300}"#, None), (true, 3600.0));
        assert_eq!(
            life(r#"{"iat":0,"exp":1e18}"#, None).1,
            LONGEST_LIFETIME.as_secs_f64()
        );
    }
}
