//! Dropping progenitor's `Client::new`, which panics when reqwest cannot
//! build a client.

use crate::Error;

/// Removes `Client::new(baseurl, inner)` from the generated client, leaving
/// `Client::new_with_client(baseurl, reqwest_client, inner)` as its
/// constructor.
///
/// progenitor's `new` builds its own `reqwest::Client` with
/// `.build().unwrap()`, which panics when reqwest cannot build one (no TLS
/// backend, an unreadable system configuration): library code must not
/// panic. Its fixed 15 s timeouts would also bypass the settings the facade
/// applies to the client it builds. With `new_with_client` the caller
/// builds the `reqwest::Client` and handles that error.
pub(crate) fn drop_panicking_new(items: &mut [syn::Item]) -> Result<(), Error> {
    let mut dropped = false;
    for item in items {
        let syn::Item::Impl(block) = item else {
            continue;
        };
        let is_client =
            matches!(&*block.self_ty, syn::Type::Path(ty) if ty.path.is_ident("Client"));
        if !is_client || block.trait_.is_some() {
            continue;
        }
        let before = block.items.len();
        block.items.retain(
            |member| !matches!(member, syn::ImplItem::Fn(function) if function.sig.ident == "new"),
        );
        dropped |= block.items.len() < before;
    }
    if dropped {
        Ok(())
    } else {
        Err(Error::Shape("no `Client::new` to drop".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_inherent_new_of_client_goes() {
        let mut file: syn::File = syn::parse_quote! {
            impl Client {
                pub fn new(baseurl: &str, inner: Inner) -> Self {
                    Self::new_with_client(baseurl, reqwest::Client::builder().build().unwrap(), inner)
                }
                pub fn new_with_client(baseurl: &str, client: reqwest::Client, inner: Inner) -> Self {
                    todo!()
                }
            }
            impl Other {
                pub fn new() -> Self { todo!() }
            }
        };
        drop_panicking_new(&mut file.items).expect("a `new` to drop");
        let source = prettyplease::unparse(&file);
        assert!(!source.contains("unwrap"), "{source}");
        assert!(source.contains("fn new_with_client"), "{source}");
        assert!(
            source.contains("impl Other {\n    pub fn new()"),
            "{source}"
        );
    }

    #[test]
    fn a_client_without_new_is_a_shape_error() {
        let mut file: syn::File = syn::parse_quote! {
            impl Client {
                pub fn new_with_client() -> Self { todo!() }
            }
        };
        let err = drop_panicking_new(&mut file.items).expect_err("nothing to drop");
        assert!(err.to_string().contains("no `Client::new`"), "{err}");
    }
}
