//! Step 4: every generated type's `schemars` schema against its spec
//! component schema (the comparison lives in the `refresh-schema-drift`
//! crate, crates/schema-drift, so `cargo test` runs it too).

use std::path::Path;

pub fn run(root: &Path) -> super::StepResult {
    let summary = refresh_schema_drift::check_workspace(root)?;
    for drift in &summary.drifts {
        println!("  {drift}");
    }
    match summary.drifts.is_empty() {
        true => Ok(format!(
            "{} types compared with their spec schemas, 0 differences",
            summary.types_compared
        )),
        false => Err(format!(
            "{} types compared, {} difference(s): {}",
            summary.types_compared,
            summary.drifts.len(),
            summary
                .drifts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}
