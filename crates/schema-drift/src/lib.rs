//! Types ↔ spec: compares the JSON Schema that `schemars` derives for every
//! generated type with the spec's component schema of the same name, so a
//! spec edited without regenerating (or a generator change) shows up as a
//! named difference rather than as a client that silently drops a field.
//!
//! Both sides are first brought into one canonical form (see
//! [`canonical_spec`] and [`canonical_type`]); the normalizations there are
//! exactly the known artefacts of progenitor and schemars, each with its
//! reason. Everything else, unknown keywords included, is compared as is,
//! so a construct this module does not know shows up as a difference
//! instead of passing unseen.
//!
//! Its callers are the workspace tests (`tests/tests/types_vs_spec.rs`) and
//! `cargo xtask validate`. It is a crate of its own because it needs the
//! generated types: `sdk-codegen` cannot hold it (the client crates
//! build-depend on it, so it cannot depend on them), and the xtask should
//! not depend on the test crate.
//!
//! ```
//! let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! let summary = refresh_schema_drift::check_workspace(&root).expect("the specs load");
//! assert!(summary.drifts.is_empty(), "{:?}", summary.drifts);
//! ```

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

/// One generated type and the schema `schemars` derives for it.
#[derive(Clone, Debug)]
pub struct GeneratedType {
    /// The type's name, which is its component schema's name in the spec.
    pub name: &'static str,
    /// `schemars::schema_for!(T)`.
    pub schema: schemars::Schema,
}

/// The generated types of one client crate and the spec they come from.
#[derive(Clone, Debug)]
pub struct SpecTypes {
    /// The spec, relative to the workspace root.
    pub spec_path: &'static str,
    /// Every type in the crate's `types` module.
    pub types: Vec<GeneratedType>,
}

/// A difference between a generated type and its spec schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The spec, relative to the workspace root.
    pub spec_path: String,
    /// The type (and component schema) name.
    pub type_name: String,
    /// Where in the type: field names joined by `.`, `[]` for array items,
    /// `{}` for map values; empty for the type itself.
    pub field: String,
    /// What differs.
    pub what: String,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field.is_empty() {
            true => write!(
                f,
                "{}: type `{}`: {}",
                self.spec_path, self.type_name, self.what
            ),
            false => write!(
                f,
                "{}: type `{}`, field `{}`: {}",
                self.spec_path, self.type_name, self.field, self.what
            ),
        }
    }
}

/// The outcome of [`check_workspace`].
#[derive(Clone, Debug)]
pub struct Summary {
    /// How many types were compared with a spec schema.
    pub types_compared: usize,
    /// Every difference found; empty when the types match the specs.
    pub drifts: Vec<Drift>,
}

macro_rules! generated {
    ($($module:ident :: $ty:ident),* $(,)?) => {
        vec![$(GeneratedType {
            name: stringify!($ty),
            schema: schemars::schema_for!($module::types::$ty),
        }),*]
    };
}

/// Every generated type of both client crates. Rust has no reflection over
/// a module, so the list is written out; [`compare`] reports any spec
/// component missing from it, so a new schema cannot slip past.
pub fn generated_types() -> Vec<SpecTypes> {
    vec![
        SpecTypes {
            spec_path: "specs/f5xc-bfdp.yaml",
            types: generated![
                f5xc_bfdp::RefreshTokenRequest,
                f5xc_bfdp::RefreshTokenResponse,
            ],
        },
        SpecTypes {
            spec_path: "specs/vcf-tokens.yaml",
            types: generated![
                vcf_tokens::Error,
                vcf_tokens::ErrorCause,
                vcf_tokens::RefreshToken,
                vcf_tokens::Remediation,
                vcf_tokens::TokenCreationSpec,
                vcf_tokens::TokenPair,
                vcf_tokens::ValidationNotification,
            ],
        },
    ]
}

/// Compares every generated type with the specs under `root` (the
/// workspace root). `Err` only when a spec cannot be read or parsed.
pub fn check_workspace(root: &Path) -> Result<Summary, String> {
    let mut summary = Summary {
        types_compared: 0,
        drifts: Vec::new(),
    };
    for crate_types in generated_types() {
        let path = root.join(crate_types.spec_path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let spec: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("{} is not YAML: {e}", path.display()))?;
        summary.types_compared += crate_types.types.len();
        summary
            .drifts
            .extend(compare(crate_types.spec_path, &spec, &crate_types.types));
    }
    Ok(summary)
}

/// Compares `types` with the component schemas of `spec` (an OpenAPI 3.0
/// document as JSON): each type with the schema of its name, and every
/// component schema must have a type.
pub fn compare(spec_path: &str, spec: &Value, types: &[GeneratedType]) -> Vec<Drift> {
    let empty = Map::new();
    let components = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let drift = |type_name: &str, field: String, what: String| Drift {
        spec_path: spec_path.to_owned(),
        type_name: type_name.to_owned(),
        field,
        what,
    };
    let mut drifts = Vec::new();
    for ty in types {
        match components.get(ty.name) {
            None => drifts.push(drift(
                ty.name,
                String::new(),
                "the spec has no component schema of this name (renamed or removed without \
                 regenerating?)"
                    .to_owned(),
            )),
            Some(spec_schema) => {
                let expected = canonical_spec(spec_schema);
                let actual = canonical_type(ty.schema.as_value(), ty.name);
                let mut found = Vec::new();
                diff(&expected, &actual, &mut Vec::new(), &mut found);
                drifts.extend(found.into_iter().map(|(f, w)| drift(ty.name, f, w)));
            }
        }
    }
    let compared: BTreeSet<&str> = types.iter().map(|t| t.name).collect();
    for name in components.keys() {
        if !compared.contains(name.as_str()) {
            drifts.push(drift(
                name,
                String::new(),
                "the spec defines this schema but no generated type is compared with it \
                 (regenerate, and list the type in refresh_schema_drift::generated_types)"
                    .to_owned(),
            ));
        }
    }
    drifts
}

/// Keywords that document rather than constrain, dropped on both sides:
/// progenitor turns descriptions into doc comments that schemars reads back
/// re-wrapped, and titles/examples never reach the Rust type.
const DOCUMENTATION: [&str; 6] = [
    "description",
    "title",
    "example",
    "examples",
    "externalDocs",
    "$comment",
];

/// The spec side (OpenAPI 3.0) in canonical form.
pub fn canonical_spec(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            k if DOCUMENTATION.contains(&k) => {}
            // Types refer to each other by name; where the name points is
            // each side's own business (`#/components/schemas/` here).
            "$ref" => {
                out.insert(key.clone(), ref_name(value, "#/components/schemas/", ""));
            }
            "nullable" if value == &Value::Bool(false) => {}
            "additionalProperties" if value == &Value::Bool(true) => {}
            _ => {
                out.insert(key.clone(), canonical_children(key, value, canonical_spec));
            }
        }
    }
    finish_object(out)
}

/// The `schemars` side (JSON Schema 2020-12) in canonical form; `root_name`
/// resolves the self-reference `#` of a recursive type.
pub fn canonical_type(schema: &Value, root_name: &str) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    // schemars writes `Option<T>` of a referenced type as
    // `anyOf: [T, {type: null}]`: the same as OpenAPI's `nullable`.
    if let Some(Value::Array(any_of)) = object.get("anyOf") {
        let null = serde_json::json!({"type": "null"});
        if any_of.len() == 2 && any_of.contains(&null) {
            let inner = any_of.iter().find(|s| **s != null).unwrap_or(&null);
            let mut merged = object.clone();
            merged.remove("anyOf");
            if let Some(inner) = inner.as_object() {
                merged.extend(inner.clone());
            }
            merged.insert("nullable".to_owned(), Value::Bool(true));
            return canonical_type(&Value::Object(merged), root_name);
        }
    }
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            k if DOCUMENTATION.contains(&k) => {}
            // The document header and the definitions table: each type in
            // `$defs` is compared on its own, against its own spec schema.
            "$schema" | "$defs" => {}
            // schemars writes a reference to the type being defined as `#`.
            "$ref" => {
                out.insert(key.clone(), ref_name(value, "#/$defs/", root_name));
            }
            // `Option<T>` becomes `type: [T, "null"]`; OpenAPI 3.0 says
            // `type: T, nullable: true`.
            "type" => match value.as_array() {
                Some(types) if types.len() == 2 && types.contains(&Value::from("null")) => {
                    let other = types.iter().find(|t| *t != "null").cloned();
                    out.insert(key.clone(), other.unwrap_or(Value::Null));
                    out.insert("nullable".to_owned(), Value::Bool(true));
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            },
            // progenitor gives optional arrays and maps `#[serde(default)]`,
            // which schemars reports as a default of the empty value; the
            // spec states no default, and absent already means empty.
            "default" if is_empty_value(value) => {}
            _ => {
                let canonical = canonical_children(key, value, |v| canonical_type(v, root_name));
                out.insert(key.clone(), canonical);
            }
        }
    }
    finish_object(out)
}

/// Canonicalizes the sub-schemas under `key` with `each`.
fn canonical_children(key: &str, value: &Value, each: impl Fn(&Value) -> Value) -> Value {
    match (key, value) {
        ("properties", Value::Object(properties)) => Value::Object(
            properties
                .iter()
                .map(|(name, schema)| (name.clone(), each(schema)))
                .collect(),
        ),
        ("items" | "additionalProperties" | "not", Value::Object(_)) => each(value),
        ("allOf" | "anyOf" | "oneOf", Value::Array(schemas)) => {
            Value::Array(schemas.iter().map(&each).collect())
        }
        // Order of `required` carries no meaning.
        ("required", Value::Array(names)) => {
            let mut names = names.clone();
            names.sort_by_key(|n| n.to_string());
            Value::Array(names)
        }
        _ => value.clone(),
    }
}

/// Drops what only the Rust representation adds to an object schema.
fn finish_object(mut out: Map<String, Value>) -> Value {
    // An empty `required` list is the same as none.
    if out
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        out.remove("required");
    }
    // progenitor makes a property the spec does not require an `Option<T>`
    // (or a defaulted `Vec`/map), whose schema then admits `null`: the Rust
    // type's way of saying "may be absent", not a spec fact. So `nullable`
    // is compared only on required properties.
    let required: BTreeSet<String> = out
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(properties)) = out.get_mut("properties") {
        let optional = properties
            .iter_mut()
            .filter(|(name, _)| !required.contains(*name));
        for (_, schema) in optional {
            if let Some(schema) = schema.as_object_mut() {
                schema.remove("nullable");
            }
        }
    }
    Value::Object(out)
}

fn ref_name(value: &Value, prefix: &str, root_name: &str) -> Value {
    match value.as_str() {
        Some("#") => Value::from(root_name),
        Some(target) => Value::from(target.strip_prefix(prefix).unwrap_or(target)),
        None => value.clone(),
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(entries) => entries.is_empty(),
        _ => false,
    }
}

/// Integer and float widths schemars states for Rust number types; the spec
/// saying nothing about width is not a difference.
const RUST_WIDTH_FORMATS: [&str; 12] = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "uint", "int",
    "float", "double",
];

/// Appends to `found` every `(field, what)` where `expected` (the spec)
/// and `actual` (the type) differ; `path` is the field path so far.
fn diff(
    expected: &Value,
    actual: &Value,
    path: &mut Vec<String>,
    found: &mut Vec<(String, String)>,
) {
    let field = |path: &[String]| path.join(".").replace(".[]", "[]").replace(".{}", "{}");
    let (Value::Object(spec), Value::Object(ty)) = (expected, actual) else {
        if expected != actual {
            found.push((
                field(path),
                format!("the spec says {expected}, the type says {actual}"),
            ));
        }
        return;
    };
    let keys: BTreeSet<&String> = spec.keys().chain(ty.keys()).collect();
    for key in keys {
        match (key.as_str(), spec.get(key), ty.get(key)) {
            ("format", None, Some(Value::String(f)))
                if RUST_WIDTH_FORMATS.contains(&f.as_str()) => {}
            ("properties", Some(Value::Object(s)), Some(Value::Object(t))) => {
                let names: BTreeSet<&String> = s.keys().chain(t.keys()).collect();
                for name in names {
                    path.push(name.clone());
                    match (s.get(name), t.get(name)) {
                        (Some(s), Some(t)) => diff(s, t, path, found),
                        (Some(_), None) => found.push((
                            field(path),
                            "the spec has this property, the type has no field of that name"
                                .to_owned(),
                        )),
                        (None, Some(_)) => found.push((
                            field(path),
                            "the type has this field, the spec has no property of that name"
                                .to_owned(),
                        )),
                        (None, None) => {}
                    }
                    path.pop();
                }
            }
            ("items", Some(s), Some(t)) => {
                path.push("[]".to_owned());
                diff(s, t, path, found);
                path.pop();
            }
            ("additionalProperties", Some(s), Some(t)) => {
                path.push("{}".to_owned());
                diff(s, t, path, found);
                path.pop();
            }
            ("required", s, t) => {
                let names = |v: Option<&Value>| -> BTreeSet<String> {
                    v.and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|n| n.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (s, t) = (names(s), names(t));
                for name in s.difference(&t) {
                    path.push(name.clone());
                    found.push((
                        field(path),
                        "the spec requires it, the type has it optional".to_owned(),
                    ));
                    path.pop();
                }
                for name in t.difference(&s) {
                    path.push(name.clone());
                    found.push((
                        field(path),
                        "the type requires it, the spec has it optional".to_owned(),
                    ));
                    path.pop();
                }
            }
            (_, Some(s), Some(t)) if s == t => {}
            (_, Some(s), Some(t)) => found.push((
                field(path),
                format!("`{key}`: the spec says {s}, the type says {t}"),
            )),
            (_, Some(s), None) => found.push((
                field(path),
                format!("`{key}`: the spec says {s}, the type says nothing"),
            )),
            (_, None, Some(t)) => found.push((
                field(path),
                format!("`{key}`: the type says {t}, the spec says nothing"),
            )),
            (_, None, None) => {}
        }
    }
}
