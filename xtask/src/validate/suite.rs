//! Step 3: client conformance. The whole test suite runs with the
//! sandbox's request validation reporting into a fresh directory; every
//! request the clients sent must have matched the spec.
//!
//! The report contract: with `REFRESH_SANDBOX_REPORT_DIR` set, every
//! sandbox writes, when it shuts down or drops, `<dir>/<pid>-<n>.json`:
//! `{"validated": <requests checked>, "violations": [<one line per
//! violation no test asked for>], "expected_violations": <violations a
//! test deliberately provoked>}`.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

/// The environment variable the sandbox reads.
pub const REPORT_DIR_VAR: &str = refresh_sandbox::REPORT_DIR_ENV;

/// One sandbox's report file.
#[derive(Debug, Deserialize)]
struct SandboxReport {
    validated: u64,
    violations: Vec<String>,
    expected_violations: u64,
}

/// The reports of one test run, summed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SuiteReport {
    /// How many report files (sandboxes) there were.
    pub sandboxes: usize,
    /// Requests the sandboxes checked against the specs.
    pub validated: u64,
    /// Violations no test asked for, each prefixed with its report file.
    pub unexpected: Vec<String>,
    /// Violations tests provoked on purpose.
    pub expected: u64,
}

/// Sums every `*.json` report in `dir`; a file that does not follow the
/// contract is an error naming it, not a silent zero.
pub fn read_reports(dir: &Path) -> Result<SuiteReport, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut sum = SuiteReport::default();
    for path in paths {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let report: SandboxReport = serde_json::from_str(&text).map_err(|e| {
            format!(
                "sandbox report {} does not follow the contract: {e}",
                path.display()
            )
        })?;
        sum.sandboxes += 1;
        sum.validated += report.validated;
        sum.expected += report.expected_violations;
        sum.unexpected.extend(
            report
                .violations
                .into_iter()
                .map(|v| format!("{name}: {v}")),
        );
    }
    Ok(sum)
}

/// Judges a run's reports: the count line, or what went wrong.
pub fn judge(report: &SuiteReport) -> super::StepResult {
    let line = format!(
        "requests: {} validated by the sandbox, {} unexpected violations ({} provoked on purpose, {} sandboxes reported)",
        report.validated,
        report.unexpected.len(),
        report.expected,
        report.sandboxes
    );
    if !report.unexpected.is_empty() {
        return Err(format!(
            "{line}; requests that violated the specs: {}",
            report.unexpected.join("; ")
        ));
    }
    if report.sandboxes == 0 {
        return Err(format!(
            "{line}; no sandbox wrote a report to ${REPORT_DIR_VAR}: the sandbox's reporting is \
             off or broken, so no client request was checked"
        ));
    }
    if report.validated == 0 {
        return Err(format!(
            "{line}; the test suite did not exercise the sandbox"
        ));
    }
    Ok(line)
}

pub fn run(root: &Path) -> super::StepResult {
    let dir = super::fresh_dir(root, "sandbox-reports")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let args: &[&str] = match crate::has_nextest(root) {
        true => &[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ],
        false => &["test", "--workspace", "--locked", "--no-fail-fast"],
    };
    println!(
        "cargo {} (with {REPORT_DIR_VAR}={})",
        args.join(" "),
        dir.display()
    );
    let status = Command::new(cargo)
        .args(args)
        .env(REPORT_DIR_VAR, &dir)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let verdict = judge(&read_reports(&dir)?);
    match (status.success(), verdict) {
        (true, verdict) => verdict,
        (false, Ok(line) | Err(line)) => Err(format!("the test suite failed ({status}); {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-suite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch report dir");
        for (file, text) in files {
            std::fs::write(dir.join(file), text).expect("write a scratch report");
        }
        dir
    }

    #[test]
    fn sums_every_report_and_passes_a_clean_run() {
        let dir = dir_with(
            "clean",
            &[
                (
                    "1-0.json",
                    r#"{"validated": 12, "violations": [], "expected_violations": 3}"#,
                ),
                (
                    "1-1.json",
                    r#"{"validated": 5, "violations": [], "expected_violations": 0}"#,
                ),
                ("notes.txt", "not a report"),
            ],
        );
        let report = read_reports(&dir).expect("the reports parse");
        assert_eq!(
            report,
            SuiteReport {
                sandboxes: 2,
                validated: 17,
                unexpected: vec![],
                expected: 3
            }
        );
        let line = judge(&report).expect("a clean run passes");
        assert!(
            line.starts_with("requests: 17 validated by the sandbox, 0 unexpected violations"),
            "{line}"
        );
    }

    #[test]
    fn an_unexpected_violation_fails_naming_the_request() {
        let dir = dir_with(
            "dirty",
            &[
                (
                    "7-0.json",
                    r#"{"validated": 4, "violations": [], "expected_violations": 1}"#,
                ),
                (
                    "7-1.json",
                    r#"{"validated": 2, "violations": ["PATCH /v1/tokens/access-token/refresh: ContentType: text/plain is not application/json"], "expected_violations": 0}"#,
                ),
            ],
        );
        let why =
            judge(&read_reports(&dir).expect("the reports parse")).expect_err("a violation fails");
        assert!(
            why.starts_with("requests: 6 validated by the sandbox, 1 unexpected violations"),
            "{why}"
        );
        assert!(
            why.contains("7-1.json: PATCH /v1/tokens/access-token/refresh: ContentType"),
            "{why}"
        );
    }

    #[test]
    fn reports_that_validated_nothing_fail() {
        let dir = dir_with(
            "idle",
            &[(
                "3-0.json",
                r#"{"validated": 0, "violations": [], "expected_violations": 0}"#,
            )],
        );
        let why = judge(&read_reports(&dir).expect("the report parses"))
            .expect_err("nothing validated fails");
        assert!(why.contains("did not exercise the sandbox"), "{why}");
    }

    #[test]
    fn no_reports_at_all_fail() {
        let dir = dir_with("none", &[]);
        let report = read_reports(&dir).expect("an empty dir reads");
        assert_eq!(report.sandboxes, 0);
        let why = judge(&report).expect_err("no report fails");
        assert!(why.contains("no sandbox wrote a report"), "{why}");
    }

    #[test]
    fn a_report_off_contract_is_an_error_naming_the_file() {
        let dir = dir_with(
            "bad",
            &[("9-0.json", r#"{"validated": "many", "violations": []}"#)],
        );
        let why = read_reports(&dir).expect_err("off-contract report");
        assert!(
            why.contains("9-0.json") && why.contains("does not follow the contract"),
            "{why}"
        );
    }
}
