//! [`ApiClient`]: the rest of an API with a token source's tokens, for the
//! calls a service makes besides the token operations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Request, Response};

use crate::error::{Error, ErrorKind, Result};
use crate::http::exec::{CallFacts, Plan, TransportPolicy};
use crate::http::failure::send_failure;
use crate::middleware::{BearerAuth, Downstream};

/// A client for the rest of an API (SDDC Manager's `/v1/domains`, say) with
/// the tokens of an [`AccessTokenSource`](crate::AccessTokenSource):
/// [`VcfSession::api_client`](crate::VcfSession::api_client) builds one.
///
/// - Every request to the source's origin carries `Authorization: Bearer
///   <token>` (a header value marked sensitive); requests to other hosts
///   get no token. On a **401** from the origin, the token is reported, and
///   the request is sent **once more** with the renewed one, whatever its
///   method: a 401 means the request was not acted on.
/// - The SDK's transport policy applies, as to the token operations:
///   retries that never repeat a request the server may have acted on, the
///   deadline (counted from before the token is fetched), `Retry-After`,
///   redirects followed only within the origin, tracing.
/// - [`send`](ApiRequest::send) returns the response whatever its status,
///   as reqwest does; a request that got no usable answer is the SDK's
///   [`Error`], naming the origin and the cause.
///
/// It shares the connection pool of the client that built it, and is cheap
/// to clone: build one per task or keep one.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let vcf = refresh_sdk::VcfSession::from_env()?;
/// let api = vcf.api_client();
/// let domains: serde_json::Value = api
///     .get(format!("{}/v1/domains", vcf.base_url()))
///     .send()
///     .await?
///     .error_for_status()?
///     .json()
///     .await?;
/// # let _ = domains;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ApiClient(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    auth: BearerAuth,
    policy: TransportPolicy,
}

impl ApiClient {
    pub(crate) fn new(client: reqwest::Client, auth: BearerAuth, policy: TransportPolicy) -> Self {
        ApiClient(Arc::new(Shared {
            client,
            auth,
            policy,
        }))
    }

    /// A `GET` request to `url`.
    pub fn get(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(Method::GET, url)
    }

    /// A `POST` request to `url`.
    pub fn post(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(Method::POST, url)
    }

    /// A `PUT` request to `url`.
    pub fn put(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(Method::PUT, url)
    }

    /// A `PATCH` request to `url`.
    pub fn patch(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(Method::PATCH, url)
    }

    /// A `DELETE` request to `url`.
    pub fn delete(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(Method::DELETE, url)
    }

    /// A request of `method` to `url`.
    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> ApiRequest {
        ApiRequest {
            api: self.clone(),
            builder: self.0.client.request(method, url),
        }
    }

    /// Sends `request` (built by reqwest, or by [`ApiRequest::build`]) as
    /// [`ApiRequest::send`] does.
    pub async fn execute(&self, request: Request) -> Result<Response> {
        let shared = &*self.0;
        let down = Direct {
            shared,
            started: Instant::now(),
            facts: CallFacts::default(),
        };
        shared.auth.authorized(request, down).await
    }
}

/// The client's own connection pool under its transport policy, below
/// [`BearerAuth`].
struct Direct<'a> {
    shared: &'a Shared,
    /// When the call started: before the token, so that the deadline covers
    /// the login, the retries and the re-send after a 401.
    started: Instant,
    facts: CallFacts,
}

impl Downstream for Direct<'_> {
    type Error = Error;

    async fn send(
        &mut self,
        request: Request,
        keep_spare: bool,
    ) -> (Result<Response>, Option<Request>) {
        let plan = Plan {
            keep_spare,
            started: Some(self.started),
            ..Plan::default()
        };
        let mut kept = None;
        let facts = &mut self.facts;
        let result = self
            .shared
            .policy
            .send_through(request, &self.shared.client, plan, |learned, spare| {
                *facts = learned;
                kept = spare;
            })
            .await;
        (result.map_err(|err| send_failure(err, &self.facts)), kept)
    }

    fn token_error(error: Error) -> Error {
        error
    }
}

/// A request of an [`ApiClient`], built as reqwest's `RequestBuilder` is.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct ApiRequest {
    api: ApiClient,
    builder: reqwest::RequestBuilder,
}

impl ApiRequest {
    /// Adds a header. An `Authorization` header set here is sent as it is,
    /// in place of the token.
    pub fn header<K, V>(self, key: K, value: V) -> ApiRequest
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|builder| builder.header(key, value))
    }

    /// Adds these headers.
    pub fn headers(self, headers: HeaderMap) -> ApiRequest {
        self.map(|builder| builder.headers(headers))
    }

    /// Sets the body to `json` serialized, with `Content-Type:
    /// application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> ApiRequest {
        self.map(|builder| builder.json(json))
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> ApiRequest {
        self.map(|builder| builder.body(body))
    }

    /// Sets a timeout for each attempt of this request, in place of the
    /// client's; the policy's deadline still bounds the whole call.
    pub fn timeout(self, timeout: Duration) -> ApiRequest {
        self.map(|builder| builder.timeout(timeout))
    }

    /// The request as reqwest builds it, to inspect or change before
    /// [`ApiClient::execute`]; a header or URL that did not parse is an
    /// [`ErrorKind::InvalidInput`] error.
    pub fn build(self) -> Result<Request> {
        self.builder.build().map_err(unbuilt)
    }

    /// Sends the request: see [`ApiClient`]. The response comes back
    /// whatever its status; a header or URL that did not parse is an
    /// [`ErrorKind::InvalidInput`] error, and nothing is sent.
    pub async fn send(self) -> Result<Response> {
        let ApiRequest { api, builder } = self;
        api.execute(builder.build().map_err(unbuilt)?).await
    }

    fn map(self, change: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        ApiRequest {
            api: self.api,
            builder: change(self.builder),
        }
    }
}

/// A request reqwest could not build, said without its URL (whose query or
/// userinfo may hold a secret) or the header value that did not parse.
fn unbuilt(err: reqwest::Error) -> Error {
    let why = match std::error::Error::source(&err) {
        Some(source) => source.to_string(),
        None => err.without_url().to_string(),
    };
    Error::new(
        ErrorKind::InvalidInput,
        format!("the request could not be built: {why}"),
    )
}
