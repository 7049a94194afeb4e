//! Configuration from environment variables: the process's, or any lookup a
//! caller gives (`from_lookup`), read the same way.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;

use crate::error::{Error, Result, Service};

/// Reads a configuration variable by name.
pub(crate) type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// A variable's value, with unset and blank treated alike.
pub(crate) fn var(lookup: &Lookup<'_>, name: &str) -> Option<String> {
    lookup(name).filter(|value| !value.trim().is_empty())
}

/// A yes/no variable: `true`/`1`/`yes` or `false`/`0`/`no` (any case), `None`
/// when unset. Anything else is an error that names the variable; its value
/// is not repeated, as it may be something pasted in the wrong place.
pub(crate) fn flag(lookup: &Lookup<'_>, name: &str, service: Service) -> Result<Option<bool>> {
    match var(lookup, name)
        .map(|value| value.trim().to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(None),
        Some("1" | "true" | "yes") => Ok(Some(true)),
        Some("0" | "false" | "no") => Ok(Some(false)),
        Some(_) => Err(Error::config(format!("{name} must be true or false")).for_service(service)),
    }
}

/// The most a secret file may hold. A password, an API key or an identity
/// token (a JWT of a few KiB) fits many times over; a bigger file is the
/// wrong file, and is not read into memory.
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where the environment gives one secret.
pub(crate) enum SecretVar {
    /// The variable itself holds it.
    Value(SecretString),
    /// Its `_FILE` variable names a file that holds it.
    File(PathBuf),
}

/// The secret `plain` holds, or the path its `_FILE` form `file` names;
/// `None` when neither is set. Both set is an error naming both (and neither
/// value): which one is meant cannot be guessed.
pub(crate) fn secret_var(
    lookup: &Lookup<'_>,
    plain: &str,
    file: &str,
    service: Service,
) -> Result<Option<SecretVar>> {
    match (var(lookup, plain), var(lookup, file)) {
        (Some(_), Some(_)) => Err(Error::config(format!(
            "both {plain} and {file} are set; set only one of them"
        ))
        .for_service(service)),
        (Some(value), None) => Ok(Some(SecretVar::Value(value.into()))),
        (None, Some(path)) => Ok(Some(SecretVar::File(PathBuf::from(path)))),
        (None, None) => Ok(None),
    }
}

/// The secret in the file at `path`, without one trailing line break (`\n`
/// or `\r\n`: what an editor or `echo` adds; a second one is kept, as part
/// of the secret). `what` names the file in errors, such as "the file named
/// by VCF_SDDC_MANAGER_PASSWORD_FILE"; no error quotes the content.
///
/// The bytes are read into one buffer (zeroized when dropped) and copied
/// once into a string of exactly the secret's length, so no reallocation
/// leaves a copy behind in freed memory.
pub(crate) fn read_secret_file(path: &Path, what: &str, service: Service) -> Result<SecretString> {
    let unreadable = |err: std::io::Error| {
        Error::config(format!("cannot read {what}"))
            .with_source(err)
            .for_service(service)
    };
    let too_large = || {
        Error::config(format!(
            "{what} is larger than {} KiB; it must hold only the secret",
            MAX_SECRET_FILE_BYTES / 1024
        ))
        .for_service(service)
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > MAX_SECRET_FILE_BYTES {
        return Err(too_large());
    }
    // One byte more than the size, so that a file that grew since is seen
    // to be over the cap without growing the buffer.
    let capacity = usize::try_from(size.saturating_add(1)).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(too_large());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::config(format!("{what} does not hold UTF-8 text")).for_service(service)
    })?;
    let text = strip_one_line_break(text);
    let mut secret = String::with_capacity(text.len());
    secret.push_str(text);
    Ok(SecretString::from(secret))
}

/// `text` without one trailing `\n` or `\r\n`.
pub(crate) fn strip_one_line_break(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// The process environment as a lookup, once none of `names` holds a value
/// that is not UTF-8: such a variable is set, and saying it is not (as a
/// plain `std::env::var(..).ok()` lookup would) sends its owner looking in
/// the wrong place. The value itself is never shown.
pub(crate) fn process(
    service: Service,
    names: &[&str],
) -> Result<impl Fn(&str) -> Option<String> + use<>> {
    utf8(service, names, |name| std::env::var_os(name))?;
    Ok(|name: &str| std::env::var(name).ok())
}

/// Fails naming the first of `names` whose value is not UTF-8.
fn utf8(
    service: Service,
    names: &[&str],
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<()> {
    match names
        .iter()
        .find(|name| get(name).is_some_and(|value| value.to_str().is_none()))
    {
        Some(name) => Err(
            Error::config(format!("{name} is set but its value is not valid UTF-8"))
                .for_service(service),
        ),
        None => Ok(()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;

    use super::*;

    #[test]
    fn a_value_that_is_not_utf8_is_named_not_called_unset() {
        let get = |name: &str| match name {
            "GOOD" => Some(OsString::from("fine")),
            "BAD" => Some(OsString::from_vec(vec![b'p', 0xff, b'w'])),
            _ => None,
        };
        assert!(utf8(Service::Vcf, &["GOOD", "UNSET"], get).is_ok());
        let err = utf8(Service::Vcf, &["GOOD", "BAD"], get).expect_err("BAD is not UTF-8");
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(
            err.to_string()
                .contains("BAD is set but its value is not valid UTF-8"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod line_break_tests {
    use super::strip_one_line_break;

    #[test]
    fn one_trailing_line_break_is_stripped() {
        for (text, stripped) in [
            ("pw", "pw"),
            ("pw\n", "pw"),
            ("pw\r\n", "pw"),
            ("pw\n\n", "pw\n"),
            ("pw\r\n\r\n", "pw\r\n"),
            ("pw\r", "pw\r"),
            (" pw \n", " pw "),
            ("\n", ""),
            ("", ""),
        ] {
            assert_eq!(strip_one_line_break(text), stripped, "{text:?}");
        }
    }
}
