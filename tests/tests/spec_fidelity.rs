//! The hand-written specs state every fact the vendor pages give, and nothing
//! tighter: parsed with `openapiv3`, asserted fact by fact.

use openapiv3::{
    APIKeyLocation, MediaType, OpenAPI, Operation, ReferenceOr, RequestBody, Response, Schema,
    SchemaKind, SecurityScheme, StatusCode, Type,
};

fn load(name: &str) -> OpenAPI {
    let path = format!("{}/../specs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is not OpenAPI 3.0: {e}"))
}

fn operation<'a>(spec: &'a OpenAPI, path: &str, method: &str) -> &'a Operation {
    let item = spec
        .paths
        .paths
        .get(path)
        .unwrap_or_else(|| panic!("the spec has no path {path}"))
        .as_item()
        .unwrap_or_else(|| panic!("{path} is a reference"));
    let (_, op) = item
        .iter()
        .find(|(m, _)| *m == method)
        .unwrap_or_else(|| panic!("{path} has no {method} operation"));
    op
}

fn json_media<'a>(content: &'a openapiv3::Content, what: &str) -> &'a MediaType {
    assert_eq!(
        content.keys().collect::<Vec<_>>(),
        ["application/json"],
        "{what}: the only media type is application/json"
    );
    &content["application/json"]
}

fn body(op: &Operation) -> &RequestBody {
    match op
        .request_body
        .as_ref()
        .expect("the operation has a request body")
    {
        ReferenceOr::Item(body) => body,
        ReferenceOr::Reference { reference } => panic!("unexpected body reference {reference}"),
    }
}

fn response(op: &Operation, status: u16) -> &Response {
    match op.responses.responses.get(&StatusCode::Code(status)) {
        Some(ReferenceOr::Item(r)) => r,
        other => panic!("status {status}: expected an inline response, got {other:?}"),
    }
}

fn statuses(op: &Operation) -> Vec<u16> {
    assert!(
        op.responses.default.is_none(),
        "no catch-all default response"
    );
    op.responses
        .responses
        .keys()
        .map(|s| match s {
            StatusCode::Code(c) => *c,
            StatusCode::Range(r) => panic!("unexpected status range {r}"),
        })
        .collect()
}

/// The schema is a reference to `#/components/schemas/{name}`.
fn assert_ref(schema: &ReferenceOr<Schema>, name: &str) {
    match schema {
        ReferenceOr::Reference { reference } => {
            assert_eq!(reference, &format!("#/components/schemas/{name}"))
        }
        ReferenceOr::Item(s) => panic!("expected a reference to {name}, got {s:?}"),
    }
}

/// The schema is a plain string: no format, no length or pattern limits.
fn assert_plain_string(schema: &ReferenceOr<Schema>, what: &str) {
    let ReferenceOr::Item(schema) = schema else {
        panic!("{what}: expected an inline string schema")
    };
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(s)) => {
            assert!(s.max_length.is_none(), "{what}: no guessed maxLength");
            assert!(s.min_length.is_none(), "{what}: no guessed minLength");
            assert!(s.pattern.is_none(), "{what}: no guessed pattern");
            assert!(s.enumeration.is_empty(), "{what}: no guessed enum");
        }
        other => panic!("{what}: expected type string, got {other:?}"),
    }
}

fn component<'a>(spec: &'a OpenAPI, name: &str) -> &'a Schema {
    match spec.components.as_ref().and_then(|c| c.schemas.get(name)) {
        Some(ReferenceOr::Item(s)) => s,
        other => panic!("component {name}: expected a schema, got {other:?}"),
    }
}

/// An object schema with exactly these optional properties: `(name, kind)`
/// where kind is `string`, `array<string>`, `array<$Name>`, `map<string>` or
/// `$Name` for a reference.
fn assert_object(spec: &OpenAPI, name: &str, expected: &[(&str, &str)]) {
    let schema = component(spec, name);
    assert!(
        schema.schema_data.description.is_some(),
        "{name} is described"
    );
    let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
        panic!("{name} is not an object")
    };
    assert!(
        object.required.is_empty(),
        "{name}: every field is optional"
    );
    let names: Vec<_> = object.properties.keys().map(String::as_str).collect();
    let mut wanted: Vec<_> = expected.iter().map(|(n, _)| *n).collect();
    wanted.sort_unstable();
    let mut got = names.clone();
    got.sort_unstable();
    assert_eq!(got, wanted, "{name}: property names");
    for (field, kind) in expected {
        let property = &object.properties[*field];
        let what = format!("{name}.{field}");
        match (*kind, property) {
            ("string", ReferenceOr::Item(s)) => {
                assert_plain_string(&ReferenceOr::Item(s.as_ref().clone()), &what)
            }
            (kind, ReferenceOr::Reference { reference }) if kind.starts_with('$') => {
                assert_eq!(
                    reference,
                    &format!("#/components/schemas/{}", &kind[1..]),
                    "{what}"
                )
            }
            (kind, ReferenceOr::Item(s)) if kind.starts_with("array<") => {
                let SchemaKind::Type(Type::Array(array)) = &s.schema_kind else {
                    panic!("{what} is not an array")
                };
                let items = array.items.as_ref().expect("array items are declared");
                let inner = &kind["array<".len()..kind.len() - 1];
                match items {
                    ReferenceOr::Item(i) if inner == "string" => {
                        assert_plain_string(&ReferenceOr::Item(i.as_ref().clone()), &what)
                    }
                    ReferenceOr::Reference { reference } => assert_eq!(
                        reference,
                        &format!("#/components/schemas/{}", &inner[1..]),
                        "{what}"
                    ),
                    other => panic!("{what}: unexpected items {other:?}"),
                }
            }
            ("map<string>", ReferenceOr::Item(s)) => {
                let SchemaKind::Type(Type::Object(map)) = &s.schema_kind else {
                    panic!("{what} is not an object")
                };
                match map.additional_properties.as_ref() {
                    Some(openapiv3::AdditionalProperties::Schema(v)) => {
                        assert_plain_string(v.as_ref(), &what)
                    }
                    other => panic!("{what}: values must be strings, got {other:?}"),
                }
            }
            (kind, other) => panic!("{what}: expected {kind}, got {other:?}"),
        }
    }
}

#[test]
fn f5xc_server_is_the_tenant_console_root() {
    let spec = load("f5xc-bfdp.yaml");
    assert!(
        spec.openapi.starts_with("3.0."),
        "progenitor reads OpenAPI 3.0.x"
    );
    assert_eq!(spec.servers.len(), 1);
    let server = &spec.servers[0];
    assert_eq!(server.url, "https://{tenant}.console.ves.volterra.io");
    let variables = server.variables.as_ref().expect("server variables");
    assert!(variables.contains_key("tenant"), "the tenant is a variable");
}

#[test]
fn f5xc_refresh_token_operation() {
    let spec = load("f5xc-bfdp.yaml");
    assert_eq!(spec.paths.paths.len(), 1, "one path");
    let op = operation(
        &spec,
        "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
        "post",
    );
    assert_eq!(op.operation_id.as_deref(), Some("refresh_token"));

    let body = body(op);
    assert!(body.required, "the request body is required");
    assert_ref(
        json_media(&body.content, "request")
            .schema
            .as_ref()
            .expect("schema"),
        "RefreshTokenRequest",
    );

    let ok = response(op, 200);
    assert_ref(
        json_media(&ok.content, "200")
            .schema
            .as_ref()
            .expect("schema"),
        "RefreshTokenResponse",
    );

    let errors = [
        (401, "not authorized"),
        (403, "permission"),
        (404, "not found"),
        (409, "conflict"),
        (429, "too frequently"),
        (500, "error"),
        (503, "temporarily unavailable"),
        (504, "timed out"),
    ];
    let mut expected: Vec<u16> = errors.iter().map(|(s, _)| *s).collect();
    expected.insert(0, 200);
    assert_eq!(statuses(op), expected, "exactly the documented statuses");
    for (status, meaning) in errors {
        let r = response(op, status);
        assert!(
            r.description.to_lowercase().contains(meaning),
            "{status} is described as {meaning:?}, got {:?}",
            r.description
        );
        let schema = json_media(&r.content, &status.to_string()).schema.as_ref();
        assert_plain_string(schema.expect("schema"), &format!("{status} body"));
    }
}

#[test]
fn f5xc_api_token_security_scheme_applies_to_the_operation() {
    let spec = load("f5xc-bfdp.yaml");
    let schemes = &spec
        .components
        .as_ref()
        .expect("components")
        .security_schemes;
    match schemes.get("APIToken") {
        Some(ReferenceOr::Item(SecurityScheme::APIKey {
            location,
            name,
            description,
            ..
        })) => {
            assert!(matches!(location, APIKeyLocation::Header));
            assert_eq!(name, "Authorization");
            assert!(
                description
                    .as_deref()
                    .unwrap_or("")
                    .contains("APIToken <token>"),
                "the scheme says the value is `APIToken <token>`"
            );
        }
        other => panic!("expected an apiKey scheme APIToken, got {other:?}"),
    }
    let op = operation(
        &spec,
        "/api/ai_data/bfdp/namespaces/system/bfdp/refresh_token",
        "post",
    );
    let security = op
        .security
        .as_ref()
        .expect("the operation names its security");
    assert_eq!(security.len(), 1);
    assert!(security[0].contains_key("APIToken"));
}

#[test]
fn f5xc_schemas() {
    let spec = load("f5xc-bfdp.yaml");
    assert_object(&spec, "RefreshTokenRequest", &[("product_name", "string")]);
    assert_object(&spec, "RefreshTokenResponse", &[("result", "string")]);
}

#[test]
fn vcf_server_is_the_sddc_manager() {
    let spec = load("vcf-tokens.yaml");
    assert!(spec.openapi.starts_with("3.0."));
    assert_eq!(spec.servers.len(), 1);
    assert_eq!(spec.servers[0].url, "https://{sddc_manager}");
    let variables = spec.servers[0]
        .variables
        .as_ref()
        .expect("server variables");
    assert!(variables.contains_key("sddc_manager"));
}

#[test]
fn vcf_token_operations_take_no_auth() {
    let spec = load("vcf-tokens.yaml");
    let schemes = spec
        .components
        .as_ref()
        .map(|c| c.security_schemes.len())
        .unwrap_or(0);
    assert_eq!(schemes, 0, "no security scheme");
    assert!(spec.security.as_ref().is_none_or(|s| s.is_empty()));
    for (path, item) in spec.paths.iter() {
        for (method, op) in item.as_item().expect("inline path item").iter() {
            assert!(
                op.security.as_ref().is_none_or(|s| s.is_empty()),
                "{method} {path} takes no auth"
            );
        }
    }
}

#[test]
fn vcf_refresh_access_token_operation() {
    let spec = load("vcf-tokens.yaml");
    let op = operation(&spec, "/v1/tokens/access-token/refresh", "patch");
    assert_eq!(op.operation_id.as_deref(), Some("refreshAccessToken"));
    let body = body(op);
    assert!(body.required, "the refresh token id is required");
    assert_plain_string(
        json_media(&body.content, "request")
            .schema
            .as_ref()
            .expect("schema"),
        "refresh body",
    );
    assert_eq!(statuses(op), [200, 400, 404, 500]);
    assert_plain_string(
        json_media(&response(op, 200).content, "200")
            .schema
            .as_ref()
            .expect("schema"),
        "200 body",
    );
    for status in [400, 404, 500] {
        let media = json_media(&response(op, status).content, &status.to_string());
        assert_ref(media.schema.as_ref().expect("schema"), "Error");
    }
}

#[test]
fn vcf_create_token_operation() {
    let spec = load("vcf-tokens.yaml");
    let op = operation(&spec, "/v1/tokens", "post");
    assert_eq!(op.operation_id.as_deref(), Some("createToken"));
    let body = body(op);
    assert!(body.required);
    assert_ref(
        json_media(&body.content, "request")
            .schema
            .as_ref()
            .expect("schema"),
        "TokenCreationSpec",
    );
    assert_eq!(statuses(op), [201, 400, 500]);
    assert_ref(
        json_media(&response(op, 201).content, "201")
            .schema
            .as_ref()
            .expect("schema"),
        "TokenPair",
    );
    for status in [400, 500] {
        let media = json_media(&response(op, status).content, &status.to_string());
        assert_ref(media.schema.as_ref().expect("schema"), "Error");
    }
}

#[test]
fn vcf_invalidate_refresh_token_operation() {
    let spec = load("vcf-tokens.yaml");
    let op = operation(&spec, "/v1/tokens/refresh-token", "delete");
    assert_eq!(op.operation_id.as_deref(), Some("invalidateRefreshToken"));
    let body = body(op);
    assert!(body.required);
    assert_plain_string(
        json_media(&body.content, "request")
            .schema
            .as_ref()
            .expect("schema"),
        "invalidate body",
    );
    assert_eq!(statuses(op), [204]);
    assert!(response(op, 204).content.is_empty(), "204 has no content");
}

#[test]
fn vcf_has_exactly_the_three_token_operations() {
    let spec = load("vcf-tokens.yaml");
    let mut ops: Vec<_> = spec
        .operations()
        .map(|(path, method, op)| (path, method, op.operation_id.clone().unwrap_or_default()))
        .collect();
    ops.sort();
    assert_eq!(
        ops,
        [
            ("/v1/tokens", "post", "createToken".to_string()),
            (
                "/v1/tokens/access-token/refresh",
                "patch",
                "refreshAccessToken".to_string()
            ),
            (
                "/v1/tokens/refresh-token",
                "delete",
                "invalidateRefreshToken".to_string()
            ),
        ]
    );
}

#[test]
fn vcf_schemas() {
    let spec = load("vcf-tokens.yaml");
    assert_object(
        &spec,
        "TokenCreationSpec",
        &[
            ("username", "string"),
            ("password", "string"),
            ("apiKey", "string"),
            ("idToken", "string"),
        ],
    );
    assert_object(
        &spec,
        "TokenPair",
        &[("accessToken", "string"), ("refreshToken", "$RefreshToken")],
    );
    assert_object(&spec, "RefreshToken", &[("id", "string")]);
    assert_object(
        &spec,
        "Error",
        &[
            ("arguments", "array<string>"),
            ("causes", "array<$ErrorCause>"),
            ("context", "map<string>"),
            ("errorCode", "string"),
            ("errorType", "string"),
            ("label", "string"),
            ("message", "string"),
            ("nestedErrors", "array<$Error>"),
            ("notifications", "array<$ValidationNotification>"),
            ("referenceToken", "string"),
            ("remediationMessage", "string"),
            ("remediationUrl", "string"),
        ],
    );
    assert_object(
        &spec,
        "ErrorCause",
        &[("message", "string"), ("type", "string")],
    );
    // As VMware's own SDDC Manager 9.1 Python client models them.
    assert_object(
        &spec,
        "ValidationNotification",
        &[
            ("severity", "string"),
            ("message", "string"),
            ("impactMessage", "string"),
            ("remediations", "array<$Remediation>"),
        ],
    );
    assert_object(
        &spec,
        "Remediation",
        &[("message", "string"), ("link", "string")],
    );
}

#[test]
fn every_operation_and_field_is_described() {
    for name in ["f5xc-bfdp.yaml", "vcf-tokens.yaml"] {
        let spec = load(name);
        for (path, method, op) in spec.operations() {
            assert!(
                op.description.is_some(),
                "{name}: {method} {path} is described"
            );
            assert!(
                op.summary.is_some(),
                "{name}: {method} {path} has a summary"
            );
        }
        for (schema_name, schema) in &spec.components.as_ref().expect("components").schemas {
            let ReferenceOr::Item(schema) = schema else {
                continue;
            };
            if let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind {
                for (field, property) in &object.properties {
                    if let ReferenceOr::Item(p) = property {
                        assert!(
                            p.schema_data.description.is_some(),
                            "{name}: {schema_name}.{field} is described"
                        );
                    }
                }
            }
        }
    }
}
