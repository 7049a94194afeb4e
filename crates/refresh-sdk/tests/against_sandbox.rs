//! The facade against the spec-checked sandbox: behaviours that need a
//! server with VCF's semantics rather than a scripted answer.

use std::sync::Arc;
use std::time::Duration;

use refresh_sandbox::{ExposeSecret, Operation, Sandbox};
use refresh_sdk::{ErrorKind, VcfClient, VcfConfig, VcfCredentials, VcfSession};

fn session(sandbox: &Sandbox) -> VcfSession {
    let credentials = sandbox.credentials();
    let client = VcfClient::new(VcfConfig::new(&sandbox.vcf_url()).expect("a valid host"))
        .expect("a client");
    VcfSession::new(
        client,
        VcfCredentials::new(
            credentials.vcf_username.clone(),
            credentials.vcf_password.expose_secret(),
        ),
    )
}

#[tokio::test]
async fn logout_during_a_login_invalidates_the_tokens_that_login_brings() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    sandbox
        .faults()
        .delay_next(Operation::VcfCreateToken, 1, Duration::from_millis(500));
    let session = Arc::new(session(&sandbox));

    let login = tokio::spawn({
        let session = Arc::clone(&session);
        async move { session.access_token().await }
    });
    // Let the login reach the server before logging out.
    while sandbox.requests(Operation::VcfCreateToken) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    session.logout().await.expect("logout");
    let err = login
        .await
        .expect("the login task")
        .expect_err("the session closed while its login was in flight");
    assert_eq!(err.kind(), ErrorKind::Closed);

    assert_eq!(
        sandbox.requests(Operation::VcfInvalidateRefreshToken),
        1,
        "logout waited for the login and invalidated its refresh token"
    );
    let err = session.access_token().await.expect_err("closed");
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        1,
        "logout is final: no login after it"
    );
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn session_survives_expired_refresh_tokens_on_a_real_server() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let session = session(&sandbox);

    let first = session.access_token().await.expect("login");
    sandbox.faults().expire_all_refresh_tokens();
    // SDDC Manager rejected the token elsewhere: renew, by refresh first.
    session.invalidate(&first);
    let second = session
        .access_token()
        .await
        .expect("re-login after the 404");

    assert_ne!(first.expose_secret(), second.expose_secret());
    assert!(sandbox.is_valid_access_token(second.expose_secret()));
    assert_eq!(
        sandbox.requests(Operation::VcfRefreshAccessToken),
        1,
        "tried to refresh"
    );
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        2,
        "then logged in again"
    );
    sandbox.assert_spec_clean();
}
