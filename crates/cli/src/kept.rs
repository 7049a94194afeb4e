//! What `refresh` keeps between runs, per SDDC Manager host and user: the
//! token pair of `refresh vcf login`, and the logins SDDC Manager refused
//! lately (it locks an account for 24 hours after 3 failed logins, and each
//! run of a script would otherwise start with no memory of them).
//!
//! Where: `$XDG_RUNTIME_DIR/refresh/` (a per-user tmpfs), else the user's
//! cache directory. The directory is 0700 and the files 0600, created
//! without following links; a directory or file that another user owns or
//! that others can read is refused, as ssh refuses a loose key. An advisory
//! lock (`flock`) per host and user serialises what runs do with them, so
//! parallel runs renew once and never log in past the limit together.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use refresh_sdk::{
    AccessToken, AccessTokenSource, Error, ErrorKind, ExposeSecret, SecretString, TokenFuture,
    VcfClient,
};

use crate::exit::Failure;

/// At most this many refused logins per host and user in [`REFUSED_WINDOW`]:
/// SDDC Manager locks the account at the third.
const REFUSED_LIMIT: usize = 2;
const REFUSED_WINDOW: Duration = Duration::from_secs(15 * 60);
/// An access token this close to its end is renewed first.
const SKEW: Duration = Duration::from_secs(60);

/// The folder of kept logins.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store, created (0700) if it is not there; refused if it is not
    /// this user's alone.
    pub fn open() -> Result<Store, Failure> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|dir| !dir.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .ok_or_else(|| {
                Failure::usage("no place to keep the login: set XDG_RUNTIME_DIR or HOME")
            })?;
        let dir = base.join("refresh");
        std::fs::create_dir_all(&base).map_err(|e| store_error(&base, "cannot create", &e))?;
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(store_error(&dir, "cannot create", &e)),
        }
        let meta =
            std::fs::symlink_metadata(&dir).map_err(|e| store_error(&dir, "cannot read", &e))?;
        if !meta.is_dir() {
            return Err(Failure::usage(format!(
                "{} is not a directory (a link?): refusing to keep logins there",
                dir.display()
            )));
        }
        private(&dir, &meta)?;
        Ok(Store { dir })
    }

    /// Locks the records of `user` at `host` until the guard is dropped,
    /// waiting for another run that holds them.
    pub fn lock(&self, host: &str, user: &str) -> Result<Locked, Failure> {
        let key = key(host, user);
        let path = self.dir.join(format!("{key}.lock"));
        let file = open_private(&path, false)?;
        flock(&file).map_err(|e| store_error(&path, "cannot lock", &e))?;
        Ok(Locked {
            _lock: file,
            login: self.dir.join(format!("{key}.login")),
            refused: self.dir.join(format!("{key}.refused")),
        })
    }

    /// Whether a login is kept for `user` at `host` (without the lock).
    pub fn has_login(&self, host: &str, user: &str) -> bool {
        self.dir.join(format!("{}.login", key(host, user))).exists()
    }
}

/// A kept token pair.
pub struct Kept {
    pub access: SecretString,
    pub refresh: SecretString,
    /// When the access token stops being used, in seconds since 1970.
    pub expires: u64,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Kept {
    /// A pair just received: the access token lives until its JWT `exp`,
    /// or an hour (VCF's) when it has none.
    pub fn new(access: SecretString, refresh: SecretString) -> Kept {
        let expires = refresh_sdk::jwt::expiry(access.expose_secret())
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
        Kept {
            access,
            refresh,
            expires: seconds(expires),
        }
    }

    fn fresh(&self) -> bool {
        seconds(SystemTime::now() + SKEW) < self.expires
    }
}

/// The records of one host and user, locked.
pub struct Locked {
    _lock: File,
    login: PathBuf,
    refused: PathBuf,
}

impl Locked {
    /// The kept login, if any.
    pub fn read(&self) -> Result<Option<Kept>, Failure> {
        let Some(text) = read_private(&self.login)? else {
            return Ok(None);
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| Failure::usage(format!("{} is not a kept login", self.login.display())))?;
        let field = |name: &str| {
            json[name]
                .as_str()
                .map(|v| SecretString::from(v.to_owned()))
        };
        match (
            field("access_token"),
            field("refresh_token"),
            json["expires"].as_u64(),
        ) {
            (Some(access), Some(refresh), Some(expires)) => Ok(Some(Kept {
                access,
                refresh,
                expires,
            })),
            _ => Err(Failure::usage(format!(
                "{} is not a kept login",
                self.login.display()
            ))),
        }
    }

    /// Keeps `kept`, replacing what was kept.
    pub fn write(&self, kept: &Kept) -> Result<(), Failure> {
        let text = serde_json::json!({
            "access_token": kept.access.expose_secret(),
            "refresh_token": kept.refresh.expose_secret(),
            "expires": kept.expires,
        })
        .to_string();
        write_private(&self.login, &text)
    }

    /// Forgets the kept login.
    pub fn remove(&self) -> Result<(), Failure> {
        remove(&self.login)
    }

    /// Refuses a login while [`REFUSED_LIMIT`] were refused in the last
    /// [`REFUSED_WINDOW`]: nothing is sent, and the error says when a login
    /// may be tried again.
    pub fn check_refusals(&self, host: &str, user: &str) -> Result<(), Failure> {
        let recent = self.refusals()?;
        if recent.len() < REFUSED_LIMIT {
            return Ok(());
        }
        let first = recent.first().copied().unwrap_or_default();
        let again = UNIX_EPOCH + Duration::from_secs(first) + REFUSED_WINDOW;
        Err(Failure::Sdk(Error::custom(
            ErrorKind::Auth,
            format!(
                "not logging in as {user} at {host}: SDDC Manager refused {} logins in the last \
                 15 minutes and locks the account for a day at the third; a login may be tried \
                 again after {} (fix the password first)",
                recent.len(),
                httpdate::fmt_http_date(again)
            ),
        )))
    }

    /// Records what a login ended with: a refusal is kept, a success
    /// clears the record.
    pub fn record_login<T>(&self, outcome: &refresh_sdk::Result<T>) -> Result<(), Failure> {
        match outcome {
            Ok(_) => remove(&self.refused),
            Err(e) if refused_login(e) => {
                let mut recent = self.refusals()?;
                recent.push(seconds(SystemTime::now()));
                let text = recent
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                write_private(&self.refused, &text)
            }
            Err(_) => Ok(()),
        }
    }

    /// The refused logins of the last [`REFUSED_WINDOW`], oldest first.
    fn refusals(&self) -> Result<Vec<u64>, Failure> {
        let since = seconds(SystemTime::now()).saturating_sub(REFUSED_WINDOW.as_secs());
        Ok(read_private(&self.refused)?
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse::<u64>().ok())
            .filter(|at| *at > since)
            .collect())
    }
}

/// Whether a login was refused as such: SDDC Manager's answer to wrong
/// credentials (400, 401 or 403, an `Auth` error).
pub fn refused_login(error: &Error) -> bool {
    error.kind() == ErrorKind::Auth
        && error
            .status()
            .is_some_and(|s| matches!(s.as_u16(), 400 | 401 | 403))
}

/// A kept login as the token source of `refresh vcf api` and `refresh vcf
/// token`: renews the access token with the refresh token when needed, under
/// the lock, and never logs in.
#[derive(Debug)]
pub struct KeptSource {
    pub store: Store,
    pub client: VcfClient,
    pub host: String,
    pub user: String,
}

/// The error of a run that finds no kept login, or one SDDC Manager no
/// longer accepts.
fn not_logged_in(host: &str, user: &str, why: &str) -> Error {
    Error::custom(
        ErrorKind::Auth,
        format!("not logged in as {user} at {host} ({why}); run `refresh vcf login`"),
    )
}

impl KeptSource {
    /// A valid access token from the kept login.
    pub async fn token(&self) -> refresh_sdk::Result<AccessToken> {
        let locked = self
            .store
            .lock(&self.host, &self.user)
            .map_err(|f| Error::custom(ErrorKind::Config, f.to_string()))?;
        let read = locked
            .read()
            .map_err(|f| Error::custom(ErrorKind::Config, f.to_string()))?;
        let Some(kept) = read else {
            return Err(not_logged_in(&self.host, &self.user, "no kept login"));
        };
        if kept.fresh() {
            return Ok(AccessToken::from(kept.access));
        }
        match self.client.refresh_access_token(&kept.refresh).await {
            Ok(access) => {
                let renewed = Kept::new(access, kept.refresh);
                locked
                    .write(&renewed)
                    .map_err(|f| Error::custom(ErrorKind::Config, f.to_string()))?;
                Ok(AccessToken::from(renewed.access))
            }
            Err(e)
                if e.status()
                    .is_some_and(|s| s.is_client_error() && !matches!(s.as_u16(), 408 | 429)) =>
            {
                // Its refresh token is gone (another run's logout, its day
                // is over): the kept login is of no use; it is not replaced
                // by a login no one asked for.
                let _ = locked.remove();
                Err(not_logged_in(
                    &self.host,
                    &self.user,
                    "the kept login was invalidated or expired",
                ))
            }
            Err(e) => Err(e),
        }
    }
}

impl AccessTokenSource for KeptSource {
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(self.token())
    }

    /// A token SDDC Manager rejected is renewed at the next read.
    fn invalidate(&self, rejected: &AccessToken) {
        let Ok(locked) = self.store.lock(&self.host, &self.user) else {
            return;
        };
        if let Ok(Some(kept)) = locked.read()
            && kept.access.expose_secret() == rejected.expose_secret()
        {
            let _ = locked.write(&Kept { expires: 0, ..kept });
        }
    }

    fn origin(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.client.base_url()).ok()?;
        let origin = url.origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }
}

/// A file name for `user` at `host` that says nothing of either: FNV-1a.
fn key(host: &str, user: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in host.bytes().chain([0]).chain(user.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("vcf-{hash:016x}")
}

fn seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn store_error(path: &Path, what: &str, e: &io::Error) -> Failure {
    Failure::usage(format!("{what} {}: {}", path.display(), e.kind()))
}

/// Opens (creating, 0600) a file of the store without following a link,
/// and refuses one that is not this user's alone.
fn open_private(path: &Path, truncate: bool) -> Result<File, Failure> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options
        .open(path)
        .map_err(|e| store_error(path, "cannot open", &e))?;
    let meta = file
        .metadata()
        .map_err(|e| store_error(path, "cannot read", &e))?;
    private(path, &meta)?;
    Ok(file)
}

/// A file's text, or `None` when there is none.
fn read_private(path: &Path) -> Result<Option<String>, Failure> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(store_error(path, "cannot open", &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| store_error(path, "cannot read", &e))?;
    private(path, &meta)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| store_error(path, "cannot read", &e))?;
    Ok(Some(text))
}

/// Replaces a file's text whole: a new 0600 file renamed over it, so a
/// reader never sees half of it.
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let temporary = path.with_extension(format!("new-{:08x}", fastrand::u32(..)));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temporary, path));
    renamed.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        store_error(path, "cannot write", &e)
    })
}

fn remove(path: &Path) -> Result<(), Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(store_error(path, "cannot remove", &e)),
    }
}

/// Refuses what another user owns or others may read or write.
fn private(path: &Path, meta: &std::fs::Metadata) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // SAFETY: getuid has no preconditions and cannot fail.
        let me = unsafe { libc::getuid() };
        if meta.uid() != me {
            return Err(Failure::usage(format!(
                "{} belongs to another user: refusing to use it",
                path.display()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(Failure::usage(format!(
                "{} is open to other users (mode {:o}): refusing to use it; chmod go-rwx it",
                path.display(),
                meta.mode() & 0o777
            )));
        }
    }
    let _ = (path, meta);
    Ok(())
}

/// Takes the exclusive advisory lock on `file`, waiting for it.
fn flock(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd as _;
        loop {
            // SAFETY: the descriptor is open for as long as `file` lives.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}
