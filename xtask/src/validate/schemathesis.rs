//! Step 2: Schemathesis against the sandbox, served in-process, for each
//! spec: every documented status, response schema and content type, and
//! the rest of its checks.

use std::path::Path;
use std::process::Command;

use refresh_sandbox::{ExposeSecret, Sandbox};

use crate::tools;

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
    let mut lines = Vec::new();
    for spec in super::SPECS {
        let output = Command::new(&schemathesis)
            .args(["--no-color", "run", spec, "--url", &sandbox.f5xc_url()])
            .args(["--checks", "all", "--max-examples", "50", "--seed", "1"])
            .args(["--generation-database", "none"])
            .args(["--report", "json,junit", "--report-dir"])
            .arg(&reports)
            .arg("--header")
            .arg(format!(
                "Authorization: APIToken {}",
                sandbox.credentials().f5xc_api_token.expose_secret()
            ))
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", schemathesis.display()))?;
        println!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        lines.push(format!("{spec}: {}", output.status));
    }
    runtime.block_on(sandbox.shutdown());
    match lines.iter().all(|l| l.ends_with("exit status: 0")) {
        true => Ok(lines.join("; ")),
        false => Err(lines.join("; ")),
    }
}
