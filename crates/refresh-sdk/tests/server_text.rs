//! What a server says reaches the user only as safe text, over real HTTP on
//! loopback: terminal control sequences and bidirectional overrides are shown
//! escaped, and the secrets of the request are never repeated, whatever the
//! server echoes.

mod common;

use common::*;
use refresh_loopback::{Loopback, Reply, Request};
use refresh_sdk::error::{BodySnippet, VcfErrorDetail};
use refresh_sdk::{Error, RetryPolicy, TransportOptions, VcfCredentials, VendorDetail};
use serde_json::json;

fn no_retries() -> TransportOptions {
    TransportOptions::default().retry(RetryPolicy::no_retries())
}

/// What a hostile server puts in its text: clear the screen, set the window
/// title, write the clipboard (OSC 52), erase with backspaces, reverse the
/// text that follows.
const HOSTILE: &str = "Invalid\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}]52;c;ZXZpbA==\u{7} name\u{8}\u{8}\u{202e}txt.exe\u{9b}1m";

/// A control character or a bidirectional formatting character: nothing a
/// rendering of the error may contain raw.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Every way the error is shown: `Display`, `{:#}` (one finding per line),
/// `Debug`, and the vendor detail's own `Display`.
fn renderings(err: &Error) -> Vec<String> {
    let mut shown = vec![format!("{err}"), format!("{err:?}")];
    // These break lines themselves: the alternate form puts each finding on
    // a line of its own, pretty `Debug` each field.
    for multiline in [format!("{err:#}"), format!("{err:#?}")] {
        shown.extend(multiline.split('\n').map(str::to_owned));
    }
    if let Some(vendor) = err.vendor_detail() {
        shown.push(format!("{vendor}"));
        shown.push(format!("{vendor:#}"));
    }
    shown
}

fn assert_shown_safely(err: &Error) {
    for shown in renderings(err) {
        assert!(
            !shown.chars().any(unsafe_char),
            "a raw control or bidi character is shown: {shown:?}"
        );
    }
    let display = err.to_string();
    assert!(display.contains("\\u{1b}"), "ESC shown escaped: {display}");
    assert!(
        format!("{err:?}").contains("\\u{1b}"),
        "ESC shown escaped: {err:?}"
    );
}

async fn vcf_login_error(reply: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Error {
    vcf_login_error_as(&VcfCredentials::new("admin", "a-long-password"), reply).await
}

async fn vcf_login_error_as(
    credentials: &VcfCredentials,
    reply: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> Error {
    let server = Loopback::start(reply).await;
    vcf_client(&server.url(), no_retries())
        .create_token(credentials)
        .await
        .expect_err("the server answers an error")
}

async fn f5_error_with_token(
    token: &str,
    reply: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> Error {
    let server = Loopback::start(reply).await;
    f5_client(&server.url(), token, no_retries())
        .refresh_token("pipeline")
        .await
        .expect_err("the server answers an error")
}

fn vcf_detail(err: &Error) -> &VcfErrorDetail {
    match err.vendor_detail() {
        Some(VendorDetail::Vcf(detail)) => detail,
        other => panic!("expected VCF's error object, got {other:?}"),
    }
}

fn snippet(err: &Error) -> &BodySnippet {
    match err.vendor_detail() {
        Some(VendorDetail::Unparsed(snippet)) => snippet,
        other => panic!("expected a snippet, got {other:?}"),
    }
}

#[tokio::test]
async fn vcf_control_sequences_are_shown_escaped_and_kept_raw_in_the_detail() {
    let err = vcf_login_error(|_| {
        Reply::json(
            400,
            json!({
                "errorCode": "TOKEN_CREATION_FAILED",
                "message": HOSTILE,
                "remediationMessage": "Check\tthe\u{7} password",
                "referenceToken": "REF\u{1b}[31m",
                "notifications": [{
                    "severity": "ERROR",
                    "message": "bad\u{1b}]52;c;ZXZpbA==\u{7}",
                    "impactMessage": "line one\nline two\u{2066}",
                    "remediations": [{"message": "fix\u{202e}it", "link": "https://kb.example/\u{1b}"}],
                }],
            }),
        )
    })
    .await;
    assert_shown_safely(&err);
    let shown = err.to_string();
    assert!(shown.contains("\\u{202e}txt.exe"), "{shown}");
    assert!(shown.contains("\\u{7}"), "{shown}");
    assert!(
        shown.contains("Check the\\u{7} password"),
        "a tab is a space: {shown}"
    );
    assert!(shown.contains("line one line two\\u{2066}"), "{shown}");
    // The alternate form lists the finding on a line of its own, escaped.
    let alternate = format!("{err:#}");
    assert!(
        alternate.contains("\n  - ERROR: bad\\u{1b}]52;c;ZXZpbA==\\u{7}"),
        "{alternate}"
    );
    // What the server sent stays available as it was.
    let detail = vcf_detail(&err);
    assert_eq!(detail.message.as_deref(), Some(HOSTILE));
    assert_eq!(
        detail.remediation_message.as_deref(),
        Some("Check\tthe\u{7} password")
    );
    assert_eq!(detail.reference_token.as_deref(), Some("REF\u{1b}[31m"));
    let notification = &detail.notifications[0];
    assert_eq!(
        notification.message.as_deref(),
        Some("bad\u{1b}]52;c;ZXZpbA==\u{7}")
    );
    assert_eq!(
        notification.remediations[0].message.as_deref(),
        Some("fix\u{202e}it")
    );
}

#[tokio::test]
async fn f5_text_plain_control_sequences_are_shown_escaped_and_kept_raw_in_the_snippet() {
    let err = f5_error_with_token("an-f5-api-token", |_| {
        Reply::new(500, "text/plain", HOSTILE)
    })
    .await;
    assert_shown_safely(&err);
    assert!(err.to_string().contains("\\u{202e}txt.exe"), "{err}");
    assert_eq!(snippet(&err).text, HOSTILE);
}

#[tokio::test]
async fn f5_documented_text_control_sequences_are_shown_escaped_and_kept_raw() {
    let err = f5_error_with_token("an-f5-api-token", |_| Reply::json(401, json!(HOSTILE))).await;
    assert_shown_safely(&err);
    assert_eq!(
        err.vendor_detail(),
        Some(&VendorDetail::Text(HOSTILE.into()))
    );
}

/// Every form in which a server may echo `secret`: as sent, JSON-escaped
/// (inside a JSON string), percent-encoded with upper- or lower-case hex.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("a string serializes");
    let mut forms = vec![
        secret.to_owned(),
        json.strip_prefix('"')
            .and_then(|json| json.strip_suffix('"'))
            .expect("a JSON string is quoted")
            .to_owned(),
        percent_encoded(secret, false),
        percent_encoded(secret, true),
    ];
    forms.dedup();
    forms
}

fn percent_encoded(secret: &str, lower: bool) -> String {
    secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Asserts that nothing of `err` (its renderings, the vendor detail's fields
/// as `Debug` shows them) repeats `secret` in any form, and that the
/// rendering says where a secret was.
fn assert_never_shows(err: &Error, secret: &str, marker: &str) {
    let mut shown = renderings(err);
    shown.push(format!("{:?}", err.vendor_detail()));
    // The fields themselves, as a program reading them gets them.
    if let Some(VendorDetail::Unparsed(snippet)) = err.vendor_detail() {
        shown.push(snippet.text.clone());
    }
    if let Some(VendorDetail::Vcf(detail)) = err.vendor_detail() {
        shown.extend(detail.message.clone());
    }
    if let Some(VendorDetail::Text(text)) = err.vendor_detail() {
        shown.push(text.clone());
    }
    for text in &shown {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "the secret ({form}) is shown: {text}"
            );
        }
    }
    assert!(err.to_string().contains(marker), "{marker} missing: {err}");
}

/// A password with characters that JSON escapes and percent-encoding
/// encodes, so that each form differs from the others.
const PASSWORD: &str = r#"Pa"ss\w0rd/é 1!"#;

/// How a test server answers a request.
type Answer = fn(&Request) -> Reply;

#[tokio::test]
async fn vcf_login_echoing_the_password_never_shows_it() {
    let echoes: [(&str, Answer); 5] = [
        ("the request body, in a JSON message", |request| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            Reply::json(
                400,
                json!({ "message": format!("Invalid request: {body}") }),
            )
        }),
        ("the request body, as text/plain", |request| {
            Reply::new(400, "text/plain", request.body.clone())
        }),
        ("the password, in a JSON message", |_| {
            Reply::json(
                400,
                json!({ "message": format!("Invalid password {PASSWORD}") }),
            )
        }),
        ("the password percent-encoded, upper case", |_| {
            let encoded = percent_encoded(PASSWORD, false);
            Reply::json(
                400,
                json!({ "message": format!("Invalid request: password={encoded}") }),
            )
        }),
        ("the password percent-encoded, lower case, in a 500", |_| {
            let encoded = percent_encoded(PASSWORD, true);
            Reply::new(
                500,
                "text/plain",
                format!("NullPointerException at password={encoded}"),
            )
        }),
    ];
    for (case, echo) in echoes {
        let credentials = VcfCredentials::new("admin", PASSWORD);
        let err = vcf_login_error_as(&credentials, echo).await;
        eprintln!("{case}: {err}");
        assert_never_shows(&err, PASSWORD, "[redacted]");
    }
}

#[tokio::test]
async fn vcf_login_echoing_an_api_key_or_id_token_never_shows_it() {
    let key = "vcf-api-key-0123456789";
    let id_token = jwt_expiring_in(300, "someone@example");
    for (credentials, secret) in [
        (VcfCredentials::api_key(key), key.to_owned()),
        (VcfCredentials::id_token(id_token.clone()), id_token.clone()),
    ] {
        let err = vcf_login_error_as(&credentials, |request| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            Reply::json(
                400,
                json!({ "message": format!("Invalid request: {body}") }),
            )
        })
        .await;
        assert_never_shows(&err, &secret, "[redacted]");
    }
}

#[tokio::test]
async fn vcf_refresh_and_invalidate_echoing_the_refresh_token_id_never_show_it() {
    let id = "4b2c7a1e-0000-4d1f-9a55-refresh-token-id";
    let echoes: [Answer; 2] = [
        |request| {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            Reply::json(
                400,
                json!({ "message": format!("Invalid refresh token {body}") }),
            )
        },
        |request| Reply::new(500, "text/plain", request.body.clone()),
    ];
    for echo in echoes {
        let server = Loopback::start(echo).await;
        let vcf = vcf_client(&server.url(), no_retries());
        let err = vcf
            .refresh_access_token(&id.into())
            .await
            .expect_err("the server answers an error");
        assert_never_shows(&err, id, "[redacted]");
        let err = vcf
            .invalidate_refresh_token(&id.into())
            .await
            .expect_err("the server answers an error");
        assert_never_shows(&err, id, "[redacted]");
    }
}

#[tokio::test]
async fn f5_error_echoing_the_api_token_never_shows_it() {
    let token = "f5-api-token-0123456789abcdef";
    let echoes: [Answer; 3] = [
        |request| {
            let header = request.header("authorization").unwrap_or_default();
            Reply::json(401, json!(format!("rejected credentials: {header}")))
        },
        |request| {
            let header = request.header("authorization").unwrap_or_default();
            Reply::new(500, "text/plain", format!("upstream failed for {header}"))
        },
        |request| {
            let header = request.header("authorization").unwrap_or_default();
            Reply::json(
                403,
                json!({ "code": 7, "message": format!("denied {header}") }),
            )
        },
    ];
    for echo in echoes {
        let err = f5_error_with_token(token, echo).await;
        assert_never_shows(&err, token, "[redacted]");
    }
}

#[tokio::test]
async fn a_secret_echoed_across_the_snippet_cut_leaves_no_part_of_it() {
    // The password starts just before the first 4 KiB end: cut first and
    // scrubbed second, the snippet would end in its first characters.
    let password = "Zk7QpXw9-the-rest-of-a-long-password";
    let body = format!("{}{password} and more", "x".repeat(4090));
    let err = vcf_login_error_as(&VcfCredentials::new("admin", password), move |_| {
        Reply::new(500, "text/plain", body.clone())
    })
    .await;
    let snippet = snippet(&err);
    assert!(snippet.truncated);
    assert!(
        !snippet.text.contains("Zk7Qp"),
        "part of the password is kept: …{:?}",
        snippet.text.get(snippet.text.len().saturating_sub(40)..)
    );
}

#[tokio::test]
async fn a_short_password_echoed_withholds_the_server_text() {
    let password = "pw+9!"; // shorter than 8 characters
    for message in [
        format!("Invalid password {password}"),
        format!(
            "Invalid request: password={}",
            percent_encoded(password, false)
        ),
    ] {
        let err = vcf_login_error_as(&VcfCredentials::new("admin", password), move |_| {
            Reply::json(
                400,
                json!({ "message": message.clone(), "referenceToken": "REF42" }),
            )
        })
        .await;
        assert_never_shows(
            &err,
            password,
            "the server's text was withheld: it repeats a secret of the request",
        );
        // What did not repeat it is kept.
        assert!(err.to_string().contains("REF42"), "{err}");
    }
}

#[tokio::test]
async fn a_short_password_not_echoed_keeps_the_server_text() {
    let err = vcf_login_error_as(&VcfCredentials::new("admin", "pw+9!"), |_| {
        Reply::json(400, json!({ "message": "Invalid credentials" }))
    })
    .await;
    assert!(err.to_string().contains("Invalid credentials"), "{err}");
    assert!(!err.to_string().contains("withheld"), "{err}");
}
