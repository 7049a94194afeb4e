//! [`TransportPolicy`] as a `reqwest_middleware::Middleware`: the attempt
//! loop of [`http::exec`](crate::http::exec) with the rest of the stack as
//! its next hop, so that a service's own stacks retry as the generated
//! clients and [`ApiClient`](crate::ApiClient) do.

use std::future::Future;

use http::Extensions;

pub use crate::http::exec::TransportPolicy;
use crate::http::exec::{AttemptFailure, Hop, Plan};
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
        let stack = Stack { next, extensions };
        self.send_through(request, stack, plan, |_, _| ()).await
    }
}
