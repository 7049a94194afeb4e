//! `cargo xtask build-cost`: what depending on the SDK costs a service's
//! cold build, against the same calls written by hand with `reqwest`.
//!
//! Three tiny binaries are generated into a scratch folder under the system
//! temp directory (removed afterwards), each with the workspace's
//! `Cargo.lock` so that every shared crate is the version the workspace
//! uses:
//!
//! - (a) `refresh-sdk` with default features: a VCF token from `VcfSession`
//!   and an F5 XC pipeline token from `F5Client`;
//! - (b) `refresh-sdk` with `default-features = false, features = ["vcf"]`:
//!   the VCF token only;
//! - (c) both calls by hand with the workspace's own `reqwest`, `serde` and
//!   `tokio` dependency lines (same versions and features).
//!
//! Each is built cold in a fresh target directory of its own (once, or
//! `--rounds N` times with the order rotated each round, compared by
//! median), and measured: CPU seconds of the whole cargo process tree (user + system,
//! from `getrusage(RUSAGE_CHILDREN)`), wall seconds, and the packages cargo
//! compiled (its `Compiling` lines). Per-package compile times come from
//! `cargo build --timings`. Not part of CI: it takes minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The issue's targets: CPU time against the hand-written build.
const TARGET_DEFAULT: f64 = 1.5;
const TARGET_VCF_ONLY: f64 = 1.3;

/// How many of the extra packages to list, by compile time.
const TOP: usize = 15;

/// One generated service.
struct Service {
    id: &'static str,
    title: &'static str,
    dependencies: String,
    main: &'static str,
}

/// What one cold build cost.
struct Measurement {
    cpu: Duration,
    wall: Duration,
    /// `name vX.Y.Z` of every package cargo compiled (the service included).
    compiled: BTreeSet<String>,
    /// `name vX.Y.Z` of the packages reachable through normal dependencies
    /// (`cargo tree -e normal`): what the binary links, and the proc macros
    /// its code uses; the rest of `compiled` only serves build scripts.
    normal: BTreeSet<String>,
    /// Seconds per package from `--timings` (its units summed: build script
    /// compile and run, library), empty when the report could not be read.
    unit_seconds: BTreeMap<String, f64>,
}

/// Removes the scratch folder however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// Runs the measurement and prints the table, the ratios and the packages
/// the SDK adds; `release` builds with `--release`. With more than one
/// round, the services are built in a rotated order each round (so that no
/// service always comes first) and the medians are compared.
pub fn run(root: &Path, release: bool, rounds: u32) -> Result<(), String> {
    let services = services(root)?;
    let lock = root.join("Cargo.lock");
    let scratch =
        Scratch(std::env::temp_dir().join(format!("refresh-build-cost-{}", std::process::id())));
    let mut samples: Vec<Vec<Measurement>> = services.iter().map(|_| Vec::new()).collect();
    let rounds = rounds.max(1) as usize;
    for round in 0..rounds {
        for turn in 0..services.len() {
            let index = (turn + round) % services.len();
            let service = &services[index];
            let dir = scratch.0.join(format!("{}-{round}", service.id));
            write_service(&dir, service, &lock)?;
            println!(
                "\n==> round {}/{rounds}, ({}) {}: cold `cargo build{}` in {}",
                round + 1,
                service.id,
                service.title,
                if release { " --release" } else { "" },
                dir.display()
            );
            let measurement = measure(&dir, release)?;
            println!(
                "    {:.1} s CPU, {:.1} s wall, {} packages compiled",
                measurement.cpu.as_secs_f64(),
                measurement.wall.as_secs_f64(),
                measurement.compiled.len()
            );
            // A target folder is a few hundred MB; do not keep them.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
            samples[index].push(measurement);
        }
    }
    let summaries: Vec<Summary> = samples.into_iter().map(Summary::new).collect();
    report(&services, &summaries);
    Ok(())
}

/// One service's builds, summed up.
struct Summary {
    /// CPU and wall seconds of each build, in the order they ran.
    cpu: Vec<f64>,
    wall: Vec<f64>,
    /// The packages of the first build (every build compiles the same).
    compiled: BTreeSet<String>,
    /// Of those, the ones reachable through normal dependencies.
    normal: BTreeSet<String>,
    /// Mean seconds per package over the builds that had a timings report.
    unit_seconds: BTreeMap<String, f64>,
}

impl Summary {
    fn new(builds: Vec<Measurement>) -> Summary {
        let cpu = builds.iter().map(|m| m.cpu.as_secs_f64()).collect();
        let wall = builds.iter().map(|m| m.wall.as_secs_f64()).collect();
        let timed: Vec<_> = builds
            .iter()
            .filter(|m| !m.unit_seconds.is_empty())
            .collect();
        let mut unit_seconds = BTreeMap::new();
        for m in &timed {
            for (name, seconds) in &m.unit_seconds {
                *unit_seconds.entry(name.clone()).or_insert(0.0) += seconds / timed.len() as f64;
            }
        }
        let (compiled, normal) = builds
            .into_iter()
            .next()
            .map(|m| (m.compiled, m.normal))
            .unwrap_or_default();
        Summary {
            cpu,
            wall,
            compiled,
            normal,
            unit_seconds,
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The three services, with the workspace's own dependency lines.
fn services(root: &Path) -> Result<Vec<Service>, String> {
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let line = |name: &str| workspace_dependency(&manifest, name);
    let tokio = line("tokio")?;
    let sdk = root.join("crates/refresh-sdk");
    let sdk = sdk
        .to_str()
        .ok_or_else(|| format!("the path {} is not UTF-8", sdk.display()))?
        .replace('\\', "/");
    Ok(vec![
        Service {
            id: "a",
            title: "refresh-sdk, default features (VCF and F5 XC)",
            dependencies: format!("refresh-sdk = {{ path = \"{sdk}\" }}\ntokio = {tokio}\n"),
            main: SDK_DEFAULT_MAIN,
        },
        Service {
            id: "b",
            title: "refresh-sdk, features = [\"vcf\"] (VCF only)",
            dependencies: format!(
                "refresh-sdk = {{ path = \"{sdk}\", default-features = false, features = [\"vcf\"] }}\ntokio = {tokio}\n"
            ),
            main: SDK_VCF_MAIN,
        },
        Service {
            id: "c",
            title: "hand-written: reqwest + serde + tokio",
            dependencies: format!(
                "reqwest = {}\nserde = {}\ntokio = {tokio}\n",
                line("reqwest")?,
                line("serde")?
            ),
            main: HAND_WRITTEN_MAIN,
        },
    ])
}

/// The right-hand side of `name = ...` in `[workspace.dependencies]`.
fn workspace_dependency(manifest: &str, name: &str) -> Result<String, String> {
    let mut in_section = false;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == "[workspace.dependencies]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=')
            && key.trim() == name
        {
            return Ok(value.trim().to_owned());
        }
    }
    Err(format!(
        "`{name}` is not a one-line entry of [workspace.dependencies] in Cargo.toml"
    ))
}

fn write_service(dir: &Path, service: &Service, lock: &Path) -> Result<(), String> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("cannot create {}: {e}", src.display()))?;
    let manifest = format!(
        "[package]\nname = \"build-cost-{id}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         # Not part of any workspace.\n[workspace]\n\n[dependencies]\n{deps}",
        id = service.id,
        deps = service.dependencies
    );
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(dir.join("Cargo.toml"), &manifest)?;
    write(src.join("main.rs"), service.main)?;
    // The workspace's versions for every shared package.
    std::fs::copy(lock, dir.join("Cargo.lock"))
        .map_err(|e| format!("cannot copy {}: {e}", lock.display()))?;
    // Adapt the copied lock to this package (drops what it does not use,
    // keeps every other version), outside the measurement; offline first,
    // the registry only when the local index lacks something.
    if cargo(dir, &["update", "--workspace", "--offline"], &[])?.success {
        return Ok(());
    }
    let online = cargo(dir, &["update", "--workspace"], &[])?;
    match online.success {
        true => Ok(()),
        false => Err(format!(
            "`cargo update --workspace` failed in {}:\n{}",
            dir.display(),
            online.stderr
        )),
    }
}

struct Output {
    success: bool,
    stderr: String,
}

/// Runs cargo in `dir` with the compiler wrapper removed (a cache such as
/// sccache would make a cold build warm) and its own target folder.
fn cargo(dir: &Path, args: &[&str], extra: &[&str]) -> Result<Output, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args(args)
        .args(extra)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    Ok(Output {
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

fn measure(dir: &Path, release: bool) -> Result<Measurement, String> {
    let mut args = vec!["build", "--locked", "--timings"];
    if release {
        args.push("--release");
    }
    let mut measured = timed(dir, &args, &["--offline"])?;
    if !measured.0.success {
        // A package missing from the local cache: start cold again, online.
        println!("    offline build failed; building again with the registry");
        let target = dir.join("target");
        let _ = std::fs::remove_dir_all(&target);
        measured = timed(dir, &args, &[])?;
    }
    let (output, cpu, wall) = measured;
    if !output.success {
        return Err(format!(
            "`cargo {}` failed in {}:\n{}",
            args.join(" "),
            dir.display(),
            output.stderr
        ));
    }
    let compiled = output
        .stderr
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("Compiling "))
        .map(|rest| {
            // `name vX.Y.Z (path)` for path packages: keep name and version.
            rest.split(' ').take(2).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let unit_seconds = unit_seconds(&dir.join("target/cargo-timings/cargo-timing.html"))
        .unwrap_or_else(|why| {
            println!("    no per-package times: {why}");
            BTreeMap::new()
        });
    let normal = normal_dependencies(dir)?;
    Ok(Measurement {
        cpu,
        wall,
        compiled,
        normal,
        unit_seconds,
    })
}

/// `cargo tree -e normal` of the service: `name vX.Y.Z` of each package.
fn normal_dependencies(dir: &Path) -> Result<BTreeSet<String>, String> {
    let args = [
        "tree",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--offline",
        "--locked",
    ];
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed in {}:\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect())
}

/// Runs cargo and returns its output, the CPU time of its process tree and
/// the wall time.
fn timed(
    dir: &Path,
    args: &[&str],
    extra: &[&str],
) -> Result<(Output, Duration, Duration), String> {
    let cpu_before = children_cpu()?;
    let started = Instant::now();
    let output = cargo(dir, args, extra)?;
    let wall = started.elapsed();
    let cpu = children_cpu()?.saturating_sub(cpu_before);
    Ok((output, cpu, wall))
}

/// User + system CPU time of every child process this process has waited
/// for, and of their waited-for descendants (cargo waits for each rustc and
/// build script).
#[cfg(unix)]
fn children_cpu() -> Result<Duration, String> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of one `rusage`, which getrusage
    // fills completely when it returns 0.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(format!(
            "getrusage(RUSAGE_CHILDREN) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: getrusage returned 0, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

#[cfg(not(unix))]
fn children_cpu() -> Result<Duration, String> {
    Err("build-cost measures CPU time with getrusage, which needs a Unix".to_owned())
}

/// Seconds per package (`name vX.Y.Z`) from cargo's `--timings` report: the
/// `UNIT_DATA` array it embeds, with each unit's `duration` summed per
/// package.
fn unit_seconds(report: &Path) -> Result<BTreeMap<String, f64>, String> {
    let html = std::fs::read_to_string(report)
        .map_err(|e| format!("cannot read {}: {e}", report.display()))?;
    let start = html
        .find("const UNIT_DATA = ")
        .map(|at| at + "const UNIT_DATA = ".len())
        .ok_or("the report has no UNIT_DATA")?;
    let end = html[start..]
        .find("];")
        .map(|at| start + at + 1)
        .ok_or("UNIT_DATA does not end")?;
    let units: Vec<serde_json::Value> = serde_json::from_str(&html[start..end])
        .map_err(|e| format!("UNIT_DATA is not the expected JSON: {e}"))?;
    let mut seconds = BTreeMap::new();
    for unit in units {
        let (Some(name), Some(version), Some(duration)) = (
            unit["name"].as_str(),
            unit["version"].as_str(),
            unit["duration"].as_f64(),
        ) else {
            return Err("a UNIT_DATA entry lacks name, version or duration".to_owned());
        };
        *seconds.entry(format!("{name} v{version}")).or_insert(0.0) += duration;
    }
    Ok(seconds)
}

fn report(services: &[Service], summaries: &[Summary]) {
    let rounds = summaries.first().map_or(0, |s| s.cpu.len());
    println!(
        "\nbuild cost, cold, {rounds} build(s) of each{}:\n",
        if rounds > 1 { "; medians" } else { "" }
    );
    println!("| service | CPU s (user+sys) | wall s | packages compiled |\n|---|---:|---:|---:|");
    for (service, s) in services.iter().zip(summaries) {
        println!(
            "| ({}) {} | {:.1} | {:.1} | {} |",
            service.id,
            service.title,
            median(&s.cpu),
            median(&s.wall),
            s.compiled.len()
        );
    }
    if rounds > 1 {
        println!("\nevery build, in the order of the rounds (CPU s / wall s):");
        for (service, s) in services.iter().zip(summaries) {
            let builds: Vec<String> = s
                .cpu
                .iter()
                .zip(&s.wall)
                .map(|(cpu, wall)| format!("{cpu:.1} / {wall:.1}"))
                .collect();
            println!("  ({}) {}", service.id, builds.join(", "));
        }
    }
    let [a, b, c] = summaries else {
        return;
    };
    println!();
    for (label, s, target) in [
        ("(a)/(c)", a, TARGET_DEFAULT),
        ("(b)/(c)", b, TARGET_VCF_ONLY),
    ] {
        let cpu = median(&s.cpu) / median(&c.cpu).max(f64::EPSILON);
        let wall = median(&s.wall) / median(&c.wall).max(f64::EPSILON);
        let crates = s.compiled.len() as f64 / c.compiled.len().max(1) as f64;
        println!(
            "{label}: CPU {cpu:.2}x (target <= {target}x: {}), wall {wall:.2}x, packages {crates:.2}x",
            if cpu <= target { "met" } else { "NOT met" }
        );
    }
    for (label, s) in [("(a)", a), ("(b)", b)] {
        // The probes themselves differ by name only.
        let extra: Vec<_> = s
            .compiled
            .difference(&c.compiled)
            .filter(|name| !name.starts_with("build-cost-"))
            .collect();
        let mut timed: Vec<(f64, &String)> = extra
            .iter()
            .map(|name| (s.unit_seconds.get(*name).copied().unwrap_or(0.0), *name))
            .collect();
        timed.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(y.1)));
        let total: f64 = timed.iter().map(|(seconds, _)| seconds).sum();
        let (build_only, linked): (Vec<_>, Vec<_>) = timed
            .iter()
            .partition(|(_, name)| !s.normal.contains(name.as_str()));
        let sum = |set: &[&(f64, &String)]| set.iter().map(|(seconds, _)| seconds).sum::<f64>();
        println!(
            "\n{label} compiles {} packages (c) does not, {total:.1} s of unit time: {} only for \
             build scripts ({:.1} s), {} reached by normal dependencies ({:.1} s). The longest \
             (B = build scripts only):",
            extra.len(),
            build_only.len(),
            sum(&build_only),
            linked.len(),
            sum(&linked)
        );
        for (seconds, name) in timed.iter().take(TOP) {
            let only_build = if s.normal.contains(name.as_str()) {
                " "
            } else {
                "B"
            };
            println!("  {seconds:>6.1} s  {only_build} {name}");
        }
        let rest: Vec<&str> = timed.iter().skip(TOP).map(|(_, n)| n.as_str()).collect();
        if !rest.is_empty() {
            println!("  and: {}", rest.join(", "));
        }
    }
}

/// (a): a VCF token through `VcfSession`, an F5 XC token through `F5Client`.
const SDK_DEFAULT_MAIN: &str = r#"//! Build-cost probe (a): the SDK with default features.
use refresh_sdk::{AccessTokenSource, ExposeSecret, F5Client, VcfSession};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vcf = VcfSession::from_env()?;
    let token = vcf.access_token().await?;
    println!("VCF access token: {} bytes", token.expose_secret().len());
    let f5 = F5Client::from_env()?;
    let pipeline = std::env::var("F5_PIPELINE").unwrap_or_else(|_| "my-pipeline".to_owned());
    let token = f5.refresh_token(&pipeline).await?;
    println!("F5 XC pipeline token: {} bytes", token.secret().expose_secret().len());
    Ok(())
}
"#;

/// (b): the VCF token only.
const SDK_VCF_MAIN: &str = r#"//! Build-cost probe (b): the SDK with the `vcf` feature only.
use refresh_sdk::{AccessTokenSource, ExposeSecret, VcfSession};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vcf = VcfSession::from_env()?;
    let token = vcf.access_token().await?;
    println!("VCF access token: {} bytes", token.expose_secret().len());
    Ok(())
}
"#;

/// (c): the same two calls by hand.
const HAND_WRITTEN_MAIN: &str = r#"//! Build-cost probe (c): the same calls by hand with reqwest.
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct TokenCreationSpec {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenPair {
    access_token: Option<String>,
}

#[derive(Serialize)]
struct RefreshTokenRequest {
    product_name: String,
}

#[derive(Deserialize)]
struct RefreshTokenResponse {
    result: Option<String>,
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let host = env("VCF_SDDC_MANAGER_HOST")?;
    let spec = TokenCreationSpec {
        username: env("VCF_SDDC_MANAGER_USERNAME")?,
        password: env("VCF_SDDC_MANAGER_PASSWORD")?,
    };
    let pair: TokenPair = http
        .post(format!("https://{host}/v1/tokens"))
        .json(&spec)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let access = pair.access_token.ok_or("no accessToken")?;
    println!("VCF access token: {} bytes", access.len());

    let url = env("VOLT_API_URL")?;
    let token = env("VOLT_API_TOKEN")?;
    let request = RefreshTokenRequest {
        product_name: std::env::var("F5_PIPELINE").unwrap_or_else(|_| "my-pipeline".to_owned()),
    };
    let response: RefreshTokenResponse = http
        .post(format!(
            "{}/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
            url.trim_end_matches('/')
        ))
        .header("authorization", format!("APIToken {token}"))
        .json(&request)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let result = response.result.ok_or("no result")?;
    println!("F5 XC pipeline token: {} bytes", result.len());
    Ok(())
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn workspace_dependency_lines_are_found_in_their_section_only() {
        let manifest = "[package]\nreqwest = \"no\"\n\n[workspace.dependencies]\n\
                        # HTTP\nreqwest = { version = \"0.13\", features = [\"json\"] }\n\
                        serde = \"1\"\n[profile.dev]\ntokio = \"no\"\n";
        assert_eq!(
            workspace_dependency(manifest, "reqwest").as_deref(),
            Ok("{ version = \"0.13\", features = [\"json\"] }")
        );
        assert_eq!(
            workspace_dependency(manifest, "serde").as_deref(),
            Ok("\"1\"")
        );
        assert!(workspace_dependency(manifest, "tokio").is_err());
    }

    #[test]
    fn the_timings_report_is_summed_per_package() {
        let dir = std::env::temp_dir().join(format!("build-cost-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temp folder");
        let report = dir.join("cargo-timing.html");
        std::fs::write(
            &report,
            "<script>\nconst UNIT_DATA = [\n {\"name\": \"a\", \"version\": \"1.0.0\", \"duration\": 1.5, \"sections\": [[\"x\", {}]]},\n \
             {\"name\": \"a\", \"version\": \"1.0.0\", \"duration\": 0.5},\n {\"name\": \"b\", \"version\": \"2.0.0\", \"duration\": 3.0}\n];\nconst CONCURRENCY_DATA = [];\n</script>",
        )
        .expect("write the report");
        let seconds = unit_seconds(&report).expect("a readable report");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(seconds.get("a v1.0.0"), Some(&2.0));
        assert_eq!(seconds.get("b v2.0.0"), Some(&3.0));
    }
}
