//! What the `refresh` binary's tests share: running it with exactly the
//! environment a test gives (and stdout where it says), and the sandboxes
//! and environments that point it at one.
#![allow(dead_code)]

use std::time::Duration;

use assert_cmd::Command;
use refresh_sandbox::{ExposeSecret, Sandbox};

/// Runs `refresh` with `args` and exactly the environment `env`, off the
/// async runtime so an in-process sandbox keeps serving.
pub async fn refresh(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    run(args, env, None, Duration::from_secs(60)).await
}

/// Like [`refresh`], with `stdin` and a timeout after which the command is
/// killed (its output so far is returned).
pub async fn run(
    args: &[&str],
    env: &[(&str, String)],
    stdin: Option<String>,
    timeout: Duration,
) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::cargo_bin("refresh").expect("the refresh binary is built");
        command.env_clear().args(&args).timeout(timeout);
        for (name, value) in env {
            command.env(name, value);
        }
        if let Some(input) = stdin {
            command.write_stdin(input);
        }
        command.output().expect("refresh runs")
    })
    .await
    .expect("the command thread finishes")
}

/// Runs `refresh` with stdout going to `stdout` (a full device, a pipe whose
/// reader is gone) and returns its exit code and stderr.
pub async fn run_into(
    args: &[&str],
    env: &[(&str, String)],
    stdout: std::process::Stdio,
) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("refresh"))
            .env_clear()
            .envs(env)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("refresh runs");
        (
            output.status.code().expect("an exit code"),
            String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        )
    })
    .await
    .expect("the command thread finishes")
}

/// Runs `refresh` with its stdout on `/dev/full`: returns the exit code and
/// stderr.
pub async fn into_full_disk(args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    run_into(args, env, full.into()).await
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

pub fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("refresh exits with a code")
}

/// The F5 XC variables for `sandbox`.
pub fn f5_env(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("VOLT_API_URL", sandbox.f5xc_url()),
        (
            "VOLT_API_TOKEN",
            sandbox
                .credentials()
                .f5xc_api_token
                .expose_secret()
                .to_string(),
        ),
    ]
}

/// The VCF variables for `sandbox`: its host, username and password.
pub fn vcf_env(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    sandbox.vcf_env_vars()
}

/// A sandbox with `GET` and `POST /v1/domains` behind a login, for
/// `refresh vcf api`.
pub async fn api_sandbox() -> Sandbox {
    Sandbox::builder()
        .protected_route(
            refresh_sandbox::Method::GET,
            "/v1/domains",
            serde_json::json!({ "elements": [{ "name": "sfo-m01" }] }),
        )
        .protected_route(
            refresh_sandbox::Method::POST,
            "/v1/domains",
            serde_json::json!({ "id": "task-1" }),
        )
        .start()
        .await
        .expect("sandbox")
}
