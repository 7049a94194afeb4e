//! `refresh demo`: the main job on the embedded default. Starts the sandbox
//! in-process and walks the whole story, one line per step; any step that
//! behaves other than described fails the demo.

use std::future::Future;
use std::time::{Duration, Instant};

use refresh_sandbox::{ExposeSecret, Operation, Sandbox};
use refresh_sdk::vcf::SessionOptions;
use refresh_sdk::{
    AccessTokenSource, ErrorKind, F5Client, F5Config, F5Credentials, VcfClient, VcfConfig,
    VcfCredentials, VcfSession,
};

use crate::exit::Failure;

/// Short enough that the session visibly refreshes by itself during the
/// demo, long enough for a loaded machine.
const ACCESS_TTL: Duration = Duration::from_secs(4);
const SKEW: Duration = Duration::from_millis(500);
/// Renew 1.5 s before the end of the 3 s the session counts for a 4 s token
/// (it does not count the second a whole-second `iat` may hide), so 1 s
/// before serving it stops: time for a loaded machine's renewal to land.
const REFRESH_AHEAD: Duration = Duration::from_millis(1500);
/// Callers asking the pipeline source for a token at once.
const PIPELINE_CALLERS: usize = 20;
/// How long the demo's pipeline source serves one token: the whole demo.
const PIPELINE_REUSE: Duration = Duration::from_secs(60);
const STEPS: usize = 8;

pub async fn run(json: bool) -> Result<(), Failure> {
    let report = Report { json };
    let sandbox = Sandbox::builder()
        .access_token_ttl(ACCESS_TTL)
        .start()
        .await?;
    let credentials = sandbox.credentials().clone();
    report.sandbox(&sandbox.f5xc_url(), &sandbox.vcf_url());
    let mut step = 0;

    let pipeline = credentials
        .f5xc_pipelines
        .first()
        .cloned()
        .ok_or_else(|| Failure::Demo("the sandbox knows no F5 XC pipeline".into()))?;
    let f5 = F5Client::new(F5Config::new(
        &sandbox.f5xc_url(),
        F5Credentials::api_token(credentials.f5xc_api_token.expose_secret()),
    )?)?;
    let token = check(
        &mut step,
        "F5 XC refresh_token",
        f5.refresh_token(&pipeline),
    )
    .await?;
    let fields: serde_json::Value = token.parse_json()?;
    let keys: Vec<&str> = fields
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    report.done(
        step,
        &format!(
            "F5 XC refresh_token: pipeline {pipeline:?} got a token, JSON with fields {keys:?}"
        ),
    );

    // A service's handlers share one source: however many ask, one POST goes
    // to F5 XC (it answers 429 to requests "happening too frequently"). The
    // token is reused for a period, so a handler the scheduler starts after
    // that POST has answered still shares it: without reuse only the
    // callers waiting while the POST is in flight do, which on a loaded
    // machine is not all 20.
    step += 1;
    let source = f5.pipeline(&pipeline).reuse_for(PIPELINE_REUSE);
    let before = sandbox.requests(Operation::F5xcRefreshToken);
    let handlers: Vec<_> = (0..PIPELINE_CALLERS)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.access_token().await })
        })
        .collect();
    let mut tokens = Vec::with_capacity(PIPELINE_CALLERS);
    for handler in handlers {
        let token = handler
            .await
            .map_err(|e| Failure::Demo(format!("a pipeline handler did not finish: {e}")))??;
        tokens.push(token);
    }
    let posts = sandbox
        .requests(Operation::F5xcRefreshToken)
        .saturating_sub(before);
    ensure(
        posts == 1
            && tokens
                .iter()
                .all(|t| t.expose_secret() == tokens[0].expose_secret()),
        &format!(
            "{PIPELINE_CALLERS} callers of one pipeline source should share one POST and its token; the sandbox saw {posts} POSTs"
        ),
    )?;
    report.done(
        step,
        &format!(
            "F5 XC PipelineTokenSource: {PIPELINE_CALLERS} callers at once shared 1 refresh_token POST and its token (reused for {}s)",
            PIPELINE_REUSE.as_secs()
        ),
    );

    let vcf = VcfClient::new(VcfConfig::new(&sandbox.vcf_url())?)?;
    let login = VcfCredentials::new(
        credentials.vcf_username.clone(),
        credentials.vcf_password.expose_secret(),
    );
    let pair = check(&mut step, "VCF createToken", vcf.create_token(&login)).await?;
    report.done(
        step,
        "VCF createToken: an access token (JWT) and a refresh token for the demo user",
    );

    let access = check(
        &mut step,
        "VCF refreshAccessToken",
        vcf.refresh_access_token(&pair.refresh_token),
    )
    .await?;
    ensure(
        sandbox.is_valid_access_token(access.expose_secret()),
        "the refreshed access token is not one the sandbox issued",
    )?;
    report.done(
        step,
        "VCF refreshAccessToken: a new access token for the refresh token",
    );

    step += 1;
    let session = VcfSession::new(vcf.clone(), login).with_options(
        SessionOptions::default()
            .skew(SKEW)
            .refresh_ahead(REFRESH_AHEAD),
    );
    let first = session.access_token().await?;
    let again = session.access_token().await?;
    ensure(
        first.expose_secret() == again.expose_secret(),
        "the session did not reuse its fresh token",
    )?;
    let started = Instant::now();
    // Inside the refresh-ahead window: still the cached token, at once, and
    // a renewal starts in the background.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let during = session.access_token().await?;
    ensure(
        during.expose_secret() == first.expose_secret(),
        "the session did not serve its cached token while renewing ahead",
    )?;
    // Readers keep getting the cached token until the renewal lands, 0.9 s
    // before serving it would stop; none of them waits for the network.
    let renewed = loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let token = session.access_token().await?;
        if token.expose_secret() != first.expose_secret() || started.elapsed() > ACCESS_TTL {
            break token;
        }
    };
    let stats = session.stats();
    ensure(
        renewed.expose_secret() != first.expose_secret()
            && stats.refreshes == 1
            && stats.waited == 1,
        &format!(
            "the session should have renewed ahead with 1 refresh and no caller waiting; it sent {} refreshes and {} callers waited",
            stats.refreshes,
            stats.waited.saturating_sub(1)
        ),
    )?;
    report.done(
        step,
        &format!(
            "VcfSession::access_token (access TTL {}s): served its cached token, renewed it in the background {:.1}s in with 1 request; no caller waited",
            ACCESS_TTL.as_secs(),
            started.elapsed().as_secs_f64()
        ),
    );

    check(
        &mut step,
        "VCF logout (invalidateRefreshToken)",
        session.logout(),
    )
    .await?;
    report.done(
        step,
        "VcfSession::logout: the session's refresh token is invalidated",
    );

    check(
        &mut step,
        "VCF invalidateRefreshToken",
        vcf.invalidate_refresh_token(&pair.refresh_token),
    )
    .await?;
    report.done(
        step,
        "VCF invalidateRefreshToken: the first refresh token is invalidated (204)",
    );

    step += 1;
    match vcf.refresh_access_token(&pair.refresh_token).await {
        Err(e)
            if e.kind() == ErrorKind::NotFound && e.status().map(|s| s.as_u16()) == Some(404) =>
        {
            report.done(
                step,
                "VCF refreshAccessToken with the invalidated token: 404 Not Found, as expected",
            )
        }
        Err(e) => {
            return Err(Failure::Demo(format!(
                "expected 404 after invalidation, got: {e}"
            )));
        }
        Ok(_) => {
            return Err(Failure::Demo(
                "the invalidated refresh token still works".into(),
            ));
        }
    }

    let violations = sandbox.violations();
    if !violations.is_empty() {
        let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return Err(Failure::Demo(format!(
            "the sandbox saw requests the spec does not allow: {}",
            listed.join("; ")
        )));
    }
    report.finished();
    sandbox.shutdown().await;
    Ok(())
}

/// Runs one step, numbering it; a failed step fails the demo with the
/// SDK's error (which never contains a secret).
async fn check<T>(
    step: &mut usize,
    what: &str,
    call: impl Future<Output = refresh_sdk::Result<T>>,
) -> Result<T, Failure> {
    *step += 1;
    call.await
        .map_err(|e| Failure::Demo(format!("step {step}/{STEPS} {what}: {e}")))
}

/// One line per event on stdout: text, or with `--json` one JSON object.
struct Report {
    json: bool,
}

impl Report {
    fn sandbox(&self, f5xc_url: &str, vcf_url: &str) {
        if self.json {
            out!(
                "{}",
                serde_json::json!({ "sandbox": { "f5xc_url": f5xc_url, "vcf_url": vcf_url } })
            );
        } else {
            out!("sandbox: F5 XC at {f5xc_url}, VCF at {vcf_url}");
        }
    }

    fn done(&self, step: usize, what: &str) {
        if self.json {
            out!(
                "{}",
                serde_json::json!({ "step": step, "of": STEPS, "ok": true, "what": what })
            );
        } else {
            out!("[{step}/{STEPS}] ok  {what}");
        }
    }

    fn finished(&self) {
        if self.json {
            out!(
                "{}",
                serde_json::json!({ "steps": STEPS, "ok": true, "spec_clean": true })
            );
        } else {
            out!(
                "spec check: every request matched the specs; all {STEPS} steps behaved as described"
            );
        }
    }
}

fn ensure(condition: bool, message: &str) -> Result<(), Failure> {
    if condition {
        Ok(())
    } else {
        Err(Failure::Demo(message.to_string()))
    }
}
