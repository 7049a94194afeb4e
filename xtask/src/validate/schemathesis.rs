//! Step 2: Schemathesis against the sandbox, served in-process, for each
//! spec, with every check it has (documented statuses, response schemas and
//! content types, positive and negative data, auth, ...) except those
//! `xtask/schemathesis.toml` narrows, each with its reason.

use std::path::Path;
use std::process::Command;

use refresh_sandbox::{ExposeSecret, Sandbox};
use serde_json::Value;

use crate::tools;

/// Test cases per operation and phase: enough to cover every documented
/// answer of these small operations, few enough to finish in seconds.
const MAX_EXAMPLES: &str = "50";

/// A fixed seed, so a failure reproduces on the next run.
const SEED: &str = "1";

/// One spec's run, from Schemathesis' JSON report.
#[derive(Debug, Default)]
struct RunCounts {
    operations: u64,
    test_cases: u64,
    /// `code title: operations`, one per distinct failure.
    failures: Vec<String>,
    failure_count: u64,
    errors: Vec<String>,
}

pub fn run(root: &Path) -> super::StepResult {
    let schemathesis = tools::schemathesis(root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime for the sandbox: {e}"))?;
    let sandbox = runtime
        .block_on(Sandbox::builder().start())
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let reports = super::fresh_dir(root, "schemathesis")?;
    let credentials = sandbox.credentials();
    let mut total = RunCounts::default();
    let mut problems = Vec::new();
    for spec in super::SPECS {
        let stem = Path::new(spec)
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let json_report = reports.join(format!("{stem}.json"));
        // The sandbox's secrets go through the environment, which the
        // config file reads, rather than onto a command line anyone can see.
        let output = Command::new(&schemathesis)
            .arg("--config-file")
            .arg(root.join("xtask/schemathesis.toml"))
            .args(["--no-color", "run", spec, "--url", &sandbox.f5xc_url()])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
            // No example database in the working tree; the seed makes runs
            // repeatable instead.
            .args(["--generation-database", "none"])
            .args(["--report", "json,junit", "--report-dir"])
            .arg(&reports)
            .arg("--report-json-path")
            .arg(&json_report)
            .arg("--report-junit-path")
            .arg(reports.join(format!("{stem}.junit.xml")))
            .env("SANDBOX_VCF_USERNAME", &credentials.vcf_username)
            .env(
                "SANDBOX_VCF_PASSWORD",
                credentials.vcf_password.expose_secret(),
            )
            .env(
                "SANDBOX_F5XC_API_TOKEN",
                credentials.f5xc_api_token.expose_secret(),
            )
            .env(
                "SANDBOX_F5XC_PIPELINE",
                credentials
                    .f5xc_pipelines
                    .first()
                    .map_or("", String::as_str),
            )
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", schemathesis.display()))?;
        let counts = std::fs::read_to_string(&json_report)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map(|report| read_counts(&report));
        let clean = output.status.success()
            && counts
                .as_ref()
                .is_some_and(|c| c.failures.is_empty() && c.errors.is_empty());
        if !clean {
            // The tool's own account, with reproduction commands.
            println!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let Some(counts) = counts else {
            problems.push(format!(
                "{spec}: Schemathesis wrote no report ({})",
                output.status
            ));
            continue;
        };
        println!(
            "  {spec}: {} operations, {} test cases, {} failures, {} errors",
            counts.operations,
            counts.test_cases,
            counts.failure_count,
            counts.errors.len()
        );
        problems.extend(counts.failures.iter().map(|f| format!("{spec}: {f}")));
        problems.extend(counts.errors.iter().map(|e| format!("{spec}: error: {e}")));
        if !output.status.success() && counts.failures.is_empty() && counts.errors.is_empty() {
            problems.push(format!("{spec}: Schemathesis failed ({})", output.status));
        }
        total.operations += counts.operations;
        total.test_cases += counts.test_cases;
        total.failure_count += counts.failure_count;
    }
    runtime.block_on(sandbox.shutdown());
    let line = format!(
        "{} operations and {} examples checked over {} specs, {} failures",
        total.operations,
        total.test_cases,
        super::SPECS.len(),
        total.failure_count
    );
    match problems.is_empty() {
        true => Ok(line),
        false => Err(format!("{line}: {}", problems.join("; "))),
    }
}

fn read_counts(report: &Value) -> RunCounts {
    let failures: Vec<&Value> = report["failures"]
        .as_array()
        .map(|f| f.iter().collect())
        .unwrap_or_default();
    RunCounts {
        operations: report["operations"]["tested"].as_u64().unwrap_or(0),
        test_cases: report["test_cases"]["generated"].as_u64().unwrap_or(0),
        failure_count: failures
            .iter()
            .map(|f| f["count"].as_u64().unwrap_or(1))
            .sum(),
        failures: failures
            .iter()
            .map(|f| {
                let operations: Vec<&str> = f["operations"]
                    .as_array()
                    .map(|ops| ops.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                format!(
                    "{} {} ({})",
                    f["code"].as_str().unwrap_or("?"),
                    f["title"].as_str().unwrap_or("?"),
                    operations.join(", ")
                )
            })
            .collect(),
        errors: report["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|e| e.to_string()).collect())
            .unwrap_or_default(),
    }
}
