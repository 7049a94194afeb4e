//! The token cache behind [`VcfSession`](crate::vcf::VcfSession) and F5's
//! [`PipelineTokenSource`](crate::f5xc::PipelineTokenSource): one engine,
//! generic over what loads a token ([`Loader`]), whose rules are a pure
//! function ([`policy`]).
//!
//! The mechanism here does what the policy cannot: it reads the clock, draws
//! the jitter, runs renewals on a task it spawns (never on a caller's
//! future, so a caller's timeout cancels only its own wait), tells waiters
//! through a `watch` channel, and publishes an immutable snapshot that fresh
//! reads load without a lock or an allocation.

// One engine serves both vendors: a build with only one of them leaves the
// other's parts (F5's tokens of unknown lifetime, VCF's grants and logout)
// unused.
#![cfg_attr(not(all(feature = "f5xc", feature = "vcf")), allow(dead_code))]

pub(crate) mod policy;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::ops::ControlFlow::{Break, Continue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use arc_swap::ArcSwapOption;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result, Service};
use crate::source::AccessToken;
use policy::{After, Answer, Flight, Reported, State};
pub(crate) use policy::{Backoff, Class, Kind, Life, Rules, Step};

/// What loads tokens for a cache: a vendor's requests and what counts as
/// refused.
pub(crate) trait Loader: Clone + Send + Sync + 'static {
    /// Runs one renewal step: a login, or a refresh with `grant`.
    fn load(&self, kind: Kind, grant: Option<SecretString>) -> impl Future<Output = Step> + Send;

    /// Invalidates a grant a login superseded, best effort.
    fn retire(&self, grant: SecretString) -> impl Future<Output = ()> + Send {
        let _ = grant;
        async {}
    }

    /// Looks for changed credentials (a rotated secret file): their new
    /// generation, if they changed. Called at most once a second, and only
    /// while logins wait because the current ones were refused.
    fn recheck(&self) -> Option<u64> {
        None
    }

    /// The generation of the credentials the loader read last (by a login
    /// or a recheck): the current ones.
    fn credentials(&self) -> u64 {
        0
    }
}

/// What a cache has done, for its owner's stats.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) logins: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) waited: AtomicU64,
    pub(crate) invalidations: AtomicU64,
}

impl Counters {
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A flight's outcome, `None` until it ends.
type Outcome = Option<Result<AccessToken>>;

/// The task that runs the policy's flight `id`.
struct Running {
    id: u64,
    done: watch::Receiver<Outcome>,
    task: tokio::task::AbortHandle,
}

/// What the cache's lock guards: the policy's state and rules, and the task
/// that runs the policy's flight.
struct Slot {
    policy: State,
    rules: Rules,
    running: Option<Running>,
}

struct Shared<L> {
    loader: L,
    /// The token fresh reads take without a lock, and until when: written
    /// only with `slot` locked, from the policy's state.
    snapshot: ArcSwapOption<(AccessToken, Instant)>,
    slot: Mutex<Slot>,
    counters: Counters,
}

impl<L> Drop for Shared<L> {
    fn drop(&mut self) {
        // No renewal outlives the last handle of its cache.
        let slot = self.slot.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = slot.running.take() {
            running.task.abort();
        }
    }
}

/// A cache of one token, shared by clones.
#[derive(Clone)]
pub(crate) struct Cache<L> {
    shared: Arc<Shared<L>>,
}

impl<L: Loader> Cache<L> {
    pub(crate) fn new(loader: L, rules: Rules) -> Self {
        let slot = Slot {
            policy: State::default(),
            rules,
            running: None,
        };
        let shared = Shared {
            loader,
            snapshot: ArcSwapOption::empty(),
            slot: Mutex::new(slot),
            counters: Counters::default(),
        };
        Cache {
            shared: Arc::new(shared),
        }
    }

    pub(crate) fn loader(&self) -> &L {
        &self.shared.loader
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Whether a token is cached now.
    pub(crate) fn has_token(&self) -> bool {
        self.shared.snapshot.load().is_some()
    }

    /// Replaces the rules, for this cache and its clones; what it knows
    /// (its token, refused logins) stays.
    pub(crate) fn set_rules(&self, rules: Rules) {
        self.update(|slot, _| slot.rules = rules);
    }

    /// Calls `f` with a valid token: the published one while it is fresh, in
    /// place, without a lock, an allocation or a write to memory other
    /// threads read; else what the policy says.
    pub(crate) async fn with<R>(&self, f: impl FnOnce(&AccessToken) -> R) -> Result<R> {
        {
            // `load` borrows through arc-swap's per-thread slot; `load_full`
            // would write the shared reference count on every read.
            let snapshot = self.shared.snapshot.load();
            if let Some((token, until)) = snapshot.as_deref()
                && Instant::now() < *until
            {
                return Ok(f(token));
            }
        }
        Ok(f(&self.ask().await?))
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // The slot is consistent at every unlock, so a panic elsewhere while
        // it was held cannot have left it half-written.
        self.shared.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the slot at `now`, once a flight whose task ended without
    /// telling (its runtime shut down) is reaped, so that the next read
    /// starts another; then publishes what fresh reads may take.
    fn update<T>(&self, f: impl FnOnce(&mut Slot, Instant) -> T) -> T {
        let mut guard = self.slot();
        let slot = &mut *guard;
        let now = Instant::now();
        if let Some(dead) = slot.running.take_if(|r| r.task.is_finished()) {
            let error = abandoned(slot.rules.service);
            slot.policy.abandoned(&slot.rules, dead.id, now, error);
        }
        let out = f(slot, now);
        let published = slot.policy.published(&slot.rules, now);
        self.shared.snapshot.store(published.map(Arc::new));
        out
    }

    /// The slow path: the policy decides; a wait ends with the renewal or at
    /// the policy's deadline, and then the policy is asked again.
    async fn ask(&self) -> Result<AccessToken> {
        let mut counted = false;
        loop {
            self.recheck();
            let wait = self.update(|slot, now| {
                let (answer, start) = slot.policy.read(&slot.rules, now);
                let spawned = self.spawn(slot, start);
                match (answer, &slot.running) {
                    (Answer::Serve(token), _) => Break(Ok(token)),
                    (Answer::Fail(error), _) => Break(Err(error)),
                    (Answer::Wait(until), Some(running)) => Continue((until, running.done.clone())),
                    // No runtime to renew on: the cached token while it lives.
                    (Answer::Wait(_), None) => {
                        let error = spawned
                            .err()
                            .unwrap_or_else(|| abandoned(slot.rules.service));
                        Break(slot.policy.fallback(now, error))
                    }
                }
            });
            let (until, mut done) = match wait {
                Continue(wait) => wait,
                Break(result) => return result,
            };
            if !counted {
                bump(&self.shared.counters.waited);
                counted = true;
            }
            let ended = done.wait_for(Option::is_some);
            let outcome = match until {
                Some(until) => tokio::time::timeout_at(until, ended).await,
                None => Ok(ended.await),
            };
            match outcome.map(|ended| ended.ok().and_then(|o| o.clone())) {
                // The most this caller waits: ask again.
                Err(_) => continue,
                Ok(Some(Ok(token))) => return Ok(token),
                Ok(Some(Err(error))) => return self.slot().policy.fallback(Instant::now(), error),
                // The flight's task ended without a word (its runtime shut
                // down): the next pass reaps it and starts another here.
                Ok(None) => tokio::task::yield_now().await,
            }
        }
    }

    /// While logins wait because the current credentials were refused,
    /// looks for new ones, at most once a second.
    fn recheck(&self) {
        let due = self.slot().policy.recheck_due(Instant::now());
        // Outside the lock: it may read a file.
        if due && let Some(generation) = self.shared.loader.recheck() {
            self.slot().policy.credentials_changed(generation);
        }
    }

    /// Reports that the server rejected `rejected`.
    pub(crate) fn invalidate(&self, rejected: &AccessToken) {
        self.update(|slot, now| {
            match slot.policy.invalidate(&slot.rules, now, rejected) {
                Reported::Ignored => {}
                Reported::Held => tracing::warn!(
                    "the server rejected a token issued moments ago, as it did the one before; \
                     not renewing again for now"
                ),
                Reported::Renew(start) => {
                    bump(&self.shared.counters.invalidations);
                    tracing::info!("access token rejected by the server; renewing");
                    // Without a runtime the next read starts the renewal.
                    let _ = self.spawn(slot, start);
                }
            }
        });
    }

    /// Closes the cache for good, waits for a renewal already sent (so that
    /// the grant it brings is filed), and returns the grant held, if any.
    /// Cancel-safe.
    pub(crate) async fn close(&self) -> Option<SecretString> {
        let done = self.update(|slot, _| {
            slot.policy.close();
            slot.running.as_ref().map(|r| r.done.clone())
        });
        if let Some(mut done) = done {
            let _ = done.wait_for(Option::is_some).await;
        }
        self.slot().policy.grant()
    }

    /// Forgets `grant` if it is still the one held.
    pub(crate) fn forget_grant(&self, grant: &SecretString) {
        self.slot().policy.forget_grant(grant);
    }

    /// Runs the renewal the policy started, if any, on a task of its own
    /// (never on a caller's future, which a timeout may drop).
    fn spawn(&self, slot: &mut Slot, flight: Option<Flight>) -> Result<()> {
        let Some(flight) = flight else {
            return Ok(());
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            slot.policy.not_started(flight.id);
            let message = "tokens are renewed on a tokio runtime, and none is running";
            return Err(Error::config(message).for_service(slot.rules.service));
        };
        let (tx, done) = watch::channel(None);
        let task = runtime.spawn(fly(Arc::downgrade(&self.shared), flight, tx));
        let task = task.abort_handle();
        slot.running = Some(Running {
            id: flight.id,
            done,
            task,
        });
        Ok(())
    }
}

/// The error of a flight whose task ended without telling.
fn abandoned(service: Service) -> Error {
    let message = "the token renewal was abandoned (its tokio runtime shut down)";
    Error::new(ErrorKind::Transport, message).for_service(service)
}

/// A flight: the steps the policy asks for, then its outcome to the waiters.
/// It holds the cache only weakly, so dropping the last handle drops the
/// cache (and aborts this task).
async fn fly<L: Loader>(shared: Weak<Shared<L>>, flight: Flight, done: watch::Sender<Outcome>) {
    let upgrade = || shared.upgrade().map(|shared| Cache { shared });
    let mut kind = flight.kind;
    let (cache, outcome) = loop {
        let Some(cache) = upgrade() else {
            return;
        };
        let grant = cache.update(|slot, _| {
            let proceed = slot.policy.proceed(&slot.rules, flight.id);
            proceed.map(|()| slot.policy.grant().filter(|_| kind == Kind::Refresh))
        });
        let grant = match grant {
            Ok(grant) => grant,
            Err(closed) => break (cache, Err(closed)),
        };
        let counters = cache.counters();
        bump(match kind {
            Kind::Login => &counters.logins,
            Kind::Refresh => &counters.refreshes,
        });
        let loader = cache.loader().clone();
        // Held only weakly while the step runs.
        drop(cache);
        let step = loader.load(kind, grant).await;
        let Some(cache) = upgrade() else {
            return;
        };
        let (after, retired) = cache.update(|slot, now| {
            // The slot's own receiver is one; any other is a waiting caller.
            let claimed = done.receiver_count() > 1;
            let jitter = fastrand::f64();
            let after = slot
                .policy
                .finished(&slot.rules, flight.id, now, jitter, step, claimed);
            // A rotation read while the step ran is not lost to it.
            slot.policy.credentials_changed(loader.credentials());
            after
        });
        if let Some(grant) = retired {
            tokio::spawn(async move { loader.retire(grant).await });
        }
        match after {
            After::Next(next) => kind = next,
            After::Done(outcome) => break (cache, outcome),
        }
    };
    let service = cache.update(|slot, _| {
        slot.running.take_if(|r| r.id == flight.id);
        slot.rules.service
    });
    if let Err(error) = &outcome
        && error.kind() != ErrorKind::Closed
    {
        bump(&cache.counters().failed);
        tracing::warn!(error = %error, "{service} token renewal failed");
    }
    done.send_replace(Some(outcome));
}
