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
//! [`VcfSession::api_client`](crate::VcfSession::api_client) stacks both on
//! the session's own connection pool.

mod bearer;
mod policy;
#[cfg(feature = "tower")]
mod tower;

pub use bearer::BearerAuth;
// The session's `authorization()`; the tower layer imports it directly.
#[cfg(feature = "vcf")]
pub(crate) use bearer::bearer_header;
pub use policy::TransportPolicy;
#[cfg(feature = "tower")]
pub use tower::{BearerAuthLayer, BearerAuthService, BoxError, NoResend, Resend, ResendBody};
