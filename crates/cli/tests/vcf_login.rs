#![cfg(unix)]
//! `refresh vcf login`, `token` and `logout`: one login kept across runs,
//! and refused logins remembered across runs so that a script looping over
//! a wrong password cannot lock the SDDC Manager account.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use refresh_sandbox::{ExposeSecret, Method, Operation, Sandbox, StatusCode};
use serde_json::json;
use support::*;

/// A directory standing for `$XDG_RUNTIME_DIR`, removed when dropped.
struct RuntimeDir(PathBuf);

impl RuntimeDir {
    fn new(test: &str) -> RuntimeDir {
        let dir = std::env::temp_dir().join(format!(
            "refresh-cli-{}-{test}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("a runtime directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("0700");
        RuntimeDir(dir)
    }

    fn store(&self) -> PathBuf {
        self.0.join("refresh")
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sddc() -> Sandbox {
    Sandbox::builder()
        .protected_route(Method::GET, "/v1/domains", json!({ "elements": [] }))
        .start()
        .await
        .expect("sandbox")
}

/// The host and user, with the password unless `password` is false.
fn env(sandbox: &Sandbox, dir: &RuntimeDir, password: Option<&str>) -> Vec<(&'static str, String)> {
    let credentials = sandbox.credentials();
    let mut env = vec![
        ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url()),
        (
            "VCF_SDDC_MANAGER_USERNAME",
            credentials.vcf_username.clone(),
        ),
        ("XDG_RUNTIME_DIR", dir.0.display().to_string()),
    ];
    if let Some(password) = password {
        env.push(("VCF_SDDC_MANAGER_PASSWORD", password.to_owned()));
    }
    env
}

fn password(sandbox: &Sandbox) -> String {
    sandbox
        .credentials()
        .vcf_password
        .expose_secret()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_login_serves_parallel_runs_without_a_password_or_another_login() {
    let sandbox = sddc().await;
    let dir = RuntimeDir::new("parallel");
    let pw = password(&sandbox);
    let login = refresh(&["vcf", "login"], &env(&sandbox, &dir, Some(&pw))).await;
    assert_eq!(code(&login), 0, "{}", stderr(&login));
    assert_eq!(stdout(&login), "", "no secret on stdout");

    // The store is this user's alone.
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.store()), 0o700);
    for entry in std::fs::read_dir(dir.store()).expect("the store") {
        let path = entry.expect("an entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }

    let runs: Vec<_> = (0..4)
        .map(|_| {
            let env = env(&sandbox, &dir, None);
            tokio::spawn(async move {
                let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
                refresh(&["vcf", "api", "GET", "/v1/domains"], &env).await
            })
        })
        .collect();
    for run in runs {
        let output = run.await.expect("a run");
        assert_eq!(code(&output), 0, "{}", stderr(&output));
    }
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        1,
        "only `vcf login` logged in"
    );
    assert!(sandbox.requests(Operation::VcfRefreshAccessToken) <= 1);
    assert_eq!(
        sandbox.requests(Operation::VcfInvalidateRefreshToken),
        0,
        "runs with a kept login do not log out"
    );

    let token = refresh(&["vcf", "token"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&token), 0, "{}", stderr(&token));
    assert!(sandbox.is_valid_access_token(stdout(&token).trim_end()));

    let logout = refresh(&["vcf", "logout"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&logout), 0, "{}", stderr(&logout));
    assert_eq!(sandbox.requests(Operation::VcfInvalidateRefreshToken), 1);
    let after = refresh(&["vcf", "token"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&after), 3, "{}", stderr(&after));
    assert!(
        stderr(&after).contains("not logged in"),
        "{}",
        stderr(&after)
    );
    sandbox.assert_spec_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_access_token_is_renewed_with_the_kept_refresh_token() {
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::from_secs(2))
        .start()
        .await
        .expect("sandbox");
    let dir = RuntimeDir::new("renew");
    let pw = password(&sandbox);
    assert_eq!(
        code(&refresh(&["vcf", "login"], &env(&sandbox, &dir, Some(&pw))).await),
        0
    );
    let first = refresh(&["vcf", "token"], &env(&sandbox, &dir, None)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = refresh(&["vcf", "token"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert_ne!(stdout(&first), stdout(&second));
    assert!(sandbox.is_valid_access_token(stdout(&second).trim_end()));
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1);
    assert!(sandbox.requests(Operation::VcfRefreshAccessToken) >= 1);
}

/// Another run's logout (or the refresh token's end): "not logged in", no
/// silent login, and the dead login is not kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_refresh_token_means_not_logged_in_never_a_silent_login() {
    let sandbox = Sandbox::builder()
        .access_token_ttl(Duration::from_secs(1))
        .start()
        .await
        .expect("sandbox");
    let dir = RuntimeDir::new("refused");
    let pw = password(&sandbox);
    assert_eq!(
        code(&refresh(&["vcf", "login"], &env(&sandbox, &dir, Some(&pw))).await),
        0
    );
    sandbox.faults().expire_all_refresh_tokens();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The password is there, and still not used.
    let output = refresh(&["vcf", "token"], &env(&sandbox, &dir, Some(&pw))).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not logged in"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        1,
        "no silent login"
    );
    let again = refresh(&["vcf", "token"], &env(&sandbox, &dir, Some(&pw))).await;
    assert_eq!(code(&again), 3);
    assert_eq!(
        sandbox.requests(Operation::VcfRefreshAccessToken),
        1,
        "the dead login was forgotten"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_invalidation_at_logout_keeps_the_login_so_logout_can_be_tried_again() {
    let sandbox = sddc().await;
    let dir = RuntimeDir::new("logout");
    let pw = password(&sandbox);
    assert_eq!(
        code(&refresh(&["vcf", "login"], &env(&sandbox, &dir, Some(&pw))).await),
        0
    );
    sandbox.faults().fail_next(
        Operation::VcfInvalidateRefreshToken,
        1,
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
    );
    let failed = refresh(&["vcf", "logout"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&failed), 6, "{}", stderr(&failed));
    assert!(stderr(&failed).contains("stays"), "{}", stderr(&failed));
    let token = refresh(&["vcf", "token"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&token), 0, "still logged in: {}", stderr(&token));
    let logout = refresh(&["vcf", "logout"], &env(&sandbox, &dir, None)).await;
    assert_eq!(code(&logout), 0, "{}", stderr(&logout));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_open_to_others_or_a_link_is_refused() {
    let sandbox = sddc().await;
    let pw = password(&sandbox);
    let loose = RuntimeDir::new("loose");
    std::fs::create_dir(loose.store()).expect("the store");
    std::fs::set_permissions(loose.store(), std::fs::Permissions::from_mode(0o755)).expect("0755");
    let output = refresh(&["vcf", "login"], &env(&sandbox, &loose, Some(&pw))).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("open to other users"),
        "{}",
        stderr(&output)
    );

    let linked = RuntimeDir::new("linked");
    let elsewhere = RuntimeDir::new("elsewhere");
    std::os::unix::fs::symlink(&elsewhere.0, linked.store()).expect("a link");
    let output = refresh(&["vcf", "login"], &env(&sandbox, &linked, Some(&pw))).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert_eq!(
        std::fs::read_dir(&elsewhere.0).expect("the target").count(),
        0,
        "nothing written through the link"
    );
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        0,
        "nothing sent"
    );
}

/// Two refused logins for a user at a host within 15 minutes, across runs:
/// the third run does not send one, and says when a login may be tried.
#[tokio::test(flavor = "multi_thread")]
async fn runs_with_a_wrong_password_send_at_most_two_refused_logins() {
    let sandbox = sddc().await;
    let dir = RuntimeDir::new("wrong");
    let wrong = env(&sandbox, &dir, Some("wrong"));
    for run in 0..2 {
        let output = refresh(&["vcf", "create-token"], &wrong).await;
        assert_eq!(code(&output), 3, "run {run}: {}", stderr(&output));
    }
    for args in [
        vec!["vcf", "create-token"],
        vec!["vcf", "login"],
        vec!["vcf", "api", "GET", "/v1/domains"],
    ] {
        let output = refresh(&args, &wrong).await;
        let message = stderr(&output);
        assert_eq!(code(&output), 3, "{args:?}: {message}");
        assert!(message.contains("tried again after"), "{args:?}: {message}");
    }
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        2,
        "two refused logins, no third"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_runs_with_a_wrong_password_send_two_logins_between_them() {
    let sandbox = sddc().await;
    let dir = RuntimeDir::new("parallel-wrong");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let env = env(&sandbox, &dir, Some("wrong"));
            tokio::spawn(async move {
                let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
                refresh(&["vcf", "create-token"], &env).await
            })
        })
        .collect();
    for run in runs {
        assert_eq!(code(&run.await.expect("a run")), 3);
    }
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_login_clears_the_record_of_refused_ones() {
    let sandbox = sddc().await;
    let dir = RuntimeDir::new("clears");
    let pw = password(&sandbox);
    let wrong = env(&sandbox, &dir, Some("wrong"));
    assert_eq!(code(&refresh(&["vcf", "create-token"], &wrong).await), 3);
    let right = refresh(&["vcf", "create-token"], &env(&sandbox, &dir, Some(&pw))).await;
    assert_eq!(code(&right), 0, "{}", stderr(&right));
    for _ in 0..2 {
        assert_eq!(code(&refresh(&["vcf", "create-token"], &wrong).await), 3);
    }
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        4,
        "each was sent"
    );
    let held = refresh(&["vcf", "create-token"], &wrong).await;
    assert!(
        stderr(&held).contains("tried again after"),
        "{}",
        stderr(&held)
    );
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 4);
}
