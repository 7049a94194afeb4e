//! `refresh sandbox`: both APIs on one local listener until Ctrl-C, SIGTERM
//! or SIGHUP.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use refresh_sandbox::{ExposeSecret, Sandbox};

use crate::exit::Failure;
use crate::stop::StopSignals;

pub async fn serve(json: bool, listen: SocketAddr, tls: bool) -> Result<(), Failure> {
    // Before anything is printed: a script that reads the addresses and
    // stops the sandbox at once must not kill it before the CA file is gone.
    let mut signals = StopSignals::listen()
        .map_err(|e| Failure::Sandbox(format!("cannot listen for Ctrl-C or SIGTERM: {e}")))?;
    let sandbox = Sandbox::builder().listen(listen).tls(tls).start().await?;
    let credentials = sandbox.credentials();
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
        out!(
            "{}",
            serde_json::json!({
                "f5xc_url": sandbox.f5xc_url(),
                "vcf_url": sandbox.vcf_url(),
                "f5xc_api_token": credentials.f5xc_api_token.expose_secret(),
                "f5xc_pipelines": credentials.f5xc_pipelines,
                "vcf_username": credentials.vcf_username,
                "vcf_password": credentials.vcf_password.expose_secret(),
                "vcf_api_key": credentials.vcf_api_key.expose_secret(),
                "vcf_id_token": credentials.vcf_id_token.expose_secret(),
                "ca_cert": ca_file.as_ref().map(|p| p.display().to_string()),
            })
        );
    } else {
        out!("F5 XC AI Data BFDP: {}", sandbox.f5xc_url());
        out!("VCF SDDC Manager:   {}", sandbox.vcf_url());
        out!(
            "F5 XC pipelines:    {}",
            credentials.f5xc_pipelines.join(", ")
        );
        if let Some(path) = &ca_file {
            out!("CA certificate:     {} (pass --ca-cert)", path.display());
        }
        out!(
            "Demo credentials for this sandbox only (it prints them on purpose), for another shell:"
        );
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
        out!("Serving until Ctrl-C (or SIGTERM).");
    }
    signals.recv().await;
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
