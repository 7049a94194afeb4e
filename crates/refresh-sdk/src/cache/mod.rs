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

pub(crate) mod policy;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result, Service};
use crate::source::AccessToken;
use policy::{After, Answer, Reported, Start, State};
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

/// The token fresh reads take without a lock, and until when.
struct Snapshot {
    token: AccessToken,
    until: Instant,
}

/// A flight's outcome, `None` until it ends.
type Outcome = Option<Result<AccessToken>>;

struct Running {
    id: u64,
    done: watch::Receiver<Outcome>,
    task: tokio::task::AbortHandle,
}

struct Slot {
    policy: State,
    rules: Rules,
    running: Option<Running>,
    next_recheck: Option<Instant>,
}

impl Slot {
    /// Forgets a flight whose task ended without telling (its runtime shut
    /// down), so that the next read starts another.
    fn reap(&mut self, now: Instant) {
        let dead = match &self.running {
            Some(running) => running.task.is_finished().then_some(running.id),
            None => self.policy.flight.map(|flight| flight.id),
        };
        if let Some(id) = dead {
            self.running = None;
            let error = abandoned(self.rules.service);
            self.policy.abandoned(&self.rules, id, now, error);
        }
    }
}

struct Shared<L> {
    loader: L,
    /// Written only with `slot` locked, from the policy's state.
    snapshot: ArcSwapOption<Snapshot>,
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
pub(crate) struct Cache<L> {
    shared: Arc<Shared<L>>,
}

impl<L> Clone for Cache<L> {
    fn clone(&self) -> Self {
        Cache {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<L: Loader> Cache<L> {
    pub(crate) fn new(loader: L, rules: Rules) -> Self {
        Cache {
            shared: Arc::new(Shared {
                loader,
                snapshot: ArcSwapOption::empty(),
                slot: Mutex::new(Slot {
                    policy: State::default(),
                    rules,
                    running: None,
                    next_recheck: None,
                }),
                counters: Counters::default(),
            }),
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
        let mut slot = self.slot();
        slot.rules = rules;
        self.publish(&slot, Instant::now());
    }

    /// A valid token: the published one while it is fresh, else what the
    /// policy says.
    pub(crate) async fn token(&self) -> Result<AccessToken> {
        self.with(AccessToken::clone).await
    }

    /// Calls `f` with a valid token's text, in place when it is fresh.
    pub(crate) async fn with_token<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        self.with(|token| f(token.expose_secret())).await
    }

    /// Calls `f` with a valid token: on a fresh one in place, without a lock,
    /// an allocation or a write to memory other threads read.
    async fn with<R>(&self, f: impl FnOnce(&AccessToken) -> R) -> Result<R> {
        {
            // `load` borrows through arc-swap's per-thread slot; `load_full`
            // would write the shared reference count on every read.
            let snapshot = self.shared.snapshot.load();
            if let Some(snapshot) = snapshot.as_deref()
                && Instant::now() < snapshot.until
            {
                return Ok(f(&snapshot.token));
            }
        }
        Ok(f(&self.ask().await?))
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // The slot is consistent at every unlock, so a panic elsewhere while
        // it was held cannot have left it half-written.
        self.shared
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The slow path: the policy decides; a wait ends with the renewal or at
    /// the policy's deadline, and then the policy is asked again.
    async fn ask(&self) -> Result<AccessToken> {
        let mut counted = false;
        loop {
            self.recheck();
            let (answer, done, service) = {
                let mut guard = self.slot();
                let slot = &mut *guard;
                let now = Instant::now();
                slot.reap(now);
                let (answer, start) = slot.policy.read(&slot.rules, now);
                let answer = match start.map(|start| self.spawn(slot, start)) {
                    // No runtime to renew on: the cached token while it lives.
                    Some(Err(error)) if matches!(answer, Answer::Wait(_)) => {
                        match slot.policy.fallback(now, error) {
                            Ok(token) => Answer::Serve(token),
                            Err(error) => Answer::Fail(error),
                        }
                    }
                    _ => answer,
                };
                self.publish(slot, now);
                let done = slot.running.as_ref().map(|r| r.done.clone());
                (answer, done, slot.rules.service)
            };
            let (until, mut done) = match (answer, done) {
                (Answer::Serve(token), _) => return Ok(token),
                (Answer::Fail(error), _) => return Err(error),
                (Answer::Wait(until), Some(done)) => (until, done),
                // Reaped above: the policy waits only on a running flight.
                (Answer::Wait(_), None) => return Err(abandoned(service)),
            };
            if !counted {
                bump(&self.shared.counters.waited);
                counted = true;
            }
            let ended = done.wait_for(Option::is_some);
            let outcome = match until {
                Some(until) => match tokio::time::timeout_at(until, ended).await {
                    Ok(outcome) => outcome.map(|o| o.clone()),
                    // The most this caller waits: ask again.
                    Err(_) => continue,
                },
                None => ended.await.map(|o| o.clone()),
            };
            match outcome {
                Ok(Some(Ok(token))) => return Ok(token),
                Ok(Some(Err(error))) => return self.slot().policy.fallback(Instant::now(), error),
                // The flight's task ended without a word (its runtime shut
                // down): the next pass reaps it and starts another here.
                Ok(None) | Err(_) => tokio::task::yield_now().await,
            }
        }
    }

    /// While logins wait because the current credentials were refused,
    /// looks for new ones at most once a second.
    fn recheck(&self) {
        let now = Instant::now();
        {
            let mut slot = self.slot();
            if !slot.policy.login_held_for_credentials(now)
                || slot.next_recheck.is_some_and(|next| now < next)
            {
                return;
            }
            slot.next_recheck = Some(policy::later(now, Duration::from_secs(1)));
        }
        // Outside the lock: it may read a file.
        if let Some(generation) = self.shared.loader.recheck() {
            self.slot().policy.credentials_changed(generation);
        }
    }

    /// Reports that the server rejected `rejected`.
    pub(crate) fn invalidate(&self, rejected: &AccessToken) {
        let mut slot = self.slot();
        let now = Instant::now();
        slot.reap(now);
        let slot = &mut *slot;
        match slot.policy.invalidate(&slot.rules, now, rejected) {
            Reported::Ignored => return,
            Reported::Held => tracing::warn!(
                "the server rejected a token issued moments ago, as it did the one before; \
                 not renewing again for now"
            ),
            Reported::Renew(start) => {
                bump(&self.shared.counters.invalidations);
                tracing::info!("access token rejected by the server; renewing");
                // Without a runtime the next read starts the renewal.
                if let Some(start) = start {
                    let _ = self.spawn(slot, start);
                }
            }
        }
        self.publish(slot, now);
    }

    /// Closes the cache for good and waits for a renewal already sent, so
    /// that the grant it brings is filed. Cancel-safe.
    pub(crate) async fn close(&self) {
        let done = {
            let mut slot = self.slot();
            let now = Instant::now();
            slot.reap(now);
            let running = slot.policy.close();
            self.publish(&slot, now);
            running
                .then(|| slot.running.as_ref().map(|r| r.done.clone()))
                .flatten()
        };
        if let Some(mut done) = done {
            let _ = done.wait_for(Option::is_some).await;
        }
    }

    /// The grant held, if any.
    pub(crate) fn grant(&self) -> Option<SecretString> {
        self.slot().policy.grant()
    }

    /// Forgets `grant` if it is still the one held.
    pub(crate) fn forget_grant(&self, grant: &SecretString) {
        self.slot().policy.forget_grant(grant);
    }

    /// Publishes what fresh reads may take; the caller holds the slot.
    fn publish(&self, slot: &Slot, now: Instant) {
        let snapshot = slot
            .policy
            .published(&slot.rules, now)
            .map(|(token, until)| Arc::new(Snapshot { token, until }));
        self.shared.snapshot.store(snapshot);
    }

    /// Spawns flight `start`; the caller holds the slot.
    fn spawn(&self, slot: &mut Slot, start: Start) -> Result<()> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            slot.policy.not_started(start.id);
            return Err(Error::config(
                "tokens are renewed on a tokio runtime, and none is running",
            )
            .for_service(slot.rules.service));
        };
        let (tx, done) = watch::channel(None);
        let task = runtime.spawn(fly(Arc::downgrade(&self.shared), start, tx));
        slot.running = Some(Running {
            id: start.id,
            done,
            task: task.abort_handle(),
        });
        Ok(())
    }
}

fn abandoned(service: Service) -> Error {
    Error::new(
        ErrorKind::Transport,
        "the token renewal was abandoned (its tokio runtime shut down)",
    )
    .for_service(service)
}

/// A flight: the steps the policy asks for, then its outcome to the waiters.
/// It holds the cache only weakly, so dropping the last handle drops the
/// cache (and aborts this task).
async fn fly<L: Loader>(shared: Weak<Shared<L>>, start: Start, done: watch::Sender<Outcome>) {
    let mut kind = start.kind;
    loop {
        let Some(cache) = shared.upgrade().map(|shared| Cache { shared }) else {
            return;
        };
        let grant = {
            let mut slot = cache.slot();
            let rules = slot.rules.clone();
            if let Err(closed) = slot.policy.proceed(&rules, start.id) {
                slot.running.take_if(|r| r.id == start.id);
                drop(slot);
                done.send_replace(Some(Err(closed)));
                return;
            }
            (kind == Kind::Refresh)
                .then(|| slot.policy.grant())
                .flatten()
        };
        let counters = cache.counters();
        bump(match kind {
            Kind::Login => &counters.logins,
            Kind::Refresh => &counters.refreshes,
        });
        let loader = cache.shared.loader.clone();
        // Held only weakly while the step runs.
        drop(cache);
        let step = loader.load(kind, grant).await;
        let Some(cache) = shared.upgrade().map(|shared| Cache { shared }) else {
            return;
        };
        let (after, retired, service) = {
            let mut slot = cache.slot();
            let slot = &mut *slot;
            let now = Instant::now();
            // The slot's own receiver is one; any other is a waiting caller.
            let claimed = done.receiver_count() > 1;
            let (after, retired) =
                slot.policy
                    .finished(&slot.rules, start.id, now, fastrand::f64(), step, claimed);
            if matches!(after, After::Done(_)) {
                slot.running.take_if(|r| r.id == start.id);
            }
            cache.publish(slot, now);
            (after, retired, slot.rules.service)
        };
        if let Some(grant) = retired {
            let loader = loader.clone();
            tokio::spawn(async move { loader.retire(grant).await });
        }
        match after {
            After::Next(next) => kind = next,
            After::Done(outcome) => {
                if let Err(error) = &outcome
                    && error.kind() != ErrorKind::Closed
                {
                    bump(&cache.counters().failed);
                    tracing::warn!(error = %error, "{service} token renewal failed");
                }
                done.send_replace(Some(outcome));
                return;
            }
        }
    }
}
