//! Reads a JWT's `exp` claim without verifying the token: the SDK only needs
//! to know when to refresh, and the server verifies the token anyway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The expiry a JWT claims, or `None` when `token` is not a JWT with a
/// numeric `exp`.
pub fn expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<f64>,
    }
    let exp = serde_json::from_slice::<Claims>(&payload).ok()?.exp?;
    if !exp.is_finite() || exp < 0.0 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(exp).ok()?)
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
    fn anything_else_is_not_a_jwt() {
        for token in [
            "opaque-token",
            "a.b",
            "a.b.c.d",
            &jwt(r#"{"sub":"a"}"#),
            &jwt(r#"{"exp":"soon"}"#),
            &jwt(r#"{"exp":-5}"#),
            &jwt("not json"),
            "x.%%%.y",
        ] {
            assert_eq!(expiry(token), None, "{token}");
        }
    }
}
