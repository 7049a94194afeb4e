//! Reads a JWT's `exp` claim without verifying the token: the SDK only needs
//! to know when to refresh, and the server verifies the token anyway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The expiry a JWT claims, or `None` when `token` is not a JWT with a
/// numeric `exp`.
pub fn expiry(token: &str) -> Option<SystemTime> {
    claims(token)?.exp
}

/// When a JWT says it was issued (`iat`), or `None` when `token` is not a
/// JWT with a numeric `iat`.
pub fn issued_at(token: &str) -> Option<SystemTime> {
    claims(token)?.iat
}

/// The time claims of a JWT, read in one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeClaims {
    pub(crate) exp: Option<SystemTime>,
    pub(crate) iat: Option<SystemTime>,
    /// `iat` is in whole seconds, so the token may be up to a second younger
    /// than it says.
    pub(crate) iat_rounded: bool,
}

/// `None` when `token` is not a JWT with a JSON payload.
pub(crate) fn claims(token: &str) -> Option<TimeClaims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    // A JSON object: serde would also read a struct from an array.
    let claims =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&payload).ok()?;
    let iat = claims.get("iat").and_then(instant);
    Some(TimeClaims {
        exp: claims.get("exp").and_then(instant),
        iat,
        iat_rounded: iat.is_some()
            && claims
                .get("iat")
                .and_then(serde_json::Value::as_f64)
                .is_some_and(|seconds| seconds.fract() == 0.0),
    })
}

/// A NumericDate: seconds since the epoch, possibly fractional; anything
/// else (a string, a negative or unrepresentable number) is no date.
fn instant(value: &serde_json::Value) -> Option<SystemTime> {
    let seconds = value.as_f64()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(seconds).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_exp_from_the_payload() {
        let at = expiry(&jwt(r#"{"sub":"a","exp":1900000000}"#));
        assert_eq!(at, Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000)));
    }

    #[test]
    fn reads_iat_beside_exp_and_each_alone() {
        let token = jwt(r#"{"iat":1899996400,"exp":1900000000}"#);
        assert!(claims(&token).expect("a JWT").iat_rounded);
        assert_eq!(
            issued_at(&token),
            Some(UNIX_EPOCH + Duration::from_secs(1_899_996_400))
        );
        assert_eq!(
            claims(&jwt(r#"{"iat":1.5}"#)),
            Some(TimeClaims {
                exp: None,
                iat: Some(UNIX_EPOCH + Duration::from_millis(1500)),
                iat_rounded: false,
            })
        );
        assert_eq!(
            claims(&jwt(r#"{"iat":"x","exp":"y"}"#)),
            Some(TimeClaims::default())
        );
        assert_eq!(claims("opaque"), None);
    }

    #[test]
    fn anything_else_is_not_a_jwt() {
        for token in [
            "opaque-token",
            "a.b",
            "a.b.c.d",
            &jwt(r#"{"sub":"a"}"#),
            &jwt(r#"{"exp":"soon"}"#),
            &jwt(r#"{"exp":-5}"#),
            &jwt(r#"{"exp":1e300}"#),
            &jwt(r#"{"exp":null}"#),
            &jwt("not json"),
            &jwt("[1900000000, 0]"),
            "x.%%%.y",
        ] {
            assert_eq!(expiry(token), None, "{token}");
        }
    }
}
