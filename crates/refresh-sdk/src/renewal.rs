//! What the SDK's token sources ([`VcfSession`](crate::vcf::VcfSession) and
//! F5's [`PipelineTokenSource`](crate::f5xc::PipelineTokenSource)) share about
//! renewing: the renewal in flight that callers wait on, the backoff after a
//! failed one, and instants that never overflow whatever duration a server
//! or a caller gives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::source::AccessToken;

/// What a renewal ends with, as its waiters see it: `None` until it ends.
pub(crate) type Outcome = Option<Result<AccessToken>>;

/// A renewal in flight, on a task the source owns; callers wait on `done`.
pub(crate) struct Flight {
    /// Tells this renewal's outcome from a later one's.
    pub(crate) id: u64,
    pub(crate) done: watch::Receiver<Outcome>,
    /// Aborted when the source's last handle goes.
    pub(crate) task: tokio::task::AbortHandle,
}

impl Flight {
    /// A renewal whose task is gone without a word (its runtime shut down).
    pub(crate) fn is_dead(&self) -> bool {
        self.done.has_changed().is_err() && self.done.borrow().is_none()
    }
}

/// Counts one more of something a source reports in its stats.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Locks a source's state. The sources keep their state consistent at every
/// unlock, so a panic elsewhere while it was held cannot have left it
/// half-written: a poisoned lock is taken as it is.
pub(crate) fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The longest span the sources plan with, so that no lifetime a server
/// sends (or a caller configures) can overflow an `Instant`.
pub(crate) const LONGEST_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Backoff after a refused request (refused credentials, an unknown resource; see
/// [`refused`]): from 1 s, doubling, up to 60 s.
pub(crate) const REFUSED_BACKOFF: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(60));
/// Backoff after any other failed renewal: from 250 ms, doubling, up to 4 s.
pub(crate) const TRANSIENT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(250), Duration::from_secs(4));
/// The longest a server's `Retry-After` stretches a renewal backoff.
pub(crate) const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `at + by`, or as far as can be represented (at most
/// [`LONGEST_LIFETIME`] on), never a panic.
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .or_else(|| at.checked_add(LONGEST_LIFETIME))
        .unwrap_or(at)
}

/// How long to wait before the next renewal after `consecutive` failures of
/// one class: exponential, with jitter between 80 % and 100 % of the step so
/// that many sources do not retry in lockstep; a server's `Retry-After`
/// (up to a minute) stretches it.
pub(crate) fn backoff(refused: bool, consecutive: u32, retry_after: Option<Duration>) -> Duration {
    let (base, cap) = if refused {
        REFUSED_BACKOFF
    } else {
        TRANSIENT_BACKOFF
    };
    let step = base
        .saturating_mul(2u32.saturating_pow(consecutive.saturating_sub(1).min(16)))
        .min(cap);
    let jittered = step.mul_f64(fastrand::f64().mul_add(0.2, 0.8));
    match retry_after {
        Some(asked) => jittered.max(asked.min(LONGEST_RETRY_AFTER)),
        None => jittered,
    }
}

/// The last failed renewal and the backoff it started.
pub(crate) struct Failure {
    /// What callers who find no token get until `retry_at`.
    pub(crate) error: Error,
    /// No renewal starts before then.
    pub(crate) retry_at: Instant,
    consecutive: u32,
    refused: bool,
}

/// Whether the server refused the request itself: a 4xx other than 408
/// (its own timeout) and 429 (too many requests). Sending it again as it is
/// will not change the answer, so it is not worth a quick retry.
pub(crate) fn refused(error: &Error) -> bool {
    error
        .status()
        .is_some_and(|status| status.is_client_error() && !matches!(status.as_u16(), 408 | 429))
}

impl Failure {
    /// The failure that follows `previous` (the one before it, if the last
    /// renewal failed too) at `now`, and the wait it imposes. `refused` says
    /// the server refused the request itself: those back off on their own,
    /// longer scale, and a change of class starts the doubling over.
    pub(crate) fn after(
        previous: Option<&Failure>,
        error: Error,
        refused: bool,
        now: Instant,
    ) -> (Failure, Duration) {
        let consecutive = match previous {
            Some(previous) if previous.refused == refused => previous.consecutive.saturating_add(1),
            _ => 1,
        };
        let wait = backoff(refused, consecutive, error.retry_after());
        let failure = Failure {
            error,
            retry_at: later(now, wait),
            consecutive,
            refused,
        };
        (failure, wait)
    }

    /// Whether the backoff still holds at `now`.
    pub(crate) fn holds(&self, now: Instant) -> bool {
        now < self.retry_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn backoff_doubles_within_its_band_and_caps() {
        for _ in 0..100 {
            let step = |refused, n| backoff(refused, n, None);
            let within = |d: Duration, ceiling: Duration| d >= ceiling.mul_f64(0.8) && d <= ceiling;
            assert!(within(step(true, 1), Duration::from_secs(1)));
            assert!(within(step(true, 2), Duration::from_secs(2)));
            assert!(within(step(true, 7), Duration::from_secs(60)));
            assert!(within(step(true, u32::MAX), Duration::from_secs(60)));
            assert!(within(step(false, 1), Duration::from_millis(250)));
            assert!(within(step(false, 5), Duration::from_secs(4)));
            assert!(within(step(false, 40), Duration::from_secs(4)));
        }
        assert_eq!(
            backoff(false, 1, Some(Duration::MAX)),
            LONGEST_RETRY_AFTER,
            "an absurd Retry-After is capped, not obeyed"
        );
        assert!(backoff(false, 1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn failures_count_per_class_and_never_overflow() {
        let now = Instant::now();
        let error = || Error::new(ErrorKind::Server, "down");
        let (first, _) = Failure::after(None, error(), false, now);
        let (second, wait) = Failure::after(Some(&first), error(), false, now);
        assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // A change of class starts over, on its own scale.
        let (refused, wait) = Failure::after(Some(&second), error(), true, now);
        assert!(wait >= Duration::from_millis(800) && wait <= Duration::from_secs(1));
        assert!(refused.holds(now) && !refused.holds(refused.retry_at));
        assert_eq!(later(now, Duration::MAX), now + LONGEST_LIFETIME);
    }
}
