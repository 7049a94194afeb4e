//! `refresh vcf create-token`, `refresh-token` and `invalidate`: the pair
//! issued, a refresh token used then invalidated, and the refresh token id
//! taken from the flag, the environment or stdin, never empty.

mod support;

use std::time::Duration;

use refresh_sandbox::{Operation, Sandbox};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn vcf_create_refresh_invalidate_then_refresh_fails_with_not_found() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let env = vcf_env(&sandbox);

    let created = refresh(&["vcf", "create-token"], &env).await;
    assert_eq!(code(&created), 0, "stderr: {}", stderr(&created));
    let lines: Vec<String> = stdout(&created).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "access token, then refresh token id");
    assert!(
        sandbox.is_valid_access_token(&lines[0]),
        "line 1 is the access token"
    );
    let id = lines[1].clone();

    let refreshed = refresh(&["vcf", "refresh-token", "--refresh-token", &id], &env).await;
    assert_eq!(code(&refreshed), 0, "stderr: {}", stderr(&refreshed));
    let token = stdout(&refreshed);
    assert!(
        sandbox.is_valid_access_token(token.trim_end()),
        "stdout is only the token"
    );

    let json = refresh(
        &["vcf", "refresh-token", "--refresh-token", &id, "--json"],
        &env,
    )
    .await;
    let object: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert!(sandbox.is_valid_access_token(object["access_token"].as_str().expect("access_token")));

    let invalidated = refresh(&["vcf", "invalidate", "--refresh-token", &id], &env).await;
    assert_eq!(code(&invalidated), 0, "stderr: {}", stderr(&invalidated));
    assert_eq!(
        stdout(&invalidated),
        "",
        "invalidate prints nothing without --json"
    );

    let after = refresh(&["vcf", "refresh-token", "--refresh-token", &id], &env).await;
    assert_eq!(code(&after), 4, "not found: {}", stderr(&after));
    assert_eq!(stdout(&after), "", "errors go to stderr only");
    let message = stderr(&after);
    assert!(message.contains("404"), "{message}");
    assert!(message.lines().count() <= 2, "one or two lines: {message}");
    assert!(
        !message.contains(&id),
        "the refresh token id is a secret: {message}"
    );
    sandbox.assert_spec_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn create_token_json_holds_both_tokens() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let output = refresh(&["--json", "vcf", "create-token"], &vcf_env(&sandbox)).await;
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let pair: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert!(sandbox.is_valid_access_token(pair["access_token"].as_str().expect("access_token")));
    assert!(
        pair["refresh_token"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_refresh_token_id_comes_from_the_environment_or_stdin_and_empty_is_refused() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let env = vcf_env(&sandbox);
    let created = refresh(&["vcf", "create-token"], &env).await;
    assert_eq!(code(&created), 0, "stderr: {}", stderr(&created));
    let id = stdout(&created)
        .lines()
        .nth(1)
        .expect("the refresh token id")
        .to_owned();

    let mut with_id = env.clone();
    with_id.push(("VCF_REFRESH_TOKEN", id.clone()));
    let from_env = refresh(&["vcf", "refresh-token"], &with_id).await;
    assert_eq!(code(&from_env), 0, "stderr: {}", stderr(&from_env));
    assert!(sandbox.is_valid_access_token(stdout(&from_env).trim_end()));

    let from_stdin = run(
        &["vcf", "refresh-token", "--refresh-token", "-"],
        &env,
        Some(format!("{id}\n")),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(code(&from_stdin), 0, "stderr: {}", stderr(&from_stdin));
    assert!(sandbox.is_valid_access_token(stdout(&from_stdin).trim_end()));

    let refreshes = sandbox.requests(Operation::VcfRefreshAccessToken);
    let mut blank = env.clone();
    blank.push(("VCF_REFRESH_TOKEN", "  ".into()));
    for (args, env, stdin) in [
        (
            vec!["vcf", "refresh-token", "--refresh-token", ""],
            env.clone(),
            None,
        ),
        (
            vec!["vcf", "invalidate", "--refresh-token", " "],
            env.clone(),
            None,
        ),
        (
            vec!["vcf", "refresh-token", "--refresh-token", "-"],
            env.clone(),
            Some("\n".to_owned()),
        ),
        (vec!["vcf", "refresh-token"], env.clone(), None),
        (vec!["vcf", "refresh-token"], blank, None),
    ] {
        let output = run(&args, &env, stdin, Duration::from_secs(60)).await;
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("refresh token id"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        sandbox.requests(Operation::VcfRefreshAccessToken),
        refreshes,
        "nothing was sent without an id"
    );
    assert_eq!(sandbox.requests(Operation::VcfInvalidateRefreshToken), 0);
}
