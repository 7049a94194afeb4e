//! VCF credentials of each kind (username and password, API key, identity
//! token), given as values or in files named by `_FILE` variables, against
//! the sandbox over loopback HTTP: what reaches `createToken`, how a file is
//! read (again at each login, one trailing line break dropped), and the
//! configuration errors, none of which shows a secret.

use std::path::PathBuf;

use refresh_sandbox::{ExposeSecret, Operation, Sandbox};
use refresh_sdk::{ErrorKind, VcfClient, VcfConfig, VcfCredentials, VcfSession};

/// Never to be shown: used as secrets in the error and `Debug` checks.
const CANARY: &str = "CANARY-cred-3b7d";

/// A lookup over `pairs`, as `VcfCredentials::from_lookup` takes it.
fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    }
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "refresh-sdk-credentials-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, content).expect("write a temp file");
        TempFile(path)
    }

    fn write(&self, content: &str) {
        std::fs::write(&self.0, content).expect("rewrite the temp file");
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The error's message, hint, source chain and Debug form.
fn everything_shown(err: &refresh_sdk::Error) -> String {
    let mut shown = format!("{err}\n{err:?}\n{err:#?}\n{:?}", err.hint());
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        shown.push_str(&format!("\n{inner}\n{inner:?}"));
        source = inner.source();
    }
    shown
}

fn client(sandbox: &Sandbox) -> VcfClient {
    VcfClient::new(VcfConfig::new(&sandbox.vcf_url()).expect("a valid host")).expect("a client")
}

/// A sandbox whose every secret is distinct, so that a login can succeed
/// only with the right kind.
async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .vcf_username("svc@vsphere.local")
        .vcf_password("the-password")
        .vcf_api_key("the-api-key")
        .vcf_id_token("the-id-token")
        .start()
        .await
        .expect("sandbox starts")
}

#[tokio::test]
async fn each_kind_from_a_lookup_as_a_value_or_a_file_logs_in() {
    let sandbox = sandbox().await;
    let password = TempFile::new("kind-password", "the-password\n");
    let api_key = TempFile::new("kind-api-key", "the-api-key\n");
    let id_token = TempFile::new("kind-id-token", "the-id-token\r\n");
    let username = ("VCF_SDDC_MANAGER_USERNAME", "svc@vsphere.local".to_owned());
    for (env, expected_username) in [
        (
            vec![
                username.clone(),
                ("VCF_SDDC_MANAGER_PASSWORD", "the-password".to_owned()),
            ],
            Some("svc@vsphere.local"),
        ),
        (
            vec![
                username.clone(),
                ("VCF_SDDC_MANAGER_PASSWORD_FILE", password.path()),
            ],
            Some("svc@vsphere.local"),
        ),
        (
            vec![("VCF_SDDC_MANAGER_API_KEY", "the-api-key".to_owned())],
            None,
        ),
        (
            vec![("VCF_SDDC_MANAGER_API_KEY_FILE", api_key.path())],
            None,
        ),
        (
            vec![("VCF_SDDC_MANAGER_ID_TOKEN", "the-id-token".to_owned())],
            None,
        ),
        (
            vec![("VCF_SDDC_MANAGER_ID_TOKEN_FILE", id_token.path())],
            None,
        ),
    ] {
        let credentials = VcfCredentials::from_lookup(lookup(env.clone()))
            .unwrap_or_else(|e| panic!("{env:?}: {e}"));
        assert_eq!(credentials.username(), expected_username, "{env:?}");
        let pair = client(&sandbox)
            .create_token(&credentials)
            .await
            .unwrap_or_else(|e| panic!("{env:?} logs in: {e}"));
        assert!(sandbox.is_valid_access_token(pair.access_token.expose_secret()));

        // A session built from the same environment logs in the same way.
        let mut with_host = env.clone();
        with_host.push(("VCF_SDDC_MANAGER_HOST", sandbox.vcf_url()));
        let session = VcfSession::from_lookup(lookup(with_host)).expect("a session");
        let token = session.access_token().await.expect("the session logs in");
        assert!(sandbox.is_valid_access_token(token.expose_secret()));
        session.logout().await.expect("logout");
    }
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn a_file_loses_exactly_one_trailing_line_break() {
    // The sandbox's password ends in a line break, so only a file that keeps
    // the second of two logs in.
    let sandbox = Sandbox::builder()
        .vcf_password("pw\n")
        .start()
        .await
        .expect("sandbox starts");
    let username = sandbox.credentials().vcf_username.clone();
    let file = TempFile::new("line-breaks", "");
    for (content, accepted) in [
        ("pw\n\n", true),
        ("pw\r\n\r\n", false),
        ("pw\n", false),
        ("pw", false),
    ] {
        file.write(content);
        let credentials = VcfCredentials::password_file(username.clone(), file.path());
        let result = client(&sandbox).create_token(&credentials).await;
        match (accepted, result) {
            (true, Ok(_)) => {}
            (false, Err(err)) => assert_eq!(err.kind(), ErrorKind::Auth, "{content:?}: {err}"),
            (_, other) => panic!("{content:?}: {:?}", other.map(|_| "a token pair")),
        }
    }

    // And `\n` and `\r\n` each are dropped once from a password without one.
    let sandbox = Sandbox::builder()
        .vcf_password("pw")
        .start()
        .await
        .expect("sandbox starts");
    for content in ["pw\n", "pw\r\n", "pw"] {
        file.write(content);
        let credentials = VcfCredentials::from_lookup(lookup(vec![
            ("VCF_SDDC_MANAGER_USERNAME", username.clone()),
            ("VCF_SDDC_MANAGER_PASSWORD_FILE", file.path()),
        ]))
        .expect("configured");
        client(&sandbox)
            .create_token(&credentials)
            .await
            .unwrap_or_else(|e| panic!("{content:?}: {e}"));
    }
    for content in ["pw\n\n", "pw\r\n\n", " pw\n"] {
        file.write(content);
        let credentials = VcfCredentials::password_file(username.clone(), file.path());
        let err = client(&sandbox)
            .create_token(&credentials)
            .await
            .expect_err("more than one line break, or a space, is part of the password");
        assert_eq!(err.kind(), ErrorKind::Auth, "{content:?}");
    }
    sandbox.assert_spec_clean();
}

/// The file is read at each login: a password rotated in a mounted secret is
/// used by the next login of the same credentials, without rebuilding
/// anything.
#[tokio::test]
async fn a_rotated_secret_file_is_read_at_the_next_login() {
    let sandbox = sandbox().await;
    let vcf = client(&sandbox);
    let file = TempFile::new("rotated", "the-old-password\n");
    let credentials = VcfCredentials::from_lookup(lookup(vec![
        ("VCF_SDDC_MANAGER_USERNAME", "svc@vsphere.local".to_owned()),
        ("VCF_SDDC_MANAGER_PASSWORD_FILE", file.path()),
    ]))
    .expect("configured");
    let err = vcf
        .create_token(&credentials)
        .await
        .expect_err("the old password is refused");
    assert_eq!(err.kind(), ErrorKind::Auth);
    file.write("the-password\n");
    vcf.create_token(&credentials)
        .await
        .expect("the rotated password logs in");

    let key_file = TempFile::new("rotated-key", "the-api-key");
    let credentials = VcfCredentials::api_key_file(key_file.path());
    vcf.create_token(&credentials)
        .await
        .expect("the key logs in");
    key_file.write("a-revoked-key");
    let err = vcf
        .create_token(&credentials)
        .await
        .expect_err("the rewritten key is read and refused");
    assert_eq!(err.kind(), ErrorKind::Auth);

    // A file that disappears fails the next login with a configuration
    // error, and nothing is sent.
    let before = sandbox.requests(Operation::VcfCreateToken);
    drop(key_file);
    let err = vcf
        .create_token(&credentials)
        .await
        .expect_err("the file is gone");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), before);
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn an_api_key_and_an_id_token_log_in_and_wrong_ones_are_auth_errors() {
    let sandbox = sandbox().await;
    let vcf = client(&sandbox);
    for credentials in [
        VcfCredentials::api_key("the-api-key"),
        VcfCredentials::id_token("the-id-token"),
    ] {
        let pair = vcf
            .create_token(&credentials)
            .await
            .unwrap_or_else(|e| panic!("{credentials:?}: {e}"));
        assert!(sandbox.is_valid_access_token(pair.access_token.expose_secret()));
        let access = vcf
            .refresh_access_token(&pair.refresh_token)
            .await
            .expect("its refresh token works");
        assert!(sandbox.is_valid_access_token(access.expose_secret()));
    }
    for (credentials, variable) in [
        (VcfCredentials::api_key(CANARY), "VCF_SDDC_MANAGER_API_KEY"),
        (
            VcfCredentials::id_token(CANARY),
            "VCF_SDDC_MANAGER_ID_TOKEN",
        ),
        // The right secret of the other kind is still wrong.
        (
            VcfCredentials::api_key("the-id-token"),
            "VCF_SDDC_MANAGER_API_KEY",
        ),
        (
            VcfCredentials::id_token("the-password"),
            "VCF_SDDC_MANAGER_ID_TOKEN",
        ),
    ] {
        let err = vcf.create_token(&credentials).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
        assert!(
            err.hint().is_some_and(|hint| hint.contains(variable)),
            "the hint names {variable}: {:?}",
            err.hint()
        );
        let shown = everything_shown(&err);
        assert!(!shown.contains(CANARY), "{shown}");
    }
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn an_empty_secret_is_invalid_input_and_nothing_is_sent() {
    let sandbox = sandbox().await;
    let vcf = client(&sandbox);
    let empty_file = TempFile::new("empty", "\n");
    for credentials in [
        VcfCredentials::api_key(""),
        VcfCredentials::api_key("  "),
        VcfCredentials::id_token(""),
        VcfCredentials::new("svc@vsphere.local", ""),
        VcfCredentials::new(" ", "the-password"),
        VcfCredentials::api_key_file(empty_file.path()),
        VcfCredentials::id_token_file(empty_file.path()),
        VcfCredentials::password_file("svc@vsphere.local", empty_file.path()),
    ] {
        let err = vcf.create_token(&credentials).await.expect_err("empty");
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "{credentials:?}: {err}"
        );
        assert!(err.to_string().contains("is empty"), "{err}");
    }
    assert_eq!(sandbox.requests(Operation::VcfCreateToken), 0);
}

#[test]
fn a_secret_given_as_a_value_and_a_file_is_a_config_error_naming_both() {
    let file = TempFile::new("both", CANARY);
    for (plain, file_variable, extra) in [
        (
            "VCF_SDDC_MANAGER_PASSWORD",
            "VCF_SDDC_MANAGER_PASSWORD_FILE",
            Some(("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned())),
        ),
        (
            "VCF_SDDC_MANAGER_API_KEY",
            "VCF_SDDC_MANAGER_API_KEY_FILE",
            None,
        ),
        (
            "VCF_SDDC_MANAGER_ID_TOKEN",
            "VCF_SDDC_MANAGER_ID_TOKEN_FILE",
            None,
        ),
    ] {
        let mut env = vec![(plain, CANARY.to_owned()), (file_variable, file.path())];
        env.extend(extra);
        let err = VcfCredentials::from_lookup(lookup(env)).expect_err("both set");
        assert_eq!(err.kind(), ErrorKind::Config);
        let shown = everything_shown(&err);
        assert!(
            shown.contains(&format!("both {plain} and {file_variable} are set")),
            "{shown}"
        );
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains(&file.path()), "{shown}");
    }
}

#[test]
fn no_kind_or_more_than_one_kind_is_a_config_error_naming_the_variables() {
    let err = VcfCredentials::from_lookup(lookup(vec![
        ("VCF_SDDC_MANAGER_HOST", "vcf.example".to_owned()),
        // Blank is unset.
        ("VCF_SDDC_MANAGER_API_KEY", "  ".to_owned()),
    ]))
    .expect_err("no credentials");
    assert_eq!(err.kind(), ErrorKind::Config);
    for name in [
        "VCF_SDDC_MANAGER_USERNAME",
        "VCF_SDDC_MANAGER_PASSWORD",
        "VCF_SDDC_MANAGER_PASSWORD_FILE",
        "VCF_SDDC_MANAGER_API_KEY",
        "VCF_SDDC_MANAGER_API_KEY_FILE",
        "VCF_SDDC_MANAGER_ID_TOKEN",
        "VCF_SDDC_MANAGER_ID_TOKEN_FILE",
    ] {
        assert!(err.to_string().contains(name), "{name}: {err}");
    }

    let file = TempFile::new("two-kinds", CANARY);
    for (env, named) in [
        (
            vec![
                ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
                ("VCF_SDDC_MANAGER_PASSWORD", CANARY.to_owned()),
                ("VCF_SDDC_MANAGER_API_KEY", CANARY.to_owned()),
            ],
            vec![
                "VCF_SDDC_MANAGER_USERNAME",
                "VCF_SDDC_MANAGER_PASSWORD",
                "VCF_SDDC_MANAGER_API_KEY",
            ],
        ),
        (
            vec![
                ("VCF_SDDC_MANAGER_API_KEY_FILE", file.path()),
                ("VCF_SDDC_MANAGER_ID_TOKEN", CANARY.to_owned()),
            ],
            vec!["VCF_SDDC_MANAGER_API_KEY_FILE", "VCF_SDDC_MANAGER_ID_TOKEN"],
        ),
        // A leftover username is a second kind too.
        (
            vec![
                ("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()),
                ("VCF_SDDC_MANAGER_ID_TOKEN_FILE", file.path()),
            ],
            vec![
                "VCF_SDDC_MANAGER_USERNAME",
                "VCF_SDDC_MANAGER_ID_TOKEN_FILE",
            ],
        ),
    ] {
        let err = VcfCredentials::from_lookup(lookup(env.clone())).expect_err("two kinds");
        assert_eq!(err.kind(), ErrorKind::Config);
        let shown = everything_shown(&err);
        assert!(shown.contains("more than one kind"), "{shown}");
        for name in named {
            assert!(shown.contains(name), "{name}: {shown}");
        }
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains(&file.path()), "{shown}");
    }

    // Half a username-and-password is named too.
    for (env, missing) in [
        (
            vec![("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned())],
            "VCF_SDDC_MANAGER_PASSWORD is not set",
        ),
        (
            vec![("VCF_SDDC_MANAGER_PASSWORD", CANARY.to_owned())],
            "VCF_SDDC_MANAGER_USERNAME is not set",
        ),
    ] {
        let err = VcfCredentials::from_lookup(lookup(env)).expect_err("incomplete");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains(missing), "{err}");
        assert!(!everything_shown(&err).contains(CANARY));
    }
}

/// A `_FILE` variable whose value is no readable file (here a secret pasted
/// into the wrong variable) is reported when the credentials are read, naming
/// the variable and never its value.
#[test]
fn an_unreadable_file_names_the_variable_not_its_value() {
    let pasted = format!("/nonexistent/{CANARY}");
    let directory = std::env::temp_dir().to_string_lossy().into_owned();
    for (variable, extra) in [
        (
            "VCF_SDDC_MANAGER_PASSWORD_FILE",
            Some(("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned())),
        ),
        ("VCF_SDDC_MANAGER_API_KEY_FILE", None),
        ("VCF_SDDC_MANAGER_ID_TOKEN_FILE", None),
    ] {
        for path in [pasted.clone(), directory.clone()] {
            let mut env = vec![(variable, path.clone())];
            env.extend(extra.clone());
            let err = VcfCredentials::from_lookup(lookup(env)).expect_err("unreadable");
            assert_eq!(err.kind(), ErrorKind::Config, "{variable}");
            let shown = everything_shown(&err);
            assert!(
                shown.contains(&format!("the file named by {variable}")),
                "{shown}"
            );
            assert!(!shown.contains(CANARY), "{shown}");
            assert!(!shown.contains(&path), "{shown}");
        }
    }

    // Not text, or far too large for a secret: named, content not shown.
    let binary = TempFile::new("binary", "");
    std::fs::write(&binary.0, [b'p', 0xff, b'w']).expect("write");
    let large = TempFile::new("large", &CANARY.repeat(10_000));
    for (file, said) in [(&binary, "UTF-8"), (&large, "larger than")] {
        let err = VcfCredentials::from_lookup(lookup(vec![(
            "VCF_SDDC_MANAGER_API_KEY_FILE",
            file.path(),
        )]))
        .expect_err("not a secret");
        let shown = everything_shown(&err);
        assert!(shown.contains(said), "{shown}");
        assert!(shown.contains("VCF_SDDC_MANAGER_API_KEY_FILE"), "{shown}");
        assert!(!shown.contains(CANARY), "{shown}");
    }
}

#[tokio::test]
async fn no_secret_shows_in_debug_or_errors() {
    let file = TempFile::new("debug", CANARY);
    let from_env = |name: &'static str, value: String| {
        let mut env = vec![(name, value)];
        if name.starts_with("VCF_SDDC_MANAGER_PASSWORD") {
            env.push(("VCF_SDDC_MANAGER_USERNAME", "admin".to_owned()));
        }
        VcfCredentials::from_lookup(lookup(env)).expect("configured")
    };
    let all = [
        VcfCredentials::new("admin", CANARY),
        VcfCredentials::api_key(CANARY),
        VcfCredentials::id_token(CANARY),
        VcfCredentials::password_file("admin", file.path()),
        VcfCredentials::api_key_file(file.path()),
        VcfCredentials::id_token_file(file.path()),
        from_env("VCF_SDDC_MANAGER_PASSWORD", CANARY.to_owned()),
        from_env("VCF_SDDC_MANAGER_PASSWORD_FILE", file.path()),
        from_env("VCF_SDDC_MANAGER_API_KEY", CANARY.to_owned()),
        from_env("VCF_SDDC_MANAGER_API_KEY_FILE", file.path()),
        from_env("VCF_SDDC_MANAGER_ID_TOKEN", CANARY.to_owned()),
        from_env("VCF_SDDC_MANAGER_ID_TOKEN_FILE", file.path()),
    ];
    let sandbox = sandbox().await;
    let vcf = client(&sandbox);
    for credentials in &all {
        let debug = format!("{credentials:?} {credentials:#?}");
        assert!(!debug.contains(CANARY), "{debug}");
        let err = vcf
            .create_token(credentials)
            .await
            .expect_err("the canary is no credential");
        assert_eq!(err.kind(), ErrorKind::Auth);
        let shown = everything_shown(&err);
        assert!(!shown.contains(CANARY), "{shown}");
        let session = VcfSession::new(vcf.clone(), credentials.clone());
        let debug = format!("{session:?}");
        assert!(!debug.contains(CANARY), "{debug}");
    }
    // A file-backed secret's Debug says where it comes from.
    assert!(format!("{:?}", all[4]).contains(&file.path()));
    assert!(format!("{:?}", all[9]).contains("VCF_SDDC_MANAGER_API_KEY_FILE"));
    assert!(!format!("{:?}", all[9]).contains(&file.path()));
}
