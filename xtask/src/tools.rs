//! The third-party validators, installed by the xtask into the git-ignored
//! `.tools/` folder at pinned versions, and reused when already there so
//! `validate` works offline after the first run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Spectral, the OpenAPI linter (npm).
pub const SPECTRAL_VERSION: &str = "6.16.3";
/// Schemathesis, the API conformance tester (PyPI).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

const NODE_HELP: &str = "Spectral needs Node.js 18 or later with npm: install it from \
    https://nodejs.org or with your package manager (`apt install nodejs npm`, \
    `brew install node`), then run `cargo xtask validate` again";
const PYTHON_HELP: &str = "Schemathesis needs Python 3.9 or later with the venv module: install \
    it from https://www.python.org or with your package manager (`apt install python3 \
    python3-venv`, `brew install python`), then run `cargo xtask validate` again";

/// The `spectral` executable at [`SPECTRAL_VERSION`], installing it into
/// `.tools/spectral` when it is not there yet.
pub fn spectral(root: &Path) -> Result<PathBuf, String> {
    let prefix = root.join(".tools/spectral");
    let bin = prefix.join("node_modules/.bin/spectral");
    let manifest = prefix.join("node_modules/@stoplight/spectral-cli/package.json");
    // The launcher is a node script, so node is needed even when installed.
    require(&["node", "--version"], NODE_HELP)?;
    if installed_npm_version(&manifest).as_deref() == Some(SPECTRAL_VERSION) && bin.exists() {
        return Ok(bin);
    }
    require(&["npm", "--version"], NODE_HELP)?;
    println!(
        "installing @stoplight/spectral-cli@{SPECTRAL_VERSION} into {}",
        prefix.display()
    );
    let package = format!("@stoplight/spectral-cli@{SPECTRAL_VERSION}");
    run_install(
        Command::new("npm")
            .args(["install", "--prefix"])
            .arg(&prefix)
            .args(["--no-audit", "--no-fund", "--loglevel=error", &package]),
        "npm install",
    )?;
    match installed_npm_version(&manifest) {
        Some(version) if version == SPECTRAL_VERSION && bin.exists() => Ok(bin),
        other => Err(format!(
            "npm installed Spectral {other:?} without {}; expected version {SPECTRAL_VERSION}",
            bin.display()
        )),
    }
}

/// The `schemathesis` executable at [`SCHEMATHESIS_VERSION`], creating the
/// virtualenv `.tools/venv` and installing it there when needed.
pub fn schemathesis(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join(".tools/venv");
    let bin = venv.join("bin/schemathesis");
    if installed_schemathesis_version(&bin).as_deref() == Some(SCHEMATHESIS_VERSION) {
        return Ok(bin);
    }
    require(&["python3", "--version"], PYTHON_HELP)?;
    let python = venv.join("bin/python");
    if !python.exists() {
        println!("creating the Python virtualenv {}", venv.display());
        run_install(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )
        .map_err(|e| format!("{e}\n{PYTHON_HELP}"))?;
    }
    println!(
        "installing schemathesis=={SCHEMATHESIS_VERSION} into {}",
        venv.display()
    );
    run_install(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
        ]),
        "pip install",
    )?;
    match installed_schemathesis_version(&bin) {
        Some(version) if version == SCHEMATHESIS_VERSION => Ok(bin),
        other => Err(format!(
            "pip installed Schemathesis {other:?}; expected version {SCHEMATHESIS_VERSION}"
        )),
    }
}

/// Fails with `help` when `command` cannot be run at all.
fn require(command: &[&str], help: &str) -> Result<(), String> {
    let found = Command::new(command[0])
        .args(&command[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    match found {
        true => Ok(()),
        false => Err(format!("`{}` was not found. {help}", command[0])),
    }
}

fn run_install(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}); the first install needs the package registry (npm or PyPI), \
         later runs reuse .tools/ offline:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn installed_npm_version(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_owned)
}

/// `schemathesis --version` prints `schemathesis, version X`.
fn installed_schemathesis_version(bin: &Path) -> Option<String> {
    let output = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.trim().rsplit(' ').next()?;
    Some(version.to_owned())
}
