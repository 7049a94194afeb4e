//! The `refresh` binary against a sandbox started in the test process: each
//! subcommand, `--json`, stdout holding only the value, each exit code, and
//! no secret on stderr.

use std::time::Duration;

use assert_cmd::Command;
use refresh_sandbox::{ExposeSecret, Operation, Sandbox, StatusCode};

/// Runs `refresh` with `args` and exactly the environment `env` (plus PATH),
/// off the async runtime so the in-process sandbox keeps serving.
async fn refresh(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    run(args, env, None, Duration::from_secs(60)).await
}

/// Like [`refresh`], with `stdin` and a timeout after which the command is
/// killed (its output so far is returned).
async fn run(
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

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("refresh exits with a code")
}

fn f5_env(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
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

fn vcf_env(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    let credentials = sandbox.credentials();
    vec![
        ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url()),
        (
            "VCF_SDDC_MANAGER_USERNAME",
            credentials.vcf_username.clone(),
        ),
        (
            "VCF_SDDC_MANAGER_PASSWORD",
            credentials.vcf_password.expose_secret().to_string(),
        ),
    ]
}

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
async fn exit_codes_follow_the_error_kind() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let faults = sandbox.faults();
    let pipeline = [
        "f5xc",
        "refresh-token",
        "--product-name",
        "example",
        "--retries",
        "0",
    ];
    let mut wrong_token = f5_env(&sandbox);
    wrong_token[1].1 = "wrong-token".into();

    type Case<'a> = (&'a str, i32, Box<dyn Fn() + 'a>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        ("auth", 3, Box::new(|| {}), wrong_token),
        (
            "rate limited",
            5,
            Box::new(|| {
                faults.fail_next(
                    Operation::F5xcRefreshToken,
                    1,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(Duration::from_secs(1)),
                )
            }),
            f5_env(&sandbox),
        ),
        (
            "server",
            6,
            Box::new(|| {
                faults.fail_next(
                    Operation::F5xcRefreshToken,
                    1,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                )
            }),
            f5_env(&sandbox),
        ),
        (
            "conflict",
            9,
            Box::new(|| {
                faults.fail_next(Operation::F5xcRefreshToken, 1, StatusCode::CONFLICT, None)
            }),
            f5_env(&sandbox),
        ),
        (
            "invalid response",
            8,
            Box::new(|| faults.malformed_next(Operation::F5xcRefreshToken, 1)),
            f5_env(&sandbox),
        ),
    ];
    for (what, expected, inject, env) in cases {
        inject();
        let output = refresh(&pipeline, &env).await;
        assert_eq!(code(&output), expected, "{what}: {}", stderr(&output));
        assert_eq!(stdout(&output), "", "{what}: nothing on stdout");
        assert!(
            !stderr(&output).contains("wrong-token"),
            "{what}: no secret on stderr"
        );
    }

    let unknown = refresh(
        &["f5xc", "refresh-token", "--product-name", "nope"],
        &f5_env(&sandbox),
    )
    .await;
    assert_eq!(code(&unknown), 4, "unknown pipeline: {}", stderr(&unknown));
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_config_and_transport_exit_codes() {
    let missing_env = refresh(&["vcf", "refresh-token", "--refresh-token", "x"], &[]).await;
    assert_eq!(code(&missing_env), 2, "{}", stderr(&missing_env));
    assert!(
        stderr(&missing_env).contains("VCF_SDDC_MANAGER_HOST"),
        "says what to set"
    );

    let missing_flag = refresh(&["f5xc", "refresh-token"], &[]).await;
    assert_eq!(code(&missing_flag), 2);

    let empty_name = refresh(
        &["f5xc", "refresh-token", "--product-name", ""],
        &[
            ("VOLT_API_URL", "http://127.0.0.1:9".into()),
            ("VOLT_API_TOKEN", "t".into()),
        ],
    )
    .await;
    assert_eq!(
        code(&empty_name),
        2,
        "an empty pipeline name is rejected before sending"
    );

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let refused = refresh(
        &[
            "vcf",
            "refresh-token",
            "--refresh-token",
            "x",
            "--retries",
            "0",
            "--timeout",
            "5",
        ],
        &[("VCF_SDDC_MANAGER_HOST", format!("http://127.0.0.1:{port}"))],
    )
    .await;
    assert_eq!(code(&refused), 7, "{}", stderr(&refused));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_stderr_even_verbose() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    let canary = "canary-Secret-7f3a9";
    let env = vec![
        ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url()),
        ("VCF_SDDC_MANAGER_USERNAME", "someone".to_string()),
        ("VCF_SDDC_MANAGER_PASSWORD", canary.to_string()),
    ];
    let output = refresh(&["-vv", "vcf", "create-token"], &env).await;
    // SDDC Manager's 400 TOKEN_CREATION_FAILED for a login is an
    // authentication failure, with the vendor's message.
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("TOKEN_CREATION_FAILED"),
        "{}",
        stderr(&output)
    );
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains(canary), "the password leaked: {all}");

    let refresh_id = "canary-refresh-id-11d2";
    let output = refresh(
        &["-vv", "vcf", "refresh-token", "--refresh-token", refresh_id],
        &env,
    )
    .await;
    assert_eq!(code(&output), 4);
    assert!(
        !stderr(&output).contains(refresh_id),
        "the refresh id leaked"
    );
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
async fn demo_walks_every_step_and_exits_zero() {
    let output = refresh(&["demo"], &[]).await;
    assert_eq!(
        code(&output),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    let text = stdout(&output);
    let ok_lines = text.lines().filter(|l| l.contains("] ok ")).count();
    assert_eq!(ok_lines, 8, "{text}");
    assert!(
        text.contains("404"),
        "the last step shows the expected 404: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_json_is_one_object_per_line() {
    let output = refresh(&["demo", "--json"], &[]).await;
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let objects: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let steps = objects
        .iter()
        .filter(|o| o["ok"] == true && o["step"].is_u64())
        .count();
    assert_eq!(steps, 8, "{objects:?}");
    assert_eq!(objects.last().expect("a summary")["spec_clean"], true);
    assert!(objects[0]["sandbox"]["vcf_url"].is_string());
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
async fn the_sandbox_says_its_credentials_are_for_it_only() {
    // Killed after 3 s; what it printed by then is what an operator sees.
    let output = run(&["sandbox"], &[], None, Duration::from_secs(3)).await;
    let shown = stdout(&output);
    assert!(
        shown.contains("Demo credentials for this sandbox only"),
        "{shown}"
    );
    assert!(shown.contains("VCF_SDDC_MANAGER_PASSWORD="), "{shown}");
    // The other kinds, commented out so that pasting the block configures
    // one kind only.
    for name in ["VCF_SDDC_MANAGER_API_KEY=", "VCF_SDDC_MANAGER_ID_TOKEN="] {
        assert!(shown.contains(&format!("# export {name}")), "{shown}");
    }
}

/// Runs `refresh` with stdout going to `stdout` (a full device, a pipe whose
/// reader is gone) and returns its exit code and stderr.
async fn run_into(
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

/// Under `nohup` (SIGHUP ignored from the start) a closed terminal does not
/// stop `vcf api`: SIGHUP changes nothing, and SIGTERM still logs out.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_under_nohup_ignores_sighup() {
    use std::os::unix::process::CommandExt as _;
    let sandbox = api_sandbox().await;
    sandbox
        .faults()
        .delay_next(Operation::VcfCreateToken, 1, Duration::from_secs(3));
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("refresh"));
    command
        .env_clear()
        .envs(sandbox_env(&sandbox))
        .args(["vcf", "api", "GET", "/v1/domains"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec only `signal`, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = command.spawn().expect("refresh vcf api starts");
    while sandbox.requests(Operation::VcfCreateToken) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().to_string();
    let output = tokio::task::spawn_blocking(move || {
        let kill = |signal: &str| {
            let sent = std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .expect("kill runs");
            assert!(sent.success());
        };
        kill("-HUP");
        std::thread::sleep(Duration::from_millis(300));
        kill("-TERM");
        child.wait_with_output().expect("the command exits")
    })
    .await
    .expect("the command thread finishes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(143),
        "SIGHUP was ignored: {stderr}"
    );
    assert_eq!(sandbox.requests(Operation::VcfInvalidateRefreshToken), 1);
}

/// Stopped by any signal it handles, the sandbox removes its CA file and the
/// private directory (0700, a random name, so nobody can plant a link at it
/// or share it) that holds it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_stops_the_sandbox_and_removes_its_private_ca_directory() {
    for signal in ["-TERM", "-INT", "-HUP"] {
        sandbox_stopped_by(signal).await;
    }
}

#[cfg(unix)]
async fn sandbox_stopped_by(signal: &'static str) {
    use std::io::BufRead as _;
    use std::os::unix::fs::PermissionsExt as _;
    let (path, status) = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("refresh"))
            .env_clear()
            .args(["sandbox", "--tls"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("refresh sandbox starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let path = lines
            .by_ref()
            .map(|line| line.expect("a line"))
            .find_map(|line| {
                line.strip_prefix("CA certificate:")
                    .map(|rest| rest.trim().split(' ').next().unwrap_or("").to_owned())
            })
            .expect("the CA file is printed");
        // Read to the end: a reader that went away would make the sandbox's
        // output undelivered (exit 10), not a clean stop.
        std::thread::spawn(move || lines.for_each(drop));
        let file = std::path::Path::new(&path);
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .expect("it exists while serving")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(file), 0o600, "{path}");
        let dir = file.parent().expect("a directory");
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        assert_ne!(dir, std::env::temp_dir(), "a directory of its own");
        let killed = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        (path, child.wait().expect("the sandbox exits"))
    })
    .await
    .expect("the command thread finishes");
    assert!(status.success(), "{signal}: a clean stop: {status:?}");
    let dir = std::path::Path::new(&path).parent().expect("a directory");
    assert!(!dir.exists(), "{signal}: {} was left behind", dir.display());
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

async fn api_sandbox() -> Sandbox {
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

fn sandbox_env(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    sandbox.vcf_env_vars()
}

#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_prints_the_body_and_logs_out() {
    let sandbox = api_sandbox().await;
    let output = refresh(
        &["vcf", "api", "get", "/v1/domains"],
        &sandbox_env(&sandbox),
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let body: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    assert_eq!(body["elements"][0]["name"], "sfo-m01");
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1);
    assert_eq!(
        sandbox.requests(Operation::VcfInvalidateRefreshToken),
        1,
        "no refresh token outlives the run"
    );
    sandbox.assert_spec_clean();
}

/// A body far larger than the SDK's 1 MiB cap on token answers reaches
/// stdout whole, in many chunks, with one newline added at the end.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_streams_a_large_body_whole() {
    let big = "x".repeat(8 * 1024 * 1024);
    let sandbox = Sandbox::builder()
        .protected_route(
            refresh_sandbox::Method::GET,
            "/v1/inventory",
            serde_json::json!({ "blob": big }),
        )
        .start()
        .await
        .expect("sandbox");
    let output = refresh(
        &["vcf", "api", "GET", "/v1/inventory"],
        &sandbox_env(&sandbox),
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON on stdout");
    assert_eq!(body["blob"].as_str().map(str::len), Some(big.len()));
}

/// Ctrl-C, SIGTERM or SIGHUP (a closed terminal) while `vcf api` waits for
/// its login: the command waits for the login already sent, invalidates the
/// refresh token it brings, and exits 130, 143 or 129; killed by the signal
/// instead, it would leave that refresh token valid for a day.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_stopped_by_a_signal_still_logs_out() {
    for (signal, expected) in [("-INT", 130), ("-TERM", 143), ("-HUP", 129)] {
        let sandbox = api_sandbox().await;
        sandbox
            .faults()
            .delay_next(Operation::VcfCreateToken, 1, Duration::from_secs(3));
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("refresh"))
            .env_clear()
            .envs(sandbox_env(&sandbox))
            .args(["vcf", "api", "GET", "/v1/domains"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("refresh vcf api starts");
        // The login has reached the sandbox (counted on arrival, then held
        // for 3 s): the command is mid-call.
        while sandbox.requests(Operation::VcfCreateToken) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid = child.id().to_string();
        let output = tokio::task::spawn_blocking(move || {
            let sent = std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .expect("kill runs");
            assert!(sent.success());
            child.wait_with_output().expect("the command exits")
        })
        .await
        .expect("the command thread finishes");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(expected), "{signal}: {stderr}");
        assert!(stderr.contains("stopped by"), "{signal}: {stderr}");
        assert_eq!(
            sandbox.requests(Operation::VcfInvalidateRefreshToken),
            1,
            "{signal}: the login's refresh token was invalidated before exiting"
        );
        sandbox.assert_spec_clean();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_renews_a_token_revoked_mid_call_and_sends_the_call_once_more() {
    let sandbox = api_sandbox().await;
    sandbox
        .faults()
        .revoke_before_next(refresh_sandbox::Method::POST, "/v1/domains", 1);
    let output = run(
        &["vcf", "api", "POST", "/v1/domains", "--data", "-"],
        &sandbox_env(&sandbox),
        Some(r#"{"name": "sfo-w01"}"#.to_owned()),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("task-1"), "{}", stdout(&output));
    let post = refresh_sandbox::Method::POST;
    assert_eq!(sandbox.route_rejections(post.clone(), "/v1/domains"), 1);
    assert_eq!(sandbox.route_requests(post, "/v1/domains"), 2);
    assert_eq!(sandbox.requests(Operation::VcfRefreshAccessToken), 1);
    assert_eq!(sandbox.requests(Operation::VcfInvalidateRefreshToken), 1);
    sandbox.assert_spec_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_exits_by_status_and_refuses_bad_input_before_logging_in() {
    let sandbox = api_sandbox().await;
    let env = sandbox_env(&sandbox);
    // A method the route does not have: 405, exit 9 (another rejected request).
    let output = refresh(&["vcf", "api", "DELETE", "/v1/domains"], &env).await;
    assert_eq!(code(&output), 9, "{}", stderr(&output));
    assert!(stderr(&output).contains("405"), "{}", stderr(&output));
    assert_eq!(
        sandbox.requests(Operation::VcfInvalidateRefreshToken),
        1,
        "logged out"
    );

    for args in [
        &["vcf", "api", "GET", "v1/domains"][..],
        &["vcf", "api", "GET", "https://elsewhere.example/v1/domains"],
        &["vcf", "api", "POST", "/v1/domains", "--data", "{not json"],
        &[
            "vcf",
            "api",
            "POST",
            "/v1/domains",
            "--data",
            "@/nonexistent/spec.json",
        ],
    ] {
        let output = refresh(args, &env).await;
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
    }
    let output = refresh(&["vcf", "api", "TRACE", "/v1/domains"], &env).await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert_eq!(
        sandbox.requests(Operation::VcfCreateToken),
        1,
        "no login for bad input"
    );

    // Wrong credentials: the login's failure, exit 3.
    let mut wrong = env.clone();
    for (name, value) in &mut wrong {
        if *name == "VCF_SDDC_MANAGER_PASSWORD" {
            *value = "wrong".to_owned();
        }
    }
    let output = refresh(&["vcf", "api", "GET", "/v1/domains"], &wrong).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(!stderr(&output).contains("wrong"), "{}", stderr(&output));
}

/// The SDK's line says what happened and one hint what to do: never two
/// hints, never a stray `..`, and the hint fits the operation.
fn assert_one_hint(message: &str) {
    assert_eq!(message.matches("hint:").count(), 1, "one hint: {message}");
    assert!(!message.contains(".."), "no stray dots: {message}");
    assert_eq!(message.lines().count(), 2, "error line and hint: {message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_named_points_to_ca_cert_and_is_not_retried() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("a TLS sandbox");
    let output = refresh(
        &["-vv", "vcf", "refresh-token", "--retries", "3"],
        &[
            ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url()),
            ("VCF_REFRESH_TOKEN", "an-id".to_owned()),
        ],
    )
    .await;
    assert_eq!(code(&output), 7, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("the server's certificate is not trusted: unknown issuer"),
        "{message}"
    );
    assert!(message.contains("--ca-cert"), "{message}");
    assert!(!message.contains("retrying"), "not retried: {message}");
    assert!(!message.contains("attempts)"), "one attempt: {message}");
    let errors: String = message
        .lines()
        .filter(|line| line.starts_with("error:") || line.starts_with("  hint:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_one_hint(&errors);
}

#[tokio::test(flavor = "multi_thread")]
async fn hints_fit_the_operation_and_each_is_given_once() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    // create-token at an address with a wrong path: 404, and the hint is
    // about the address, not about refresh tokens.
    let mut env = vcf_env(&sandbox);
    for (name, value) in &mut env {
        if *name == "VCF_SDDC_MANAGER_HOST" {
            value.push_str("/wrong/prefix");
        }
    }
    let output = refresh(&["vcf", "create-token"], &env).await;
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    let message = stderr(&output);
    assert_one_hint(&message);
    assert!(message.contains("VCF_SDDC_MANAGER_HOST"), "{message}");
    assert!(!message.contains("refresh token"), "{message}");
    sandbox.take_violations();

    // An unknown refresh token: said once, with one hint to log in again.
    let output = refresh(
        &["vcf", "refresh-token"],
        &[
            ("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url()),
            ("VCF_REFRESH_TOKEN", "not-a-known-id".to_owned()),
        ],
    )
    .await;
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    let message = stderr(&output);
    assert_one_hint(&message);
    assert!(message.contains("refresh vcf create-token"), "{message}");
    assert!(
        message.matches("invalidated").count() <= 1,
        "said once: {message}"
    );

    // Wrong credentials: the vendor's message and one hint.
    let mut wrong = vcf_env(&sandbox);
    for (name, value) in &mut wrong {
        if *name == "VCF_SDDC_MANAGER_PASSWORD" {
            *value = "wrong".to_owned();
        }
    }
    let output = refresh(&["vcf", "create-token"], &wrong).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert_one_hint(&stderr(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_shows_one_line_per_attempt_and_no_connection_pool_noise() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    sandbox.faults().fail_next(
        Operation::VcfCreateToken,
        1,
        StatusCode::SERVICE_UNAVAILABLE,
        Some(Duration::from_millis(1)),
    );
    let output = refresh(&["-v", "vcf", "create-token"], &vcf_env(&sandbox)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let message = stderr(&output);
    let attempts: Vec<&str> = message
        .lines()
        .filter(|line| line.contains("attempt answered"))
        .collect();
    assert_eq!(attempts.len(), 2, "a 503, then the 201: {message}");
    for (line, (n, status)) in attempts.iter().zip([(1, 503), (2, 201)]) {
        for part in [
            "method=POST".to_owned(),
            "path=\"/v1/tokens\"".to_owned(),
            format!("attempt={n}"),
            format!("status={status}"),
            "elapsed_ms=".to_owned(),
        ] {
            assert!(line.contains(&part), "{part} missing: {line}");
        }
    }
    assert!(
        !message.contains("hyper") && !message.contains("reqwest::"),
        "-v is the SDK's lines only; -vv has the rest: {message}"
    );
    let more = refresh(&["-vv", "vcf", "create-token"], &vcf_env(&sandbox)).await;
    assert!(
        stderr(&more).lines().count() > 2,
        "-vv shows more: {}",
        stderr(&more)
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn vcf_notifications_are_printed_one_per_line_before_the_hint() {
    let sandbox = Sandbox::start_default().await.expect("sandbox");
    sandbox.faults().fail_next_with_body(
        Operation::VcfCreateToken,
        1,
        StatusCode::BAD_REQUEST,
        serde_json::json!({
            "errorCode": "PASSWORD_EXPIRED",
            "message": "The password has expired.",
            "notifications": [{
                "severity": "ERROR",
                "message": "The password of administrator@vsphere.local expired.",
                "remediations": [{ "message": "Reset it in vCenter.", "link": "https://kb.example/reset" }]
            }]
        }),
    );
    let output = refresh(&["vcf", "create-token"], &vcf_env(&sandbox)).await;
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let message = stderr(&output);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 3, "error, notification, hint: {message}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("The password has expired."),
        "{message}"
    );
    assert!(
        !lines[0].contains("vCenter"),
        "the notification has its own line: {message}"
    );
    assert_eq!(
        lines[1],
        "  - ERROR: The password of administrator@vsphere.local expired. (remediation: Reset it in vCenter. <https://kb.example/reset>)"
    );
    assert!(lines[2].starts_with("  hint: "), "{message}");
}

/// One canary as the VCF password, the F5 API token and a refresh-token id,
/// through a run that ends in each exit code, traced with -vv: it never
/// shows on stderr (nor on stdout, which carries only issued tokens).
#[tokio::test(flavor = "multi_thread")]
async fn the_canary_never_reaches_stderr_whatever_the_exit_code() {
    const CANARY: &str = "CANARY-cli-4b7d";
    let sandbox = Sandbox::builder()
        .vcf_password(CANARY)
        .f5xc_api_token(CANARY)
        .start()
        .await
        .expect("sandbox");
    let vcf = vcf_env(&sandbox);
    let f5 = f5_env(&sandbox);
    let with = |env: &[(&'static str, String)], name: &'static str, value: String| {
        let mut env = env.to_vec();
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
        env
    };
    let faults = sandbox.faults();
    let mut seen = std::collections::BTreeSet::new();
    let mut check = |expected: i32, code: i32, stdout: &str, stderr: &str| {
        assert_eq!(code, expected, "{stderr}");
        assert!(
            !stderr.contains(CANARY),
            "exit {code}: stderr shows the canary: {stderr}"
        );
        assert!(
            !stdout.contains(CANARY),
            "exit {code}: stdout shows the canary: {stdout}"
        );
        seen.insert(code);
    };
    let create = ["-vv", "--retries", "0", "vcf", "create-token"];

    let out = refresh(&create, &vcf).await;
    check(0, code(&out), &stdout(&out), &stderr(&out));

    let occupied = sandbox.local_addr().to_string();
    let out = refresh(&["-vv", "sandbox", "--listen", &occupied], &[]).await;
    check(1, code(&out), &stdout(&out), &stderr(&out));

    let userinfo = format!("http://admin:{CANARY}@127.0.0.1:9");
    let out = refresh(&create, &with(&vcf, "VCF_SDDC_MANAGER_HOST", userinfo)).await;
    check(2, code(&out), &stdout(&out), &stderr(&out));

    let wrong_token = with(&f5, "VOLT_API_TOKEN", format!("{CANARY}-wrong"));
    let f5_args = ["-vv", "f5xc", "refresh-token", "--product-name", "example"];
    let out = refresh(&f5_args, &wrong_token).await;
    check(3, code(&out), &stdout(&out), &stderr(&out));

    let unknown_id = with(&vcf, "VCF_REFRESH_TOKEN", CANARY.to_owned());
    let out = refresh(&["-vv", "vcf", "refresh-token"], &unknown_id).await;
    check(4, code(&out), &stdout(&out), &stderr(&out));

    for (status, expected) in [(429, 5), (500, 6), (409, 9)] {
        faults.fail_next(
            Operation::VcfCreateToken,
            1,
            StatusCode::from_u16(status).expect("a status"),
            None,
        );
        let out = refresh(&create, &vcf).await;
        check(expected, code(&out), &stdout(&out), &stderr(&out));
    }
    sandbox.take_violations();

    let closed = with(
        &vcf,
        "VCF_SDDC_MANAGER_HOST",
        "http://127.0.0.1:9".to_owned(),
    );
    let out = refresh(&create, &closed).await;
    check(7, code(&out), &stdout(&out), &stderr(&out));

    faults.malformed_next(Operation::VcfCreateToken, 1);
    let out = refresh(&create, &vcf).await;
    check(8, code(&out), &stdout(&out), &stderr(&out));

    let full = std::process::Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    );
    let (exit, err) = run_into(&f5_args, &f5, full).await;
    check(10, exit, "", &err);

    assert_eq!(
        seen.len(),
        11,
        "every exit code 0-10 was exercised: {seen:?}"
    );
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
