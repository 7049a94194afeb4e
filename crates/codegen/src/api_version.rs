//! Dropping the `api-version` request header progenitor adds to every
//! operation.

use quote::ToTokens as _;

use crate::chain::{chain_link, stmt_expr};

/// Removes, from every function of `items` (and of the modules inside),
/// the `api-version` header progenitor puts on every request: its
/// `header_map.append(..)` and, when no other header is left in the map,
/// the map itself (`let mut header_map = ..` and `.headers(header_map)`).
/// Returns how many requests lost the header.
///
/// progenitor sends the spec's `info.version` as `api-version` on every
/// request, and `GenerationSettings` has no switch for it. The value is the
/// version of our hand-written specs ("1.0.0"), not one the vendors define:
/// neither F5's nor VMware's API reference documents or reads such a header.
/// Building the one-entry map and merging it into the request cost about
/// 2,000 instructions per call, some 2.5 % of a whole token call. The
/// client keeps `ClientInfo::api_version()`, which the trait requires.
pub(crate) fn drop_api_version_header(items: &mut [syn::Item]) -> usize {
    let mut dropped = 0;
    for item in items {
        match item {
            syn::Item::Impl(item) => {
                for member in &mut item.items {
                    if let syn::ImplItem::Fn(function) = member
                        && drop_from_block(&mut function.block)
                    {
                        dropped += 1;
                    }
                }
            }
            syn::Item::Mod(item) => {
                if let Some((_, items)) = &mut item.content {
                    dropped += drop_api_version_header(items);
                }
            }
            _ => {}
        }
    }
    dropped
}

/// Drops the header from one function body; whether it was there.
fn drop_from_block(block: &mut syn::Block) -> bool {
    let Some(append) = block.stmts.iter().position(is_api_version_append) else {
        return false;
    };
    block.stmts.remove(append);
    let declared = block.stmts.iter().position(declares_header_map);
    let users: Vec<usize> = (0..block.stmts.len())
        .filter(|&index| Some(index) != declared && mentions_header_map(&block.stmts[index]))
        .collect();
    // Header parameters of the operation still fill the map: it stays.
    if let (Some(declared), [user]) = (declared, users.as_slice())
        && let Some(expr) = stmt_expr(&mut block.stmts[*user])
        && let Some(link) = chain_link(expr, &|call| {
            call.method == "headers" && call.args.len() == 1 && is_header_map(&call.args[0])
        })
        && let syn::Expr::MethodCall(call) = link
    {
        *link = (*call.receiver).clone();
        block.stmts.remove(declared);
    }
    true
}

/// `header_map.append(HeaderName::from_static("api-version"), ..);`
fn is_api_version_append(stmt: &syn::Stmt) -> bool {
    let syn::Stmt::Expr(syn::Expr::MethodCall(call), Some(_)) = stmt else {
        return false;
    };
    if call.method != "append" || !is_header_map(&call.receiver) {
        return false;
    }
    let Some(syn::Expr::Call(name)) = call.args.first() else {
        return false;
    };
    let from_static = matches!(&*name.func, syn::Expr::Path(path)
        if path.path.segments.last().is_some_and(|segment| segment.ident == "from_static"));
    from_static
        && matches!(name.args.first(), Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }))
            if lit.value().eq_ignore_ascii_case("api-version"))
}

/// `let mut header_map = ..;`
fn declares_header_map(stmt: &syn::Stmt) -> bool {
    matches!(stmt, syn::Stmt::Local(local)
        if matches!(&local.pat, syn::Pat::Ident(pat) if pat.ident == "header_map"))
}

fn is_header_map(expr: &syn::Expr) -> bool {
    matches!(expr, syn::Expr::Path(path) if path.path.is_ident("header_map"))
}

fn mentions_header_map(stmt: &syn::Stmt) -> bool {
    fn mentions(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "header_map",
            proc_macro2::TokenTree::Group(group) => mentions(group.stream()),
            _ => false,
        })
    }
    mentions(stmt.to_token_stream())
}
