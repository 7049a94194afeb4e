//! `refresh sandbox`: both APIs on one local listener, with sample SDDC
//! Manager endpoints and any `--route` declared, until Ctrl-C, SIGTERM or
//! SIGHUP.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use refresh_sandbox::{ExposeSecret, Method, Sandbox};

use crate::exit::Failure;
use crate::stop::StopSignals;

/// One `--route METHOD PATH FILE`, read.
struct Route {
    method: Method,
    path: String,
    body: serde_json::Value,
    file: PathBuf,
}

/// The methods `--route` takes: those `refresh vcf api` sends.
const ROUTE_METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Reads every `--route` (flattened triples, as clap gives them); the first
/// unusable one is a usage error (exit 2) naming it, before anything starts.
fn read_routes(values: &[String]) -> Result<Vec<Route>, Failure> {
    values
        .chunks(3)
        .map(|triple| {
            let [method, path, file] = triple else {
                return Err(Failure::usage(
                    "--route takes three values: METHOD PATH FILE",
                ));
            };
            let named = format!("--route {method} {path}");
            let method = ROUTE_METHODS
                .into_iter()
                .find(|m| m.as_str().eq_ignore_ascii_case(method))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "{named}: the method must be GET, POST, PUT, PATCH or DELETE"
                    ))
                })?;
            if !path.starts_with('/') || path.contains(['?', '#']) {
                return Err(Failure::usage(format!(
                    "{named}: the path must start with / and carry no query (queries are ignored when matching)"
                )));
            }
            let text = std::fs::read(file).map_err(|e| {
                Failure::usage(format!("{named}: cannot read {file}: {e}"))
            })?;
            let body = serde_json::from_slice(&text).map_err(|e| {
                Failure::usage(format!("{named}: {file} is not JSON: {e}"))
            })?;
            Ok(Route {
                method,
                path: path.clone(),
                body,
                file: PathBuf::from(file),
            })
        })
        .collect()
}

pub async fn serve(
    json: bool,
    listen: SocketAddr,
    tls: bool,
    route_args: &[String],
) -> Result<(), Failure> {
    // Before anything is printed: a script that reads the addresses and
    // stops the sandbox at once must not kill it before the CA file is gone.
    let mut signals = StopSignals::listen()
        .map_err(|e| Failure::Sandbox(format!("cannot listen for Ctrl-C or SIGTERM: {e}")))?;
    let routes = read_routes(route_args)?;
    let mut builder = Sandbox::builder()
        .listen(listen)
        .tls(tls)
        .with_sddc_samples();
    for route in &routes {
        builder = builder.protected_route(route.method.clone(), &route.path, route.body.clone());
    }
    let sandbox = builder.start().await.map_err(|e| match e {
        // A --route on a path of the specs (such as /v1/tokens).
        refresh_sandbox::Error::ProtectedRoute(_) => Failure::usage(format!("--route: {e}")),
        e => e.into(),
    })?;
    let credentials = sandbox.credentials();
    let exposed = sandbox.listens_beyond_loopback();
    let local_addr = sandbox.local_addr();
    let listening = match local_addr.ip().is_unspecified() {
        true => format!("{local_addr} (all interfaces)"),
        false => local_addr.to_string(),
    };
    if exposed {
        eprintln!(
            "warning: the sandbox listens on {listening}: other machines can reach it; its credentials are random for this run, not the published demo ones, but it is a test server all the same"
        );
        if !tls {
            eprintln!(
                "warning: the sandbox serves plain HTTP beyond loopback: anyone on the network path can read its credentials and tokens; --tls encrypts"
            );
        }
    }
    // The file a route came from, if any (a sample has none).
    let from_file = |method: &Method, path: &str| {
        routes
            .iter()
            .rev()
            .find(|r| r.method == *method && r.path == path)
            .map(|r| r.file.display().to_string())
    };
    let served = sandbox.protected_routes();
    // The CA goes to a file so that `--ca-cert` can point at it, in a
    // directory of our own: removed when this returns, on a signal or an
    // error alike.
    let ca = match sandbox.ca_pem() {
        Some(pem) => Some(
            PrivateDir::create()
                .and_then(|dir| dir.write("ca.pem", pem).map(|path| (dir, path)))
                .map_err(|e| Failure::Sandbox(format!("cannot write the CA certificate: {e}")))?,
        ),
        None => None,
    };
    let ca_file = ca.as_ref().map(|(_, path)| path);
    if json {
        let routes: Vec<serde_json::Value> = served
            .iter()
            .map(|(method, path)| {
                serde_json::json!({
                    "method": method.as_str(),
                    "path": path,
                    "file": from_file(method, path),
                })
            })
            .collect();
        out!(
            "{}",
            serde_json::json!({
                "f5xc_url": sandbox.f5xc_url(),
                "vcf_url": sandbox.vcf_url(),
                "listen": local_addr.to_string(),
                "listens_beyond_loopback": exposed,
                "f5xc_api_token": credentials.f5xc_api_token.expose_secret(),
                "f5xc_pipelines": credentials.f5xc_pipelines,
                "vcf_username": credentials.vcf_username,
                "vcf_password": credentials.vcf_password.expose_secret(),
                "vcf_api_key": credentials.vcf_api_key.expose_secret(),
                "vcf_id_token": credentials.vcf_id_token.expose_secret(),
                "ca_cert": ca_file.as_ref().map(|p| p.display().to_string()),
                "routes": routes,
            })
        );
    } else {
        out!("F5 XC AI Data BFDP: {}", sandbox.f5xc_url());
        out!("VCF SDDC Manager:   {}", sandbox.vcf_url());
        if exposed {
            out!("Listening on:       {listening}");
        }
        out!(
            "F5 XC pipelines:    {}",
            credentials.f5xc_pipelines.join(", ")
        );
        if let Some(path) = &ca_file {
            out!("CA certificate:     {} (pass --ca-cert)", path.display());
        }
        out!(
            "SDDC Manager API (with a sandbox access token, e.g. `refresh vcf api GET /v1/domains`):"
        );
        let width = served
            .iter()
            .map(|(m, _)| m.as_str().len())
            .max()
            .unwrap_or(0);
        for (method, path) in &served {
            match from_file(method, path) {
                Some(file) => out!("  {:width$} {path}  (from {file})", method.as_str()),
                None => out!("  {:width$} {path}", method.as_str()),
            }
        }
        match exposed {
            true => out!(
                "Random credentials for this run (it prints them on purpose), for another shell:"
            ),
            false => out!(
                "Demo credentials for this sandbox only (it prints them on purpose), for another shell:"
            ),
        }
        out!("  export VOLT_API_URL={}", sandbox.f5xc_url());
        out!(
            "  export VOLT_API_TOKEN={}",
            credentials.f5xc_api_token.expose_secret()
        );
        out!("  export VCF_SDDC_MANAGER_HOST={}", sandbox.vcf_url());
        out!(
            "  export VCF_SDDC_MANAGER_USERNAME={}",
            credentials.vcf_username
        );
        out!(
            "  export VCF_SDDC_MANAGER_PASSWORD={}",
            credentials.vcf_password.expose_secret()
        );
        if exposed && !tls {
            // Clients refuse plain http:// to anything but loopback unless
            // told otherwise: the block must work as pasted.
            out!(
                "  export VOLT_ALLOW_INSECURE_HTTP=true VCF_ALLOW_INSECURE_HTTP=true  # plain HTTP beyond loopback"
            );
        }
        // Commented out: the SDK takes one kind of credentials, so pasting
        // the whole block still configures the username and password.
        out!("  # or, instead of the username and password, one of:");
        out!(
            "  # export VCF_SDDC_MANAGER_API_KEY={}",
            credentials.vcf_api_key.expose_secret()
        );
        out!(
            "  # export VCF_SDDC_MANAGER_ID_TOKEN={}",
            credentials.vcf_id_token.expose_secret()
        );
        out!("Serving until Ctrl-C (or SIGTERM or SIGHUP).");
    }
    // Nobody can read the URLs and credentials: serving would help no one.
    if crate::UNWRITTEN.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Failure::Output("cannot write to stdout".to_owned()));
    }
    signals.recv().await;
    // Returns within the sandbox's grace period (1 s) even with a client
    // stuck mid-request.
    sandbox.shutdown().await;
    Ok(())
}

/// A directory only this user can enter, under the temporary directory,
/// with a name nobody could plant a link at beforehand; removed with what
/// it holds when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> io::Result<PrivateDir> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        // A fresh random name each try: `create` fails rather than follow a
        // link or reuse a directory that is already there.
        let mut last = io::Error::other("no attempt");
        for _ in 0..8 {
            let name = format!("refresh-sandbox-{:016x}", fastrand::u64(..));
            let path = std::env::temp_dir().join(name);
            match builder.create(&path) {
                Ok(()) => return Ok(PrivateDir(path)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Writes a new file `name` (0600) in the directory.
    fn write(&self, name: &str, text: &str) -> io::Result<PathBuf> {
        let path = self.0.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(text.as_bytes())?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
