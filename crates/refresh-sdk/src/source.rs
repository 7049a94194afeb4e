//! The one interface a service needs for tokens, whatever their source, and
//! the token it hands out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use crate::error::Result;

/// An access token, cheap to clone: clones share one secret, zeroized when
/// the last of them is dropped.
///
/// It is never shown: `Debug` prints `[REDACTED]` and there is no `Display`.
/// [`ExposeSecret`] gives the text for the one place that needs it, such as
/// an `Authorization` header.
///
/// ```
/// use refresh_sdk::{AccessToken, ExposeSecret, SecretString};
///
/// let token = AccessToken::from(SecretString::from("eyJhbGciOi..."));
/// let shared = token.clone(); // no copy of the text
/// assert_eq!(format!("Bearer {}", shared.expose_secret()), "Bearer eyJhbGciOi...");
/// assert_eq!(format!("{token:?}"), "AccessToken([REDACTED])");
/// ```
#[derive(Clone)]
pub struct AccessToken(Arc<Token>);

/// The secret, and its `Authorization` header once one was built: a token
/// is sent many times, and one header value per token costs less (and
/// leaves fewer copies in freed memory) than one per request.
struct Token {
    secret: SecretString,
    /// `Bearer <token>`, marked sensitive; `None` inside when the token
    /// holds characters a header cannot carry.
    bearer: OnceLock<Option<HeaderValue>>,
}

impl AccessToken {
    /// Wraps a token's text.
    ///
    /// ```
    /// use refresh_sdk::{AccessToken, ExposeSecret};
    /// assert_eq!(AccessToken::new("abc").expose_secret(), "abc");
    /// ```
    pub fn new(token: impl Into<String>) -> Self {
        AccessToken::from(SecretString::from(token.into()))
    }
}

impl From<SecretString> for AccessToken {
    fn from(secret: SecretString) -> Self {
        AccessToken(Arc::new(Token {
            secret,
            bearer: OnceLock::new(),
        }))
    }
}

impl AccessToken {
    /// `Bearer <token>` as a header value marked sensitive (neither
    /// reqwest's nor hyper's `Debug` shows it), built once per token; `None`
    /// when the token holds characters a header cannot carry. The text
    /// built on the way is zeroized.
    pub(crate) fn bearer(&self) -> Option<HeaderValue> {
        self.0
            .bearer
            .get_or_init(|| {
                let secret = self.expose_secret();
                let mut text = Zeroizing::new(String::with_capacity(secret.len() + 7));
                text.push_str("Bearer ");
                text.push_str(secret);
                let mut value = HeaderValue::from_str(&text).ok()?;
                value.set_sensitive(true);
                Some(value)
            })
            .clone()
    }
}

impl ExposeSecret<str> for AccessToken {
    fn expose_secret(&self) -> &str {
        self.0.secret.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// The future [`AccessTokenSource::access_token`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + 'a>>;

/// Something that hands out valid tokens: [`VcfSession`](crate::vcf::VcfSession)
/// and F5's [`PipelineTokenSource`](crate::f5xc::PipelineTokenSource).
///
/// Object safe, so a service can hold an `Arc<dyn AccessTokenSource>` and not
/// care which vendor is behind it.
///
/// ```
/// use std::sync::Arc;
/// use refresh_sdk::{AccessTokenSource, ExposeSecret};
///
/// async fn authorization(source: Arc<dyn AccessTokenSource>) -> refresh_sdk::Result<String> {
///     Ok(format!("Bearer {}", source.access_token().await?.expose_secret()))
/// }
/// ```
///
/// Implementing it for another source:
///
/// ```
/// use refresh_sdk::{AccessToken, AccessTokenSource, TokenFuture};
///
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl AccessTokenSource for Fixed {
///     fn access_token(&self) -> TokenFuture<'_> {
///         Box::pin(async { Ok(AccessToken::new("fixed")) })
///     }
/// }
/// ```
pub trait AccessTokenSource: Send + Sync + std::fmt::Debug {
    /// A valid token.
    fn access_token(&self) -> TokenFuture<'_>;

    /// Reports that the server rejected `rejected` (a 401), so the source
    /// stops handing it out and renews. A report of a token the source no
    /// longer serves does nothing. The default does nothing, for sources
    /// whose tokens cannot be renewed early.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use refresh_sdk::{AccessTokenSource, ExposeSecret};
    ///
    /// async fn call(source: Arc<dyn AccessTokenSource>) -> refresh_sdk::Result<u16> {
    ///     let token = source.access_token().await?;
    ///     let status = 401; // send a request with `token` here
    ///     if status == 401 {
    ///         source.invalidate(&token);
    ///     }
    ///     Ok(status)
    /// }
    /// ```
    fn invalidate(&self, rejected: &AccessToken) {
        let _ = rejected;
    }

    /// The origin (`scheme://host[:port]`, as
    /// `url::Origin::ascii_serialization` writes it) whose requests this
    /// source's tokens authorize, so that
    /// [`BearerAuth`](crate::middleware::BearerAuth) never sends them to
    /// another host. `None` (the default) when the source does not know.
    ///
    /// ```
    /// use refresh_sdk::{AccessToken, AccessTokenSource, TokenFuture};
    ///
    /// #[derive(Debug)]
    /// struct Fixed;
    ///
    /// impl AccessTokenSource for Fixed {
    ///     fn access_token(&self) -> TokenFuture<'_> {
    ///         Box::pin(async { Ok(AccessToken::new("fixed")) })
    ///     }
    ///     fn origin(&self) -> Option<String> {
    ///         Some("https://sddc-manager.example.com".to_owned())
    ///     }
    /// }
    /// assert_eq!(Fixed.origin().as_deref(), Some("https://sddc-manager.example.com"));
    /// ```
    fn origin(&self) -> Option<String> {
        None
    }
}
