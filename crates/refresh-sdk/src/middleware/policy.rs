//! [`TransportPolicy`] as a `reqwest_middleware::Middleware`: the attempt
//! loop of [`http::exec`](crate::http::exec) with the rest of the stack as
//! its next hop, so that [`VcfSession::api_client`](crate::VcfSession::api_client)
//! and a service's own stacks retry as the generated clients do.

use std::future::Future;

use http::Extensions;

pub use crate::http::exec::TransportPolicy;
use crate::http::exec::{AttemptFailure, Hop, Plan, unobserved};
use crate::http::retry::OperationStarted;

/// The rest of a middleware stack, and the extensions every attempt of the
/// request carries down it.
struct Stack<'a> {
    next: reqwest_middleware::Next<'a>,
    extensions: &'a mut Extensions,
}

impl Hop for Stack<'_> {
    type Error = reqwest_middleware::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + '_ {
        self.next.clone().run(request, self.extensions)
    }
}

impl AttemptFailure for reqwest_middleware::Error {
    fn is_connect(&self) -> bool {
        reqwest_middleware::Error::is_connect(self)
    }
    fn is_timeout(&self) -> bool {
        reqwest_middleware::Error::is_timeout(self)
    }
}

impl TransportPolicy {
    /// Sends `request` down the rest of the stack under the policy. With
    /// `plan.keep_spare`, also returns an unused copy of it, for one more
    /// send by the caller.
    pub(crate) async fn send_down(
        &self,
        request: reqwest::Request,
        next: reqwest_middleware::Next<'_>,
        extensions: &mut Extensions,
        plan: Plan,
    ) -> (
        reqwest_middleware::Result<reqwest::Response>,
        Option<reqwest::Request>,
    ) {
        use tracing::Instrument as _;

        // A request of the stack belongs to no generated operation, and
        // nobody reads its facts.
        let span = self.span(None, &request);
        let hop = Stack { next, extensions };
        let mut kept = None;
        let keep = |_, spare| kept = spare;
        let result = if unobserved(&span) {
            self.attempts(request, hop, plan, span, keep).await
        } else {
            self.attempts(request, hop, plan, span.clone(), keep)
                .instrument(span)
                .await
        };
        (result, kept)
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for TransportPolicy {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // A layer above that sends the request again shares its deadline.
        let plan = Plan {
            started: extensions.get::<OperationStarted>().map(|s| s.0),
            ..Plan::default()
        };
        self.send_down(request, next, extensions, plan).await.0
    }
}
