//! JWT-shaped access tokens: HS256 over a key that is random per sandbox, so
//! a token is only valid for the sandbox that issued it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The claims of a sandbox access token.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    iss: String,
    sub: String,
    iat: u64,
    pub(crate) exp: u64,
    /// The token's id, which the sandbox's registry of issued access tokens
    /// is keyed by.
    pub(crate) jti: String,
}

pub(crate) const ISSUER: &str = "refresh-sandbox";

pub(crate) struct Signer {
    key: hmac::Key,
    /// The sandbox's clock minus the real one, in seconds.
    clock_offset: i64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: [REDACTED] }")
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `len` random bytes from the crypto provider.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], crate::Error> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| crate::Error::Random)?;
    Ok(bytes)
}

/// Random hex, for opaque tokens.
pub(crate) fn random_hex<const N: usize>() -> Result<String, crate::Error> {
    Ok(random_bytes::<N>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Signer {
    /// A signer whose clock is `clock_offset` seconds off the real one, as
    /// an SDDC Manager with a wrong clock issues tokens.
    pub(crate) fn with_clock_offset(clock_offset: i64) -> Result<Signer, crate::Error> {
        let secret = random_bytes::<32>()?;
        Ok(Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            clock_offset,
        })
    }

    /// Now, by this signer's clock, in Unix seconds.
    pub(crate) fn now(&self) -> u64 {
        unix_now().saturating_add_signed(self.clock_offset)
    }

    /// A new access token for `subject`, and its claims; `exp` is now plus
    /// `ttl`, in whole seconds as JWT requires (a sub-second TTL expires
    /// within the second).
    pub(crate) fn issue(
        &self,
        subject: &str,
        ttl: Duration,
    ) -> Result<(String, Claims), crate::Error> {
        let iat = self.now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: subject.to_owned(),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            jti: uuid::Builder::from_random_bytes(random_bytes::<16>()?)
                .into_uuid()
                .to_string(),
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// The signed token of `claims`.
    fn sign(&self, claims: &Claims) -> Result<String, crate::Error> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = serde_json::to_vec(claims).map_err(|_| crate::Error::Random)?;
        let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = hmac::sign(&self.key, signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// The token of `claims` issued `ago` earlier: the same id and subject,
    /// `iat` and `exp` both moved back (`iat` not before the epoch).
    pub(crate) fn backdate(&self, claims: &Claims, ago: Duration) -> Result<String, crate::Error> {
        let iat = claims.iat.saturating_sub(ago.as_secs());
        let backdated = Claims {
            iss: claims.iss.clone(),
            sub: claims.sub.clone(),
            iat,
            exp: iat.saturating_add(claims.exp.saturating_sub(claims.iat)),
            jti: claims.jti.clone(),
        };
        self.sign(&backdated)
    }

    /// The claims of `token` when this signer issued it; `None` for anything
    /// else (expiry is not checked here).
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (_header, payload) = signing_input.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        hmac::verify(&self.key, signing_input.as_bytes(), &signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_with_their_signer_only() {
        let signer = Signer::with_clock_offset(0).expect("random key");
        let (token, issued) = signer
            .issue("admin", Duration::from_secs(3600))
            .expect("token issued");
        assert_eq!(token.split('.').count(), 3, "header.payload.signature");
        let claims = signer.verify(&token).expect("own token verifies");
        assert_eq!(claims.sub, "admin");
        assert!(claims.exp >= claims.iat + 3600);
        assert_eq!(
            claims.jti, issued.jti,
            "the claims issue returns are the token's"
        );
        let other = Signer::with_clock_offset(0).expect("random key");
        assert!(other.verify(&token).is_none(), "another key rejects it");
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').expect("a dot") + 2, 'x');
        assert!(signer.verify(&tampered).is_none(), "tampering breaks it");
    }
}
