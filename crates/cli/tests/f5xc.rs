//! `refresh f5xc refresh-token`: stdout holding only the result text, and
//! `--insecure` for a tenant whose certificate is not trusted.

mod support;

use refresh_sandbox::Sandbox;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn f5xc_refresh_token_prints_only_the_result_text() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");

    let output = refresh(
        &["f5xc", "refresh-token", "--product-name", "example"],
        &f5_env(&sandbox),
    )
    .await;

    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let text = stdout(&output);
    let result: serde_json::Value =
        serde_json::from_str(text.trim_end()).expect("stdout is exactly the result's JSON text");
    assert!(
        result["token"].is_string(),
        "the result carries a token: {text}"
    );
    assert_eq!(text.lines().count(), 1);
    sandbox.assert_spec_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_skips_verification_for_f5_too() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("a TLS sandbox");
    let args = ["f5xc", "refresh-token", "--product-name", "example"];
    let verified = refresh(&args, &f5_env(&sandbox)).await;
    assert_eq!(
        code(&verified),
        7,
        "an untrusted certificate: {}",
        stderr(&verified)
    );
    let insecure = refresh(
        &[
            "--insecure",
            "f5xc",
            "refresh-token",
            "--product-name",
            "example",
        ],
        &f5_env(&sandbox),
    )
    .await;
    assert_eq!(code(&insecure), 0, "stderr: {}", stderr(&insecure));
    assert!(stdout(&insecure).contains("token"));
}
