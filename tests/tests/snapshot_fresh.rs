//! The checked-in generated snapshots match what the build generates from
//! `specs/`, so plain `cargo test` catches a spec edited without
//! `cargo xtask codegen`.

use std::path::Path;

#[test]
fn generated_snapshots_match_the_specs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let comparisons = sdk_codegen::snapshot::check_all(&root).expect("the specs generate");
    let stale: Vec<String> = comparisons.into_iter().filter_map(|c| c.diff).collect();
    assert!(
        stale.is_empty(),
        "generated snapshots are stale; run `cargo xtask codegen` and commit:\n{}",
        stale.join("\n")
    );
}
