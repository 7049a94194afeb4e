//! What went wrong, as one or two lines for stderr and an exit code by kind.

use std::fmt;

/// Success is 0; the codes below are listed in `refresh --help`.
pub const DEMO_FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const AUTH: u8 = 3;
pub const NOT_FOUND: u8 = 4;
pub const RATE_LIMITED: u8 = 5;
pub const SERVER: u8 = 6;
pub const TRANSPORT: u8 = 7;
pub const INVALID_RESPONSE: u8 = 8;
pub const REJECTED: u8 = 9;
pub const OUTPUT: u8 = 10;
/// The runtime or the sandbox itself failed; not an outcome of a request.
pub const UNEXPECTED: u8 = 1;

/// Why the command failed.
#[derive(Debug)]
pub enum Failure {
    /// An SDK operation failed; its Display never contains a secret.
    Sdk(refresh_sdk::Error),
    /// The command line or configuration is unusable.
    Usage(String),
    /// The sandbox could not start.
    Sandbox(String),
    /// A demo step did not behave as described.
    Demo(String),
    /// The value could not be written to stdout.
    Output(String),
    /// `refresh vcf api`: the server answered with this status (not 2xx).
    Status(reqwest::StatusCode),
    /// `refresh vcf api`: the response's head came (the status and headers
    /// were read, part of the body may be on stdout), but its body could
    /// not be read to the end.
    Body(refresh_sdk::Error),
    /// A stop signal ended the command before it finished.
    Stopped(crate::stop::Stop),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    pub fn code(&self) -> u8 {
        match self {
            Failure::Sdk(e) | Failure::Body(e) => crate::exit_code(e.kind()),
            Failure::Usage(_) => USAGE,
            Failure::Sandbox(_) => UNEXPECTED,
            Failure::Demo(_) => DEMO_FAILED,
            Failure::Output(_) => OUTPUT,
            Failure::Status(status) => {
                crate::exit_code(refresh_sdk::ErrorKind::from_status(*status))
            }
            Failure::Stopped(stop) => stop.exit_code(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Sdk(e) => sdk_error(f, "", e),
            Failure::Body(e) => sdk_error(f, "the response body could not be read: ", e),
            Failure::Usage(m) => write!(f, "error: {m}"),
            Failure::Sandbox(m) => write!(f, "error: the sandbox failed: {m}"),
            Failure::Demo(m) => write!(f, "demo failed: {m}"),
            Failure::Output(m) => write!(f, "error: {m}"),
            Failure::Status(status) => write!(f, "error: SDDC Manager answered HTTP {status}"),
            Failure::Stopped(stop) => write!(f, "error: stopped by {}", stop.name()),
        }
    }
}

/// The SDK's line says what happened (after `context`), VCF's
/// notifications follow one per indented line, and one hint says what to do.
fn sdk_error(f: &mut fmt::Formatter<'_>, context: &str, e: &refresh_sdk::Error) -> fmt::Result {
    write!(f, "error: {context}{e:#}")?;
    if let Some(hint) = hint(e).or_else(|| e.hint()) {
        write!(f, "\n  hint: {hint}")?;
    }
    Ok(())
}

/// The CLI's own hint, where it can name a flag or a command; otherwise the
/// SDK's, which fits the operation.
fn hint(error: &refresh_sdk::Error) -> Option<&'static str> {
    use refresh_sdk::error::{TlsProblem, TransportCause};
    use refresh_sdk::{ErrorKind, Service};
    match (error.kind(), error.service(), error.operation()) {
        (ErrorKind::Auth, Some(Service::F5Xc), _) => {
            Some("check VOLT_API_TOKEN, or VOLT_API_P12_FILE and VES_P12_PASSWORD")
        }
        (
            ErrorKind::NotFound,
            Some(Service::Vcf),
            Some("refresh_access_token" | "invalidate_refresh_token"),
        ) => Some("run `refresh vcf create-token` for a new token pair"),
        // A certificate no trusted CA signed (self-signed, a private CA, a
        // regenerated one). An expired certificate or one for another name
        // is not fixed by trusting a CA: the SDK's hint for that cause
        // stands, as for every other cause (a name not resolved, a closed
        // port).
        _ if matches!(
            error.transport_cause(),
            Some(TransportCause::Tls(
                TlsProblem::UnknownIssuer | TlsProblem::BadSignature
            ))
        ) =>
        {
            Some(
                "pass the certificate of the CA that signed it with --ca-cert FILE (--insecure skips verification: for a lab only)",
            )
        }
        // The SDK's hint for this cause names its connect-timeout option;
        // here that is --timeout.
        _ if error.transport_cause() == Some(TransportCause::ConnectTimeout) => Some(
            "check the host and port, and any firewall or VPN on the way; or raise --timeout SECS",
        ),
        _ => None,
    }
}

impl From<refresh_sdk::Error> for Failure {
    fn from(e: refresh_sdk::Error) -> Self {
        Failure::Sdk(e)
    }
}

impl From<refresh_sandbox::Error> for Failure {
    fn from(e: refresh_sandbox::Error) -> Self {
        Failure::Sandbox(e.to_string())
    }
}
