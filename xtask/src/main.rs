//! `cargo xtask`: the maintainers' tasks.

mod build_cost;
mod tools;
mod validate;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Maintainer tasks for the refresh SDK workspace")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate the checked-in client snapshots from `specs/`.
    Codegen {
        /// Write nothing; print a diff and fail if a snapshot is stale.
        #[arg(long)]
        check: bool,
    },
    /// The SDK against its specs: Spectral lint, Schemathesis against the
    /// sandbox, the test suite with the sandbox's request checks, the
    /// generated types against the spec schemas, snapshot freshness.
    Validate {
        /// Run only these steps (repeatable); all of them by default.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(validate::STEP_IDS))]
        only: Vec<String>,
    },
    /// Everything CI checks, in order: formatting, clippy with warnings
    /// denied, `validate` (which runs the tests), doctests, packaging.
    Ci,
    /// What the SDK costs a service's cold build: three tiny services (SDK
    /// with default features, SDK with `vcf` only, the same calls by hand
    /// with reqwest) each built once in a fresh target folder under the temp
    /// directory; prints CPU and wall seconds, packages compiled and the
    /// ratios. Takes minutes; not part of `ci`.
    BuildCost {
        /// Build with `--release` instead of the dev profile.
        #[arg(long)]
        release: bool,
        /// Build each service this many times, in a rotated order, and
        /// compare the medians (the machines are shared and noisy).
        #[arg(long, default_value_t = 1, value_name = "N")]
        rounds: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Codegen { check: false } => codegen_write(&root),
        Command::Codegen { check: true } => codegen_check(&root),
        Command::Validate { only } => validate::run(&root, &only),
        Command::Ci => ci(&root),
        Command::BuildCost { release, rounds } => build_cost::run(&root, release, rounds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the xtask crate lives one level below the workspace root")
        .to_path_buf()
}

fn codegen_write(root: &Path) -> Result<(), String> {
    for path in sdk_codegen::snapshot::write_all(root)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn codegen_check(root: &Path) -> Result<(), String> {
    let mut stale = 0;
    for comparison in sdk_codegen::snapshot::check_all(root)? {
        match comparison.diff {
            None => println!("{}: up to date", comparison.path.display()),
            Some(diff) => {
                stale += 1;
                println!("{}: STALE", comparison.path.display());
                print!("{diff}");
            }
        }
    }
    if stale > 0 {
        return Err(format!(
            "{stale} generated snapshot(s) differ from the specs; run `cargo xtask codegen` and commit the result"
        ));
    }
    Ok(())
}

/// Runs `cargo` with `args` in the workspace root; fails if it fails.
fn cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    cargo_with_env(root, args, &[])
}

/// Like [`cargo`], with extra environment variables.
fn cargo_with_env(root: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Result<(), String> {
    println!("\n==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = std::process::Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// The workspace's publishable packages.
const PUBLISHED: [&str; 6] = [
    "sdk-codegen",
    "f5xc-bfdp",
    "vcf-tokens",
    "refresh-sdk",
    "refresh-sandbox",
    "refresh-cli",
];

/// Makes `cargo package --workspace` verify against this tree's code.
///
/// It verifies each package against the others' packaged forms through a
/// temporary local registry under `target/package/`, unpacks them into
/// `$CARGO_HOME/registry/src/-<hash of that path>/`, and builds them in the
/// shared `target` folder. The version stays 0.1.0 while the code changes,
/// and cargo takes a registry package of a known name and version as
/// unchanged: it reuses an earlier unpacked copy, and the earlier build (and
/// build-script output) of it. A second run at the same path verified
/// f5xc-bfdp with code generated by a stale sdk-codegen. So both go: the
/// unpacked copies (only in local-registry directories, named `-<hash>`)
/// and the build fingerprints of these packages in `target`.
fn forget_packaged_copies(target: &Path) -> Result<(), String> {
    for kind in [".fingerprint", "build"] {
        remove_ours(&target.join("debug").join(kind), |hash| {
            hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
        })?;
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let Some(src) = home.map(|home| home.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if registry.file_name().to_string_lossy().starts_with('-') {
            remove_ours(&registry.path(), |version| {
                version.starts_with(|c: char| c.is_ascii_digit())
            })?;
        }
    }
    Ok(())
}

/// Removes the entries of `dir` named `<published package>-<rest>` whose
/// `rest` passes `matches`.
fn remove_ours(dir: &Path, matches: impl Fn(&str) -> bool) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = PUBLISHED.iter().any(|published| {
            name.strip_prefix(published)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(&matches)
        });
        if ours {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| format!("cannot remove the stale {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn has_nextest(root: &Path) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    std::process::Command::new(cargo)
        .args(["nextest", "--version"])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ci(root: &Path) -> Result<(), String> {
    cargo(root, &["fmt", "--all", "--", "--check"])?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // A service picks the facade's features; each combination must build
    // warning-free, not only the workspace's union of them.
    for features in ["", "f5xc", "vcf", "f5xc,p12", "vcf,tower"] {
        cargo(
            root,
            &[
                "clippy",
                "-p",
                "refresh-sdk",
                "--lib",
                "--locked",
                "--no-default-features",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    println!("\n==> cargo xtask validate");
    validate::run(root, &[])?;
    // nextest does not run doctests; the examples in the docs must compile.
    cargo(root, &["test", "--workspace", "--locked", "--doc"])?;
    // Broken intra-doc links and malformed docs are errors, as on docs.rs.
    cargo_with_env(
        root,
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", OsStr::new("-D warnings"))],
    )?;
    // A crate outside the workspace uses the SDK and the sandbox as a
    // downstream service would; it shares the target folder, so nothing is
    // compiled twice.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    cargo_with_env(
        root,
        &["test", "--manifest-path", "tests/downstream/Cargo.toml"],
        &[("CARGO_TARGET_DIR", target.as_os_str())],
    )?;
    // The README's example of calling the rest of SDDC Manager runs, start
    // to end, against the sandbox.
    cargo(
        root,
        &[
            "run",
            "--locked",
            "-p",
            "refresh-sdk",
            "--example",
            "list_domains",
        ],
    )?;
    forget_packaged_copies(&target)?;
    // The publishable crates, each verified by building it from its packaged
    // form; the xtask, the workspace tests, the tests' loopback fake and the
    // types-vs-spec comparison are `publish = false` tools (`cargo package
    // --workspace` would package them too).
    cargo(
        root,
        &[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--exclude",
            "workspace-tests",
            "--exclude",
            "refresh-loopback",
            "--exclude",
            "refresh-schema-drift",
            "--locked",
            "--allow-dirty",
        ],
    )?;
    println!("\nci: all checks passed");
    Ok(())
}
