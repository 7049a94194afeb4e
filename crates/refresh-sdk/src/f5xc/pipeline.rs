//! [`PipelineTokenSource`]: one F5 XC pipeline's tokens for a whole service,
//! kept by the SDK's token cache with the `refresh_token` POST as its
//! loader.
//!
//! What is F5's here: the POST, what counts as refused (any 4xx but 408 and
//! 429), and how long a token is served (F5 XC does not say how long one
//! lives, so only for [`reuse_for`](PipelineTokenSource::reuse_for); without
//! it a token goes to the callers that waited for its POST). The cache's
//! rules are in [`crate::cache::policy`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use super::{F5Client, SERVICE};
use crate::cache::policy::LONGEST_LIFETIME;
use crate::cache::{Backoff, Cache, Class, Counters, Kind, Life, Loader, Rules, Step};
use crate::source::{AccessToken, AccessTokenSource, TokenFuture};

/// What a [`PipelineTokenSource`] has done, for dashboards and tests.
///
/// ```no_run
/// # async fn run(f5: refresh_sdk::F5Client) -> refresh_sdk::Result<()> {
/// use refresh_sdk::{AccessTokenSource, PipelineStats};
///
/// let source = f5.pipeline("my-pipeline");
/// source.access_token().await?;
/// let stats: PipelineStats = source.stats();
/// assert_eq!((stats.requests, stats.waited), (1, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// `refresh_token` POSTs the source started (transport retries inside
    /// one count once).
    pub requests: u64,
    /// POSTs that ended in an error.
    pub failed: u64,
    /// Reads that waited for a POST, cancelled ones included.
    pub waited: u64,
    /// [`invalidate`](AccessTokenSource::invalidate) calls that took effect.
    pub invalidations: u64,
}

/// The pipeline's POST as the cache's loader.
#[derive(Clone)]
struct Pipeline {
    client: F5Client,
    product_name: Arc<str>,
    /// Zero: no reuse.
    reuse: Duration,
}

impl Loader for Pipeline {
    async fn load(&self, _: Kind, _: Option<SecretString>) -> Step {
        let result = match self.client.refresh_token(&self.product_name).await {
            Ok(token) => {
                let life = if self.reuse.is_zero() {
                    Life::Once
                } else {
                    Life::Lasts {
                        from: Instant::now(),
                        lifetime: self.reuse,
                    }
                };
                Ok((AccessToken::from(token.into_secret()), life))
            }
            // Refused credentials, an unknown pipeline (404), a conflict
            // (409): sent again as it is, the request gets the same answer.
            Err(error) if error.is_refusal() => Err((error, Class::Refused)),
            Err(error) => Err((error, Class::Transient)),
        };
        Step {
            result,
            grant: None,
            credentials: 0,
        }
    }
}

fn rules() -> Rules {
    let seconds = Duration::from_secs;
    Rules {
        service: SERVICE,
        // A reused token is served to the end of its period, renewed in the
        // background from its last quarter.
        skew: Duration::ZERO,
        refresh_ahead: None,
        max_wait: Duration::ZERO,
        refused: Backoff {
            base: seconds(1),
            cap: seconds(60),
        },
        refused_limit: None,
        grant_lifetime: Duration::ZERO,
        min_lifetime: Duration::ZERO,
    }
}

/// One pipeline's tokens for a whole service, as an [`AccessTokenSource`]
/// (made by [`F5Client::pipeline`]).
///
/// - At most one `refresh_token` POST is in flight per source (clones
///   included); concurrent callers share its outcome, so 50 callers at once
///   send one POST.
/// - The POST runs on a task the source owns: a caller's timeout cancels
///   only its own wait, and a later caller gets the token of the POST
///   already sent (one that no caller received is kept 30 s for the next
///   caller) instead of sending another.
/// - By default a token is not reused once its POST has answered its
///   callers: F5 XC does not document how long a token lives. Opt in with
///   [`reuse_for`](Self::reuse_for); the token is then renewed in the
///   background before that period ends, and still served while a renewal
///   fails.
/// - After a failed POST the source backs off (250 ms doubling to 4 s; for
///   a refused request, any 4xx but 408 and 429, 1 s doubling to 60 s,
///   whatever transient failures come between; at least a server's
///   `Retry-After`, up to 60 s) and callers get the last error at once
///   meanwhile.
/// - [`invalidate`](AccessTokenSource::invalidate) with a token the server
///   rejected stops serving it.
///
/// Cloning is cheap and clones share everything. The source needs a tokio
/// runtime; dropping its last clone aborts a POST in flight.
///
/// ```no_run
/// # async fn run() -> refresh_sdk::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use refresh_sdk::{AccessTokenSource, ExposeSecret, F5Client};
///
/// let f5 = F5Client::from_env()?;
/// // Each token is served for 10 minutes, renewed in the background after 7.5.
/// let source = f5.pipeline("my-pipeline").reuse_for(Duration::from_secs(600));
/// let token = source.access_token().await?;
/// let bearer = format!("Bearer {}", token.expose_secret());
/// // The pipeline rejected it: it is served no more.
/// source.invalidate(&token);
/// let shared: Arc<dyn AccessTokenSource> = Arc::new(source.clone());
/// # let _ = (bearer, shared);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PipelineTokenSource {
    cache: Cache<Pipeline>,
}

impl fmt::Debug for PipelineTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pipeline = self.cache.loader();
        f.debug_struct("PipelineTokenSource")
            .field("client", &pipeline.client)
            .field("product_name", &pipeline.product_name)
            .field("reuse", &pipeline.reuse)
            .field("has_token", &self.cache.has_token())
            .field("stats", &self.stats())
            .finish()
    }
}

impl PipelineTokenSource {
    pub(super) fn new(client: F5Client, product_name: String) -> Self {
        PipelineTokenSource::build(client, product_name.into(), Duration::ZERO)
    }

    fn build(client: F5Client, product_name: Arc<str>, reuse: Duration) -> Self {
        let pipeline = Pipeline {
            client,
            product_name,
            reuse,
        };
        PipelineTokenSource {
            cache: Cache::new(pipeline, rules()),
        }
    }

    /// Serves each token for `reuse` after it arrived, instead of only to
    /// the callers that waited for it: pick a period shorter than the
    /// pipeline tokens' lifetime. Once a quarter of it is left, the first
    /// read starts a POST in the background and reads keep getting the
    /// cached token meanwhile (and, if that POST fails, until the period
    /// ends). `Duration::ZERO` is the default: no reuse.
    ///
    /// Meant for a source not used yet: the source is rebuilt, without its
    /// token, and clones made before keep the old one.
    ///
    /// ```
    /// # fn run(f5: refresh_sdk::F5Client) {
    /// use std::time::Duration;
    /// let source = f5.pipeline("my-pipeline").reuse_for(Duration::from_secs(5 * 60));
    /// # let _ = source;
    /// # }
    /// ```
    pub fn reuse_for(self, reuse: Duration) -> Self {
        let pipeline = self.cache.loader();
        PipelineTokenSource::build(
            pipeline.client.clone(),
            Arc::clone(&pipeline.product_name),
            reuse.min(LONGEST_LIFETIME),
        )
    }

    /// What the source has done so far.
    ///
    /// ```
    /// # fn run(f5: refresh_sdk::F5Client) {
    /// let source = f5.pipeline("my-pipeline");
    /// assert_eq!(source.stats(), refresh_sdk::PipelineStats::default());
    /// # }
    /// ```
    pub fn stats(&self) -> PipelineStats {
        let c = self.cache.counters();
        PipelineStats {
            requests: Counters::get(&c.logins),
            failed: Counters::get(&c.failed),
            waited: Counters::get(&c.waited),
            invalidations: Counters::get(&c.invalidations),
        }
    }
}

// The source's constructor on the client, here so that the client needs
// nothing of the source that holds it.
impl F5Client {
    /// A token source for one pipeline, usable as `Arc<dyn AccessTokenSource>`:
    /// one `refresh_token` POST at a time, shared by every concurrent caller,
    /// run on a task the source owns; tokens are reused only if
    /// [`reuse_for`](PipelineTokenSource::reuse_for) says for how long. See
    /// [`PipelineTokenSource`].
    ///
    /// ```no_run
    /// # async fn run() -> refresh_sdk::Result<()> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use refresh_sdk::{AccessTokenSource, F5Client};
    ///
    /// let f5 = F5Client::from_env()?;
    /// let source: Arc<dyn AccessTokenSource> =
    ///     Arc::new(f5.pipeline("my-pipeline").reuse_for(Duration::from_secs(300)));
    /// let token = source.access_token().await?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pipeline(&self, product_name: impl Into<String>) -> PipelineTokenSource {
        PipelineTokenSource::new(self.clone(), product_name.into())
    }
}

impl AccessTokenSource for PipelineTokenSource {
    /// A pipeline token: the cached one while reuse allows, else the outcome
    /// of the one POST in flight (started if none is). Cancelling the future
    /// cancels only this caller's wait.
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(self.cache.with(AccessToken::clone))
    }

    /// If `rejected` is the cached token, it is served no more and a POST
    /// starts; a report of any other token does nothing.
    fn invalidate(&self, rejected: &AccessToken) {
        self.cache.invalidate(rejected);
    }
}
