//! `refresh vcf api`: any SDDC Manager call with a session that lives for
//! one run.

use refresh_sdk::{VcfClient, VcfCredentials, VcfSession};
use reqwest::header::{HeaderName, HeaderValue};

use crate::exit::Failure;
use crate::kept::{KeptSource, Locked};
use crate::stop::StopSignals;

/// One `refresh vcf api` call, as the command line gave it.
pub struct Request {
    pub method: reqwest::Method,
    pub path: String,
    pub data: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Print the status line and headers before the body.
    pub include: bool,
}

impl Request {
    /// The body to send, checked with the path before anything is sent.
    fn body(&self) -> Result<Option<Vec<u8>>, Failure> {
        if !self.path.starts_with('/') {
            return Err(Failure::usage(
                "the path must start with / (it is appended to the SDDC Manager's address)",
            ));
        }
        self.data.as_deref().map(read_body).transpose()
    }
}

/// The `-H 'Name: value'` headers, checked before anything is sent.
pub fn headers(given: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>, Failure> {
    given
        .iter()
        .map(|header| {
            let (name, value) = header.split_once(':').ok_or_else(|| {
                Failure::usage(format!("-H takes `Name: value`, not {header:?}"))
            })?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| Failure::usage(format!("-H: {:?} is not a header name", name.trim())))?;
            if name == reqwest::header::AUTHORIZATION {
                return Err(Failure::usage(
                    "-H Authorization is not allowed: the command sends the session's access token itself",
                ));
            }
            // The value is not echoed: it may be a secret.
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| Failure::usage(format!("-H {name}: the value is not a valid header value")))?;
            Ok((name, value))
        })
        .collect()
}

/// Logs in, sends the request through the session's API client (token,
/// one renewal on 401, the SDK's retries), prints the body, and logs out
/// whatever happened, so no refresh token outlives the run.
pub async fn call(
    client: VcfClient,
    credentials: VcfCredentials,
    request: Request,
    gate: Option<Locked>,
) -> Result<(), Failure> {
    let body = request.body()?;
    // From before the login: Ctrl-C or SIGTERM during the call still logs
    // out (waiting for a login already sent), and a second one gives up on
    // that.
    let mut signals = StopSignals::listen()
        .map_err(|e| Failure::usage(format!("cannot listen for Ctrl-C or SIGTERM: {e}")))?;
    let session = VcfSession::new(client, credentials);
    let outcome = tokio::select! {
        outcome = async {
            // Log in first, so a refused login reads as one (exit 3), not
            // as a failed call; the refusal is remembered across runs.
            let login = session.access_token().await;
            if let Some(gate) = gate {
                gate.record_login(&login)?;
            }
            login?;
            send(&session.api_client(), session.base_url(), &request, body).await
        } => outcome,
        stop = signals.recv() => Err(Failure::Stopped(stop)),
    };
    // A run that never logged in has nothing to log out of; `logout` sends
    // nothing then.
    let logout = tokio::select! {
        logout = session.logout() => logout,
        stop = signals.recv() => {
            eprintln!("warning: stopped by {} while logging out, a refresh token may stay valid", stop.name());
            return Err(Failure::Stopped(stop));
        }
    };
    match (outcome, logout) {
        (Err(failure), Err(logout)) => {
            eprintln!("warning: could not log out, a refresh token may stay valid: {logout}");
            Err(failure)
        }
        (Err(failure), Ok(())) => Err(failure),
        (Ok(()), Err(logout)) => Err(Failure::Sdk(logout)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Sends the call with a kept login's token (`refresh vcf login`): no
/// password, no login, and nothing to log out of at the end or on a signal.
pub async fn with_kept(
    client: VcfClient,
    source: KeptSource,
    request: Request,
) -> Result<(), Failure> {
    let body = request.body()?;
    // Fetched first, so "not logged in" reads as itself (exit 3).
    source.token().await?;
    let api = client.api_client(std::sync::Arc::new(source));
    send(&api, client.base_url(), &request, body).await
}

async fn send(
    api: &refresh_sdk::ApiClient,
    base_url: &str,
    call: &Request,
    body: Option<Vec<u8>>,
) -> Result<(), Failure> {
    let url = format!("{base_url}{}", call.path);
    let mut request = api.request(call.method.clone(), url);
    for (name, value) in &call.headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let mut response = request.send().await.map_err(Failure::Sdk)?;
    let status = response.status();
    if call.include {
        let mut head = format!("{:?} {status}\r\n", response.version());
        for (name, value) in response.headers() {
            head.push_str(&format!("{name}: {}\r\n", shown_header_value(value)));
        }
        head.push_str("\r\n");
        crate::emit_bytes(head.as_bytes())?;
    }
    // A redirect that was not followed says where it pointed (the origin
    // only), read before the body consumes the response.
    let redirect = refresh_sdk::middleware::unfollowed_redirect(&response);
    // A body's error carries no URL: the response's gives the origin.
    let url = response.url().clone();
    // Streamed to stdout as it arrives: a body of any size (an inventory
    // dump, a server that never stops) costs one chunk of memory.
    let mut last = None;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| Failure::Body(err.with_url(url.clone()).into()))?
    {
        if let Some(&byte) = chunk.last() {
            last = Some(byte);
        }
        crate::emit_bytes(&chunk)?;
    }
    if last.is_some_and(|byte| byte != b'\n') && status.is_success() {
        crate::emit_bytes(b"\n")?;
    }
    if status.is_success() {
        Ok(())
    } else if let Some(redirect) = redirect {
        Err(Failure::Sdk(redirect))
    } else {
        Err(Failure::Status(status))
    }
}

/// The body of `--data`: the JSON text, `@FILE`, or `-` for stdin; checked
/// to be JSON before anything is sent.
fn read_body(data: &str) -> Result<Vec<u8>, Failure> {
    let bytes = if data == "-" {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
            .map_err(|e| Failure::usage(format!("cannot read --data from stdin: {}", e.kind())))?;
        buffer
    } else if let Some(path) = data.strip_prefix('@') {
        std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read --data file {path}: {}", e.kind())))?
    } else {
        data.as_bytes().to_vec()
    };
    serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
        // Category and position only: the body may hold a secret.
        Failure::usage(format!(
            "--data is not JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    Ok(bytes)
}

/// A response header's value as the terminal shows it: its bytes decoded as
/// UTF-8 where they are (lossily elsewhere), with control characters and
/// bidirectional formatting escaped as `\u{..}`. HTTP already refuses C0
/// controls other than tab in a header, but not bytes that decode to a C1
/// control (CSI, `\u{9b}`, starts a terminal escape sequence) or to an
/// override that reorders what follows; the body, the command's output, is
/// printed as it came.
fn shown_header_value(value: &reqwest::header::HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        );
        if (c.is_control() && c != '\t') || reorders {
            shown.extend(c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    shown
}
