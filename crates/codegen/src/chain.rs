//! Finding a link in the method chain that builds a generated request
//! (`self.client.post(url).header(..).json(&body).build()?`).

/// The expression a statement evaluates: a `let`'s initializer or an
/// expression statement.
pub(crate) fn stmt_expr(stmt: &mut syn::Stmt) -> Option<&mut syn::Expr> {
    match stmt {
        syn::Stmt::Local(local) => local.init.as_mut().map(|init| &mut *init.expr),
        syn::Stmt::Expr(expr, _) => Some(expr),
        _ => None,
    }
}

/// The first method call of `expr`'s chain, from its end, that `is_link`
/// picks, looking through `?` and `.await`.
pub(crate) fn chain_link<'e>(
    expr: &'e mut syn::Expr,
    is_link: &dyn Fn(&syn::ExprMethodCall) -> bool,
) -> Option<&'e mut syn::Expr> {
    if matches!(&*expr, syn::Expr::MethodCall(call) if is_link(call)) {
        return Some(expr);
    }
    match expr {
        syn::Expr::MethodCall(call) => chain_link(&mut call.receiver, is_link),
        syn::Expr::Try(expr) => chain_link(&mut expr.expr, is_link),
        syn::Expr::Await(expr) => chain_link(&mut expr.base, is_link),
        _ => None,
    }
}
