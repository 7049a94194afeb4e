//! What the command writes: completions, `--json` (a global flag, before or
//! after the subcommand), help (the exit codes, and only the flags a command
//! uses) and version, a stdout that cannot be written (exit 10, and no
//! session left behind), and the warnings of opt-ins that lower security.

mod support;

use refresh_sandbox::{Operation, Sandbox};
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

#[tokio::test(flavor = "multi_thread")]
async fn json_is_a_global_flag_before_or_after_the_subcommand() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    for args in [
        &[
            "--json",
            "f5xc",
            "refresh-token",
            "--product-name",
            "example",
        ][..],
        &[
            "f5xc",
            "refresh-token",
            "--product-name",
            "example",
            "--json",
        ][..],
    ] {
        let output = refresh(args, &f5_env(&sandbox)).await;
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        let object: serde_json::Value =
            serde_json::from_str(&stdout(&output)).expect("--json prints one JSON object");
        assert!(object["result"]["token"].is_string(), "{args:?}: {object}");
    }
    sandbox.assert_spec_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn help_lists_the_exit_codes() {
    let output = refresh(&["--help"], &[]).await;
    assert_eq!(code(&output), 0);
    let help = stdout(&output);
    for line in [
        "3  authentication",
        "4  not found",
        "5  rate limited",
        "7  timeout or transport",
        "10  stdout could not be written",
    ] {
        assert!(help.contains(line), "--help lists {line:?}: {help}");
    }
    // Every variable the SDK reads, and the refresh-token id.
    for name in refresh_sdk::F5Config::VARIABLES
        .into_iter()
        .chain(refresh_sdk::VcfConfig::VARIABLES)
        .chain(["VCF_REFRESH_TOKEN"])
    {
        assert!(help.contains(name), "--help lists {name}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_that_cannot_be_written_exits_10_and_leaves_no_session_behind() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let env = vcf_env(&sandbox);
    let full = || {
        std::process::Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        )
    };
    let (code, stderr) = run_into(&["vcf", "create-token"], &env, full()).await;
    assert_eq!(code, 10, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("invalidated"), "{stderr}");
    assert_eq!(
        sandbox.requests(Operation::VcfInvalidateRefreshToken),
        1,
        "the pair nobody received was invalidated"
    );

    // A pipe whose reader has gone.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let (code, stderr) = run_into(
        &["f5xc", "refresh-token", "--product-name", "example"],
        &f5_env(&sandbox),
        writer.into(),
    )
    .await;
    assert_eq!(code, 10, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_and_sandbox_help_show_only_the_flags_they_use() {
    for command in ["demo", "sandbox"] {
        let help = stdout(&refresh(&[command, "--help"], &[]).await);
        for flag in ["--timeout", "--retries", "--ca-cert", "--insecure"] {
            assert!(
                !help.contains(flag),
                "{command} --help shows {flag}: {help}"
            );
        }
        assert!(help.contains("--json"), "{help}");
        let output = refresh(&["--timeout", "3", command], &[]).await;
        assert_eq!(code(&output), 2, "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("--timeout does nothing for `refresh {command}`")),
            "{}",
            stderr(&output)
        );
    }
    // The flags still work where they mean something, before or after.
    let help = stdout(&refresh(&["vcf", "create-token", "--help"], &[]).await);
    assert!(
        help.contains("--timeout") && help.contains("--insecure"),
        "{help}"
    );
}
