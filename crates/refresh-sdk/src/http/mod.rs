//! The SDK's HTTP stack, in modules that depend one way, in this order:
//!
//! - [`options`]: what a service configures ([`TransportOptions`](options::TransportOptions),
//!   [`RetryPolicy`](options::RetryPolicy));
//! - [`cause`]: why a request failed, in words a user can act on;
//! - [`client`]: the one `reqwest::Client` of a service, and the checks made
//!   before anything is sent;
//! - [`retry`]: when a request is sent again and how long to wait;
//! - [`body`]: request copies and response bodies read up to the size cap;
//! - [`exec`]: the attempt loop ([`TransportPolicy`](exec::TransportPolicy))
//!   and the executors of the generated clients;
//! - [`failure`]: a generated operation's failure as the SDK's error.
//!
//! Vendor knowledge (which operations may be repeated, how error bodies
//! read, hints) comes from the vendor modules; nothing here names a vendor.

pub(crate) mod body;
pub(crate) mod cause;
pub(crate) mod client;
pub(crate) mod exec;
pub(crate) mod failure;
pub(crate) mod options;
pub(crate) mod retry;
