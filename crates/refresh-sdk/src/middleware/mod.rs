//! The SDK's HTTP behaviour as `reqwest_middleware` layers, for the other
//! calls a service makes with its tokens.
//!
//! - [`TransportPolicy`]: retries that never repeat a request the server may
//!   have acted on, the deadline, `Retry-After`, the error-body size cap and
//!   tracing. The generated clients run every operation through it.
//! - [`BearerAuth`]: the token of an [`AccessTokenSource`](crate::AccessTokenSource)
//!   on every request to its origin, renewed and sent once more on a 401.
//! - `BearerAuthLayer` (feature `tower`): the same for tower services of
//!   `http::Request<B>` (hyper, tonic and other tower clients).
//!
//! [`VcfSession::api_client`](crate::VcfSession::api_client) gives the same
//! behaviour without a middleware stack: an [`ApiClient`](crate::ApiClient).

mod bearer;
mod policy;
#[cfg(feature = "tower")]
mod tower;

pub use bearer::BearerAuth;
#[cfg(feature = "vcf")]
pub(crate) use bearer::Downstream;
// The session's `authorization()`; the tower layer imports it directly.
#[cfg(feature = "vcf")]
pub(crate) use bearer::bearer_header;
pub use policy::TransportPolicy;
#[cfg(feature = "tower")]
pub use tower::{BearerAuthLayer, BearerAuthService, BoxError, NoResend, Resend, ResendBody};

/// The SDK's [`Error`](crate::Error) for a request of a middleware stack
/// with the SDK's layers that got no usable answer: an error a layer raised
/// ([`BearerAuth`]'s failure to get a token) as it is, and a failed request
/// with the origin tried and the cause (name not resolved, connection
/// refused, TLS, not valid HTTP, too many redirects), its
/// [`ErrorKind`](crate::ErrorKind) and a hint where one applies, as the
/// SDK's own operations report them.
///
/// ```no_run
/// # async fn run(api: reqwest_middleware::ClientWithMiddleware) {
/// match api.get("https://sddc-manager.example/v1/system").send().await {
///     Ok(response) => { /* ... */ }
///     Err(err) => eprintln!("error: {}", refresh_sdk::middleware::into_error(err)),
/// }
/// # }
/// ```
pub fn into_error(error: reqwest_middleware::Error) -> crate::Error {
    crate::http::failure::stack_failure(error)
}

/// When `response` is a redirect the SDK did not follow (to another origin,
/// where the credentials must not go, or one reqwest cannot follow), the
/// SDK's [`InvalidResponse`](crate::ErrorKind::InvalidResponse) error saying
/// so, naming only the origin it pointed at; `None` for any other response.
///
/// ```no_run
/// # async fn run(vcf: refresh_sdk::VcfSession) -> refresh_sdk::Result<()> {
/// let response = vcf
///     .api_client()
///     .get("https://sddc-manager.example/v1/system")
///     .send()
///     .await?;
/// if let Some(err) = refresh_sdk::middleware::unfollowed_redirect(&response) {
///     return Err(err); // "a redirect to https://other.example:443 was not followed, ..."
/// }
/// # Ok(())
/// # }
/// ```
pub fn unfollowed_redirect(response: &reqwest::Response) -> Option<crate::Error> {
    response.status().is_redirection().then(|| {
        crate::Error::new(
            crate::ErrorKind::InvalidResponse,
            crate::http::cause::unfollowed_redirect(response),
        )
        .with_status(Some(response.status()))
    })
}
