//! [`BearerAuth`]: the session's token on every request to its origin,
//! renewed once when the server answers 401.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Instant;

use http::Extensions;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::ExposeSecret;

use crate::error::{Error, ErrorKind, Result};
use crate::http::body::spare_copy;
use crate::http::retry::OperationStarted;
use crate::source::{AccessToken, AccessTokenSource};

static NO_ORIGIN_WARNING: Once = Once::new();

/// A `reqwest_middleware` layer that authorizes requests with a token from
/// an [`AccessTokenSource`] (a [`VcfSession`](crate::VcfSession), usually).
///
/// - It sets `Authorization: Bearer <token>` as a header value marked
///   sensitive, so neither reqwest's nor hyper's `Debug` shows it; a request
///   that already has an `Authorization` header is left as it is.
/// - When the server answers **401**, it reports the token to the source
///   ([`AccessTokenSource::invalidate`]), takes the renewed one and sends the
///   request **once more**, whatever its method: a 401 means the request was
///   not acted on. A request whose body cannot be copied (a stream) gets the
///   401 back (the token is still reported, so the next request gets a
///   renewed one), as does one whose source hands out the same token again.
///   Concurrent 401s on one token make one renewal: the session ignores
///   reports of a token it is already replacing.
/// - It authorizes only requests to the source's
///   [`origin`](AccessTokenSource::origin) (scheme, host and port), so a
///   token never reaches another host; other requests pass untouched.
/// - Put it above [`TransportPolicy`](super::TransportPolicy): the policy's
///   deadline then counts from before the token is fetched, so waiting for a
///   login, the request, its retries and the re-send after a 401 all share
///   it, and the policy's retries carry the header.
///
/// A failure to get a token is a `reqwest_middleware::Error::Middleware`
/// holding the SDK's [`Error`](crate::Error) (`downcast_ref::<refresh_sdk::Error>()`).
///
/// ```no_run
/// use std::sync::Arc;
/// use refresh_sdk::VcfSession;
/// use refresh_sdk::middleware::{BearerAuth, TransportPolicy};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let session = VcfSession::from_env()?;
/// let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerAuth::new(Arc::new(session.clone())))
///     .with(TransportPolicy::new(&Default::default()))
///     .build();
/// let domains = api.get(format!("{}/v1/domains", session.base_url())).send().await?;
/// # let _ = domains;
/// # Ok(())
/// # }
/// ```
/// [`ApiClient`](crate::ApiClient) behaves the same without a middleware
/// stack.
#[derive(Debug, Clone)]
pub struct BearerAuth {
    source: Arc<dyn AccessTokenSource>,
    origin: Option<Origin>,
}

/// A tuple origin, compared field by field with each request's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &reqwest::Url) -> Option<Origin> {
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_owned(),
            port: url.port_or_known_default(),
        })
    }

    pub(crate) fn parse(text: &str) -> Option<Origin> {
        Origin::of(&reqwest::Url::parse(text).ok()?)
    }

    fn matches(&self, url: &reqwest::Url) -> bool {
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == self.port
    }

    /// For URIs outside `url`'s parsing (the tower layer's `http::Uri`): the
    /// host is compared without regard to case, as the URL parser lowers it.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn is(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        scheme.eq_ignore_ascii_case(&self.scheme)
            && host.eq_ignore_ascii_case(&self.host)
            && port == self.port
    }

    /// Whether a `Host` header's `host[:port]` names this origin (its scheme
    /// taken as this origin's, the port defaulting by it); anything that is
    /// not a plain authority does not.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn is_host(&self, value: &HeaderValue) -> bool {
        let Some(authority) = value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<http::uri::Authority>().ok())
        else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let port = authority.port_u16().or(match self.scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        });
        self.is(&self.scheme, authority.host(), port)
    }
}

impl BearerAuth {
    /// Authorizes requests to the source's [`origin`](AccessTokenSource::origin).
    /// A source that names none authorizes nothing (a warning says so, once):
    /// use [`for_origin`](Self::for_origin) for it.
    pub fn new(source: Arc<dyn AccessTokenSource>) -> BearerAuth {
        let origin = source.origin().as_deref().and_then(Origin::parse);
        if origin.is_none() {
            warn_no_origin();
        }
        BearerAuth { source, origin }
    }

    /// Authorizes requests to the origin of `url` (an absolute `http` or
    /// `https` URL; only its scheme, host and port count).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use refresh_sdk::{AccessToken, AccessTokenSource, TokenFuture};
    /// use refresh_sdk::middleware::BearerAuth;
    ///
    /// #[derive(Debug)]
    /// struct Fixed;
    /// impl AccessTokenSource for Fixed {
    ///     fn access_token(&self) -> TokenFuture<'_> {
    ///         Box::pin(async { Ok(AccessToken::new("fixed")) })
    ///     }
    /// }
    ///
    /// let auth = BearerAuth::for_origin(Arc::new(Fixed), "https://api.example.com/v1")?;
    /// # let _ = auth;
    /// # Ok::<(), refresh_sdk::Error>(())
    /// ```
    pub fn for_origin(source: Arc<dyn AccessTokenSource>, url: &str) -> Result<BearerAuth> {
        let origin = Origin::parse(url).ok_or_else(|| {
            Error::config("the origin for bearer authorization is not an absolute http(s) URL")
        })?;
        Ok(BearerAuth {
            source,
            origin: Some(origin),
        })
    }

    fn authorizes(&self, request: &reqwest::Request) -> bool {
        self.origin
            .as_ref()
            .is_some_and(|origin| origin.matches(request.url()))
            && !request.headers().contains_key(AUTHORIZATION)
    }

    /// Sends `request` on through `down`, authorized when it goes to the
    /// source's origin; on a 401 from there, reports the token and sends it
    /// once more with the renewed one. The one place this behaviour lives,
    /// for the middleware layer and [`ApiClient`](crate::ApiClient) alike.
    pub(crate) async fn authorized<D: Downstream>(
        &self,
        mut request: reqwest::Request,
        mut down: D,
    ) -> std::result::Result<reqwest::Response, D::Error> {
        if !self.authorizes(&request) {
            return down.send(request, false).await.0;
        }
        let token = self.token().await.map_err(D::token_error)?;
        authorize(&mut request, &token).map_err(D::token_error)?;
        let (response, spare) = down.send(request, true).await;
        let response = response?;
        // A 401 from where a redirect led (another origin, which never saw
        // the token) says nothing about the token.
        if response.status() != StatusCode::UNAUTHORIZED
            || !self
                .origin
                .as_ref()
                .is_some_and(|origin| origin.matches(response.url()))
        {
            return Ok(response);
        }
        // Reported even when the request cannot be sent again: the next one
        // then gets a renewed token.
        self.source.invalidate(&token);
        let Some(mut again) = spare else {
            return Ok(response);
        };
        let fresh = self.token().await.map_err(D::token_error)?;
        if fresh.expose_secret() == token.expose_secret() {
            // The source could not renew it: the server's answer stands.
            return Ok(response);
        }
        drop(response);
        tracing::debug!(
            "the server rejected the token (401); sending once more with a renewed one"
        );
        authorize(&mut again, &fresh).map_err(D::token_error)?;
        down.send(again, false).await.0
    }

    async fn token(&self) -> Result<AccessToken> {
        self.source.access_token().await
    }
}

/// Where [`BearerAuth::authorized`] sends a request: the rest of a
/// middleware stack, or a client's transport policy.
pub(crate) trait Downstream: Send {
    /// What a failed send is.
    type Error;

    /// Sends `request`; with `keep_spare`, also returns an unused copy of
    /// it, for one more send.
    fn send(
        &mut self,
        request: reqwest::Request,
        keep_spare: bool,
    ) -> impl Future<
        Output = (
            std::result::Result<reqwest::Response, Self::Error>,
            Option<reqwest::Request>,
        ),
    > + Send
    + '_;

    /// A failure to get or use a token, as this downstream's error.
    fn token_error(error: Error) -> Self::Error;
}

/// The rest of a middleware stack, below [`BearerAuth`].
struct Stack<'a> {
    next: reqwest_middleware::Next<'a>,
    extensions: &'a mut Extensions,
}

impl Downstream for Stack<'_> {
    type Error = reqwest_middleware::Error;

    async fn send(
        &mut self,
        request: reqwest::Request,
        keep_spare: bool,
    ) -> (
        reqwest_middleware::Result<reqwest::Response>,
        Option<reqwest::Request>,
    ) {
        let spare = if keep_spare {
            spare_copy(&request)
        } else {
            None
        };
        (self.next.clone().run(request, self.extensions).await, spare)
    }

    fn token_error(error: Error) -> reqwest_middleware::Error {
        reqwest_middleware::Error::middleware(error)
    }
}

/// Says once that a source without an origin authorizes nothing.
pub(crate) fn warn_no_origin() {
    NO_ORIGIN_WARNING.call_once(|| {
        tracing::warn!(
            "bearer authorization: the token source names no origin, so no request is \
             authorized; build it with for_origin"
        );
    });
}

/// `Bearer <token>` as a header value marked sensitive (see
/// [`AccessToken::bearer`]).
pub(crate) fn bearer_header(token: &AccessToken) -> Result<HeaderValue> {
    token.bearer().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidResponse,
            "the access token holds characters an HTTP header cannot carry",
        )
    })
}

fn authorize(request: &mut reqwest::Request, token: &AccessToken) -> Result<()> {
    let value = bearer_header(token)?;
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for BearerAuth {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // Before the token: a slow login spends the operation's time budget
        // as the renewal after a 401 does, so a policy layer below bounds
        // the whole call by its deadline.
        if extensions.get::<OperationStarted>().is_none() {
            extensions.insert(OperationStarted(Instant::now()));
        }
        self.authorized(request, Stack { next, extensions }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let origin = Origin::parse("https://sddc.example.com/v1/tokens").expect("an origin");
        let url = |text: &str| reqwest::Url::parse(text).expect("a URL");
        assert!(origin.matches(&url("https://sddc.example.com/v1/domains?x=1")));
        assert!(origin.matches(&url("https://SDDC.example.com:443/")));
        assert!(!origin.matches(&url("http://sddc.example.com/v1/domains")));
        assert!(!origin.matches(&url("https://sddc.example.com:8443/")));
        assert!(!origin.matches(&url("https://evil.example.com/")));
        assert!(!origin.matches(&url("https://sddc.example.com.evil.example/")));
        assert!(Origin::parse("file:///etc/passwd").is_none());
        assert!(Origin::parse("not a url").is_none());
    }
}
