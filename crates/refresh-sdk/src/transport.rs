//! How requests are sent: the transport options and retry policy a service
//! configures. The stack itself lives in the crate's `http` modules; these
//! are its public names.

pub use crate::http::client::USER_AGENT;
pub use crate::http::options::{RetryPolicy, TransportOptions};
