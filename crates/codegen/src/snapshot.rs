//! The checked-in snapshots of the generated code (each API's client and its
//! typed mocks): written by `cargo xtask codegen`, compared by
//! `cargo xtask codegen --check` and by a test, so that a spec change without
//! regeneration cannot go unnoticed.

use std::path::{Path, PathBuf};

use crate::{Api, client_source, mock_source};

/// What comparing one snapshot with freshly generated source found.
#[derive(Debug)]
pub struct Comparison {
    /// The API whose code was generated.
    pub api: Api,
    /// The snapshot's path relative to the workspace root.
    pub path: PathBuf,
    /// `None` when the snapshot is up to date; otherwise a unified diff from
    /// the snapshot to the fresh source.
    pub diff: Option<String>,
}

/// Generates `api`'s client from the spec under `workspace_root`.
pub fn generate(workspace_root: &Path, api: Api) -> Result<String, String> {
    let spec = read_spec(workspace_root, api)?;
    client_source(api, &spec).map_err(|e| format!("{}: {e}", api.spec_path().display()))
}

/// Generates `api`'s typed `httpmock` helpers from the spec under
/// `workspace_root`.
pub fn generate_mocks(workspace_root: &Path, api: Api) -> Result<String, String> {
    let spec = read_spec(workspace_root, api)?;
    mock_source(api, &spec).map_err(|e| format!("{}: {e}", api.spec_path().display()))
}

fn read_spec(workspace_root: &Path, api: Api) -> Result<String, String> {
    let spec_path = workspace_root.join(api.spec_path());
    std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))
}

/// Every snapshot: each API's client, then its mocks, with the path relative
/// to the workspace root and the freshly generated source.
fn fresh_all(workspace_root: &Path) -> Result<Vec<(Api, PathBuf, String)>, String> {
    let mut all = Vec::new();
    for api in Api::ALL {
        all.push((api, api.snapshot_path(), generate(workspace_root, api)?));
        all.push((
            api,
            api.mock_snapshot_path(),
            generate_mocks(workspace_root, api)?,
        ));
    }
    Ok(all)
}

/// Writes every API's snapshots (client and mocks); returns the paths
/// written.
pub fn write_all(workspace_root: &Path) -> Result<Vec<PathBuf>, String> {
    fresh_all(workspace_root)?
        .into_iter()
        .map(|(_, relative, source)| {
            let path = workspace_root.join(&relative);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(&path, source)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(relative)
        })
        .collect()
}

/// Compares every API's snapshots (client and mocks) with freshly generated
/// source.
pub fn check_all(workspace_root: &Path) -> Result<Vec<Comparison>, String> {
    Ok(fresh_all(workspace_root)?
        .into_iter()
        .map(|(api, path, fresh)| {
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
            Comparison { api, path, diff }
        })
        .collect())
}
