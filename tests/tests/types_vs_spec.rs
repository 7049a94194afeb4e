//! The generated types agree with the specs' component schemas (the same
//! comparison `cargo xtask validate` runs), and the comparison catches drift.

use std::path::{Path, PathBuf};

use refresh_schema_drift::{Drift, GeneratedType};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn vcf_types() -> Vec<GeneratedType> {
    refresh_schema_drift::generated_types()
        .into_iter()
        .find(|s| s.spec_path == "specs/vcf-tokens.yaml")
        .expect("the VCF types are listed")
        .types
}

/// Compares the VCF types with the VCF spec after `mutate` edits it.
fn vcf_drifts_after(mutate: impl FnOnce(&mut Value)) -> Vec<Drift> {
    let mut vcf = spec("specs/vcf-tokens.yaml");
    mutate(&mut vcf);
    refresh_schema_drift::compare("specs/vcf-tokens.yaml", &vcf, &vcf_types())
}

fn schema_mut<'a>(spec: &'a mut Value, pointer: &str) -> &'a mut serde_json::Map<String, Value> {
    spec.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the spec has an object at {pointer}"))
}

#[test]
fn every_generated_type_matches_its_spec_schema() {
    let summary = refresh_schema_drift::check_workspace(&root()).expect("the specs load");
    let listed: usize = refresh_schema_drift::generated_types()
        .iter()
        .map(|s| s.types.len())
        .sum();
    assert_eq!(summary.types_compared, listed);
    assert!(
        summary.types_compared >= 7,
        "both crates' types are compared"
    );
    let drifts: Vec<String> = summary.drifts.iter().map(ToString::to_string).collect();
    assert!(
        drifts.is_empty(),
        "types drifted from the specs:\n{}",
        drifts.join("\n")
    );
}

#[test]
fn a_property_renamed_in_the_spec_is_reported_on_both_names() {
    let drifts = vcf_drifts_after(|vcf| {
        let properties = schema_mut(vcf, "/components/schemas/TokenPair/properties");
        let access = properties
            .remove("accessToken")
            .expect("TokenPair.accessToken");
        properties.insert("access_token".to_owned(), access);
    });
    let fields: Vec<(&str, &str)> = drifts
        .iter()
        .map(|d| (d.type_name.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [("TokenPair", "accessToken"), ("TokenPair", "access_token")],
        "{drifts:?}"
    );
    assert!(
        drifts[0].what.contains("the type has this field"),
        "{}",
        drifts[0]
    );
    assert!(
        drifts[1].what.contains("the spec has this property"),
        "{}",
        drifts[1]
    );
}

#[test]
fn a_string_turned_integer_is_reported_with_both_types() {
    let drifts = vcf_drifts_after(|vcf| {
        schema_mut(vcf, "/components/schemas/ErrorCause/properties/message")
            .insert("type".to_owned(), Value::from("integer"));
    });
    assert_eq!(drifts.len(), 1, "{drifts:?}");
    let drift = &drifts[0];
    assert_eq!(
        (drift.type_name.as_str(), drift.field.as_str()),
        ("ErrorCause", "message")
    );
    assert_eq!(
        drift.what,
        r#"`type`: the spec says "integer", the type says "string""#
    );
    assert_eq!(
        drift.to_string(),
        r#"specs/vcf-tokens.yaml: type `ErrorCause`, field `message`: `type`: the spec says "integer", the type says "string""#
    );
}

#[test]
fn the_recursive_nested_errors_reference_is_compared_by_name() {
    let drifts = vcf_drifts_after(|vcf| {
        schema_mut(
            vcf,
            "/components/schemas/Error/properties/nestedErrors/items",
        )
        .insert(
            "$ref".to_owned(),
            Value::from("#/components/schemas/ErrorCause"),
        );
    });
    assert_eq!(drifts.len(), 1, "{drifts:?}");
    assert_eq!(drifts[0].field, "nestedErrors[]");
    assert_eq!(
        drifts[0].what,
        r#"`$ref`: the spec says "ErrorCause", the type says "Error""#
    );
}

#[test]
fn a_newly_required_property_and_a_new_schema_are_reported() {
    let drifts = vcf_drifts_after(|vcf| {
        schema_mut(vcf, "/components/schemas/RefreshToken")
            .insert("required".to_owned(), serde_json::json!(["id"]));
        schema_mut(vcf, "/components/schemas")
            .insert("Brand".to_owned(), serde_json::json!({"type": "string"}));
    });
    let reported: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    assert_eq!(reported.len(), 2, "{reported:#?}");
    assert!(
        reported.contains(&"specs/vcf-tokens.yaml: type `RefreshToken`, field `id`: the spec requires it, the type has it optional".to_owned()),
        "{reported:#?}"
    );
    assert!(
        reported.iter().any(|r| r.starts_with("specs/vcf-tokens.yaml: type `Brand`: the spec defines this schema but no generated type")),
        "{reported:#?}"
    );
}

#[test]
fn a_map_value_type_change_is_reported() {
    let drifts = vcf_drifts_after(|vcf| {
        schema_mut(
            vcf,
            "/components/schemas/Error/properties/context/additionalProperties",
        )
        .insert("type".to_owned(), Value::from("integer"));
    });
    assert_eq!(drifts.len(), 1, "{drifts:?}");
    assert_eq!(drifts[0].field, "context{}");
}
