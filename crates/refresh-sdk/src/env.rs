//! Configuration from environment variables: the process's, or any lookup a
//! caller gives (`from_lookup`), read the same way.

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
