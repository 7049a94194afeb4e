//! Helpers for the workspace-level tests: test JWTs, a minimal SDDC Manager
//! for the loopback fake (`refresh_loopback`) and the process's memory.
//! (The generated types are compared with the specs by the
//! `refresh-schema-drift` crate, which `cargo xtask validate` shares.)

#![deny(missing_docs)]

// The READMEs' Rust snippets, compiled and run as doctests.
#[cfg(doctest)]
mod readme;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use refresh_loopback::{Reply, Request, Step};

/// An unsigned JWT (`alg: none`) whose `exp` is `lifetime` from now, with
/// sub-second precision, so session tests can use lifetimes below the
/// one-second granularity of integer `exp` claims.
pub fn jwt_expiring_in(lifetime: Duration, subject: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = (SystemTime::now() + lifetime)
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64();
    let payload = serde_json::json!({ "sub": subject, "exp": exp });
    format!(
        "{}.{}.unsigned",
        engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(payload.to_string())
    )
}

/// The process's resident set size in bytes (`VmRSS` in
/// `/proc/self/status`); `None` where that file does not exist.
pub fn resident_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// The process's peak resident set size in bytes (`VmHWM`).
pub fn peak_resident_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The refresh-token id [`vcf_tokens()`] issues.
pub const VCF_REFRESH_ID: &str = "refresh-token-id-1";

/// A minimal SDDC Manager for session tests, for a server built with
/// [`Loopback::start`](refresh_loopback::Loopback::start): `POST /v1/tokens` answers `201` with an access
/// token living `login_lifetime` and the refresh token [`VCF_REFRESH_ID`];
/// `PATCH /v1/tokens/access-token/refresh` with that id answers `200` with an
/// access token living `refresh_lifetime`, any other id `404`. Unlike the
/// sandbox, whose JWTs carry whole-second `exp` claims, the lifetimes here
/// may be fractions of a second.
pub fn vcf_tokens(
    login_lifetime: Duration,
    refresh_lifetime: Duration,
) -> impl Fn(&Request) -> Step + Send + Sync + 'static {
    move |request| match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/tokens") => Step::Respond(Reply::json(
            201,
            serde_json::json!({
                "accessToken": jwt_expiring_in(login_lifetime, "login"),
                "refreshToken": { "id": VCF_REFRESH_ID },
            }),
        )),
        ("PATCH", "/v1/tokens/access-token/refresh") => {
            if serde_json::from_slice::<String>(&request.body)
                .ok()
                .as_deref()
                == Some(VCF_REFRESH_ID)
            {
                let token = jwt_expiring_in(refresh_lifetime, "refresh");
                Step::Respond(Reply::json(200, serde_json::json!(token)))
            } else {
                Step::Respond(Reply::json(
                    404,
                    serde_json::json!({ "message": "unknown refresh token" }),
                ))
            }
        }
        _ => Step::Respond(Reply::empty(404)),
    }
}
