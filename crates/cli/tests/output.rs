//! What the command writes: completions, `--json`, help and version, a
//! stdout that cannot be written, and the warnings of opt-ins that lower
//! security.

mod support;

use refresh_sandbox::Sandbox;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn completions_are_printed_for_every_shell_clap_knows() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef refresh"),
        ("fish", "complete -c refresh"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer"),
    ] {
        let output = refresh(&["completions", shell], &[]).await;
        assert_eq!(code(&output), 0, "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("create-token"), "{shell}: every subcommand");
    }
    let output = refresh(&["completions", "tcsh"], &[]).await;
    assert_eq!(code(&output), 2, "an unknown shell is a usage error");
}

#[tokio::test(flavor = "multi_thread")]
async fn f5_json_carries_the_result_decoded_not_as_a_string() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let output = refresh(
        &[
            "--json",
            "f5xc",
            "refresh-token",
            "--product-name",
            "example",
        ],
        &f5_env(&sandbox),
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let printed: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let token = printed["result"]["token"]
        .as_str()
        .expect("result.token is a string");
    assert_eq!(token.len(), 64, "{printed}");
    assert_eq!(printed["result"]["product_name"], "example");
}

#[tokio::test(flavor = "multi_thread")]
async fn help_version_demo_and_sandbox_exit_10_when_stdout_cannot_be_written() {
    for args in [
        vec!["--help"],
        vec!["--version"],
        vec!["vcf", "--help"],
        vec!["completions", "bash"],
        vec!["demo"],
        vec!["sandbox"],
    ] {
        let (code, stderr) = into_full_disk(&args, &[]).await;
        assert_eq!(code, 10, "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to stdout"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Each opt-in that lowers security says so, once, on one line, naming
/// the flag or variable the user set (not a Rust API), at the default
/// verbosity.
#[tokio::test(flavor = "multi_thread")]
async fn opt_ins_that_lower_security_warn_on_one_line_each() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let with = |extra: &[(&'static str, &str)]| {
        let mut env = vcf_env(&sandbox);
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    for (args, env, named) in [
        (
            vec!["--insecure", "vcf", "create-token"],
            with(&[]),
            "--insecure",
        ),
        (
            vec!["vcf", "create-token"],
            with(&[("VCF_ALLOW_UNVERIFIED_TLS", "true")]),
            "VCF_ALLOW_UNVERIFIED_TLS=true",
        ),
        (
            vec!["vcf", "create-token"],
            with(&[("VCF_ALLOW_INSECURE_HTTP", "1")]),
            "VCF_ALLOW_INSECURE_HTTP=true",
        ),
    ] {
        let output = refresh(&args, &env).await;
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        let warnings: Vec<String> = stderr(&output)
            .lines()
            .filter(|line| line.starts_with("warning:"))
            .map(str::to_owned)
            .collect();
        assert_eq!(warnings.len(), 1, "{args:?}: {warnings:?}");
        assert!(warnings[0].contains(named), "{args:?}: {warnings:?}");
        assert!(
            !warnings[0].contains("  "),
            "no runs of spaces: {warnings:?}"
        );
        assert!(!warnings[0].contains("::"), "no Rust API: {warnings:?}");
    }
    let plain = refresh(&["vcf", "create-token"], &vcf_env(&sandbox)).await;
    assert_eq!(stderr(&plain), "", "no opt-in, no warning");

    // Refused plain http:// says which variable allows it, in one clean line.
    let mut remote = vcf_env(&sandbox);
    remote[0].1 = "http://sddc.example.invalid".to_owned();
    let refused = refresh(&["vcf", "create-token"], &remote).await;
    let message = stderr(&refused);
    assert_eq!(code(&refused), 2, "{message}");
    assert!(
        message.contains("VCF_ALLOW_INSECURE_HTTP=true"),
        "{message}"
    );
    assert!(!message.contains("  "), "no runs of spaces: {message}");
    assert!(!message.contains("::"), "no Rust API: {message}");
}
