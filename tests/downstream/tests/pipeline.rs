//! F5 XC pipeline tokens as a downstream service meets them, against the
//! sandbox in real time: many handlers asking at once, handlers giving up on
//! a slow answer, a token the pipeline rejects. The paused-clock table in
//! the SDK's `tests/pipeline_scenarios.rs` covers the rows exhaustively;
//! these show they hold for a crate that only has the public API.

use std::sync::Arc;
use std::time::Duration;

use refresh_sandbox::{Operation, Sandbox};
use refresh_sdk::{AccessTokenSource, ExposeSecret, F5Client, F5Config};

fn pipeline_source(sandbox: &Sandbox) -> refresh_sdk::PipelineTokenSource {
    let config = F5Config::from_lookup(sandbox.f5xc_env()).expect("the sandbox's F5 XC settings");
    let f5 = F5Client::new(config).expect("an F5 client");
    f5.pipeline(sandbox.credentials().f5xc_pipelines[0].clone())
}

#[tokio::test]
async fn handlers_asking_at_once_or_giving_up_share_one_post() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    let source: Arc<dyn AccessTokenSource> = Arc::new(pipeline_source(&sandbox));

    // A slow F5 XC: 8 handlers with 100 ms timeouts give up on an 800 ms
    // answer, then 20 more ask at once.
    sandbox
        .faults()
        .delay_next(Operation::F5xcRefreshToken, 1, Duration::from_millis(800));
    let mut impatient = Vec::new();
    for _ in 0..8 {
        let source = Arc::clone(&source);
        impatient.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(100), source.access_token()).await
        }));
    }
    for handler in impatient {
        let outcome = handler.await.expect("the handler ran");
        assert!(
            outcome.is_err(),
            "a 100 ms handler cannot get an 800 ms answer"
        );
    }
    let mut patient = Vec::new();
    for _ in 0..20 {
        let source = Arc::clone(&source);
        patient.push(tokio::spawn(async move { source.access_token().await }));
    }
    let mut tokens = Vec::new();
    for handler in patient {
        let token = handler
            .await
            .expect("the handler ran")
            .expect("a pipeline token");
        tokens.push(token.expose_secret().to_owned());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every handler got the one POST's token");
    assert_eq!(
        sandbox.requests(Operation::F5xcRefreshToken),
        1,
        "the POST the impatient handlers started served everyone after them"
    );
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_reused_token_the_pipeline_rejects_is_replaced_once() {
    let sandbox = Sandbox::start_default().await.expect("the sandbox starts");
    let source = pipeline_source(&sandbox).reuse_for(Duration::from_secs(600));

    let first = source.access_token().await.expect("a pipeline token");
    for _ in 0..10 {
        let again = source.access_token().await.expect("the cached token");
        assert_eq!(again.expose_secret(), first.expose_secret(), "reused");
    }
    assert_eq!(sandbox.requests(Operation::F5xcRefreshToken), 1);

    // The pipeline said 401 to this token: report it, from every handler
    // that saw it; one new POST follows.
    for _ in 0..5 {
        source.invalidate(&first);
    }
    let second = source.access_token().await.expect("a new pipeline token");
    assert_ne!(second.expose_secret(), first.expose_secret());
    assert_eq!(sandbox.requests(Operation::F5xcRefreshToken), 2);
    assert_eq!(source.stats().invalidations, 1, "later reports were stale");
    sandbox.assert_spec_clean();
}
