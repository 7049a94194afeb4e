//! `refresh sandbox` as a process: the sample SDDC Manager endpoints and
//! `--route` files answering `refresh vcf api` with the environment the
//! sandbox printed, the credentials it prints as its own only, what it does
//! listening beyond loopback, and a stop signal ending it in time whatever
//! its clients do and removing its private CA directory.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use refresh_sandbox::{ExposeSecret, Sandbox};
use serde_json::{Value, json};
use support::run;

/// A `refresh --json sandbox ...` process and what it printed at start.
struct Running {
    child: Child,
    started: Value,
}

/// Starts `refresh --json sandbox <args>` with an empty environment and
/// reads its start-up object (one line); the rest of stdout is drained so
/// that its writes never fail.
fn start(args: &[&str]) -> Running {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("refresh"))
        .env_clear()
        .args(["--json", "sandbox"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("refresh sandbox starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = lines
        .next()
        .expect("a start-up line")
        .expect("UTF-8 start-up line");
    std::thread::spawn(move || lines.for_each(drop));
    let started = serde_json::from_str(&first).expect("the start-up line is JSON");
    Running { child, started }
}

impl Running {
    fn text(&self, key: &str) -> String {
        self.started[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", self.started))
            .to_owned()
    }

    /// The environment the sandbox printed for a VCF client.
    fn vcf_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VCF_SDDC_MANAGER_HOST", self.text("vcf_url")),
            ("VCF_SDDC_MANAGER_USERNAME", self.text("vcf_username")),
            ("VCF_SDDC_MANAGER_PASSWORD", self.text("vcf_password")),
        ]
    }

    /// The address to connect to, from the printed URL.
    fn addr(&self) -> SocketAddr {
        let url = self.text("vcf_url");
        let host_port = url.split_once("://").map(|(_, rest)| rest).expect("a URL");
        host_port.parse().expect("an IP address and port")
    }

    /// Sends `signal` (`-TERM`, ...), waits for the exit; returns the
    /// status, how long the exit took, and stderr.
    fn stop(self, signal: &str) -> (ExitStatus, Duration, String) {
        let sent = Instant::now();
        let killed = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let output = self.child.wait_with_output().expect("the sandbox exits");
        (
            output.status,
            sent.elapsed(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Runs `refresh <args>` with exactly `env`; killed after 60 s.
fn refresh(args: &[&str], env: &[(&'static str, String)]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("refresh")
        .expect("the refresh binary is built")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("refresh runs")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A directory for this test's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "refresh-sandbox-command-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("written");
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn route_list(started: &Value) -> Vec<(String, String, Option<String>)> {
    started["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["path"].as_str().unwrap_or_default().to_owned(),
                r["file"].as_str().map(|f| {
                    Path::new(f)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                }),
            )
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn the_samples_answer_vcf_api_with_the_documented_shapes() {
    let sandbox = start(&[]);
    let samples: Vec<(String, String, Option<String>)> =
        ["/v1/clusters", "/v1/domains", "/v1/hosts", "/v1/system"]
            .into_iter()
            .map(|p| ("GET".to_owned(), p.to_owned(), None))
            .collect();
    assert_eq!(route_list(&sandbox.started), samples);
    let env = sandbox.vcf_env();

    let output = refresh(&["vcf", "api", "GET", "/v1/domains"], &env);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let domains: Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    let elements = domains["elements"].as_array().expect("elements");
    assert_eq!(elements.len(), 2);
    assert_eq!(
        domains["pageMetadata"],
        json!({ "pageNumber": 0, "pageSize": 2, "totalElements": 2, "totalPages": 1 })
    );
    for domain in elements {
        for key in ["id", "name", "status", "type"] {
            assert!(domain[key].is_string(), "{key} in {domain}");
        }
        assert!(domain["clusters"][0]["id"].is_string(), "{domain}");
    }
    for path in ["/v1/clusters", "/v1/hosts", "/v1/system"] {
        let output = refresh(&["vcf", "api", "GET", path], &env);
        assert_eq!(output.status.code(), Some(0), "{path}: {}", stderr(&output));
        let body: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
        assert!(body.is_object(), "{path}: {body}");
    }
    let (status, _, _) = sandbox.stop("-TERM");
    assert!(status.success(), "{status:?}");
}

#[cfg(unix)]
#[test]
fn the_text_start_up_lists_the_routes() {
    let scratch = Scratch::new("text");
    let pools = scratch.file("pools.json", r#"{"elements": []}"#);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("refresh"))
        .env_clear()
        .args(["sandbox", "--route", "GET", "/v1/network-pools", &pools])
        .stdout(Stdio::piped())
        .spawn()
        .expect("refresh sandbox starts");
    let lines: Vec<String> = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.starts_with("Serving until"))
        .collect();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let shown = lines.join("\n");
    assert!(shown.contains("SDDC Manager API"), "{shown}");
    for path in ["/v1/clusters", "/v1/domains", "/v1/hosts", "/v1/system"] {
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with("GET") && l.trim_end().ends_with(path)),
            "{path}: {shown}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET /v1/network-pools") && l.contains("(from ")),
        "{shown}"
    );
    assert!(
        shown.contains("Demo credentials for this sandbox only"),
        "{shown}"
    );
}

#[cfg(unix)]
#[test]
fn a_route_file_answers_vcf_api_end_to_end() {
    let scratch = Scratch::new("routes");
    let pools = json!({
        "elements": [{ "id": "np-1", "name": "sfo-np01" }],
        "pageMetadata": { "pageNumber": 0, "pageSize": 1, "totalElements": 1, "totalPages": 1 },
    });
    let mine = json!({ "elements": [{ "id": "mine" }] });
    let pools_file = scratch.file("pools.json", &pools.to_string());
    let mine_file = scratch.file("mine.json", &mine.to_string());
    let task_file = scratch.file("task.json", r#"{"id": "task-1", "status": "IN_PROGRESS"}"#);
    let sandbox = start(&[
        "--route",
        "GET",
        "/v1/network-pools",
        &pools_file,
        // Lower case is fine, and a file replaces a sample.
        "--route",
        "get",
        "/v1/domains",
        &mine_file,
        "--route",
        "POST",
        "/v1/domains",
        &task_file,
    ]);
    let routes = route_list(&sandbox.started);
    for expected in [
        ("GET", "/v1/network-pools", Some("pools.json")),
        ("GET", "/v1/domains", Some("mine.json")),
        ("POST", "/v1/domains", Some("task.json")),
        ("GET", "/v1/hosts", None),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.map(str::to_owned),
        );
        assert!(routes.contains(&expected), "{expected:?} in {routes:?}");
    }
    let env = sandbox.vcf_env();

    for (args, body) in [
        (&["vcf", "api", "GET", "/v1/network-pools"][..], pools),
        (&["vcf", "api", "GET", "/v1/domains"], mine),
        (
            &["vcf", "api", "POST", "/v1/domains", "--data", "{}"],
            json!({ "id": "task-1", "status": "IN_PROGRESS" }),
        ),
    ] {
        let output = refresh(args, &env);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        let got: Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
        assert_eq!(got, body, "{args:?}");
    }
    // Guarded like the samples: no token, no answer.
    let unauthorized = raw_get(sandbox.addr(), "/v1/network-pools");
    assert!(unauthorized.starts_with("HTTP/1.1 401"), "{unauthorized}");
    let (status, _, _) = sandbox.stop("-TERM");
    assert!(status.success(), "{status:?}");
}

/// A bare `GET` without credentials over a raw connection; the answer's text.
fn raw_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Read as _;
    let mut stream = TcpStream::connect(addr).expect("connects");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n"
    )
    .expect("sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    answer
}

#[test]
fn a_bad_route_is_a_usage_error_named_before_anything_starts() {
    let scratch = Scratch::new("bad");
    let not_json = scratch.file("not.json", "{ not json");
    let good = scratch.file("good.json", "{}");
    let missing = scratch.0.join("missing.json").display().to_string();
    for (args, says) in [
        (vec!["GET", "/v1/x", missing.as_str()], "cannot read"),
        (vec!["GET", "/v1/x", not_json.as_str()], "is not JSON"),
        (vec!["TRACE", "/v1/x", good.as_str()], "the method must be"),
        (vec!["GET", "v1/x", good.as_str()], "must start with /"),
        (vec!["GET", "/v1/x?page=1", good.as_str()], "no query"),
        (vec!["POST", "/v1/tokens", good.as_str()], "/v1/tokens"),
    ] {
        let mut all = vec!["sandbox", "--route"];
        all.extend(&args);
        let output = refresh(&all, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.starts_with("error: --route"), "{args:?}: {message}");
        assert!(message.contains(says), "{args:?}: {message}");
        assert!(stdout(&output).is_empty(), "{args:?}: nothing served");
    }
    // Two values where three are needed: clap's own usage error.
    let output = refresh(&["sandbox", "--route", "GET", "/v1/x"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// A client stuck in its request's headers and another stuck in its body,
/// with the default 10 s / 30 s deadlines still far away: the sandbox exits
/// within 2 s of the signal anyway.
#[cfg(unix)]
#[test]
fn a_stuck_client_does_not_keep_the_sandbox_alive_after_a_signal() {
    for signal in ["-TERM", "-INT"] {
        let sandbox = start(&[]);
        let mut in_headers = TcpStream::connect(sandbox.addr()).expect("connects");
        in_headers
            .write_all(b"GET /v1/domains HTTP/1.1\r\nHost: sandbox\r\n")
            .expect("half a request");
        let mut in_body = TcpStream::connect(sandbox.addr()).expect("connects");
        in_body
            .write_all(
                b"POST /v1/tokens HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
            )
            .expect("half a body");
        // Let the sandbox read what there is.
        std::thread::sleep(Duration::from_millis(300));
        let (status, took, _) = sandbox.stop(signal);
        assert!(
            took < Duration::from_secs(2),
            "{signal}: exited {took:?} after the signal"
        );
        assert!(status.success(), "{signal}: {status:?}");
        drop((in_headers, in_body));
    }
}

#[cfg(unix)]
#[test]
fn beyond_loopback_the_credentials_are_random_and_a_warning_says_so() {
    // The published demo secrets: a default sandbox's.
    let published: Vec<String> = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let sandbox = runtime
            .block_on(Sandbox::start_default())
            .expect("an in-process sandbox");
        let c = sandbox.credentials();
        [
            &c.vcf_password,
            &c.vcf_api_key,
            &c.vcf_id_token,
            &c.f5xc_api_token,
        ]
        .into_iter()
        .map(|s| s.expose_secret().to_owned())
        .collect()
    };
    const SECRETS: [&str; 4] = [
        "vcf_password",
        "vcf_api_key",
        "vcf_id_token",
        "f5xc_api_token",
    ];

    let local = start(&[]);
    let local_secrets: Vec<String> = SECRETS.into_iter().map(|key| local.text(key)).collect();
    assert_eq!(local_secrets, published, "loopback: the demo secrets");
    assert_eq!(local.started["listens_beyond_loopback"], false);
    let (_, _, warned) = local.stop("-TERM");
    assert!(!warned.contains("warning"), "{warned}");

    let exposed = start(&["--listen", "0.0.0.0:0"]);
    assert_eq!(exposed.started["listens_beyond_loopback"], true);
    let listen = exposed.text("listen");
    assert!(listen.starts_with("0.0.0.0:"), "{listen}");
    let url = exposed.text("vcf_url");
    assert!(!url.contains("0.0.0.0"), "a URL to connect to: {url}");
    assert!(url.ends_with(&listen["0.0.0.0".len()..]), "{url} {listen}");
    let secrets: Vec<String> = SECRETS.into_iter().map(|key| exposed.text(key)).collect();
    for (secret, published) in secrets.iter().zip(&published) {
        assert_ne!(secret, published, "not the published demo secret");
    }
    // The printed environment works (plain HTTP beyond loopback needs the
    // opt-in the text output's block includes).
    let mut env = exposed.vcf_env();
    env.push(("VCF_ALLOW_INSECURE_HTTP", "true".to_owned()));
    let output = refresh(&["vcf", "api", "GET", "/v1/system"], &env);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (status, _, warned) = exposed.stop("-TERM");
    assert!(status.success(), "{status:?}");
    assert!(
        warned.contains("warning:") && warned.contains("other machines can reach it"),
        "{warned}"
    );
    assert!(warned.contains(&listen), "names the address: {warned}");
    assert!(warned.contains("--tls"), "plain HTTP: {warned}");
}

/// With TLS beyond loopback, the printed URL's address is in the
/// certificate: a client verifying against the printed CA file connects.
#[cfg(unix)]
#[test]
fn beyond_loopback_the_certificate_names_the_printed_address() {
    let sandbox = start(&["--listen", "0.0.0.0:0", "--tls"]);
    let url = sandbox.text("vcf_url");
    assert!(url.starts_with("https://"), "{url}");
    let ca = sandbox.text("ca_cert");
    let output = refresh(
        &["--ca-cert", &ca, "vcf", "api", "GET", "/v1/domains"],
        &sandbox.vcf_env(),
    );
    assert_eq!(output.status.code(), Some(0), "{url}: {}", stderr(&output));
    let (status, _, warned) = sandbox.stop("-TERM");
    assert!(status.success(), "{status:?}");
    assert!(!warned.contains("plain HTTP"), "{warned}");
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
