//! [`VcfCredentials`]: the three kinds of login SDDC Manager takes, fixed
//! or read from a file at every login.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::SERVICE;
use crate::env::{self, Lookup, var as env_var};
use crate::error::{Error, Result};

// The variables of the credentials.
pub(super) const USERNAME: &str = "VCF_SDDC_MANAGER_USERNAME";
pub(super) const PASSWORD: &str = "VCF_SDDC_MANAGER_PASSWORD";
pub(super) const PASSWORD_FILE: &str = "VCF_SDDC_MANAGER_PASSWORD_FILE";
pub(super) const API_KEY: &str = "VCF_SDDC_MANAGER_API_KEY";
pub(super) const API_KEY_FILE: &str = "VCF_SDDC_MANAGER_API_KEY_FILE";
pub(super) const ID_TOKEN: &str = "VCF_SDDC_MANAGER_ID_TOKEN";
pub(super) const ID_TOKEN_FILE: &str = "VCF_SDDC_MANAGER_ID_TOKEN_FILE";

/// Which fields of VCF's `TokenCreationSpec` a login fills.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// `username` and `password`.
    Password { username: String },
    /// `apiKey`.
    ApiKey,
    /// `idToken`.
    IdToken,
}

impl Kind {
    /// What the secret is called in messages.
    fn secret_name(&self) -> &'static str {
        match self {
            Kind::Password { .. } => "password",
            Kind::ApiKey => "API key",
            Kind::IdToken => "ID token",
        }
    }

    /// What to check when SDDC Manager refuses this kind of credentials.
    pub(super) fn refused_hint(&self) -> &'static str {
        match self {
            Kind::Password { .. } => super::errors::PASSWORD_REFUSED_HINT,
            Kind::ApiKey => {
                "Check VCF_SDDC_MANAGER_API_KEY (or the file VCF_SDDC_MANAGER_API_KEY_FILE names)"
            }
            Kind::IdToken => {
                "Check VCF_SDDC_MANAGER_ID_TOKEN (or the file VCF_SDDC_MANAGER_ID_TOKEN_FILE names); an identity token expires"
            }
        }
    }
}

/// Where the secret of [`VcfCredentials`] is kept.
#[derive(Clone)]
enum SecretSource {
    /// Given once, kept for the credentials' life.
    Fixed(SecretString),
    /// Read from this file at every login.
    File {
        path: PathBuf,
        /// The `_FILE` variable that named the file, when the environment
        /// did: errors then name the variable, not the path (which may be a
        /// secret pasted into the wrong variable).
        variable: Option<&'static str>,
    },
}

/// A VCF user's credentials, one of the three kinds SDDC Manager's
/// `POST /v1/tokens` takes: a username and password, an API key, or an
/// identity (ID) token.
///
/// The secret is either fixed ([`new`](Self::new), [`api_key`](Self::api_key),
/// [`id_token`](Self::id_token)) or kept in a file that is read again before
/// every login ([`password_file`](Self::password_file),
/// [`api_key_file`](Self::api_key_file), [`id_token_file`](Self::id_token_file),
/// or a `_FILE` variable): a password rotated in a mounted secret (a
/// Kubernetes `Secret` volume, say) is used from the next login on, without a
/// restart. `Debug` never shows the secret.
#[derive(Clone)]
pub struct VcfCredentials {
    kind: Kind,
    secret: SecretSource,
}

impl fmt::Debug for VcfCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("VcfCredentials");
        out.field("kind", &self.kind.secret_name());
        if let Kind::Password { username } = &self.kind {
            out.field("username", username);
        }
        match &self.secret {
            SecretSource::Fixed(_) => out.field("secret", &"[REDACTED]"),
            SecretSource::File {
                variable: Some(variable),
                ..
            } => out.field("secret_file_named_by", variable),
            SecretSource::File {
                path,
                variable: None,
            } => out.field("secret_file", path),
        };
        out.finish()
    }
}

impl VcfCredentials {
    /// A username and password.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::new("administrator@vsphere.local", "secret");
    /// assert_eq!(credentials.username(), Some("administrator@vsphere.local"));
    /// ```
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        VcfCredentials {
            kind: Kind::Password {
                username: username.into(),
            },
            secret: SecretSource::Fixed(SecretString::from(password.into())),
        }
    }

    /// An API key, sent as `apiKey`.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::api_key("my-api-key");
    /// assert_eq!(credentials.username(), None);
    /// ```
    pub fn api_key(key: impl Into<String>) -> Self {
        VcfCredentials {
            kind: Kind::ApiKey,
            secret: SecretSource::Fixed(SecretString::from(key.into())),
        }
    }

    /// An identity token from the identity provider SDDC Manager trusts,
    /// sent as `idToken`.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::id_token("eyJhbGciOi...");
    /// assert_eq!(credentials.username(), None);
    /// ```
    pub fn id_token(token: impl Into<String>) -> Self {
        VcfCredentials {
            kind: Kind::IdToken,
            secret: SecretSource::Fixed(SecretString::from(token.into())),
        }
    }

    /// A username, and a password kept in the file at `path`, read again
    /// before every login (one trailing line break is not part of it), so a
    /// rotated password is used without a restart. Nothing is read here: a
    /// file that cannot be read fails the login, with a
    /// [`Config`](crate::ErrorKind::Config) error.
    ///
    /// ```
    /// use refresh_sdk::VcfCredentials;
    /// // A Kubernetes Secret mounted as a volume.
    /// let credentials = VcfCredentials::password_file("svc-tokens@vsphere.local", "/run/secrets/vcf/password");
    /// assert_eq!(credentials.username(), Some("svc-tokens@vsphere.local"));
    /// ```
    pub fn password_file(username: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        VcfCredentials {
            kind: Kind::Password {
                username: username.into(),
            },
            secret: SecretSource::File {
                path: path.into(),
                variable: None,
            },
        }
    }

    /// An API key kept in the file at `path`, read again before every login
    /// as in [`password_file`](Self::password_file).
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::api_key_file("/run/secrets/vcf/api-key");
    /// # let _ = credentials;
    /// ```
    pub fn api_key_file(path: impl Into<PathBuf>) -> Self {
        VcfCredentials {
            kind: Kind::ApiKey,
            secret: SecretSource::File {
                path: path.into(),
                variable: None,
            },
        }
    }

    /// An identity token kept in the file at `path`, read again before every
    /// login as in [`password_file`](Self::password_file): whatever renews the
    /// token only has to rewrite the file.
    ///
    /// ```
    /// let credentials = refresh_sdk::VcfCredentials::id_token_file("/var/run/secrets/tokens/vcf");
    /// # let _ = credentials;
    /// ```
    pub fn id_token_file(path: impl Into<PathBuf>) -> Self {
        VcfCredentials {
            kind: Kind::IdToken,
            secret: SecretSource::File {
                path: path.into(),
                variable: None,
            },
        }
    }

    /// Reads the credentials through `lookup`: exactly one of
    ///
    /// - `VCF_SDDC_MANAGER_USERNAME` with `VCF_SDDC_MANAGER_PASSWORD` or
    ///   `VCF_SDDC_MANAGER_PASSWORD_FILE`;
    /// - `VCF_SDDC_MANAGER_API_KEY` or `VCF_SDDC_MANAGER_API_KEY_FILE`;
    /// - `VCF_SDDC_MANAGER_ID_TOKEN` or `VCF_SDDC_MANAGER_ID_TOKEN_FILE`.
    ///
    /// A `_FILE` variable names a file that holds the secret; it is read
    /// here, to report a wrong path at once, and again before every login,
    /// so a secret rotated in a mounted volume is picked up without a
    /// restart. One trailing line break (`\n` or `\r\n`) is not part of the
    /// secret. Setting a secret both ways, no kind, or two kinds is a
    /// [`Config`](crate::ErrorKind::Config) error that names the variables and never
    /// their values.
    ///
    /// ```
    /// use refresh_sdk::VcfCredentials;
    /// let env = |name: &str| match name {
    ///     "VCF_SDDC_MANAGER_API_KEY" => Some("my-api-key".to_owned()),
    ///     _ => None,
    /// };
    /// let credentials = VcfCredentials::from_lookup(env)?;
    /// assert_eq!(credentials.username(), None);
    /// # Ok::<(), refresh_sdk::Error>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let lookup: &Lookup = &lookup;
        let username = env_var(lookup, USERNAME);
        let password = env::secret_var(lookup, PASSWORD, PASSWORD_FILE, SERVICE)?;
        let api_key = env::secret_var(lookup, API_KEY, API_KEY_FILE, SERVICE)?;
        let id_token = env::secret_var(lookup, ID_TOKEN, ID_TOKEN_FILE, SERVICE)?;

        // The variables of each kind that are set, to name them.
        let set = |name: &'static str| env_var(lookup, name).map(|_| name);
        let mut kinds: Vec<Vec<&'static str>> = [
            vec![set(USERNAME), set(PASSWORD), set(PASSWORD_FILE)],
            vec![set(API_KEY), set(API_KEY_FILE)],
            vec![set(ID_TOKEN), set(ID_TOKEN_FILE)],
        ]
        .into_iter()
        .map(|names| names.into_iter().flatten().collect::<Vec<_>>())
        .collect();
        kinds.retain(|names| !names.is_empty());
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.concat();
            return Err(Error::config(format!(
                "VCF credentials of more than one kind are set ({}); set only a username and password, an API key, or an ID token",
                names.join(", ")
            ))
            .for_service(SERVICE));
        }

        let (kind, secret, file_variable) = if let Some(secret) = api_key {
            (Kind::ApiKey, secret, API_KEY_FILE)
        } else if let Some(secret) = id_token {
            (Kind::IdToken, secret, ID_TOKEN_FILE)
        } else if username.is_some() || password.is_some() {
            let username = username.ok_or_else(|| {
                Error::config(format!("{USERNAME} is not set (the password is)"))
                    .for_service(SERVICE)
            })?;
            let password = password.ok_or_else(|| {
                Error::config(format!(
                    "{PASSWORD} is not set (nor {PASSWORD_FILE}); the username needs a password"
                ))
                .for_service(SERVICE)
            })?;
            (Kind::Password { username }, password, PASSWORD_FILE)
        } else {
            return Err(Error::config(format!(
                "no VCF credentials: set {USERNAME} and {PASSWORD} (or {PASSWORD_FILE}), or {API_KEY} (or {API_KEY_FILE}), or {ID_TOKEN} (or {ID_TOKEN_FILE})"
            ))
            .for_service(SERVICE));
        };
        let credentials = VcfCredentials {
            kind,
            secret: match secret {
                env::SecretVar::Value(value) => SecretSource::Fixed(value),
                env::SecretVar::File(path) => SecretSource::File {
                    path,
                    variable: Some(file_variable),
                },
            },
        };
        // A wrong path is reported now rather than at the first login.
        credentials.login()?;
        Ok(credentials)
    }

    /// The username, for credentials of that kind; `None` for an API key or
    /// an identity token.
    pub fn username(&self) -> Option<&str> {
        match &self.kind {
            Kind::Password { username } => Some(username),
            Kind::ApiKey | Kind::IdToken => None,
        }
    }

    /// What one login sends: the fixed secret, or the file's content now.
    pub(crate) fn login(&self) -> Result<Login> {
        let secret = match &self.secret {
            SecretSource::Fixed(secret) => secret.clone(),
            SecretSource::File { path, variable } => {
                let what = match variable {
                    Some(variable) => format!("the file named by {variable}"),
                    None => format!(
                        "the VCF {} file {}",
                        self.kind.secret_name(),
                        path.display()
                    ),
                };
                env::read_secret_file(path, &what, SERVICE)?
            }
        };
        Ok(Login {
            kind: self.kind.clone(),
            secret,
        })
    }

    /// Whether the secret is read from a file at each login, so that it may
    /// change between two logins.
    // The session engine asks this to decide whether refused credentials
    // can have been fixed by a rotation.
    pub(crate) fn is_file_backed(&self) -> bool {
        matches!(self.secret, SecretSource::File { .. })
    }
}

/// What one createToken sends, resolved from the credentials at that moment.
#[derive(Clone)]
pub(crate) struct Login {
    pub(super) kind: Kind,
    pub(super) secret: SecretString,
}

impl Login {
    /// Whether `other` sends the same credentials: the same kind, username
    /// and secret. A login that was refused is not worth sending again
    /// unchanged; one whose secret was rotated is.
    // The session engine compares logins to tell a rotated secret from the
    // one SDDC Manager refused.
    pub(crate) fn same_as(&self, other: &Login) -> bool {
        self.kind == other.kind
            && secrets_equal(
                self.secret.expose_secret().as_bytes(),
                other.secret.expose_secret().as_bytes(),
            )
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Login");
        out.field("kind", &self.kind.secret_name());
        if let Kind::Password { username } = &self.kind {
            out.field("username", username);
        }
        out.field("secret", &"[REDACTED]").finish()
    }
}

/// Compares two secrets in time that depends on their lengths only, not on
/// where they first differ.
fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// A file in the temp directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, content: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "refresh-sdk-vcf-unit-{}-{name}",
                std::process::id()
            ));
            std::fs::write(&path, content).expect("write a temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn secret(login: &Login) -> &str {
        login.secret.expose_secret()
    }

    #[test]
    fn a_file_backed_login_reads_the_file_each_time() {
        let file = TempFile::new("rotate", "first\n");
        let credentials = VcfCredentials::password_file("admin", &file.0);
        assert!(credentials.is_file_backed());
        let first = credentials.login().expect("readable");
        assert_eq!(secret(&first), "first");
        assert!(first.same_as(&credentials.login().expect("readable")));

        std::fs::write(&file.0, "second\r\n").expect("rewrite");
        let second = credentials.login().expect("readable");
        assert_eq!(secret(&second), "second");
        assert!(!second.same_as(&first), "a rotated secret is another login");

        // From a `_FILE` variable, likewise.
        let path = file.0.to_string_lossy().into_owned();
        let credentials = VcfCredentials::from_lookup(|name: &str| {
            (name == "VCF_SDDC_MANAGER_ID_TOKEN_FILE").then(|| path.clone())
        })
        .expect("configured");
        assert!(credentials.is_file_backed());
        assert_eq!(secret(&credentials.login().expect("readable")), "second");
        std::fs::write(&file.0, "third\n\n").expect("rewrite");
        assert_eq!(secret(&credentials.login().expect("readable")), "third\n");
        std::fs::remove_file(&file.0).expect("remove");
        let err = credentials.login().expect_err("gone");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.to_string()
                .contains("the file named by VCF_SDDC_MANAGER_ID_TOKEN_FILE"),
            "{err}"
        );
    }

    #[test]
    fn fixed_credentials_are_not_file_backed_and_log_in_as_given() {
        for credentials in [
            VcfCredentials::new("admin", "pw\n"),
            VcfCredentials::api_key("pw\n"),
            VcfCredentials::id_token("pw\n"),
        ] {
            assert!(!credentials.is_file_backed());
            // A value given in code is the secret as it is.
            assert_eq!(secret(&credentials.login().expect("fixed")), "pw\n");
        }
    }

    #[test]
    fn logins_are_the_same_only_with_the_same_kind_username_and_secret() {
        let login = |credentials: VcfCredentials| credentials.login().expect("fixed");
        let admin = login(VcfCredentials::new("admin", "s"));
        assert!(admin.same_as(&login(VcfCredentials::new("admin", "s"))));
        assert!(!admin.same_as(&login(VcfCredentials::new("other", "s"))));
        assert!(!admin.same_as(&login(VcfCredentials::new("admin", "t"))));
        assert!(!admin.same_as(&login(VcfCredentials::new("admin", "s2"))));
        assert!(!admin.same_as(&login(VcfCredentials::api_key("s"))));
        let key = login(VcfCredentials::api_key("s"));
        assert!(key.same_as(&login(VcfCredentials::api_key("s"))));
        assert!(!key.same_as(&login(VcfCredentials::id_token("s"))));
        assert!(!key.same_as(&login(VcfCredentials::api_key("t"))));
        let debug = format!("{admin:?} {key:#?}");
        assert!(debug.contains("admin"), "{debug}");
        assert!(!debug.contains("\"s\""), "{debug}");
    }
}
