//! refresh-sdk's modules refer to each other one way only: the test fails,
//! printing every cycle with the file and line of each edge, when they do not.
//!
//! The graph is built from the parsed source (`syn`), not from regexes:
//!
//! - **Modules.** Each file reached from `src/lib.rs` through `mod x;`
//!   declarations is a module: `src/lib.rs` is `crate`, `src/a.rs` and
//!   `src/a/mod.rs` are `a`, `src/a/b.rs` is `a::b`. Test code takes no
//!   part: items under `#[cfg(test)]` and modules named `tests` (`tests.rs`)
//!   are skipped, since tests may reach anywhere.
//! - **Nodes.** A module is folded into a node of at most two levels
//!   (`src/a/b/c.rs` counts as `a::b`), and an inline `mod x { .. }` into the
//!   node of its file. So siblings in a directory (`http::retry`,
//!   `http::exec`) are nodes of their own, and a directory's `mod.rs` is the
//!   node of its parent name (`http`): the items `mod.rs` defines.
//! - **References.** Every path naming something of the crate: `use` items
//!   (grouped, nested and multi-line trees alike) and paths in code,
//!   including inside macro calls; `crate::`, `super::` and `self::` paths
//!   are made absolute, as are paths that start with a child module or with a
//!   name a `use` brought in. A path is followed through re-exports to the
//!   module that defines the item: `crate::Error`, re-exported by
//!   `lib.rs` from `error`, is a reference to `error`, and
//!   `crate::middleware::TransportPolicy` one to `middleware::policy`.
//! - **The parent rule.** A module's `use` of its own descendants (`pub use
//!   child::Item;` re-exports, and private imports alike) is not by itself
//!   an edge, nor is `mod child;`: a `mod.rs` that declares and re-exports
//!   its children does not depend on them. It does when its own code uses
//!   what it imports (or names `child::f()`): then `parent -> child` is an
//!   edge, and with a child that uses the parent's items (`super::Thing`,
//!   an edge `child -> parent`) that is a cycle.
//!
//! Every elementary cycle is reported once, as `a -> b -> a`, with the first
//! place each of its edges is made (and how many more there are).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItem, Item, Meta, UseTree};

/// Deeper modules are folded into their ancestor at this depth.
const MAX_DEPTH: usize = 2;

/// How many re-exports a path may go through before the resolver gives up
/// (only a `use` loop would need more).
const MAX_HOPS: usize = 16;

/// A module's path from the crate root, without `crate`: `["http", "retry"]`.
type ModPath = Vec<String>;

/// One module: a file, or an inline `mod x { .. }` in one.
#[derive(Debug, Default)]
struct Module {
    /// Its file, relative to the crate: `src/http/retry.rs`.
    file: String,
    /// The node it is folded into.
    node: String,
    /// Its non-test child modules.
    children: BTreeSet<String>,
    /// The names of the items it defines (other than modules and imports).
    defines: BTreeSet<String>,
    /// The leaves of its `use` items.
    imports: Vec<Import>,
    /// The paths in its code.
    mentions: Vec<Mention>,
}

/// One leaf of a `use` tree: `use crate::{a, b::{self, C as D}}` has three.
#[derive(Debug)]
struct Import {
    /// The path as written, `self` leaves dropped: `crate::b`, `crate::b::C`.
    path: Vec<String>,
    /// The name it binds (`b`, `D`); `None` for `as _` and globs.
    name: Option<String>,
    glob: bool,
    line: usize,
}

/// A path in code, as written.
#[derive(Debug)]
struct Mention {
    path: Vec<String>,
    line: usize,
}

/// Where an edge is made.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Evidence {
    file: String,
    line: usize,
    path: String,
}

/// The edges between nodes, each with every place it is made.
type Edges = BTreeMap<String, BTreeMap<String, Vec<Evidence>>>;

/// The crate's modules, parsed.
#[derive(Debug, Default)]
struct Crate {
    modules: BTreeMap<ModPath, Module>,
    /// `mod x;` declarations with no file: `src/a.rs: x`.
    missing: Vec<String>,
}

impl Crate {
    /// Parses the modules reachable from `lib.rs` in `files` (path under
    /// `src/` -> source).
    fn load(files: &BTreeMap<String, String>) -> Result<Crate, String> {
        let mut krate = Crate::default();
        let mut queue = vec![(ModPath::new(), "lib.rs".to_owned())];
        while let Some((path, file)) = queue.pop() {
            let source = files
                .get(&file)
                .ok_or_else(|| format!("no src/{file} among the files"))?;
            let ast = syn::parse_file(source)
                .map_err(|e| format!("src/{file}:{}: {e}", e.span().start().line))?;
            let node = node_name(&path[..path.len().min(MAX_DEPTH)]);
            krate.add_module(path, &file, &node, &ast.items, files, &mut queue);
        }
        Ok(krate)
    }

    /// Records the module `path` of `items`, its inline modules, and queues
    /// its out-of-line children.
    fn add_module(
        &mut self,
        path: ModPath,
        file: &str,
        node: &str,
        items: &[Item],
        files: &BTreeMap<String, String>,
        queue: &mut Vec<(ModPath, String)>,
    ) {
        let mut module = Module {
            file: format!("src/{file}"),
            node: node.to_owned(),
            ..Module::default()
        };
        for item in items {
            if is_test(item_attrs(item)) {
                continue;
            }
            match item {
                Item::Mod(m) if m.ident == "tests" => {}
                Item::Mod(m) => {
                    let name = m.ident.to_string();
                    let child = [path.clone(), vec![name.clone()]].concat();
                    match &m.content {
                        Some((_, inner)) => {
                            module.children.insert(name);
                            self.add_module(child, file, node, inner, files, queue);
                        }
                        None => {
                            let dir: String = path.iter().map(|p| format!("{p}/")).collect();
                            let candidates =
                                [format!("{dir}{name}.rs"), format!("{dir}{name}/mod.rs")];
                            match candidates.into_iter().find(|f| files.contains_key(f)) {
                                Some(child_file) => {
                                    module.children.insert(name);
                                    queue.push((child, child_file));
                                }
                                None => self.missing.push(format!("src/{file}: mod {name}")),
                            }
                        }
                    }
                }
                Item::Use(u) if u.leading_colon.is_none() => {
                    use_leaves(&u.tree, &mut Vec::new(), &mut module.imports);
                }
                Item::Use(_) => {}
                other => {
                    module.defines.extend(item_name(other));
                    Mentions(&mut module.mentions).visit_item(other);
                }
            }
        }
        self.modules.insert(path, module);
    }

    /// `path`, written in `module`, from the crate root; `None` when it
    /// names nothing of the crate (std, another crate, a local, the
    /// module's own items).
    fn absolute(&self, module: &[String], path: &[String], hops: usize) -> Option<ModPath> {
        let (first, rest) = path.split_first()?;
        let here = self.modules.get(module)?;
        match first.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some([module, rest].concat()),
            "super" => {
                let (_, parent) = module.split_last()?;
                match rest.first().map(String::as_str) {
                    Some("super") => self.absolute(parent, rest, hops),
                    _ => Some([parent, rest].concat()),
                }
            }
            name if here.children.contains(name) => Some([module, path].concat()),
            name if hops < MAX_HOPS => {
                let import = here
                    .imports
                    .iter()
                    .find(|i| i.name.as_deref() == Some(name))?;
                let target = self.absolute(module, &import.path, hops + 1)?;
                Some([target.as_slice(), rest].concat())
            }
            _ => None,
        }
    }

    /// The module that defines what the absolute `path` names, following
    /// re-exports: the module itself for a path to a module.
    fn defining_module(&self, path: &[String], hops: usize) -> ModPath {
        let mut module = ModPath::new();
        for (i, segment) in path.iter().enumerate() {
            let Some(here) = self.modules.get(&module) else {
                return module;
            };
            if here.children.contains(segment) {
                module.push(segment.clone());
                continue;
            }
            if here.defines.contains(segment) || hops >= MAX_HOPS {
                return module;
            }
            let rest = &path[i + 1..];
            // An item `module` imports (or re-exports): where it comes from.
            if let Some(import) = here
                .imports
                .iter()
                .find(|import| import.name.as_deref() == Some(segment.as_str()))
            {
                return match self.absolute(&module, &import.path, hops + 1) {
                    Some(from) => self.defining_module(&[from.as_slice(), rest].concat(), hops + 1),
                    // Another crate's item, reached through this module.
                    None => module,
                };
            }
            // An item a glob import brings in.
            for glob in here.imports.iter().filter(|import| import.glob) {
                let Some(from) = self.absolute(&module, &glob.path, hops + 1) else {
                    continue;
                };
                let source = self.defining_module(&from, hops + 1);
                let has_it = self.modules.get(&source).is_some_and(|m| {
                    m.children.contains(segment)
                        || m.defines.contains(segment)
                        || m.imports
                            .iter()
                            .any(|i| i.name.as_deref() == Some(segment.as_str()))
                });
                if has_it {
                    return self.defining_module(&[from.as_slice(), &path[i..]].concat(), hops + 1);
                }
            }
            // An item `module` defines, or one this file cannot see (a
            // macro's).
            return module;
        }
        module
    }

    /// The edges between nodes, by the rules at the top of this file.
    fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for (path, module) in &self.modules {
            let imports = module.imports.iter().map(|i| (&i.path, i.line, true));
            let mentions = module.mentions.iter().map(|m| (&m.path, m.line, false));
            for (written, line, is_import) in imports.chain(mentions) {
                let Some(absolute) = self.absolute(path, written, 0) else {
                    continue;
                };
                // A lone name in code that is a module is a local of the
                // same name: a module is no value or type.
                if !is_import && written.len() == 1 && self.modules.contains_key(&absolute) {
                    continue;
                }
                let target = self.defining_module(&absolute, 0);
                let is_descendant = target.len() > path.len() && target.starts_with(path);
                if is_import && is_descendant {
                    continue;
                }
                let Some(to) = self.modules.get(&target).map(|m| &m.node) else {
                    continue;
                };
                if *to == module.node {
                    continue;
                }
                edges
                    .entry(module.node.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_default()
                    .push(Evidence {
                        file: module.file.clone(),
                        line,
                        path: written.join("::"),
                    });
            }
        }
        for targets in edges.values_mut() {
            for evidence in targets.values_mut() {
                evidence.sort();
                evidence.dedup();
            }
        }
        edges
    }
}

/// `crate` for the root, else the path joined with `::`.
fn node_name(path: &[String]) -> String {
    match path.is_empty() {
        true => "crate".to_owned(),
        false => path.join("::"),
    }
}

/// Appends the leaves of `tree` under `prefix` to `out`.
fn use_leaves(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<Import>) {
    let mut leaf = |path: Vec<String>, name: Option<String>, glob: bool, line: usize| {
        out.push(Import {
            path,
            name,
            glob,
            line,
        });
    };
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) if n.ident == "self" => {
            let line = n.ident.span().start().line;
            leaf(prefix.clone(), prefix.last().cloned(), false, line);
        }
        UseTree::Name(n) => {
            let path = [prefix.clone(), vec![n.ident.to_string()]].concat();
            leaf(
                path,
                Some(n.ident.to_string()),
                false,
                n.ident.span().start().line,
            );
        }
        UseTree::Rename(r) => {
            let path = match r.ident == "self" {
                true => prefix.clone(),
                false => [prefix.clone(), vec![r.ident.to_string()]].concat(),
            };
            let name = Some(r.rename.to_string()).filter(|name| name != "_");
            leaf(path, name, false, r.ident.span().start().line);
        }
        UseTree::Glob(g) => leaf(
            prefix.clone(),
            None,
            true,
            g.star_token.spans[0].start().line,
        ),
        UseTree::Group(g) => {
            for tree in &g.items {
                use_leaves(tree, prefix, out);
            }
        }
    }
}

/// Collects the paths in code, test code excepted.
struct Mentions<'a>(&'a mut Vec<Mention>);

impl<'ast> Visit<'ast> for Mentions<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if !is_test(item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        let attrs: &[Attribute] = match item {
            ImplItem::Const(c) => &c.attrs,
            ImplItem::Fn(f) => &f.attrs,
            ImplItem::Type(t) => &t.attrs,
            ImplItem::Macro(m) => &m.attrs,
            _ => &[],
        };
        if !is_test(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    /// A `use` inside a function body: its leaves are mentions.
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            let mut leaves = Vec::new();
            use_leaves(&item.tree, &mut Vec::new(), &mut leaves);
            self.0.extend(leaves.into_iter().map(|leaf| Mention {
                path: leaf.path,
                line: leaf.line,
            }));
        }
    }

    /// `pub(crate)`, `pub(super)`: not references.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let (None, Some(first)) = (&path.leading_colon, path.segments.first()) {
            self.0.push(Mention {
                path: path.segments.iter().map(|s| s.ident.to_string()).collect(),
                line: first.ident.span().start().line,
            });
        }
        visit::visit_path(self, path);
    }

    /// A macro call's arguments are tokens to syn: the paths among them.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        token_paths(mac.tokens.clone(), self.0);
    }
}

/// Appends every `a::b::c` (and lone identifier) in `tokens` to `out`;
/// field and method names after `.` are not paths.
fn token_paths(tokens: TokenStream, out: &mut Vec<Mention>) {
    let mut path = Mention {
        path: Vec::new(),
        line: 0,
    };
    // `:` seen right after the path's last segment.
    let mut colons = 0;
    let mut after_dot = false;
    for tree in tokens {
        let is_dot = matches!(&tree, TokenTree::Punct(p) if p.as_char() == '.');
        match tree {
            TokenTree::Ident(ident) if colons == 2 => path.path.push(ident.to_string()),
            TokenTree::Ident(ident) => {
                flush(&mut path, out);
                if !after_dot {
                    path.path.push(ident.to_string());
                    path.line = ident.span().start().line;
                }
            }
            TokenTree::Punct(p) if p.as_char() == ':' && !path.path.is_empty() && colons < 2 => {
                colons += 1;
                after_dot = false;
                continue;
            }
            TokenTree::Group(group) => {
                flush(&mut path, out);
                token_paths(group.stream(), out);
            }
            TokenTree::Punct(_) | TokenTree::Literal(_) => flush(&mut path, out),
        }
        colons = 0;
        after_dot = is_dot;
    }
    flush(&mut path, out);
}

/// Moves `path` to `out` if it has segments.
fn flush(path: &mut Mention, out: &mut Vec<Mention>) {
    if !path.path.is_empty() {
        out.push(Mention {
            path: std::mem::take(&mut path.path),
            line: path.line,
        });
    }
}

/// Whether `attrs` hold a `#[cfg(test)]` (or `#[cfg(all(test, ..))]`).
fn is_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && attr.parse_args::<Meta>().is_ok_and(|m| test_only(&m))
    })
}

fn test_only(meta: &Meta) -> bool {
    match meta {
        Meta::Path(path) => path.is_ident("test"),
        Meta::List(list) if list.path.is_ident("all") => list
            .parse_args_with(Punctuated::<Meta, syn::Token![,]>::parse_terminated)
            .is_ok_and(|terms| terms.iter().any(test_only)),
        _ => false,
    }
}

/// The name `item` defines, if it is not a module or an import.
fn item_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// Every elementary cycle of `edges`, each once: starting from its least
/// node, which it also ends with.
fn cycles(edges: &Edges) -> Vec<Vec<String>> {
    fn walk(edges: &Edges, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
        let start = path[0].clone();
        let last = path[path.len() - 1].clone();
        for next in edges.get(&last).into_iter().flat_map(BTreeMap::keys) {
            if *next == start {
                let mut cycle = path.clone();
                cycle.push(start.clone());
                found.push(cycle);
            } else if *next > start && !path.contains(next) {
                path.push(next.clone());
                walk(edges, path, found);
                path.pop();
            }
        }
    }
    let mut found = Vec::new();
    for start in edges.keys() {
        walk(edges, &mut vec![start.clone()], &mut found);
    }
    found
}

/// Every cycle as `a -> b -> a`, then each of its edges with the first
/// place it is made.
fn report(edges: &Edges, cycles: &[Vec<String>]) -> String {
    let mut out = String::new();
    for cycle in cycles {
        out.push_str(&format!("{}\n", cycle.join(" -> ")));
        for pair in cycle.windows(2) {
            let evidence = &edges[&pair[0]][&pair[1]];
            let first = &evidence[0];
            let more = match evidence.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            out.push_str(&format!(
                "    {} -> {}: {}:{} `{}`{more}\n",
                pair[0], pair[1], first.file, first.line, first.path
            ));
        }
    }
    out
}

/// Every `.rs` file under `dir`, by its path relative to `dir` (with `/`).
fn read_sources(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(root, &path, files);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let relative = path
                    .strip_prefix(root)
                    .expect("a file found under the root is under it")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.insert(relative, text);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

#[test]
fn refresh_sdk_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/refresh-sdk/src");
    let files = read_sources(&src);
    let krate = Crate::load(&files).unwrap_or_else(|e| panic!("cannot parse refresh-sdk: {e}"));
    let edges = krate.edges();
    // A reader that found nothing would find no cycle either.
    let edge_count: usize = edges.values().map(BTreeMap::len).sum();
    assert!(
        krate.modules.len() >= 10 && edge_count >= 10,
        "only {} modules and {edge_count} edges found in {}",
        krate.modules.len(),
        src.display()
    );
    // Files no `mod` reaches (test modules aside) are not checked: say so.
    let reached: BTreeSet<&str> = krate.modules.values().map(|m| m.file.as_str()).collect();
    let unreached: Vec<&String> = files
        .keys()
        .filter(|f| !f.ends_with("tests.rs") && !f.contains("tests/"))
        .filter(|f| !reached.contains(format!("src/{f}").as_str()))
        .collect();
    if !unreached.is_empty() || !krate.missing.is_empty() {
        eprintln!(
            "not checked: files no `mod` declares {unreached:?}; `mod`s with no file {:?}",
            krate.missing
        );
    }
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "refresh-sdk's modules have {} cycle(s):\n{}",
        found.len(),
        report(&edges, &found)
    );
}

/// The checker itself, over synthetic crates.
mod checker {
    use super::*;

    /// The edges and cycles of a crate given as `(path under src/, source)`.
    fn graph(files: &[(&str, &str)]) -> (Edges, Vec<Vec<String>>) {
        let files = files
            .iter()
            .map(|(path, source)| (path.to_string(), source.to_string()))
            .collect();
        let krate = Crate::load(&files).expect("the synthetic crate parses");
        let edges = krate.edges();
        let found = cycles(&edges);
        (edges, found)
    }

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    /// Where `from -> to` is made, as `file:line`; empty when it is no edge.
    fn places(edges: &Edges, from: &str, to: &str) -> Vec<String> {
        edges
            .get(from)
            .and_then(|targets| targets.get(to))
            .map(|evidence| {
                evidence
                    .iter()
                    .map(|e| format!("{}:{}", e.file, e.line))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn finds_a_two_cycle_with_the_place_of_each_edge() {
        let (edges, found) = graph(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A;\n"),
            (
                "b.rs",
                "pub struct B;\n\nfn f() {\n    let _ = crate::a::A;\n}\n",
            ),
        ]);
        assert_eq!(found, [nodes(&["a", "b", "a"])]);
        assert_eq!(places(&edges, "a", "b"), ["src/a.rs:1"]);
        assert_eq!(places(&edges, "b", "a"), ["src/b.rs:4"]);
        let printed = report(&edges, &found);
        assert_eq!(
            printed,
            "a -> b -> a\n    a -> b: src/a.rs:1 `crate::b::B`\n    b -> a: src/b.rs:4 `crate::a::A`\n"
        );
    }

    #[test]
    fn finds_a_three_cycle_through_a_multi_line_group_a_macro_and_super() {
        let (edges, found) = graph(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            (
                "a.rs",
                "use crate::{\n    b::{\n        self,\n        B,\n    },\n};\npub struct A;\n",
            ),
            (
                "b.rs",
                "pub struct B;\nfn f() {\n    println!(\"{:?}\", crate::c::C);\n}\n",
            ),
            ("c.rs", "use super::a::A as Renamed;\npub struct C;\n"),
        ]);
        assert_eq!(found, [nodes(&["a", "b", "c", "a"])]);
        assert_eq!(places(&edges, "a", "b"), ["src/a.rs:3", "src/a.rs:4"]);
        assert_eq!(places(&edges, "b", "c"), ["src/b.rs:3"]);
        assert_eq!(places(&edges, "c", "a"), ["src/c.rs:1"]);
    }

    #[test]
    fn checks_siblings_in_a_directory_and_resolves_super() {
        let (edges, found) = graph(&[
            ("lib.rs", "mod http;\npub use http::run;\n"),
            (
                "http/mod.rs",
                "mod exec;\nmod retry;\npub use exec::run;\npub(crate) struct Options;\n",
            ),
            (
                "http/retry.rs",
                "use super::Options;\nuse super::exec::run;\npub fn backoff() {}\n",
            ),
            (
                "http/exec.rs",
                "pub fn run() {\n    super::retry::backoff();\n}\n",
            ),
        ]);
        assert_eq!(found, [nodes(&["http::exec", "http::retry", "http::exec"])]);
        assert_eq!(
            places(&edges, "http::retry", "http"),
            ["src/http/retry.rs:1"]
        );
        assert_eq!(
            places(&edges, "http::exec", "http::retry"),
            ["src/http/exec.rs:2"]
        );
    }

    #[test]
    fn follows_a_glob_re_export_to_the_defining_module() {
        let (edges, found) = graph(&[
            ("lib.rs", "mod http;\nmod util;\n"),
            ("http/mod.rs", "mod exec;\npub use self::exec::*;\n"),
            (
                "http/exec.rs",
                "pub fn run() {\n    crate::util::helper();\n}\n",
            ),
            ("util.rs", "pub fn helper() {\n    crate::http::run();\n}\n"),
        ]);
        assert_eq!(found, [nodes(&["http::exec", "util", "http::exec"])]);
        assert_eq!(places(&edges, "util", "http::exec"), ["src/util.rs:2"]);
    }

    #[test]
    fn a_parent_whose_own_code_uses_a_child_that_uses_it_is_a_cycle() {
        let (edges, found) = graph(&[
            ("lib.rs", "mod http;\n"),
            (
                "http/mod.rs",
                "mod retry;\nuse retry::again;\npub(crate) const LIMIT: u32 = 3;\n\
                 pub fn go() {\n    again();\n}\n",
            ),
            ("http/retry.rs", "use super::LIMIT;\npub fn again() {}\n"),
        ]);
        assert_eq!(found, [nodes(&["http", "http::retry", "http"])]);
        // The use of `again`, not its import, is the edge.
        assert_eq!(places(&edges, "http", "http::retry"), ["src/http/mod.rs:5"]);
    }

    #[test]
    fn accepts_a_clean_graph_of_re_exports_parent_items_and_tests() {
        let (edges, found) = graph(&[
            (
                "lib.rs",
                "mod error;\nmod http;\npub use error::Error;\npub use http::Client;\n",
            ),
            ("error.rs", "pub struct Error;\n"),
            (
                "http/mod.rs",
                "mod client;\nmod options;\n#[cfg(test)]\nmod tests;\n\
                 pub use client::Client;\npub(crate) use options::Options;\n\
                 pub(crate) const NAME: &str = \"sdk\";\n\
                 fn local() {\n    let client = 1;\n    let _ = client;\n}\n",
            ),
            (
                "http/client.rs",
                "mod wire;\nuse super::{NAME, Options};\n\
                 pub struct Client(Options, crate::Error);\n\
                 mod sealed {\n    impl super::Client {}\n}\n",
            ),
            (
                "http/client/wire.rs",
                "pub(crate) fn name() -> &'static str {\n    super::super::NAME\n}\n",
            ),
            (
                "http/options.rs",
                "use crate::error::Error;\npub struct Options;\n\
                 #[cfg(test)]\nmod unit {\n    use crate::http::Client;\n}\n\
                 #[cfg(all(test, unix))]\nfn helper() { let _ = crate::http::NAME; }\n",
            ),
            (
                "http/tests.rs",
                "use crate::http::client::Client;\nuse super::*;\n",
            ),
        ]);
        assert!(found.is_empty(), "{}", report(&edges, &found));
        let all: BTreeSet<(&str, &str)> = edges
            .iter()
            .flat_map(|(from, targets)| targets.keys().map(move |to| (from.as_str(), to.as_str())))
            .collect();
        // `Options` through the parent's re-export is an edge to
        // `http::options`, `crate::Error` through the root's to `error`;
        // `http/client/wire.rs` is folded into `http::client`, and the local
        // `client` in `http/mod.rs` is no edge to `http::client`.
        let expected = [
            ("http::client", "error"),
            ("http::client", "http"),
            ("http::client", "http::options"),
            ("http::options", "error"),
        ];
        assert_eq!(all, BTreeSet::from(expected));
        assert_eq!(
            places(&edges, "http::client", "http"),
            ["src/http/client.rs:2", "src/http/client/wire.rs:2"]
        );
    }
}
