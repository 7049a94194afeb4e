//! [`BearerAuthLayer`]: [`BearerAuth`](super::BearerAuth)'s semantics for
//! tower services of `http::Request<B>` (hyper, tonic and other tower
//! clients).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, HOST};
use secrecy::ExposeSecret;

use super::bearer::{Origin, bearer_header, warn_no_origin};
use crate::error::Result;
use crate::source::{AccessToken, AccessTokenSource};

/// The error of a [`BearerAuthService`]: the inner service's, or the SDK's
/// [`Error`](crate::Error) when no token could be had (downcast to read it).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer re-sends a request rejected with 401 (the body must be
/// `Clone`); see [`BearerAuthLayer::without_resend`].
#[derive(Debug, Clone, Copy)]
pub enum Resend {}

/// The layer hands a 401 back after reporting the token, for bodies that
/// cannot be copied (a stream, tonic's body); the next request gets the
/// renewed token.
#[derive(Debug, Clone, Copy)]
pub enum NoResend {}

/// A tower layer that authorizes `http::Request<B>`s with a token from an
/// [`AccessTokenSource`], as [`BearerAuth`](super::BearerAuth) does for
/// reqwest: a sensitive `Authorization: Bearer` header on requests to the
/// source's origin only (a request URI without a host, as tonic sends,
/// counts as the origin unless its `Host` header names another: wrap only
/// services that connect to the origin), and on a 401 the token reported,
/// renewed and the request sent once more (needs `B: Clone`; else use
/// [`without_resend`](Self::without_resend)). The re-sent request is rebuilt
/// from the method, URI, version, headers and body: extensions set by the
/// caller (tonic's `GrpcMethod`, tracing context) do not travel with it.
/// Feature `tower`.
///
/// ```no_run
/// use std::sync::Arc;
/// use refresh_sdk::VcfSession;
/// use refresh_sdk::middleware::BearerAuthLayer;
///
/// # fn run() -> refresh_sdk::Result<()> {
/// let session = VcfSession::from_env()?;
/// let layer = BearerAuthLayer::new(Arc::new(session));
/// // tower::ServiceBuilder::new().layer(layer).service(your_http_client)
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct BearerAuthLayer<R = Resend> {
    core: Arc<Core>,
    resend: PhantomData<fn() -> R>,
}

impl<R> Clone for BearerAuthLayer<R> {
    fn clone(&self) -> Self {
        BearerAuthLayer {
            core: Arc::clone(&self.core),
            resend: PhantomData,
        }
    }
}

#[derive(Debug)]
struct Core {
    source: Arc<dyn AccessTokenSource>,
    origin: Option<Origin>,
}

impl Core {
    fn authorizes<B>(&self, request: &http::Request<B>) -> bool {
        let Some(origin) = &self.origin else {
            return false;
        };
        if request.headers().contains_key(AUTHORIZATION) {
            return false;
        }
        let uri = request.uri();
        match uri.host() {
            // A relative URI goes wherever the inner service connects, which
            // the layer cannot see: it counts as the origin, unless a `Host`
            // header names another.
            None => request
                .headers()
                .get(HOST)
                .is_none_or(|host| origin.is_host(host)),
            Some(host) => {
                let scheme = uri.scheme_str().unwrap_or("http");
                let port = uri.port_u16().or(match scheme {
                    "https" => Some(443),
                    "http" => Some(80),
                    _ => None,
                });
                origin.is(scheme, host, port)
            }
        }
    }

    async fn token(&self) -> Result<AccessToken, BoxError> {
        Ok(self.source.access_token().await?)
    }
}

fn authorize<B>(request: &mut http::Request<B>, token: &AccessToken) -> Result<(), BoxError> {
    request
        .headers_mut()
        .insert(AUTHORIZATION, bearer_header(token)?);
    Ok(())
}

impl BearerAuthLayer {
    /// Authorizes requests to the source's [`origin`](AccessTokenSource::origin);
    /// a source that names none authorizes nothing (warned once).
    pub fn new(source: Arc<dyn AccessTokenSource>) -> BearerAuthLayer {
        let origin = source.origin().as_deref().and_then(Origin::parse);
        if origin.is_none() {
            warn_no_origin();
        }
        BearerAuthLayer {
            core: Arc::new(Core { source, origin }),
            resend: PhantomData,
        }
    }

    /// Authorizes requests to the origin of `url`.
    pub fn for_origin(source: Arc<dyn AccessTokenSource>, url: &str) -> Result<BearerAuthLayer> {
        let origin = Origin::parse(url).ok_or_else(|| {
            crate::Error::config(
                "the origin for bearer authorization is not an absolute http(s) URL",
            )
        })?;
        Ok(BearerAuthLayer {
            core: Arc::new(Core {
                source,
                origin: Some(origin),
            }),
            resend: PhantomData,
        })
    }

    /// The same layer for bodies that cannot be cloned: a 401 is reported
    /// and handed back, not re-sent.
    pub fn without_resend(self) -> BearerAuthLayer<NoResend> {
        BearerAuthLayer {
            core: self.core,
            resend: PhantomData,
        }
    }
}

impl<S, R> tower_layer::Layer<S> for BearerAuthLayer<R> {
    type Service = BearerAuthService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuthService {
            inner,
            core: Arc::clone(&self.core),
            resend: PhantomData,
        }
    }
}

/// The service [`BearerAuthLayer`] wraps around an inner one.
#[derive(Debug)]
pub struct BearerAuthService<S, R = Resend> {
    inner: S,
    core: Arc<Core>,
    resend: PhantomData<fn() -> R>,
}

impl<S: Clone, R> Clone for BearerAuthService<S, R> {
    fn clone(&self) -> Self {
        BearerAuthService {
            inner: self.inner.clone(),
            core: Arc::clone(&self.core),
            resend: PhantomData,
        }
    }
}

type ServiceFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, R> BearerAuthService<S, R>
where
    S: Clone,
{
    /// The ready service for this call, leaving a fresh clone in its place
    /// (tower's rule: the clone has not been polled ready).
    fn take_ready(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

async fn ready<S, Req>(service: &mut S) -> Result<(), BoxError>
where
    S: tower_service::Service<Req>,
    S::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)
}

/// Whether a [`BearerAuthService`] can send a request of body `B` once more
/// after a 401: [`Resend`] when `B: Clone`, never with [`NoResend`].
pub trait ResendBody<B>: sealed::Sealed {
    /// A copy of `request` for the one re-send, if this mode makes one.
    #[doc(hidden)]
    fn spare(request: &http::Request<B>) -> Option<http::Request<B>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Resend {}
    impl Sealed for super::NoResend {}
}

impl<B: Clone> ResendBody<B> for Resend {
    /// The extensions are not copied (`http::Extensions` holds values of
    /// any type).
    fn spare(request: &http::Request<B>) -> Option<http::Request<B>> {
        let mut copy = http::Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

impl<B> ResendBody<B> for NoResend {
    fn spare(_: &http::Request<B>) -> Option<http::Request<B>> {
        None
    }
}

impl<S, B, R, ResBody> tower_service::Service<http::Request<B>> for BearerAuthService<S, R>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    R: ResendBody<B>,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ServiceFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let mut inner = self.take_ready();
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            if !core.authorizes(&request) {
                return inner.call(request).await.map_err(Into::into);
            }
            let token = core.token().await?;
            authorize(&mut request, &token)?;
            let spare = R::spare(&request);
            let response = inner.call(request).await.map_err(Into::into)?;
            if response.status() != http::StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            core.source.invalidate(&token);
            let Some(mut again) = spare else {
                return Ok(response);
            };
            let fresh = core.token().await?;
            if fresh.expose_secret() == token.expose_secret() {
                return Ok(response);
            }
            drop(response);
            authorize(&mut again, &fresh)?;
            ready(&mut inner).await?;
            inner.call(again).await.map_err(Into::into)
        })
    }
}
