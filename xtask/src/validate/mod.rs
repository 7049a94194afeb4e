//! `cargo xtask validate`: the SDK checked against its specs by tools
//! nobody on the project wrote. Every step runs even when an earlier one
//! failed, prints one line with its count, and the command fails naming
//! the steps that failed.

mod schemathesis;
mod spectral;
mod suite;
mod types;

use std::path::{Path, PathBuf};

/// The specs, relative to the workspace root.
pub const SPECS: [&str; 2] = ["specs/f5xc-bfdp.yaml", "specs/vcf-tokens.yaml"];

/// What a step found: `Ok` with its count line, or `Err` saying what
/// drifted.
type StepResult = Result<String, String>;

type Step = fn(&Path) -> StepResult;

/// The steps, in order: the id `--only` takes, the name printed, the step.
const STEPS: [(&str, &str, Step); 5] = [
    ("spectral", "spec lint (Spectral)", spectral::run),
    (
        "schemathesis",
        "server conformance (Schemathesis)",
        schemathesis::run,
    ),
    ("suite", "client conformance (test suite)", suite::run),
    ("types", "types vs spec (schemars)", types::run),
    ("codegen", "codegen --check", codegen_check),
];

/// The ids of the steps, for `--only`.
pub const STEP_IDS: [&str; 5] = ["spectral", "schemathesis", "suite", "types", "codegen"];

/// Runs every step (or those `only` names); `Err` names the failed ones.
pub fn run(root: &Path, only: &[String]) -> Result<(), String> {
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    let chosen = STEPS
        .into_iter()
        .filter(|(id, _, _)| only.is_empty() || only.iter().any(|o| o == id));
    for (_, name, step) in chosen {
        println!("\n==> validate: {name}");
        let line = match step(root) {
            Ok(line) => format!("ok      {name}: {line}"),
            Err(why) => {
                failed.push(name);
                format!("FAILED  {name}: {why}")
            }
        };
        println!("{line}");
        summary.push(line);
    }
    println!("\nvalidate summary:");
    for line in &summary {
        println!("  {line}");
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(format!("validate failed at: {}", failed.join(", "))),
    }
}

fn codegen_check(root: &Path) -> StepResult {
    let comparisons = sdk_codegen::snapshot::check_all(root)?;
    let total = comparisons.len();
    let mut stale = Vec::new();
    for comparison in comparisons {
        match comparison.diff {
            None => println!("{}: up to date", comparison.path.display()),
            Some(diff) => {
                println!("{}: STALE", comparison.path.display());
                print!("{diff}");
                stale.push(comparison.path.display().to_string());
            }
        }
    }
    match stale.is_empty() {
        true => Ok(format!("{total} snapshots up to date")),
        false => Err(format!(
            "{} of {total} snapshots differ from the specs ({}); run `cargo xtask codegen` and commit the result",
            stale.len(),
            stale.join(", ")
        )),
    }
}

/// The cargo target directory, where `validate` keeps its reports.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// An empty directory `target/validate/<name>`, for one run's reports.
pub fn fresh_dir(root: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = target_dir(root).join("validate").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
