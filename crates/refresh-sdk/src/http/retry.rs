//! When a request is sent again, and how long the SDK waits: the retry
//! rule, the operation's deadline and the server's `Retry-After`.

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};

#[cfg(doc)]
use super::options::RetryPolicy;

/// When the operation a request belongs to started, so that a layer above
/// the policy that sends it again (after a 401) shares its deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperationStarted(pub(crate) Instant);

/// The longest a server's `Retry-After` is waited for inside one operation,
/// whatever its deadline: a longer wait (a deadline of `Duration::MAX` and an
/// answer of `Retry-After: 9999999999`) would stall the caller, and every
/// caller waiting on the same token renewal, for as long as the server says.
/// The error carries the wait instead.
pub(crate) const LONGEST_SERVER_WAIT: Duration = Duration::from_secs(5 * 60);

/// Whether a response with `status` to this request is sent again (see
/// [`RetryPolicy`]): 429 and 503 say the request was not processed, so every
/// request is; 502 and 504 come from a gateway that may have passed it on, so
/// only a request that does no harm when repeated is: one with an idempotent
/// method, or one its sender vouches for (`idempotent`: an operation sent
/// with another method that is still harmless to repeat).
pub(crate) fn retries_status(
    method: &reqwest::Method,
    idempotent: bool,
    status: StatusCode,
) -> bool {
    match status.as_u16() {
        429 | 503 => true,
        502 | 504 => idempotent || is_idempotent_method(method),
        _ => false,
    }
}

/// The methods RFC 9110 defines as idempotent, TRACE aside.
fn is_idempotent_method(method: &reqwest::Method) -> bool {
    use reqwest::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .contains(method)
}

/// Whole milliseconds of `duration`, saturating, for traces.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The end of an operation's time budget. A budget too large to represent as
/// an [`Instant`] (such as `Duration::MAX`) is no deadline at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    started: Instant,
    at: Option<Instant>,
}

impl Deadline {
    pub(crate) fn starting_now(budget: Duration) -> Deadline {
        Deadline::starting_at(Instant::now(), budget)
    }

    pub(crate) fn starting_at(started: Instant, budget: Duration) -> Deadline {
        Deadline {
            started,
            at: started.checked_add(budget),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn is_bounded(&self) -> bool {
        self.at.is_some()
    }

    pub(crate) fn has_passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// Whether a wait of `delay` starting now ends before the deadline. A
    /// wait whose end cannot be represented never does, deadline or not.
    pub(crate) fn allows_wait(&self, delay: Duration) -> bool {
        match Instant::now().checked_add(delay) {
            Some(end) => self.at.is_none_or(|at| end < at),
            None => false,
        }
    }

    /// The timeout of an attempt starting `now`: the configured one, cut to
    /// what is left of the budget, at least 1 ms (zero would fail before sending).
    /// `None`, no timeout, when neither bounds the attempt.
    pub(crate) fn attempt_timeout(&self, now: Instant, configured: Duration) -> Option<Duration> {
        let configured = now.checked_add(configured).map(|_| configured);
        let remaining = self.at.map(|at| at.saturating_duration_since(now));
        let timeout = match (configured, remaining) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        Some(timeout.max(Duration::from_millis(1)))
    }
}

/// `Retry-After` in either form: delay seconds or an HTTP date. Seconds too
/// many for a `u64` saturate; a date counts from the response's `Date` (from
/// our clock when it has none or an unreadable one), and one in the past is
/// no wait; a negative, empty, non-ASCII or otherwise malformed value is
/// ignored.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    // The date is on the server's clock, not ours: measured from the
    // response's own `Date` when it has one, a server whose clock is off by
    // an hour still gets the wait it asked for.
    let now = headers
        .get(DATE)
        .and_then(|date| date.to_str().ok())
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .unwrap_or_else(SystemTime::now);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use reqwest::header::HeaderValue;

    use super::*;
    use crate::http::options::RetryPolicy;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().expect("header value"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(later)
                .parse()
                .expect("header value"),
        );
        let wait = parse_retry_after(&headers).expect("an HTTP date parses");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, "soon".parse().expect("header value"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn a_retry_after_date_counts_from_the_servers_date_not_our_clock() {
        let header = |value: &str| HeaderValue::from_str(value).expect("header value");
        // A server whose clock is 31 years behind ours asks for 90 s.
        let mut headers = HeaderMap::new();
        headers.insert(DATE, header("Sun, 06 Nov 1994 08:49:37 GMT"));
        headers.insert(RETRY_AFTER, header("Sun, 06 Nov 1994 08:51:07 GMT"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(90)));
        // One far ahead of ours asks for no wait at all.
        headers.insert(DATE, header("Fri, 31 Dec 9999 23:59:59 GMT"));
        headers.insert(RETRY_AFTER, header("Fri, 31 Dec 9999 23:59:59 GMT"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        // An unreadable `Date` is as none: our clock, so the 1994 date is past.
        headers.insert(DATE, header("yesterday"));
        headers.insert(RETRY_AFTER, header("Sun, 06 Nov 1994 08:51:07 GMT"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
    }

    #[test]
    fn absurd_retry_after_values_parse_without_panicking() {
        let parse = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(
                RETRY_AFTER,
                http::HeaderValue::from_bytes(value).expect("a header value"),
            );
            parse_retry_after(&headers)
        };
        let max = Some(Duration::from_secs(u64::MAX));
        assert_eq!(parse(b"18446744073709551615"), max);
        // More seconds than a u64 holds is still "very long", not "no wait".
        assert_eq!(parse(b"99999999999999999999999999"), max);
        assert_eq!(parse(b" 5 "), Some(Duration::from_secs(5)));
        for ignored in [&b"-1"[..], b"+5", b"1.5", b"", b"5 s", b"\xff\xfe"] {
            assert_eq!(parse(ignored), None, "{ignored:?}");
        }
        // The last date HTTP can express, about 8,000 years ahead.
        let far = parse(b"Fri, 31 Dec 9999 23:59:59 GMT").expect("a valid date");
        assert!(far > Duration::from_secs(7_000 * 365 * 86_400), "{far:?}");
        assert_eq!(
            parse(b"Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn the_retry_rule_by_method_and_status() {
        use reqwest::Method;
        let status = |code| StatusCode::from_u16(code).expect("a valid status");
        // Statuses that say the request was not processed: everything.
        for code in [429, 503] {
            assert!(retries_status(&Method::POST, false, status(code)), "{code}");
            assert!(
                retries_status(&Method::PATCH, false, status(code)),
                "{code}"
            );
        }
        for code in [502, 504] {
            // Idempotent methods.
            for method in [
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ] {
                assert!(
                    retries_status(&method, false, status(code)),
                    "{method} {code}"
                );
            }
            // Requests that may have been processed.
            assert!(
                !retries_status(&Method::POST, false, status(code)),
                "{code}"
            );
            assert!(
                !retries_status(&Method::PATCH, false, status(code)),
                "{code}"
            );
            // Unless the sender vouches for them (VCF's refresh).
            assert!(retries_status(&Method::PATCH, true, status(code)), "{code}");
        }
        for code in [200, 201, 400, 401, 404, 409, 500, 501, 505, 599] {
            assert!(!retries_status(&Method::GET, true, status(code)), "{code}");
        }
    }

    #[test]
    fn an_unrepresentable_deadline_is_none_and_waits_stay_representable() {
        let unbounded = Deadline::starting_now(Duration::MAX);
        assert!(!unbounded.is_bounded());
        assert!(!unbounded.has_passed());
        assert!(unbounded.allows_wait(Duration::from_secs(1)));
        assert!(!unbounded.allows_wait(Duration::MAX));
        assert_eq!(
            unbounded.attempt_timeout(Instant::now(), Duration::MAX),
            None
        );
        assert_eq!(
            unbounded.attempt_timeout(Instant::now(), Duration::from_secs(30)),
            Some(Duration::from_secs(30))
        );

        let bounded = Deadline::starting_now(Duration::from_secs(60));
        assert!(bounded.is_bounded());
        assert!(bounded.allows_wait(Duration::from_secs(1)));
        assert!(!bounded.allows_wait(Duration::from_secs(61)));
        assert!(!bounded.allows_wait(Duration::MAX));
        let timeout = bounded
            .attempt_timeout(Instant::now(), Duration::MAX)
            .expect("the deadline bounds the attempt");
        assert!(timeout <= Duration::from_secs(60), "{timeout:?}");

        let passed = Deadline::starting_now(Duration::ZERO);
        assert!(passed.has_passed());
        assert!(!passed.allows_wait(Duration::ZERO));
        assert_eq!(
            passed.attempt_timeout(Instant::now(), Duration::from_secs(30)),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn backoff_is_jittered_below_the_exponential_ceiling() {
        let policy = RetryPolicy::default()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(350));
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(2) <= Duration::from_millis(200));
            assert!(policy.backoff(3) <= Duration::from_millis(350));
            assert!(policy.backoff(30) <= Duration::from_millis(350));
        }
    }
}
