//! Proof that touching a facade source file does not rerun the client
//! crates' build scripts (which run the code generator), with a control
//! showing that touching a spec does.
//!
//! Works on a scratch copy of the workspace (the repository's own tree is
//! never touched), built into the shared target directory so that only the
//! workspace's own crates compile. Linux only (`cp -a`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const CLIENT_CRATES: [&str; 2] = ["f5xc-bfdp", "vcf-tokens"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Copies the workspace (without `target/` and `.git/`) to a fresh
/// directory, symlinks included (each client crate's `openapi.yaml` links to
/// `specs/`).
fn scratch_copy(root: &Path) -> PathBuf {
    let scratch = std::env::temp_dir().join(format!("refresh-build-proof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create the scratch directory");
    for entry in std::fs::read_dir(root).expect("read the workspace root") {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let status = Command::new("cp")
            .arg("-a")
            .arg(entry.path())
            .arg(&scratch)
            .status()
            .expect("run cp");
        assert!(status.success(), "cp -a {:?} failed", entry.path());
    }
    scratch
}

fn touch(path: &Path) {
    let file = std::fs::File::options()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_modified(SystemTime::now())
        .unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
}

/// `cargo build -p refresh-sdk -v` in `dir`; returns stderr and the time.
fn build(dir: &Path, target: &Path) -> (String, Duration) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let output = Command::new(cargo)
        .args(["build", "-p", "refresh-sdk", "-v", "--locked"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run cargo build");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "cargo build failed:\n{stderr}");
    (stderr, elapsed)
}

/// The client crates whose build script cargo ran (`Running
/// `.../build/<crate>-<hash>/build-script-build``).
fn build_scripts_run(stderr: &str) -> Vec<&'static str> {
    CLIENT_CRATES
        .into_iter()
        .filter(|krate| {
            stderr.lines().any(|line| {
                line.trim_start().starts_with("Running")
                    && line.contains(&format!("/build/{krate}-"))
                    && line.contains("build-script-build")
            })
        })
        .collect()
}

fn main() {
    // `cargo test --benches` and clippy's test runs pass no `--bench`;
    // this is a multi-minute build, for `cargo bench` only.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("build proof: skipped (runs under `cargo bench`)");
        return;
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let scratch = scratch_copy(&root);

    let (_, first) = build(&scratch, &target);
    touch(&scratch.join("crates/refresh-sdk/src/lib.rs"));
    let (after_facade, facade_time) = build(&scratch, &target);
    let facade_reran = build_scripts_run(&after_facade);
    let recompiled_facade = after_facade
        .lines()
        .any(|line| line.trim_start().starts_with("Compiling refresh-sdk"));
    let clients_fresh = CLIENT_CRATES.iter().all(|krate| {
        after_facade
            .lines()
            .any(|line| line.trim_start().starts_with(&format!("Fresh {krate} ")))
    });

    touch(&scratch.join("specs/f5xc-bfdp.yaml"));
    let (after_spec, spec_time) = build(&scratch, &target);
    let spec_reran = build_scripts_run(&after_spec);
    let _ = std::fs::remove_dir_all(&scratch);

    println!("\n== build: touching a facade source file ==");
    println!("first build of the scratch copy: {first:.1?}");
    println!(
        "after touching crates/refresh-sdk/src/lib.rs: {facade_time:.1?}; refresh-sdk recompiled: \
         {recompiled_facade}; client crates fresh: {clients_fresh}; client build scripts rerun: {facade_reran:?}"
    );
    println!(
        "control, after touching specs/f5xc-bfdp.yaml: {spec_time:.1?}; client build scripts rerun: {spec_reran:?}"
    );
    let met = recompiled_facade && clients_fresh && facade_reran.is_empty();
    println!(
        "target (a facade edit reruns no client build script): {}",
        if met { "met" } else { "NOT met" }
    );
    assert!(
        met,
        "a facade edit reran client build scripts:\n{after_facade}"
    );
    assert_eq!(
        spec_reran,
        vec!["f5xc-bfdp"],
        "the control: a spec edit reruns its crate's build script:\n{after_spec}"
    );
}
