//! The checked-in snapshots of the generated clients: written by
//! `cargo xtask codegen`, compared by `cargo xtask codegen --check` and by a
//! test, so that a spec change without regeneration cannot go unnoticed.

use std::path::{Path, PathBuf};

use crate::{Api, client_source};

/// What comparing one snapshot with freshly generated source found.
#[derive(Debug)]
pub struct Comparison {
    /// The API whose client was generated.
    pub api: Api,
    /// The snapshot's path relative to the workspace root.
    pub path: PathBuf,
    /// `None` when the snapshot is up to date; otherwise a unified diff from
    /// the snapshot to the fresh source.
    pub diff: Option<String>,
}

/// Generates `api`'s client from the spec under `workspace_root`.
pub fn generate(workspace_root: &Path, api: Api) -> Result<String, String> {
    let spec_path = workspace_root.join(api.spec_path());
    let spec = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    client_source(api, &spec).map_err(|e| format!("{}: {e}", spec_path.display()))
}

/// Writes every API's snapshot; returns the paths written.
pub fn write_all(workspace_root: &Path) -> Result<Vec<PathBuf>, String> {
    Api::ALL
        .into_iter()
        .map(|api| {
            let source = generate(workspace_root, api)?;
            let path = workspace_root.join(api.snapshot_path());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(&path, source)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(api.snapshot_path())
        })
        .collect()
}

/// Compares every API's snapshot with freshly generated source.
pub fn check_all(workspace_root: &Path) -> Result<Vec<Comparison>, String> {
    Api::ALL
        .into_iter()
        .map(|api| {
            let fresh = generate(workspace_root, api)?;
            let path = api.snapshot_path();
            // A missing snapshot compares as empty, so the diff shows it all.
            let current = std::fs::read_to_string(workspace_root.join(&path)).unwrap_or_default();
            let diff = (current != fresh).then(|| {
                let shown = path.display().to_string();
                similar::TextDiff::from_lines(&current, &fresh)
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("a/{shown} (checked in)"),
                        &format!("b/{shown} (generated)"),
                    )
                    .to_string()
            });
            Ok(Comparison { api, path, diff })
        })
        .collect()
}
