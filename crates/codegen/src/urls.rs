//! Parsing each operation's URL once, when the client is built, and
//! sharing the parsed URLs with the client's copies.

use quote::{ToTokens as _, format_ident, quote};

use crate::Error;
use crate::chain::{chain_link, stmt_expr};

/// Names the rewrite adds to `Client`, which an operation must not have.
const ADDED_METHODS: [&str; 2] = ["with_inner", "request_to"];

/// Rewrites the generated `Client` so that the URL of each operation
/// without path parameters is parsed once, when the client is built, not
/// on every call:
///
/// - the `baseurl: String` field becomes `urls: Arc<Urls>`, a new struct
///   holding the base URL and, per such operation, its URL parsed by
///   `new_with_client` (`None` when it does not parse);
/// - each such operation drops its `let url = format!("{}/path", self.baseurl)`
///   and starts its request with `self.request_to(Method::POST, ..)`, which
///   clones the parsed URL. When the URL did not parse, `request_to` hands
///   reqwest the formatted text as before, so the call fails with the same
///   error as before, and nothing panics;
/// - operations with path parameters keep their `format!`, on
///   `self.urls.base`;
/// - a new `Client::with_inner(&self, inner)` returns the client with
///   another inner value, sharing the `Arc<Urls>` and the `reqwest::Client`.
///
/// Parsing is most of what reqwest does with a URL: about 8,500
/// instructions of a 90,000-instruction token call (F5), a clone about
/// 1,000. The `refresh-sdk` facade builds a client per call around an
/// executor of that call's own; `with_inner` lets it do so without copying
/// the base URL or parsing anything again.
pub(crate) fn parse_urls_once(items: &mut Vec<syn::Item>) -> Result<(), Error> {
    let Some(at) = items.iter().position(|item| is_struct(item, "Client")) else {
        return shape("no `struct Client`");
    };
    let inner = rewrite_client_struct(&mut items[at])?;

    let mut operations = Vec::new();
    let mut constructor = None;
    let mut method_names = Vec::new();
    for (index, item) in items.iter_mut().enumerate() {
        let syn::Item::Impl(block) = item else {
            continue;
        };
        if !is_type(&block.self_ty, "Client") {
            continue;
        }
        match &block.trait_ {
            None => {
                for member in &mut block.items {
                    let syn::ImplItem::Fn(function) = member else {
                        continue;
                    };
                    method_names.push(function.sig.ident.to_string());
                    if function.sig.ident == "new_with_client" {
                        rewrite_constructor(function)?;
                        constructor = Some(index);
                    } else if let Some(operation) = rewrite_operation(function)? {
                        operations.push(operation);
                    }
                }
            }
            Some((_, path, _)) if is_last_segment(path, "ClientInfo") => {
                rewrite_baseurl_getter(block)?;
            }
            Some(_) => {}
        }
    }
    let Some(constructor) = constructor else {
        return shape("no `Client::new_with_client`");
    };
    if let Some(name) = method_names
        .iter()
        .find(|name| ADDED_METHODS.contains(&name.as_str()))
    {
        return shape(&format!(
            "`Client` already has a method `{name}`, which the URL rewrite adds"
        ));
    }
    if operations.iter().any(|operation| operation.name == "base") {
        return shape("an operation is named `base`, a field of `Urls`");
    }

    if let syn::Item::Impl(block) = &mut items[constructor] {
        block.items.push(syn::parse_quote! {
            /// This client with `inner` as its inner value: it shares this
            /// client's base URL, parsed operation URLs and
            /// `reqwest::Client` (its connection pool and settings), so it
            /// costs two reference-count increments and parses nothing, cheap
            /// enough to build per call.
            pub fn with_inner(&self, inner: #inner) -> Self {
                Self {
                    urls: self.urls.clone(),
                    client: self.client.clone(),
                    inner,
                }
            }
        });
        if !operations.is_empty() {
            block.items.push(syn::parse_quote! {
                /// A request for `method` to an operation's URL: `parsed`,
                /// parsed when the client was built; when that failed, the
                /// base URL followed by `path`, which reqwest then rejects
                /// as it would have without the parsing.
                fn request_to(
                    &self,
                    method: ::reqwest::Method,
                    parsed: ::std::option::Option<&::reqwest::Url>,
                    path: &str,
                ) -> ::reqwest::RequestBuilder {
                    match parsed {
                        Some(url) => self.client.request(method, url.clone()),
                        None => self.client.request(method, format!("{}{}", self.urls.base, path)),
                    }
                }
            });
        }
    }
    let urls = urls_items(&operations);
    items.splice(at + 1..at + 1, urls);

    let left = baseurl_fields(&quote!(#(#items)*));
    if left > 0 {
        return shape(&format!(
            "{left} use(s) of the `baseurl` field left after the URL rewrite"
        ));
    }
    Ok(())
}

/// An operation whose URL is parsed when the client is built.
struct Operation {
    /// The operation's method, and its field in `Urls`.
    name: syn::Ident,
    /// progenitor's format string, `"{}/path"`.
    format: syn::LitStr,
}

/// `Urls`: its struct, constructor and `Debug`.
fn urls_items(operations: &[Operation]) -> Vec<syn::Item> {
    let names: Vec<_> = operations.iter().map(|operation| &operation.name).collect();
    let formats = operations.iter().map(|operation| &operation.format);
    let file: syn::File = syn::parse_quote! {
        /// A [`Client`]'s base URL and the URL of each of its operations
        /// without path parameters, parsed once when the client is built
        /// and shared by its copies ([`Client::with_inner`]): a call clones
        /// its operation's URL instead of formatting and parsing it. A URL
        /// that does not parse is `None`, and each call then formats it
        /// again so that reqwest reports the error as it would have.
        pub(crate) struct Urls {
            base: String,
            #(#names: ::std::option::Option<::reqwest::Url>,)*
        }

        impl Urls {
            /// The URLs under `base`.
            fn parse(base: &str) -> Self {
                Self {
                    #(#names: ::reqwest::Url::parse(&format!(#formats, base)).ok(),)*
                    base: base.to_string(),
                }
            }
        }

        impl ::std::fmt::Debug for Urls {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("Urls").field("base", &self.base).finish_non_exhaustive()
            }
        }
    };
    file.items
}

/// Replaces `pub(crate) baseurl: String` with `pub(crate) urls: Arc<Urls>`;
/// returns the type of the `inner` field.
fn rewrite_client_struct(item: &mut syn::Item) -> Result<syn::Type, Error> {
    let syn::Item::Struct(client) = item else {
        return shape("`Client` is not a struct");
    };
    let mut inner = None;
    let mut baseurl = false;
    for field in &mut client.fields {
        let Some(name) = &field.ident else {
            continue;
        };
        if name == "inner" {
            inner = Some(field.ty.clone());
        } else if name == "baseurl" {
            *field = syn::parse_quote!(pub(crate) urls: ::std::sync::Arc<Urls>);
            baseurl = true;
        }
    }
    match (baseurl, inner) {
        (true, Some(inner)) => Ok(inner),
        (false, _) => shape("`Client` has no `baseurl` field"),
        (true, None) => shape("`Client` has no `inner` field (no inner type in the settings)"),
    }
}

/// `Self { baseurl: baseurl.to_string(), .. }` becomes
/// `Self { urls: Arc::new(Urls::parse(baseurl)), .. }`.
fn rewrite_constructor(function: &mut syn::ImplItemFn) -> Result<(), Error> {
    let Some(syn::Stmt::Expr(syn::Expr::Struct(value), None)) = function.block.stmts.last_mut()
    else {
        return shape("`new_with_client` does not end with a struct expression");
    };
    let Some(field) = value
        .fields
        .iter_mut()
        .find(|field| matches!(&field.member, syn::Member::Named(name) if name == "baseurl"))
    else {
        return shape("`new_with_client` does not set `baseurl`");
    };
    *field = syn::parse_quote!(urls: ::std::sync::Arc::new(Urls::parse(baseurl)));
    Ok(())
}

/// `ClientInfo::baseurl` returns `self.urls.base`.
fn rewrite_baseurl_getter(block: &mut syn::ItemImpl) -> Result<(), Error> {
    for member in &mut block.items {
        if let syn::ImplItem::Fn(function) = member
            && function.sig.ident == "baseurl"
        {
            function.block = syn::parse_quote!({ self.urls.base.as_str() });
            return Ok(());
        }
    }
    shape("`ClientInfo for Client` has no `baseurl`")
}

/// Rewrites an operation's URL. One without path parameters drops its
/// `let url = format!(..)` and starts its request with `request_to`, and
/// is returned; one with parameters formats on `self.urls.base`.
fn rewrite_operation(function: &mut syn::ImplItemFn) -> Result<Option<Operation>, Error> {
    let name = function.sig.ident.clone();
    let stmts = &mut function.block.stmts;
    let Some((at, url, mut args)) = stmts.iter().enumerate().find_map(|(at, stmt)| {
        let (url, args) = url_format(stmt)?;
        Some((at, url, args))
    }) else {
        return Ok(None);
    };
    let (
        Some(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(format),
            ..
        })),
        Some(base),
    ) = (args.first(), args.iter().nth(1))
    else {
        return shape(&format!("`{name}` formats its URL unexpectedly"));
    };
    let format = format.clone();
    let syn::Expr::Field(field) = base else {
        return shape(&format!("`{name}` formats its URL unexpectedly"));
    };
    let owner = (*field.base).clone();
    let value = format.value();
    let path = value
        .strip_prefix("{}")
        .filter(|path| args.len() == 2 && !path.contains(['{', '}']));
    let Some(path) = path else {
        // Path parameters: the URL differs per call and is formatted then.
        args[1] = syn::parse_quote!(#owner.urls.base);
        if let syn::Stmt::Local(local) = &mut stmts[at]
            && let Some(init) = &mut local.init
            && let syn::Expr::Macro(mac) = &mut *init.expr
        {
            mac.mac.tokens = args.to_token_stream();
        }
        return Ok(None);
    };
    let mut started = false;
    for stmt in stmts.iter_mut().skip(at + 1) {
        let Some(expr) = stmt_expr(stmt) else {
            continue;
        };
        let Some(link) = chain_link(expr, &|call| starts_request(call, &url)) else {
            continue;
        };
        let syn::Expr::MethodCall(call) = &*link else {
            continue;
        };
        let method = format_ident!("{}", call.method.to_string().to_ascii_uppercase());
        *link = syn::parse_quote! {
            #owner.request_to(::reqwest::Method::#method, #owner.urls.#name.as_ref(), #path)
        };
        started = true;
        break;
    }
    if !started {
        return shape(&format!(
            "`{name}` does not start a request with `client.<method>({url})`"
        ));
    }
    stmts.remove(at);
    Ok(Some(Operation { name, format }))
}

/// `let url = format!("{}/path", self.baseurl, ..);`: the variable and the
/// macro's arguments.
fn url_format(
    stmt: &syn::Stmt,
) -> Option<(
    syn::Ident,
    syn::punctuated::Punctuated<syn::Expr, syn::Token![,]>,
)> {
    let syn::Stmt::Local(local) = stmt else {
        return None;
    };
    let syn::Pat::Ident(pat) = &local.pat else {
        return None;
    };
    let syn::Expr::Macro(mac) = &*local.init.as_ref()?.expr else {
        return None;
    };
    if !mac.mac.path.is_ident("format") {
        return None;
    }
    let args = mac
        .mac
        .parse_body_with(syn::punctuated::Punctuated::parse_terminated)
        .ok()?;
    let is_baseurl = |expr: &syn::Expr| {
        matches!(expr, syn::Expr::Field(field)
            if matches!(&field.member, syn::Member::Named(name) if name == "baseurl"))
    };
    args.iter()
        .nth(1)
        .is_some_and(is_baseurl)
        .then(|| (pat.ident.clone(), args))
}

/// `<owner>.client.<get|put|post|delete|head|patch>(<url>)`: reqwest's
/// shorthands for `request(Method::<METHOD>, url)`.
fn starts_request(call: &syn::ExprMethodCall, url: &syn::Ident) -> bool {
    let shorthand = ["get", "put", "post", "delete", "head", "patch"]
        .iter()
        .any(|method| call.method == method);
    let on_client = matches!(&*call.receiver, syn::Expr::Field(field)
        if matches!(&field.member, syn::Member::Named(name) if name == "client"));
    let to_url = call.args.len() == 1
        && matches!(&call.args[0], syn::Expr::Path(path) if path.path.is_ident(url));
    shorthand && on_client && to_url
}

/// How many `.baseurl` field accesses (not `.baseurl()` calls) `tokens`
/// holds, in macros too.
fn baseurl_fields(tokens: &proc_macro2::TokenStream) -> usize {
    let tokens: Vec<_> = tokens.clone().into_iter().collect();
    let mut count = 0;
    for (index, token) in tokens.iter().enumerate() {
        match token {
            proc_macro2::TokenTree::Group(group) => count += baseurl_fields(&group.stream()),
            proc_macro2::TokenTree::Ident(ident) if ident == "baseurl" => {
                let after_dot = index > 0
                    && matches!(&tokens[index - 1], proc_macro2::TokenTree::Punct(punct) if punct.as_char() == '.');
                let called = matches!(tokens.get(index + 1), Some(proc_macro2::TokenTree::Group(group))
                    if group.delimiter() == proc_macro2::Delimiter::Parenthesis);
                if after_dot && !called {
                    count += 1;
                }
            }
            _ => {}
        }
    }
    count
}

fn is_struct(item: &syn::Item, name: &str) -> bool {
    matches!(item, syn::Item::Struct(item) if item.ident == name)
}

fn is_type(ty: &syn::Type, name: &str) -> bool {
    matches!(ty, syn::Type::Path(ty) if ty.qself.is_none() && ty.path.is_ident(name))
}

fn is_last_segment(path: &syn::Path, name: &str) -> bool {
    path.segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

fn shape<T>(problem: &str) -> Result<T, Error> {
    Err(Error::Shape(problem.to_owned()))
}
