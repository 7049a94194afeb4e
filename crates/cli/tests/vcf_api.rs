//! `refresh vcf api`: the body on stdout (a large one whole) and a logout
//! at the end, a token revoked mid-call renewed, exit codes by status and
//! bad input refused before logging in, a stop signal (or `nohup`) that
//! still lets it log out, and its request and response options: `-H`, `-i`,
//! and the CA file the SDDC Manager's certificate is checked against.

mod support;

use std::sync::Arc;
use std::time::Duration;

use refresh_loopback::{Loopback, Reply};
use refresh_sandbox::{Operation, Sandbox};
use serde_json::json;
use support::*;

/// An SDDC Manager that logs in anyone and answers `GET /v1/echo` with the
/// request's headers.
async fn echoing() -> Loopback {
    Loopback::start(
        |request| match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/v1/tokens") => Reply::json(
                201,
                json!({"accessToken": "access-1", "refreshToken": {"id": "refresh-1"}}),
            ),
            ("DELETE", "/v1/tokens/refresh-token") => Reply::empty(204),
            ("GET", "/v1/echo") => {
                let headers: serde_json::Map<String, serde_json::Value> = request
                    .headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            json!(String::from_utf8_lossy(value.as_bytes())),
                        )
                    })
                    .collect();
                Reply::json(200, serde_json::Value::Object(headers)).header("x-answer", "42")
            }
            _ => Reply::empty(404),
        },
    )
    .await
}

fn env(server: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("VCF_SDDC_MANAGER_HOST", server.url()),
        ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
        ("VCF_SDDC_MANAGER_PASSWORD", "pw".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_given_with_dash_h_are_sent_and_authorization_stays_the_sessions() {
    let server = echoing().await;
    let output = refresh(
        &[
            "vcf",
            "api",
            "GET",
            "/v1/echo",
            "-H",
            "Accept-Language: de",
            "--header",
            "X-Request-Id:  abc-1 ",
        ],
        &env(&server),
    )
    .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let seen: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(seen["accept-language"], "de");
    assert_eq!(seen["x-request-id"], "abc-1");
    assert_eq!(seen["authorization"], "Bearer access-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_header_or_a_malformed_one_is_refused_before_anything_is_sent() {
    let server = echoing().await;
    for header in [
        "Authorization: Bearer mine",
        "authorization:x",
        "no colon",
        "Bad Name: x",
    ] {
        let output = refresh(
            &["vcf", "api", "GET", "/v1/echo", "-H", header],
            &env(&server),
        )
        .await;
        let message = stderr(&output);
        assert_eq!(code(&output), 2, "{header}: {message}");
        assert_eq!(message.lines().count(), 1, "{header}: {message}");
        assert!(message.contains("-H"), "{header}: {message}");
        assert!(
            !message.contains("mine"),
            "the value is not echoed: {message}"
        );
    }
    assert_eq!(server.requests(), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn include_prints_the_status_line_and_headers_before_the_body() {
    let server = echoing().await;
    let output = refresh(&["vcf", "api", "-i", "GET", "/v1/echo"], &env(&server)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{head}");
    assert!(lines.any(|line| line == "x-answer: 42"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).expect("the body follows");
    assert_eq!(body["authorization"], "Bearer access-1");
}

/// A header cannot drive the terminal: a value whose bytes decode to a C1
/// control (CSI) or a bidirectional override is printed escaped.
#[tokio::test(flavor = "multi_thread")]
async fn include_escapes_header_values_that_would_drive_the_terminal() {
    let server = Loopback::start(|request| match request.method.as_str() {
        "POST" => Reply::json(
            201,
            json!({"accessToken": "access-1", "refreshToken": {"id": "refresh-1"}}),
        ),
        "DELETE" => Reply::empty(204),
        _ => Reply::empty(204)
            .header_bytes(b"x-csi", b"a\xc2\x9b2Jb")
            .header_bytes(b"x-rlo", "a\u{202e}cba".as_bytes())
            .header_bytes(b"x-latin", "caf\u{e9}\tok".as_bytes()),
    })
    .await;
    let output = refresh(&["vcf", "api", "-i", "GET", "/v1/system"], &env(&server)).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("x-csi: a\\u{9b}2Jb\r\n"), "{text:?}");
    assert!(text.contains("x-rlo: a\\u{202e}cba\r\n"), "{text:?}");
    assert!(text.contains("x-latin: caf\u{e9}\tok\r\n"), "{text:?}");
    assert!(!text.contains(['\u{9b}', '\u{202e}']), "{text:?}");
}

/// A self-signed SDDC Manager is trusted through its CA file, the safe
/// alternative to VCF_ALLOW_UNVERIFIED_TLS.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_sddc_manager_ca_cert_trusts_a_self_signed_sddc_manager() {
    let sandbox = Arc::new(
        Sandbox::builder()
            .tls(true)
            .start()
            .await
            .expect("a TLS sandbox"),
    );
    let env = vcf_env(&sandbox);
    let refused = refresh(&["vcf", "create-token"], &env).await;
    assert_eq!(code(&refused), 7, "untrusted: {}", stderr(&refused));

    let dir = std::env::temp_dir().join(format!("refresh-cli-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sandbox.ca_pem().expect("a CA")).expect("the CA file");
    let mut trusted_env = env.clone();
    trusted_env.push(("VCF_SDDC_MANAGER_CA_CERT", ca.display().to_string()));
    let trusted = refresh(&["vcf", "create-token"], &trusted_env).await;
    assert_eq!(code(&trusted), 0, "{}", stderr(&trusted));
    assert_eq!(stdout(&trusted).lines().count(), 2);
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 1);

    let mut missing_env = env;
    missing_env.push((
        "VCF_SDDC_MANAGER_CA_CERT",
        dir.join("none.pem").display().to_string(),
    ));
    let missing = refresh(&["vcf", "create-token"], &missing_env).await;
    let message = stderr(&missing);
    assert_eq!(code(&missing), 2, "{message}");
    assert!(message.contains("VCF_SDDC_MANAGER_CA_CERT"), "{message}");
    assert!(
        !message.contains("none.pem"),
        "the value is not shown: {message}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_prints_the_body_and_logs_out() {
    let sandbox = api_sandbox().await;
    let output = refresh(&["vcf", "api", "get", "/v1/domains"], &vcf_env(&sandbox)).await;
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
    let output = refresh(&["vcf", "api", "GET", "/v1/inventory"], &vcf_env(&sandbox)).await;
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
            .envs(vcf_env(&sandbox))
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
        .envs(vcf_env(&sandbox))
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

#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_renews_a_token_revoked_mid_call_and_sends_the_call_once_more() {
    let sandbox = api_sandbox().await;
    sandbox
        .faults()
        .revoke_before_next(refresh_sandbox::Method::POST, "/v1/domains", 1);
    let output = run(
        &["vcf", "api", "POST", "/v1/domains", "--data", "-"],
        &vcf_env(&sandbox),
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
    let env = vcf_env(&sandbox);
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

/// An SDDC Manager that logs in anyone and fails `GET /v1/system` with
/// `step`.
async fn failing_system(step: refresh_loopback::Step) -> Loopback {
    Loopback::start(
        move |request| match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/v1/tokens") => Reply::json(
                201,
                json!({"accessToken": "access-1", "refreshToken": {"id": "refresh-1"}}),
            )
            .into(),
            ("DELETE", "/v1/tokens/refresh-token") => Reply::empty(204).into(),
            ("GET", "/v1/system") => step.clone(),
            _ => Reply::empty(404).into(),
        },
    )
    .await
}

/// A call that gets no usable answer says where it went and why, exits by
/// the kind (8 for an answer that is not HTTP or redirects that loop, 7 for
/// a connection that failed), gives the cause's own hint, and still logs
/// out.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_failures_name_the_origin_and_the_cause() {
    use refresh_loopback::Step;
    let cases = [
        (
            "not HTTP",
            Step::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()),
            8,
            "the server's answer is not valid HTTP",
            Some("scheme and port"),
        ),
        (
            "redirect loop",
            Reply::empty(307).header("location", "/v1/system").into(),
            8,
            "too many redirects (more than 5)",
            Some("redirects in a loop"),
        ),
        (
            "reset",
            Step::ResetBeforeHeaders,
            7,
            "connection reset",
            // Nothing the caller can change.
            None,
        ),
    ];
    for (case, step, expected, cause, hint) in cases {
        let server = failing_system(step).await;
        let output = refresh(
            &["--retries", "0", "vcf", "api", "GET", "/v1/system"],
            &env(&server),
        )
        .await;
        let message = stderr(&output);
        assert_eq!(code(&output), expected, "{case}: {message}");
        let errors: Vec<&str> = message
            .lines()
            .filter(|line| line.starts_with("error:") || line.starts_with("  hint:"))
            .collect();
        assert!(
            errors
                .first()
                .is_some_and(|line| line.contains(&format!("{}: {cause}", server.url()))),
            "{case}: the origin and the cause: {message}"
        );
        match hint {
            Some(hint) => assert!(
                errors.len() == 2 && errors[1].starts_with("  hint: ") && errors[1].contains(hint),
                "{case}: the cause's own hint: {message}"
            ),
            None => assert_eq!(errors.len(), 1, "{case}: no hint: {message}"),
        }
        for word in ["certificate", "/v1/system", "access-1", "refresh-1", "pw"] {
            assert!(!message.contains(word), "{case}: {word}: {message}");
        }
        assert_eq!(
            server.requests_to("DELETE", "/v1/tokens/refresh-token"),
            1,
            "{case}: logged out"
        );
    }

    // Nothing listens: the login cannot connect, exit 7.
    let refused = refresh_loopback::refused_url().await;
    let output = refresh(
        &["--retries", "0", "vcf", "api", "GET", "/v1/system"],
        &[
            ("VCF_SDDC_MANAGER_HOST", refused.clone()),
            ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
            ("VCF_SDDC_MANAGER_PASSWORD", "pw".to_owned()),
        ],
    )
    .await;
    let message = stderr(&output);
    assert_eq!(code(&output), 7, "{message}");
    assert!(
        message.contains(&format!("{refused}: connection refused")),
        "{message}"
    );
    assert!(!message.contains("certificate"), "{message}");
}

/// A body cut short by a reset: what arrived is on stdout, and the failure
/// names the origin and the cause, exit 7.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_a_body_cut_short_names_the_origin_and_the_cause() {
    let body = json!({ "version": "5.2.0", "padding": "x".repeat(4096) });
    let server = failing_system(refresh_loopback::Step::ResetMidBody {
        reply: Reply::json(200, body.clone()),
        sent: 12,
    })
    .await;
    let output = refresh(&["vcf", "api", "GET", "/v1/system"], &env(&server)).await;
    let message = stderr(&output);
    assert_eq!(code(&output), 7, "{message}");
    assert!(
        message.contains("error: the response body could not be read: "),
        "{message}"
    );
    assert!(
        message.contains(&format!("{}: connection reset", server.url()))
            || message.contains(&format!("{}: connection closed", server.url())),
        "names the origin and the cause: {message}"
    );
    assert_eq!(
        stdout(&output),
        body.to_string()[..12],
        "what arrived is on stdout"
    );
    assert!(!message.contains("/v1/system"), "{message}");
    assert_eq!(server.requests_to("DELETE", "/v1/tokens/refresh-token"), 1);
}

/// A redirect to another origin is not followed (the token stays on the
/// SDDC Manager): the error names that origin, nothing else of the
/// Location, and exits 8 as the token commands do.
#[tokio::test(flavor = "multi_thread")]
async fn vcf_api_a_redirect_to_another_origin_names_that_origin_only() {
    let other = refresh_loopback::Loopback::always(Reply::empty(204)).await;
    let port = other.addr().port();
    let server = failing_system(
        Reply::empty(307)
            .header(
                "location",
                &format!("http://user:secret@127.0.0.1:{port}/private/path?token=abc"),
            )
            .into(),
    )
    .await;
    let output = refresh(
        &["--retries", "0", "vcf", "api", "GET", "/v1/system"],
        &env(&server),
    )
    .await;
    let message = stderr(&output);
    assert_eq!(code(&output), 8, "{message}");
    assert_eq!(other.requests(), 0, "the token reached another origin");
    assert!(
        message.contains(&format!(
            "a redirect to http://127.0.0.1:{port} was not followed"
        )),
        "{message}"
    );
    for word in ["user:", "secret", "/private/path", "token=", "access-1"] {
        assert!(!message.contains(word), "{word}: {message}");
    }
    assert_eq!(
        server.requests_to("DELETE", "/v1/tokens/refresh-token"),
        1,
        "logged out"
    );
}
