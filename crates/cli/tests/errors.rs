//! How a failed run reports: the exit code of each kind of error, one
//! error line with one hint that fits the operation, the SDDC Manager's
//! notifications, `-v`'s one line per attempt, and no secret on stderr
//! whatever the exit code.

mod support;

use std::time::Duration;

use refresh_sandbox::{Operation, Sandbox, StatusCode};
use support::*;

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

/// The error line and its hint, without the warnings and traces around them.
fn error_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| line.starts_with("error:") || line.starts_with("  hint:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A connection that fails says where it went and why, exits 7, and gives
/// the hint for that cause: a name that did not resolve or a closed port
/// is no matter of certificates.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_connection_names_the_origin_and_its_cause_with_its_own_hint() {
    let refused = refresh_loopback::refused_url().await;
    // An empty DNS label fails at once, without asking any resolver.
    let unresolvable = "http://no-such-host..invalid:8080".to_owned();
    let vcf = ["vcf", "refresh-token", "--retries", "0"];
    let f5 = [
        "f5xc",
        "refresh-token",
        "--product-name",
        "example",
        "--retries",
        "0",
    ];
    let vcf_env = |host: &str| {
        vec![
            ("VCF_SDDC_MANAGER_HOST", host.to_owned()),
            ("VCF_ALLOW_INSECURE_HTTP", "true".to_owned()),
            ("VCF_REFRESH_TOKEN", "an-id".to_owned()),
        ]
    };
    let f5_env = |url: &str| {
        vec![
            ("VOLT_API_URL", url.to_owned()),
            ("VOLT_ALLOW_INSECURE_HTTP", "true".to_owned()),
            ("VOLT_API_TOKEN", "a-token".to_owned()),
        ]
    };
    let cases = [
        (
            "VCF, unresolvable",
            &vcf[..],
            vcf_env(&unresolvable),
            format!("{unresolvable}: name not resolved"),
            "DNS",
        ),
        (
            "VCF, closed port",
            &vcf[..],
            vcf_env(&refused),
            format!("{refused}: connection refused"),
            "Nothing accepts connections",
        ),
        (
            "F5 XC, unresolvable",
            &f5[..],
            f5_env(&unresolvable),
            format!("{unresolvable}: name not resolved"),
            "DNS",
        ),
        (
            "F5 XC, closed port",
            &f5[..],
            f5_env(&refused),
            format!("{refused}: connection refused"),
            "Nothing accepts connections",
        ),
    ];
    for (case, args, env, cause, hint) in cases {
        let output = refresh(args, &env).await;
        let message = stderr(&output);
        assert_eq!(code(&output), 7, "{case}: {message}");
        let errors = error_lines(&message);
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), 2, "{case}: the error and one hint: {message}");
        assert!(lines[0].contains(&cause), "{case}: {message}");
        assert!(
            lines[1].starts_with("  hint: ") && lines[1].contains(hint),
            "{case}: the cause's own hint: {message}"
        );
        for word in ["--ca-cert", "--insecure", "certificate"] {
            assert!(!errors.contains(word), "{case}: no {word} hint: {message}");
        }
        assert!(!message.contains("a-token"), "{case}: {message}");
    }
}

/// Accepts connections on 127.0.0.2 and forwards each to `target`, byte for
/// byte both ways, until the test process ends.
fn forward_from_127_0_0_2(target: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2:0");
    let addr = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
            };
            let (Ok(client_out), Ok(server_out)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            pipe(client, server_out);
            pipe(server, client_out);
        }
    });
    addr
}

/// Only a certificate that is not trusted points to --ca-cert: one issued
/// for another name stays refused whatever CA is trusted.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_for_another_name_does_not_point_to_ca_cert() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("a TLS sandbox");
    // 127.0.0.2 is loopback too, but not among the names the sandbox's
    // certificate is issued for.
    let other_name = forward_from_127_0_0_2(sandbox.local_addr());
    let dir = std::env::temp_dir().join(format!("refresh-cli-name-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sandbox.ca_pem().expect("a CA")).expect("the CA file");
    let ca = ca.display().to_string();
    let run = |host: String| {
        let ca = ca.clone();
        async move {
            refresh(
                &["--ca-cert", &ca, "vcf", "refresh-token", "--retries", "0"],
                &[
                    ("VCF_SDDC_MANAGER_HOST", host),
                    ("VCF_REFRESH_TOKEN", "an-id".to_owned()),
                ],
            )
            .await
        }
    };
    // At its own name the sandbox is trusted with this CA (and does not
    // know the refresh token).
    let trusted = run(sandbox.vcf_url()).await;
    assert_eq!(code(&trusted), 4, "{}", stderr(&trusted));
    let output = run(format!("https://{other_name}")).await;
    let _ = std::fs::remove_dir_all(&dir);
    let message = stderr(&output);
    assert_eq!(code(&output), 7, "{message}");
    assert!(
        message.contains(&format!(
            "https://{other_name}: TLS: the server's certificate is not valid for this host name"
        )),
        "{message}"
    );
    assert!(!message.contains("--ca-cert"), "{message}");
    assert!(
        message.contains("host name the certificate was issued for"),
        "the cause's own hint: {message}"
    );
    assert_one_hint(&error_lines(&message));
}

/// An answer that is not HTTP, or redirects that loop, is an invalid
/// response (exit 8), said with the origin.
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_is_not_http_or_a_redirect_loop_exits_8() {
    use refresh_loopback::{Loopback, Reply, Step};
    let garbage = Loopback::always(Step::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())).await;
    let looping = Loopback::always(Reply::empty(307).header("location", "/again")).await;
    let cases = [
        (
            "not HTTP",
            &garbage,
            format!("{}: the server's answer is not valid HTTP", garbage.url()),
        ),
        (
            "redirect loop",
            &looping,
            format!("{}: too many redirects (more than 5)", looping.url()),
        ),
    ];
    for (case, server, expected) in cases {
        let output = refresh(
            &["vcf", "refresh-token", "--retries", "0"],
            &[
                ("VCF_SDDC_MANAGER_HOST", server.url()),
                ("VCF_REFRESH_TOKEN", "an-id".to_owned()),
            ],
        )
        .await;
        let message = stderr(&output);
        assert_eq!(code(&output), 8, "{case}: {message}");
        assert!(message.contains(&expected), "{case}: {message}");
        assert!(!message.contains("certificate"), "{case}: {message}");
        assert_one_hint(&error_lines(&message));
    }
}

/// `refresh --help` lists what exits 7 and what exits 8.
#[tokio::test(flavor = "multi_thread")]
async fn help_lists_the_causes_of_exit_7_and_8() {
    let output = refresh(&["--help"], &[]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let help = stdout(&output);
    let line = |code: &str| {
        help.lines()
            .find(|line| line.trim_start().starts_with(code))
            .unwrap_or_default()
            .to_owned()
    };
    let transport = line("7 ");
    for cause in ["name not resolved", "connection refused", "TLS", "reset"] {
        assert!(transport.contains(cause), "{cause}: {transport}");
    }
    let invalid = line("8 ");
    for cause in ["not valid HTTP", "too many redirects", "another host"] {
        assert!(invalid.contains(cause), "{cause}: {invalid}");
    }
}

/// A connection neither accepted nor refused times out after the default
/// connect timeout, and the hint names the command's --timeout, not an
/// option of the SDK's.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_connect_timeout_points_to_the_timeout_flag() {
    let unanswered = refresh_loopback::Unanswered::start().await;
    let output = refresh(
        &["vcf", "refresh-token", "--retries", "0"],
        &[
            ("VCF_SDDC_MANAGER_HOST", unanswered.url()),
            ("VCF_REFRESH_TOKEN", "an-id".to_owned()),
        ],
    )
    .await;
    let message = stderr(&output);
    assert_eq!(code(&output), 7, "{message}");
    assert!(
        message.contains(&format!("{}: timed out connecting", unanswered.url())),
        "{message}"
    );
    assert!(message.contains("--timeout"), "{message}");
    assert!(!message.contains("TransportOptions"), "{message}");
    assert!(!message.contains("certificate"), "{message}");
    assert_one_hint(&error_lines(&message));
}
