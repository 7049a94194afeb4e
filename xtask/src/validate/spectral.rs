//! Step 1: Spectral's `spectral:oas` rules (all of them, minus those
//! `.spectral.yaml` switches off with a reason) over both specs.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::tools;

pub fn run(root: &Path) -> super::StepResult {
    let spectral = tools::spectral(root)?;
    let report = super::fresh_dir(root, "spectral")?.join("findings.json");
    let output = Command::new(&spectral)
        .arg("lint")
        .args(super::SPECS)
        .args([
            "--ruleset",
            ".spectral.yaml",
            "--fail-severity=warn",
            "--verbose",
        ])
        .args(["--format", "json", "--output"])
        .arg(&report)
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", spectral.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--verbose` prints `Found 57 rules (54 enabled)`.
    let rules = stdout
        .lines()
        .find_map(|line| line.strip_prefix("Found "))
        .and_then(|rest| {
            rest.split_once('(')?
                .1
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        });
    let findings: Vec<Value> = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| {
            format!(
                "Spectral wrote no readable report ({}):\n{stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let mut counts = [0usize; 4];
    for finding in &findings {
        let severity = finding["severity"].as_u64().unwrap_or(0).min(3) as usize;
        counts[severity] += 1;
        let source = finding["source"].as_str().unwrap_or("?");
        let source = Path::new(source)
            .strip_prefix(root)
            .map_or(source.into(), |p| p.display().to_string());
        println!(
            "  {source}:{}: {} {}: {} (at {})",
            finding["range"]["start"]["line"]
                .as_u64()
                .map_or(0, |l| l + 1),
            ["error", "warning", "info", "hint"][severity],
            finding["code"].as_str().unwrap_or("?"),
            finding["message"].as_str().unwrap_or("?"),
            finding["path"]
                .as_array()
                .map(|p| p
                    .iter()
                    .map(|s| s.as_str().map_or(s.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("."))
                .unwrap_or_default(),
        );
    }
    let rules = rules.map_or("?".to_owned(), |n| n.to_string());
    let line = format!(
        "{rules} rules run over {} specs: {} errors, {} warnings, {} infos, {} hints",
        super::SPECS.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3]
    );
    match counts[0] + counts[1] == 0 && output.status.success() {
        true => Ok(line),
        false => Err(line),
    }
}
