//! [`F5Credentials`] and [`ClientCertificate`]: API tokens, PEM files and
//! `.p12` API certificates.

use std::fmt;
use std::path::Path;

#[cfg(feature = "p12")]
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::SERVICE;
use crate::env;
use crate::error::{Error, Result};

/// A client certificate presented as the TLS client identity.
#[derive(Clone)]
pub struct ClientCertificate {
    identity_pem: SecretSlice<u8>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCertificate([REDACTED])")
    }
}

impl ClientCertificate {
    /// A PEM certificate (chain) and its PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: SecretSlice<u8>) -> Result<Self> {
        let mut identity = Vec::with_capacity(cert_pem.len() + key_pem.expose_secret().len() + 1);
        identity.extend_from_slice(key_pem.expose_secret());
        identity.push(b'\n');
        identity.extend_from_slice(cert_pem);
        let certificate = ClientCertificate {
            identity_pem: identity.into(),
        };
        certificate.identity()?;
        Ok(certificate)
    }

    /// A PEM certificate file and its PEM private-key file.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let cert_pem = read_file(cert.as_ref(), "certificate")?;
        let key_pem = read_file(key.as_ref(), "private key")?;
        ClientCertificate::from_pem(&cert_pem, key_pem.into())
    }

    /// A PKCS#12 (`.p12`) archive, as F5 XC's console downloads them.
    #[cfg(feature = "p12")]
    pub fn from_p12(der: &[u8], password: &SecretString) -> Result<Self> {
        let wrong = || {
            Error::config("cannot open the .p12 API certificate: wrong password (VES_P12_PASSWORD) or not a PKCS#12 file")
                .for_service(SERVICE)
        };
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password.expose_secret(),
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|_| wrong())?;
        let Some((_, chain)) = store.private_key_chain() else {
            return Err(
                Error::config("the .p12 API certificate holds no private key").for_service(SERVICE),
            );
        };
        if chain.certs().is_empty() {
            return Err(
                Error::config("the .p12 API certificate holds no certificate").for_service(SERVICE),
            );
        }
        let certs: Vec<&[u8]> = chain.certs().iter().map(|cert| cert.as_der()).collect();
        let identity = pem_chain(chain.key().as_der(), &certs);
        let certificate = ClientCertificate {
            identity_pem: identity.into(),
        };
        certificate.identity()?;
        Ok(certificate)
    }

    /// A PKCS#12 (`.p12`) file, as F5 XC's console downloads them.
    #[cfg(feature = "p12")]
    pub fn from_p12_file(path: impl AsRef<Path>, password: &SecretString) -> Result<Self> {
        let der = read_file(path.as_ref(), ".p12 API certificate")?;
        ClientCertificate::from_p12(&der, password)
    }

    pub(super) fn identity(&self) -> Result<reqwest::Identity> {
        reqwest::Identity::from_pem(self.identity_pem.expose_secret()).map_err(|_| {
            Error::config("the client certificate or its private key is not valid PEM")
                .for_service(SERVICE)
        })
    }
}

/// Reads the file an environment variable names. The error names the
/// variable, not its value: that may be a secret pasted into the wrong one.
pub(super) fn read_named(path: &str, variable: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| {
        Error::config(format!("cannot read the file named by {variable}"))
            .with_source(err)
            .for_service(SERVICE)
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| {
        Error::config(format!("cannot read the {what} {}", path.display()))
            .with_source(err)
            .for_service(SERVICE)
    })
}

/// The PEM of a private key and its certificates, written into one buffer
/// of exactly its final size: it is never reallocated (which would leave a
/// copy of the key in freed memory) and becomes a secret without a copy.
#[cfg(feature = "p12")]
fn pem_chain(key: &[u8], certs: &[&[u8]]) -> Vec<u8> {
    use base64::Engine as _;
    const LINE: usize = 64;
    let base64_len = |der: &[u8]| der.len().div_ceil(3) * 4;
    let block_len = |label: &str, der: &[u8]| {
        let body = base64_len(der);
        "-----BEGIN -----\n-----END -----\n".len() + 2 * label.len() + body + body.div_ceil(LINE)
    };
    let block = |out: &mut Vec<u8>, label: &str, der: &[u8]| {
        let mut body = Zeroizing::new(vec![0; base64_len(der)]);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(der, &mut body[..])
            .unwrap_or(0);
        out.extend_from_slice(b"-----BEGIN ");
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(b"-----\n");
        for line in body[..written].chunks(LINE) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(b"-----END ");
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(b"-----\n");
    };
    let total = block_len("PRIVATE KEY", key)
        + certs
            .iter()
            .map(|cert| block_len("CERTIFICATE", cert))
            .sum::<usize>();
    let mut pem = Vec::with_capacity(total);
    block(&mut pem, "PRIVATE KEY", key);
    for cert in certs {
        block(&mut pem, "CERTIFICATE", cert);
    }
    pem
}

/// How F5 XC authenticates the caller. A client keeps its credentials for
/// its whole life (files such as `VOLT_API_TOKEN_FILE` names are read once,
/// when the configuration is read): for a rotated token, build a new
/// [`F5Client`](super::F5Client).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum F5Credentials {
    /// An API token, sent as `Authorization: APIToken <token>`.
    ApiToken(SecretString),
    /// An API certificate, presented as the TLS client identity.
    Certificate(ClientCertificate),
}

impl F5Credentials {
    /// An API token.
    pub fn api_token(token: impl Into<String>) -> Self {
        F5Credentials::ApiToken(SecretString::from(token.into()))
    }
}

/// Where the environment gives a `.p12` API certificate.
// Without the `p12` feature only the variable's name is used.
#[cfg_attr(not(feature = "p12"), allow(dead_code))]
pub(super) enum P12Variable {
    /// `VOLT_API_P12_FILE`: a path.
    File(String),
    /// `VES_P12_CONTENT`: the file's content, base64-encoded.
    Content(SecretString),
}

impl P12Variable {
    fn name(&self) -> &'static str {
        match self {
            P12Variable::File(_) => "VOLT_API_P12_FILE",
            P12Variable::Content(_) => "VES_P12_CONTENT",
        }
    }
}

/// The `.p12` API certificate the environment names, opened with the
/// password in `VES_P12_PASSWORD` or the file `VES_P12_PASSWORD_FILE` names.
#[cfg(feature = "p12")]
pub(super) fn p12_credentials(
    password: Option<env::SecretVar>,
    p12: P12Variable,
) -> Result<F5Credentials> {
    let password = match password {
        Some(env::SecretVar::Value(password)) => password,
        Some(env::SecretVar::File(path)) => {
            env::read_secret_file(&path, "the file named by VES_P12_PASSWORD_FILE", SERVICE)?
        }
        None => {
            return Err(Error::config(format!(
                "{} is set but VES_P12_PASSWORD is not (nor VES_P12_PASSWORD_FILE)",
                p12.name()
            ))
            .for_service(SERVICE));
        }
    };
    let certificate = match p12 {
        P12Variable::File(path) => {
            ClientCertificate::from_p12(&read_named(&path, "VOLT_API_P12_FILE")?, &password)?
        }
        P12Variable::Content(content) => {
            ClientCertificate::from_p12(decode_p12_content(&content)?.expose_secret(), &password)?
        }
    };
    Ok(F5Credentials::Certificate(certificate))
}

/// Without the `p12` feature: an error that says how to turn it on, before
/// anything else (a missing password is not the problem).
#[cfg(not(feature = "p12"))]
pub(super) fn p12_credentials(
    _password: Option<env::SecretVar>,
    p12: P12Variable,
) -> Result<F5Credentials> {
    Err(Error::config(format!(
        "{} is set, but this build of refresh-sdk reads .p12 API certificates only with its \
         `p12` feature: depend on it with `refresh-sdk = {{ features = [\"p12\"] }}` in \
         Cargo.toml, or give the certificate as PEM files in VOLT_API_CERT and VOLT_API_KEY",
        p12.name()
    ))
    .for_service(SERVICE))
}

/// `VES_P12_CONTENT`'s base64 (standard alphabet, padding optional, line
/// breaks and spaces ignored) as bytes. The error says neither the value nor
/// where it went wrong: the offset and byte the decoder reports are a piece
/// of the secret.
#[cfg(feature = "p12")]
fn decode_p12_content(content: &SecretString) -> Result<SecretSlice<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Sized up front, so the archive's text is never reallocated and left
    // behind in freed memory; zeroized when dropped.
    let text = content.expose_secret();
    let mut compact = Zeroizing::new(String::with_capacity(text.len()));
    compact.extend(text.chars().filter(|c| !c.is_ascii_whitespace()));
    match BASE64.decode(compact.as_bytes()) {
        Ok(der) if !der.is_empty() => Ok(der.into()),
        _ => Err(Error::config(
            "VES_P12_CONTENT is not base64: it must hold the .p12 file's content, \
             base64-encoded (as `base64 -w0 api.p12` prints it)",
        )
        .for_service(SERVICE)),
    }
}

#[cfg(all(test, feature = "p12"))]
mod tests {
    use super::pem_chain;

    #[test]
    fn the_pem_chain_is_written_at_exactly_its_final_size() {
        for key_len in 0..70 {
            for cert_len in [0, 1, 2, 3, 47, 48, 49, 100, 1000] {
                let (key, cert) = (vec![7u8; key_len], vec![9u8; cert_len]);
                let pem = pem_chain(&key, &[&cert, &cert]);
                assert_eq!(pem.len(), pem.capacity(), "key {key_len}, cert {cert_len}");
                let text = String::from_utf8(pem).expect("PEM is ASCII");
                assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
                assert!(text.ends_with("-----END CERTIFICATE-----\n"));
                assert!(
                    text.lines()
                        .all(|line| line.len() <= 64 || line.starts_with("-----"))
                );
            }
        }
    }
}
