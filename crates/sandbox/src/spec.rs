//! The two embedded specs and the generic request checks derived from them:
//! which operation a method and path name, which statuses an operation
//! documents, whether a body matches a schema, whether the security
//! requirement is met.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, Method, header};
use openapiv3::{
    OpenAPI, ReferenceOr, Schema, SchemaKind, SecurityScheme, StatusCode as SpecStatus, Type,
};
use serde_json::Value;

use crate::{Operation, ViolationKind};

const F5XC_SPEC: &str = include_str!("../specs/f5xc-bfdp.yaml");
const VCF_SPEC: &str = include_str!("../specs/vcf-tokens.yaml");

/// One operation as the spec describes it.
#[derive(Debug)]
pub(crate) struct OperationSpec {
    pub(crate) operation: Operation,
    pub(crate) method: Method,
    pub(crate) path: String,
    /// `Some(required)` when the spec describes a JSON request body.
    body: Option<(bool, ReferenceOr<Schema>)>,
    /// Header names that, any one of them, satisfy the security requirement;
    /// `None` when the operation needs no authentication.
    auth_headers: Option<Vec<String>>,
    documented: BTreeSet<u16>,
    api: Api,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    F5xc,
    Vcf,
}

/// Both specs, parsed once.
#[derive(Debug)]
pub(crate) struct Specs {
    f5xc: OpenAPI,
    vcf: OpenAPI,
    operations: Vec<OperationSpec>,
}

/// What a method and path name.
pub(crate) enum Route<'a> {
    /// A documented operation.
    Operation(&'a OperationSpec),
    /// The path is documented, but not with this method.
    WrongMethod {
        path_operations: Vec<&'a OperationSpec>,
    },
    /// The path is in neither spec.
    Unknown,
}

/// A check that failed, with a description that names no value from the
/// request (a body may carry credentials).
pub(crate) struct Failure {
    pub(crate) kind: ViolationKind,
    pub(crate) detail: String,
}

impl Specs {
    pub(crate) fn load() -> Result<Specs, crate::Error> {
        let f5xc: OpenAPI = serde_yaml_ng::from_str(F5XC_SPEC)
            .map_err(|e| crate::Error::Spec(format!("f5xc-bfdp.yaml: {e}")))?;
        let vcf: OpenAPI = serde_yaml_ng::from_str(VCF_SPEC)
            .map_err(|e| crate::Error::Spec(format!("vcf-tokens.yaml: {e}")))?;
        let mut operations = Vec::new();
        for (api, doc) in [(Api::F5xc, &f5xc), (Api::Vcf, &vcf)] {
            for (path, method, op) in doc.operations() {
                let id = op.operation_id.as_deref().unwrap_or_default();
                let Some(operation) = Operation::from_operation_id(id) else {
                    return Err(crate::Error::Spec(format!(
                        "the sandbox does not implement the operation {id:?} ({method} {path})"
                    )));
                };
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|e| crate::Error::Spec(format!("{id}: {e}")))?;
                operations.push(OperationSpec {
                    operation,
                    method,
                    path: path.to_owned(),
                    body: request_body(doc, op),
                    auth_headers: auth_headers(doc, op),
                    documented: documented_statuses(op),
                    api,
                });
            }
        }
        Ok(Specs {
            f5xc,
            vcf,
            operations,
        })
    }

    pub(crate) fn route(&self, method: &Method, path: &str) -> Route<'_> {
        let on_path: Vec<&OperationSpec> = self
            .operations
            .iter()
            .filter(|op| path_matches(&op.path, path))
            .collect();
        match on_path.iter().find(|op| op.method == *method) {
            Some(op) => Route::Operation(op),
            None if on_path.is_empty() => Route::Unknown,
            None => Route::WrongMethod {
                path_operations: on_path,
            },
        }
    }

    #[cfg(test)]
    pub(crate) fn operation(&self, operation: Operation) -> Option<&OperationSpec> {
        self.operations.iter().find(|op| op.operation == operation)
    }

    fn doc(&self, api: Api) -> &OpenAPI {
        match api {
            Api::F5xc => &self.f5xc,
            Api::Vcf => &self.vcf,
        }
    }

    /// Checks a request for `op` against the spec: authentication, then
    /// `Content-Type`, then the body's presence and shape. The first failure
    /// wins, as a server would reject the request at that point.
    pub(crate) fn check_request(
        &self,
        op: &OperationSpec,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<Value>, Failure> {
        if let Some(names) = &op.auth_headers
            && !names.iter().any(|name| headers.contains_key(name.as_str()))
        {
            return Err(Failure {
                kind: ViolationKind::MissingAuth,
                detail: format!("the operation requires the header {}", names.join(" or ")),
            });
        }
        let Some((required, schema)) = &op.body else {
            return Ok(None);
        };
        if body.is_empty() {
            return if *required {
                Err(Failure {
                    kind: ViolationKind::MissingBody,
                    detail: "the operation requires a JSON request body".into(),
                })
            } else {
                Ok(None)
            };
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" {
            return Err(Failure {
                kind: ViolationKind::ContentType,
                detail: if content_type.is_empty() {
                    "the body has no Content-Type; the spec requires application/json".into()
                } else {
                    format!(
                        "the body's Content-Type is {mime:?}; the spec requires application/json"
                    )
                },
            });
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| Failure {
            kind: ViolationKind::InvalidJson,
            detail: format!(
                "the body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
        let mut problems = Vec::new();
        check_value(self.doc(op.api), schema, &value, "body", &mut problems, 0);
        match problems.is_empty() {
            true => Ok(Some(value)),
            false => Err(Failure {
                kind: ViolationKind::BodySchema,
                detail: problems.join("; "),
            }),
        }
    }
}

impl OperationSpec {
    /// Whether the spec documents `status` for this operation.
    pub(crate) fn documents(&self, status: u16) -> bool {
        self.documented.contains(&status)
    }

    pub(crate) fn documented_statuses(&self) -> impl Iterator<Item = u16> + '_ {
        self.documented.iter().copied()
    }
}

/// Matches a spec path, whose `{name}` segments match any one segment.
fn path_matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

fn request_body(doc: &OpenAPI, op: &openapiv3::Operation) -> Option<(bool, ReferenceOr<Schema>)> {
    let body = match op.request_body.as_ref()? {
        ReferenceOr::Item(body) => body,
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/requestBodies/")?;
            doc.components
                .as_ref()?
                .request_bodies
                .get(name)?
                .as_item()?
        }
    };
    let schema = body.content.get("application/json")?.schema.clone()?;
    Some((body.required, schema))
}

fn auth_headers(doc: &OpenAPI, op: &openapiv3::Operation) -> Option<Vec<String>> {
    let requirements = op.security.as_ref().or(doc.security.as_ref())?;
    // An empty requirement object means "no authentication" is one option.
    if requirements.is_empty() || requirements.iter().any(|r| r.is_empty()) {
        return None;
    }
    let schemes = &doc.components.as_ref()?.security_schemes;
    let names: Vec<String> = requirements
        .iter()
        .flat_map(|requirement| requirement.keys())
        .filter_map(|scheme| match schemes.get(scheme)?.as_item()? {
            SecurityScheme::APIKey {
                location: openapiv3::APIKeyLocation::Header,
                name,
                ..
            } => Some(name.to_ascii_lowercase()),
            SecurityScheme::HTTP { .. } | SecurityScheme::OAuth2 { .. } => {
                Some(header::AUTHORIZATION.as_str().to_owned())
            }
            _ => None,
        })
        .collect();
    (!names.is_empty()).then_some(names)
}

fn documented_statuses(op: &openapiv3::Operation) -> BTreeSet<u16> {
    let mut statuses = BTreeSet::new();
    for status in op.responses.responses.keys() {
        match status {
            SpecStatus::Code(code) => {
                statuses.insert(*code);
            }
            SpecStatus::Range(class) => {
                statuses.extend(class * 100..class * 100 + 100);
            }
        }
    }
    statuses
}

fn resolve<'a>(doc: &'a OpenAPI, schema: &'a ReferenceOr<Schema>) -> Option<&'a Schema> {
    match schema {
        ReferenceOr::Item(schema) => Some(schema),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/schemas/")?;
            match doc.components.as_ref()?.schemas.get(name)? {
                ReferenceOr::Item(schema) => Some(schema),
                // A reference to a reference: resolve one more level at most
                // per call; the depth guard in `check_value` bounds recursion.
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}

fn boxed_to_plain(schema: &ReferenceOr<Box<Schema>>) -> ReferenceOr<Schema> {
    match schema {
        ReferenceOr::Item(schema) => ReferenceOr::Item((**schema).clone()),
        ReferenceOr::Reference { reference } => ReferenceOr::Reference {
            reference: reference.clone(),
        },
    }
}

/// Checks `value` against `schema`: JSON types, object property types and
/// `required`, array items. Unknown properties are allowed, as the specs do
/// not forbid them. Problems name the location, never the value.
fn check_value(
    doc: &OpenAPI,
    schema: &ReferenceOr<Schema>,
    value: &Value,
    at: &str,
    problems: &mut Vec<String>,
    depth: usize,
) {
    // The specs are small; a deep recursion means a cyclic schema meeting a
    // hostile body, where stopping is better than overflowing the stack.
    if depth > 32 {
        return;
    }
    let Some(schema) = resolve(doc, schema) else {
        problems.push(format!(
            "{at}: the spec's schema reference does not resolve"
        ));
        return;
    };
    if value.is_null() && schema.schema_data.nullable {
        return;
    }
    let found = json_type(value);
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(_)) if !value.is_string() => {
            problems.push(format!("{at}: expected a string, found {found}"));
        }
        SchemaKind::Type(Type::Boolean(_)) if !value.is_boolean() => {
            problems.push(format!("{at}: expected a boolean, found {found}"));
        }
        SchemaKind::Type(Type::Integer(_)) if !(value.is_i64() || value.is_u64()) => {
            problems.push(format!("{at}: expected an integer, found {found}"));
        }
        SchemaKind::Type(Type::Number(_)) if !value.is_number() => {
            problems.push(format!("{at}: expected a number, found {found}"));
        }
        SchemaKind::Type(Type::Array(array)) => match value.as_array() {
            None => problems.push(format!("{at}: expected an array, found {found}")),
            Some(items) => {
                if let Some(item_schema) = &array.items {
                    let item_schema = boxed_to_plain(item_schema);
                    for (i, item) in items.iter().enumerate() {
                        check_value(
                            doc,
                            &item_schema,
                            item,
                            &format!("{at}[{i}]"),
                            problems,
                            depth + 1,
                        );
                    }
                }
            }
        },
        SchemaKind::Type(Type::Object(object)) => match value.as_object() {
            None => problems.push(format!("{at}: expected an object, found {found}")),
            Some(fields) => {
                for name in &object.required {
                    if !fields.contains_key(name) {
                        problems.push(format!("{at}: the required property {name:?} is missing"));
                    }
                }
                for (name, property) in &object.properties {
                    if let Some(field) = fields.get(name) {
                        check_value(
                            doc,
                            &boxed_to_plain(property),
                            field,
                            &format!("{at}.{name}"),
                            problems,
                            depth + 1,
                        );
                    }
                }
            }
        },
        _ => {}
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_specs_load_and_map_to_every_operation() {
        let specs = Specs::load().expect("the embedded specs parse");
        for operation in Operation::ALL {
            assert!(
                specs.operation(operation).is_some(),
                "{operation:?} is in a spec"
            );
        }
    }

    #[test]
    fn templates_match_one_segment_per_parameter() {
        assert!(path_matches("/a/{id}/b", "/a/x/b"));
        assert!(!path_matches("/a/{id}/b", "/a//b"));
        assert!(!path_matches("/a/{id}/b", "/a/x/y/b"));
        assert!(path_matches("/v1/tokens", "/v1/tokens"));
        assert!(!path_matches("/v1/tokens", "/v1/tokens/"));
    }
}
