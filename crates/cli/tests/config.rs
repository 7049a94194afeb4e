//! The environment and flags a run is configured by: each kind of VCF
//! credential, as a value or a `_FILE`, and conflicting ones; plain
//! `http://` to a remote host; a variable that is not UTF-8; a timeout that
//! is not positive; and configuration errors that never echo a secret.

mod support;

use assert_cmd::Command;
use refresh_sandbox::{ExposeSecret, Operation, Sandbox};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_negative_timeout_says_the_timeout_must_be_positive() {
    for value in ["-1", "0", "nan"] {
        let output = refresh(
            &[
                "--timeout",
                value,
                "vcf",
                "refresh-token",
                "--refresh-token",
                "x",
            ],
            &[("VCF_SDDC_MANAGER_HOST", "http://127.0.0.1:9".into())],
        )
        .await;
        assert_eq!(code(&output), 2, "{value}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("positive number of seconds"),
            "{value}: {}",
            stderr(&output)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_never_echo_a_secret() {
    let token = format!("eyJhbGciOiJIUzI1NiJ9{}", "x".repeat(60));
    for (args, env) in [
        (
            vec!["vcf", "create-token"],
            vec![
                (
                    "VCF_SDDC_MANAGER_HOST",
                    "https://admin:S3cret@vcf.example".to_owned(),
                ),
                ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
                ("VCF_SDDC_MANAGER_PASSWORD", "pw".to_owned()),
            ],
        ),
        (
            vec!["f5xc", "refresh-token", "--product-name", "p"],
            vec![
                ("VOLT_API_URL", token.clone()),
                ("VOLT_API_TOKEN", "t".to_owned()),
            ],
        ),
        (
            vec!["f5xc", "refresh-token", "--product-name", "p"],
            vec![
                ("VOLT_API_URL", format!("{token}.example")),
                ("VOLT_API_TOKEN", "t".to_owned()),
            ],
        ),
    ] {
        let output = refresh(&args, &env).await;
        let message = stderr(&output);
        assert_eq!(code(&output), 2, "{args:?}: {message}");
        assert!(
            !message.contains("S3cret") && !message.contains(&token),
            "{args:?}: {message}"
        );
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_variable_that_is_not_utf8_is_named_not_called_unset() {
    use std::os::unix::ffi::OsStringExt as _;
    let output = tokio::task::spawn_blocking(|| {
        Command::cargo_bin("refresh")
            .expect("the refresh binary is built")
            .env_clear()
            .env("VCF_SDDC_MANAGER_HOST", "http://127.0.0.1:9")
            .env("VCF_SDDC_MANAGER_USERNAME", "admin")
            .env(
                "VCF_SDDC_MANAGER_PASSWORD",
                std::ffi::OsString::from_vec(vec![b'p', 0xff, b'w']),
            )
            .args(["vcf", "create-token"])
            .output()
            .expect("refresh runs")
    })
    .await
    .expect("the command thread finishes");
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("VCF_SDDC_MANAGER_PASSWORD is set but its value is not valid UTF-8"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_is_refused_before_anything_is_sent() {
    // `.invalid` never resolves (RFC 6761): had the command tried to send,
    // it would have failed with exit 7, not 2.
    let env = [
        (
            "VCF_SDDC_MANAGER_HOST",
            "http://sddc-manager.invalid".to_owned(),
        ),
        ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
        ("VCF_SDDC_MANAGER_PASSWORD", "S3cret-pw".to_owned()),
    ];
    let output = refresh(&["vcf", "create-token"], &env).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("VCF_ALLOW_INSECURE_HTTP"),
        "{}",
        stderr(&output)
    );
    let mut allowed = env.to_vec();
    allowed.push(("VCF_ALLOW_INSECURE_HTTP", "true".to_owned()));
    let output = refresh(&["--timeout", "2", "vcf", "create-token"], &allowed).await;
    assert_eq!(
        code(&output),
        7,
        "allowed, then the lookup fails: {}",
        stderr(&output)
    );

    let f5 = [
        ("VOLT_API_URL", "http://tenant.invalid".to_owned()),
        ("VOLT_API_TOKEN", "S3cret-token".to_owned()),
    ];
    let output = refresh(&["f5xc", "refresh-token", "--product-name", "p"], &f5).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("VOLT_ALLOW_INSECURE_HTTP"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("S3cret"), "{}", stderr(&output));
}

/// A secret file in the temp directory, removed when dropped.
struct SecretFile(std::path::PathBuf);

impl SecretFile {
    fn new(name: &str, content: &str) -> SecretFile {
        let path = std::env::temp_dir().join(format!("refresh-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("write a secret file");
        SecretFile(path)
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `vcf create-token` and `vcf api` log in with an API key or an identity
/// token from the environment, given as the value or in a `_FILE`; a wrong
/// one is refused like a wrong password (exit 3) and never shown.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_commands_log_in_with_an_api_key_or_an_id_token_from_the_environment() {
    let sandbox = api_sandbox().await;
    let credentials = sandbox.credentials();
    let key = credentials.vcf_api_key.expose_secret().to_owned();
    let id_token = credentials.vcf_id_token.expose_secret().to_owned();
    let key_file = SecretFile::new("api-key", &format!("{key}\n"));
    let id_file = SecretFile::new("id-token", &format!("{id_token}\r\n"));
    let host = ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url());
    for env in [
        vec![host.clone(), ("VCF_SDDC_MANAGER_API_KEY", key.clone())],
        vec![
            host.clone(),
            ("VCF_SDDC_MANAGER_API_KEY_FILE", key_file.path()),
        ],
        vec![
            host.clone(),
            ("VCF_SDDC_MANAGER_ID_TOKEN", id_token.clone()),
        ],
        vec![
            host.clone(),
            ("VCF_SDDC_MANAGER_ID_TOKEN_FILE", id_file.path()),
        ],
    ] {
        let created = refresh(&["vcf", "create-token"], &env).await;
        assert_eq!(code(&created), 0, "{env:?}: {}", stderr(&created));
        let access = stdout(&created)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(sandbox.is_valid_access_token(&access), "{env:?}");

        let called = refresh(&["vcf", "api", "GET", "/v1/domains"], &env).await;
        assert_eq!(code(&called), 0, "{env:?}: {}", stderr(&called));
        let body: serde_json::Value = serde_json::from_str(&stdout(&called)).expect("JSON");
        assert_eq!(body["elements"][0]["name"], "sfo-m01");
    }

    let canary = "canary-api-key-5e1f";
    for name in ["VCF_SDDC_MANAGER_API_KEY", "VCF_SDDC_MANAGER_ID_TOKEN"] {
        let output = refresh(
            &["-vv", "vcf", "create-token"],
            &[host.clone(), (name, canary.to_owned())],
        )
        .await;
        assert_eq!(code(&output), 3, "{name}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(message.contains("TOKEN_CREATION_FAILED"), "{message}");
        assert!(message.contains(name), "the hint names {name}: {message}");
        assert!(!message.contains(canary), "{message}");
        assert!(!stdout(&output).contains(canary));
    }
    sandbox.assert_spec_clean();
}

/// Two kinds of credentials, or one secret given both as a value and as a
/// file, is a configuration error (exit 2) that names the variables, never
/// their values, and sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn conflicting_credentials_are_a_configuration_error_naming_the_variables() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let canary = "canary-conflict-77ab";
    let file = SecretFile::new("conflict", canary);
    let host = ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url());
    for (env, named) in [
        (
            vec![
                host.clone(),
                ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
                ("VCF_SDDC_MANAGER_PASSWORD", canary.to_owned()),
                ("VCF_SDDC_MANAGER_API_KEY", canary.to_owned()),
            ],
            vec!["VCF_SDDC_MANAGER_PASSWORD", "VCF_SDDC_MANAGER_API_KEY"],
        ),
        (
            vec![
                host.clone(),
                ("VCF_SDDC_MANAGER_ID_TOKEN", canary.to_owned()),
                ("VCF_SDDC_MANAGER_ID_TOKEN_FILE", file.path()),
            ],
            vec![
                "VCF_SDDC_MANAGER_ID_TOKEN",
                "VCF_SDDC_MANAGER_ID_TOKEN_FILE",
            ],
        ),
        (
            vec![
                host.clone(),
                (
                    "VCF_SDDC_MANAGER_API_KEY_FILE",
                    "/nonexistent/api-key".to_owned(),
                ),
            ],
            vec!["VCF_SDDC_MANAGER_API_KEY_FILE"],
        ),
        (
            vec![
                ("VOLT_API_URL", sandbox.f5xc_url()),
                ("VOLT_API_TOKEN", canary.to_owned()),
                ("VOLT_API_TOKEN_FILE", file.path()),
            ],
            vec!["VOLT_API_TOKEN", "VOLT_API_TOKEN_FILE"],
        ),
    ] {
        let args: &[&str] = if env[0].0 == "VOLT_API_URL" {
            &["f5xc", "refresh-token", "--product-name", "example"]
        } else {
            &["vcf", "create-token"]
        };
        let output = refresh(args, &env).await;
        let message = stderr(&output);
        assert_eq!(code(&output), 2, "{env:?}: {message}");
        for name in named {
            assert!(message.contains(name), "{name}: {message}");
        }
        assert!(!message.contains(canary), "{message}");
    }
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 0);
    assert_eq!(sandbox.requests(Operation::F5xcRefreshToken), 0);
}
