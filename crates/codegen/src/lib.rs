//! The workspace's one code generator: turns an OpenAPI spec from `specs/`
//! into the Rust source of a client crate, with one set of progenitor
//! settings and a few rewrites of progenitor's output ([`client_source`]).
//!
//! It also generates, from the same spec and settings, each API's typed
//! [`httpmock`](https://docs.rs/httpmock) helpers ([`mock_source`]), which the
//! client crates expose behind their opt-in `mock` feature.
//!
//! Two callers use it, so their output cannot differ:
//! - each client crate's `build.rs` calls [`build_script`], which writes the
//!   client and the mocks to `OUT_DIR`;
//! - `cargo xtask codegen` writes the same source to a checked-in snapshot
//!   per crate and, with `--check`, diffs it (the `snapshot` feature).
//!
//! ```
//! let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/vcf-tokens.yaml"))?;
//! let source = sdk_codegen::client_source(sdk_codegen::Api::VcfTokens, &spec)?;
//! assert!(source.contains("pub async fn refresh_access_token"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle};

mod api_version;
mod chain;
mod constructor;
#[cfg(feature = "snapshot")]
pub mod snapshot;
mod urls;

/// An API of the workspace: one spec in `specs/`, one client crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// F5 Distributed Cloud, AI Data, BFDP: `specs/f5xc-bfdp.yaml`.
    F5xcBfdp,
    /// VMware Cloud Foundation SDDC Manager Tokens: `specs/vcf-tokens.yaml`.
    VcfTokens,
}

impl Api {
    /// Every API of the workspace.
    pub const ALL: [Api; 2] = [Api::F5xcBfdp, Api::VcfTokens];

    /// The client crate's package name, which is also the spec's file stem
    /// and the crate's folder under `crates/`.
    pub fn package(self) -> &'static str {
        match self {
            Api::F5xcBfdp => "f5xc-bfdp",
            Api::VcfTokens => "vcf-tokens",
        }
    }

    /// The API whose client crate is `package`.
    pub fn from_package(package: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|api| api.package() == package)
    }

    /// The spec's path relative to the workspace root.
    pub fn spec_path(self) -> PathBuf {
        Path::new("specs").join(format!("{}.yaml", self.package()))
    }

    /// The checked-in snapshot of the generated client, relative to the
    /// workspace root.
    pub fn snapshot_path(self) -> PathBuf {
        Path::new("crates")
            .join(self.package())
            .join("generated")
            .join(CLIENT_FILE)
    }

    /// The checked-in snapshot of the generated typed mocks, relative to the
    /// workspace root.
    pub fn mock_snapshot_path(self) -> PathBuf {
        Path::new("crates")
            .join(self.package())
            .join("generated")
            .join(MOCK_FILE)
    }
}

/// The file name of the generated client, in `OUT_DIR` and in the snapshot
/// folder.
pub const CLIENT_FILE: &str = "client.rs";

/// The file name of the generated typed `httpmock` helpers, in `OUT_DIR` and
/// in the snapshot folder.
pub const MOCK_FILE: &str = "httpmock.rs";

/// The file name under which each client crate carries its spec: a symlink
/// to `specs/`, so that the packaged crate holds the file's content.
pub const CRATE_SPEC_FILE: &str = "openapi.yaml";

/// Why a spec could not be turned into source.
#[derive(Debug)]
pub enum Error {
    /// The spec is not valid YAML or not an OpenAPI 3.0 document.
    Parse(serde_yaml_ng::Error),
    /// progenitor rejected the spec.
    Generate(progenitor::Error),
    /// progenitor produced tokens that are not a Rust file.
    Format(syn::Error),
    /// progenitor's client is not shaped as the post-processing expects
    /// (after a progenitor upgrade, say): what was missing or unexpected.
    Shape(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse(e) => write!(f, "the spec is not a valid OpenAPI 3.0 document: {e}"),
            Error::Generate(e) => write!(f, "progenitor could not generate a client: {e}"),
            Error::Format(e) => write!(f, "the generated tokens do not parse as Rust: {e}"),
            Error::Shape(problem) => write!(
                f,
                "the generated client does not have the shape sdk-codegen rewrites: {problem}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Parses a spec's YAML text.
pub fn parse_spec(spec_yaml: &str) -> Result<openapiv3::OpenAPI, Error> {
    serde_yaml_ng::from_str(spec_yaml).map_err(Error::Parse)
}

/// The progenitor settings every client crate is generated with.
///
/// - Positional interface: each operation is one `async fn` whose required
///   body is a required argument, so a missing body is a compile error
///   rather than the builder style's run-time error; every operation here
///   takes exactly one body and nothing else, which builders would only wrap.
/// - `HooksMode::Expected` with the inner type `Inner`, an optional `Exec`
///   (added to every client by this crate): every request goes through one
///   `exec` hook, where the facade adds retries, limits and tracing once for
///   all operations.
/// - `schemars::JsonSchema` on every type, so the types can be compared with
///   the spec they came from. [`client_source`] then puts that derive behind
///   the client crate's [`SCHEMARS_FEATURE`], so a service that does not
///   compare schemas does not compile `schemars`.
pub fn settings() -> GenerationSettings {
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Positional)
        .with_tag(TagStyle::Merged)
        .with_hooks(HooksMode::Expected)
        .with_inner_type(quote::quote! { Inner })
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq");
    settings
}

/// The client crates' feature that derives `schemars::JsonSchema` on the
/// generated types: `#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]`.
pub const SCHEMARS_FEATURE: &str = "schemars";

/// The Rust source of `api`'s client, generated from the spec's YAML text,
/// formatted and headed with a do-not-edit notice.
///
/// progenitor's output is then rewritten where its settings cannot reach
/// (the crate's README says why, for each):
/// - the `schemars::JsonSchema` derives go behind the [`SCHEMARS_FEATURE`];
/// - requests no longer carry progenitor's `api-version` header;
/// - each operation's URL (without path parameters) is parsed once, when
///   the client is built, and shared with the copies `Client::with_inner`
///   makes;
/// - `Client::new`, which panics when reqwest cannot build a client, is
///   dropped: `Client::new_with_client` takes a client the caller built.
pub fn client_source(api: Api, spec_yaml: &str) -> Result<String, Error> {
    let spec = parse_spec(spec_yaml)?;
    let mut generator = Generator::new(&settings());
    let client = generator.generate_tokens(&spec).map_err(Error::Generate)?;
    let executor = executor_seam();
    let mut file: syn::File =
        syn::parse2(quote::quote! { #client #executor }).map_err(Error::Format)?;
    gate_json_schema(&mut file.items).map_err(Error::Format)?;
    api_version::drop_api_version_header(&mut file.items);
    urls::parse_urls_once(&mut file.items)?;
    constructor::drop_panicking_new(&mut file.items)?;
    Ok(format!("{}{}", header(api), prettyplease::unparse(&file)))
}

/// Puts every `schemars::JsonSchema` of `items` (and of the modules inside)
/// behind the [`SCHEMARS_FEATURE`]: the derive moves out of its `#[derive]`
/// list into a `#[cfg_attr(feature = .., derive(..))]` of its own, and a
/// hand-written `impl JsonSchema` (typify writes one for constrained
/// newtypes) gets a `#[cfg(feature = ..)]`.
///
/// Neither progenitor nor typify can do this from the settings: progenitor
/// forwards only `with_derive` (unconditional derives) to typify, and typify's
/// attribute for every type (`with_attr`) is not reachable through
/// progenitor's `GenerationSettings`; its per-type patches would need every
/// type's name up front. Rewriting the syntax tree is deterministic and
/// covers types added to the spec later.
fn gate_json_schema(items: &mut [syn::Item]) -> Result<(), syn::Error> {
    let feature = SCHEMARS_FEATURE;
    for item in items {
        let attrs = match item {
            syn::Item::Struct(item) => &mut item.attrs,
            syn::Item::Enum(item) => &mut item.attrs,
            syn::Item::Union(item) => &mut item.attrs,
            syn::Item::Mod(item) => {
                if let Some((_, items)) = &mut item.content {
                    gate_json_schema(items)?;
                }
                continue;
            }
            syn::Item::Impl(item) => {
                let implements_json_schema = item
                    .trait_
                    .as_ref()
                    .is_some_and(|(_, path, _)| is_json_schema(path));
                if implements_json_schema {
                    item.attrs
                        .push(syn::parse_quote!(#[cfg(feature = #feature)]));
                }
                continue;
            }
            _ => continue,
        };
        // The gated derive goes where the last derive that held it was (or
        // right after it, when other derives remain there).
        let mut gated = Vec::new();
        let mut at = None;
        let mut index = 0;
        while index < attrs.len() {
            if !attrs[index].path().is_ident("derive") {
                index += 1;
                continue;
            }
            let derives = attrs[index].parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            )?;
            let (schema, kept): (Vec<_>, Vec<_>) = derives.into_iter().partition(is_json_schema);
            if schema.is_empty() {
                index += 1;
                continue;
            }
            gated.extend(schema);
            if kept.is_empty() {
                attrs.remove(index);
            } else {
                attrs[index] = syn::parse_quote!(#[derive(#(#kept),*)]);
                index += 1;
            }
            at = Some(index);
        }
        if let Some(at) = at {
            attrs.insert(
                at,
                syn::parse_quote!(#[cfg_attr(feature = #feature, derive(#(#gated),*))]),
            );
        }
    }
    Ok(())
}

/// `JsonSchema` from `schemars` (`schemars::JsonSchema` or
/// `::schemars::JsonSchema`).
fn is_json_schema(path: &syn::Path) -> bool {
    let mut segments = path.segments.iter().map(|segment| &segment.ident);
    matches!(
        (segments.next(), segments.next(), segments.next()),
        (Some(krate), Some(name), None) if krate == "schemars" && name == "JsonSchema"
    )
}

/// The Rust source of `api`'s typed `httpmock` helpers, generated from the
/// spec's YAML text with the same settings as the client: a module
/// `operations` with a `When`/`Then` wrapper per operation and a
/// `MockServerExt` trait with one method per operation.
///
/// The source refers to the client's types through `crate::*`, so it is meant
/// to be included inside the client crate (its `mock` module).
///
/// ```
/// let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/vcf-tokens.yaml"))?;
/// let source = sdk_codegen::mock_source(sdk_codegen::Api::VcfTokens, &spec)?;
/// assert!(source.contains("pub trait MockServerExt"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn mock_source(api: Api, spec_yaml: &str) -> Result<String, Error> {
    let spec = parse_spec(spec_yaml)?;
    let mut generator = Generator::new(&settings());
    let mocks = generator
        .httpmock(&spec, "crate")
        .map_err(Error::Generate)?;
    let file: syn::File = syn::parse2(mocks).map_err(Error::Format)?;
    Ok(format!("{}{}", header(api), prettyplease::unparse(&file)))
}

fn header(api: Api) -> String {
    format!(
        "// @generated by sdk-codegen from specs/{}.yaml.\n\
         // Do not edit: change the spec or the settings in crates/codegen, then run\n\
         // `cargo xtask codegen`.\n\n",
        api.package()
    )
}

/// The executor seam added to every client: the `Client`'s inner value is an
/// optional [`Exec`] that sends each request. Without one, a request is sent
/// once with the client's `reqwest::Client`, as progenitor does by default.
fn executor_seam() -> impl quote::ToTokens {
    quote::quote! {
        /// Sends a [`Client`]'s requests: the one place where a caller adds
        /// retries, limits or tracing for every operation.
        pub trait Exec: Send + Sync + std::fmt::Debug {
            /// Sends `request`, built for the operation `info`, with `client`.
            fn exec<'a>(
                &'a self,
                client: &'a reqwest::Client,
                request: reqwest::Request,
                info: &'a progenitor_client::OperationInfo,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a>,
            >;
        }

        /// A [`Client`]'s executor: `None` sends each request once with the
        /// client's `reqwest::Client`.
        pub type Inner = Option<std::sync::Arc<dyn Exec>>;

        impl ClientHooks<Inner> for Client {
            async fn exec(
                &self,
                request: reqwest::Request,
                info: &OperationInfo,
            ) -> reqwest::Result<reqwest::Response> {
                match self.inner() {
                    Some(executor) => executor.exec(self.client(), request, info).await,
                    None => self.client().execute(request).await,
                }
            }
        }
    }
}

/// Generates the client of the crate whose build script calls this, from the
/// spec the crate carries, into `OUT_DIR`. Meant for `build.rs` only: it
/// panics with a message when the environment or the spec is wrong, which a
/// build script reports as a build error.
pub fn build_script() {
    let package =
        std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME for build scripts");
    let api = Api::from_package(&package)
        .unwrap_or_else(|| panic!("sdk-codegen knows no API for the package {package}"));
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let spec_path = Path::new(&manifest_dir).join(CRATE_SPEC_FILE);
    // Only the spec: an unchanged spec costs nothing on rebuild. A change to
    // this crate rebuilds the build script, which reruns it anyway.
    println!("cargo:rerun-if-changed={CRATE_SPEC_FILE}");
    let spec = std::fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("cannot read the spec {}: {e}", spec_path.display()));
    let client =
        client_source(api, &spec).unwrap_or_else(|e| panic!("{}: {e}", spec_path.display()));
    // Always generated (it is cheap); only the `mock` feature compiles it.
    let mocks = mock_source(api, &spec).unwrap_or_else(|e| panic!("{}: {e}", spec_path.display()));
    for (file, source) in [(CLIENT_FILE, client), (MOCK_FILE, mocks)] {
        let out = Path::new(&out_dir).join(file);
        std::fs::write(&out, source)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gated(source: &str) -> String {
        let mut file: syn::File = syn::parse_str(source).expect("test source parses");
        gate_json_schema(&mut file.items).expect("derives parse");
        prettyplease::unparse(&file)
    }

    #[test]
    fn json_schema_moves_behind_the_feature_and_other_derives_stay() {
        let out = gated(
            "mod types {
                /// Doc.
                #[derive(Clone, schemars::JsonSchema, Debug)]
                #[serde(rename_all = \"camelCase\")]
                pub struct A { x: u8 }
                #[derive(::schemars::JsonSchema)]
                pub enum B { X }
                #[derive(Clone)]
                pub struct C;
                pub struct D(String);
                impl ::schemars::JsonSchema for D {}
                impl Clone for D { fn clone(&self) -> Self { D(self.0.clone()) } }
            }",
        );
        let expected = "mod types {
    /// Doc.
    #[derive(Clone, Debug)]
    #[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]
    #[serde(rename_all = \"camelCase\")]
    pub struct A {
        x: u8,
    }
    #[cfg_attr(feature = \"schemars\", derive(::schemars::JsonSchema))]
    pub enum B {
        X,
    }
    #[derive(Clone)]
    pub struct C;
    pub struct D(String);
    #[cfg(feature = \"schemars\")]
    impl ::schemars::JsonSchema for D {}
    impl Clone for D {
        fn clone(&self) -> Self {
            D(self.0.clone())
        }
    }
}
";
        assert_eq!(out, expected);
    }

    /// `api`'s client as generated from the workspace's spec.
    fn generated_client(api: Api) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(api.spec_path());
        let spec = std::fs::read_to_string(&path).expect("the spec is readable");
        client_source(api, &spec).expect("the client generates")
    }

    #[test]
    fn a_generated_client_has_no_json_schema_outside_the_feature() {
        for api in Api::ALL {
            let source = generated_client(api);
            let gated = "#[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]";
            assert!(source.contains(gated), "{api:?}: no gated derive");
            let ungated = source
                .lines()
                .filter(|line| line.contains("JsonSchema") && line.trim() != gated)
                .collect::<Vec<_>>();
            assert!(ungated.is_empty(), "{api:?}: {ungated:#?}");
        }
    }

    /// A client shaped as progenitor 0.15 writes it (positional, an inner
    /// type): an operation without path parameters, one with a path
    /// parameter, and one with a header parameter.
    const GENERATED: &str = r#"
        pub struct Client {
            pub(crate) baseurl: String,
            pub(crate) client: reqwest::Client,
            pub(crate) inner: Inner,
        }
        impl Client {
            pub fn new_with_client(baseurl: &str, client: reqwest::Client, inner: Inner) -> Self {
                Self { baseurl: baseurl.to_string(), client, inner }
            }
        }
        impl ClientInfo<Inner> for Client {
            fn api_version() -> &'static str { "1.0.0" }
            fn baseurl(&self) -> &str { self.baseurl.as_str() }
        }
        impl Client {
            pub async fn create<'a>(&'a self, body: &'a types::Spec) -> Result<ResponseValue<()>, Error<()>> {
                let url = format!("{}/v1/things", self.baseurl,);
                let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
                header_map.append(
                    ::reqwest::header::HeaderName::from_static("api-version"),
                    ::reqwest::header::HeaderValue::from_static(Self::api_version()),
                );
                #[allow(unused_mut)]
                let mut request = self.client.post(url).json(&body).headers(header_map).build()?;
                self.exec(request).await
            }
            pub async fn get<'a>(&'a self, id: &'a str, x_trace: &'a str) -> Result<ResponseValue<()>, Error<()>> {
                let url = format!("{}/v1/things/{}", self.baseurl, encode_path(&id.to_string()),);
                let mut header_map = ::reqwest::header::HeaderMap::with_capacity(2usize);
                header_map.append(
                    ::reqwest::header::HeaderName::from_static("api-version"),
                    ::reqwest::header::HeaderValue::from_static(Self::api_version()),
                );
                header_map.append("x-trace", x_trace.to_string().try_into()?);
                #[allow(unused_mut)]
                let mut request = self.client.get(url).headers(header_map).build()?;
                self.exec(request).await
            }
        }
    "#;

    fn rewritten(source: &str) -> Result<String, Error> {
        let mut file: syn::File = syn::parse_str(source).map_err(Error::Format)?;
        api_version::drop_api_version_header(&mut file.items);
        urls::parse_urls_once(&mut file.items)?;
        Ok(prettyplease::unparse(&file))
    }

    #[test]
    fn requests_lose_api_version_and_parse_their_urls_once() {
        let expected = r#"pub struct Client {
    pub(crate) urls: ::std::sync::Arc<Urls>,
    pub(crate) client: reqwest::Client,
    pub(crate) inner: Inner,
}
/// A [`Client`]'s base URL and the URL of each of its operations
/// without path parameters, parsed once when the client is built
/// and shared by its copies ([`Client::with_inner`]): a call clones
/// its operation's URL instead of formatting and parsing it. A URL
/// that does not parse is `None`, and each call then formats it
/// again so that reqwest reports the error as it would have.
pub(crate) struct Urls {
    base: String,
    create: ::std::option::Option<::reqwest::Url>,
}
impl Urls {
    /// The URLs under `base`.
    fn parse(base: &str) -> Self {
        Self {
            create: ::reqwest::Url::parse(&format!("{}/v1/things", base)).ok(),
            base: base.to_string(),
        }
    }
}
impl ::std::fmt::Debug for Urls {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        f.debug_struct("Urls").field("base", &self.base).finish_non_exhaustive()
    }
}
impl Client {
    pub fn new_with_client(
        baseurl: &str,
        client: reqwest::Client,
        inner: Inner,
    ) -> Self {
        Self {
            urls: ::std::sync::Arc::new(Urls::parse(baseurl)),
            client,
            inner,
        }
    }
    /// This client with `inner` as its inner value: it shares this
    /// client's base URL, parsed operation URLs and
    /// `reqwest::Client` (its connection pool and settings), so it
    /// costs two reference-count increments and parses nothing, cheap
    /// enough to build per call.
    pub fn with_inner(&self, inner: Inner) -> Self {
        Self {
            urls: self.urls.clone(),
            client: self.client.clone(),
            inner,
        }
    }
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
}
impl ClientInfo<Inner> for Client {
    fn api_version() -> &'static str {
        "1.0.0"
    }
    fn baseurl(&self) -> &str {
        self.urls.base.as_str()
    }
}
impl Client {
    pub async fn create<'a>(
        &'a self,
        body: &'a types::Spec,
    ) -> Result<ResponseValue<()>, Error<()>> {
        #[allow(unused_mut)]
        let mut request = self
            .request_to(::reqwest::Method::POST, self.urls.create.as_ref(), "/v1/things")
            .json(&body)
            .build()?;
        self.exec(request).await
    }
    pub async fn get<'a>(
        &'a self,
        id: &'a str,
        x_trace: &'a str,
    ) -> Result<ResponseValue<()>, Error<()>> {
        let url = format!(
            "{}/v1/things/{}", self.urls.base, encode_path(& id.to_string()),
        );
        let mut header_map = ::reqwest::header::HeaderMap::with_capacity(2usize);
        header_map.append("x-trace", x_trace.to_string().try_into()?);
        #[allow(unused_mut)]
        let mut request = self.client.get(url).headers(header_map).build()?;
        self.exec(request).await
    }
}
"#;
        let out = rewritten(GENERATED).expect("the synthetic client is rewritten");
        assert_eq!(out, expected);
    }

    #[test]
    fn a_client_of_another_shape_is_an_error() {
        let shape = |source: &str| match rewritten(source) {
            Err(Error::Shape(problem)) => problem,
            other => panic!("expected a shape error, got {other:?}"),
        };
        let no_struct = GENERATED.replace("pub struct Client", "pub struct Other");
        assert!(shape(&no_struct).contains("struct Client"));
        let no_constructor = GENERATED.replace("new_with_client", "new_from_parts");
        assert!(shape(&no_constructor).contains("new_with_client"));
        let taken = GENERATED.replace("fn get<", "fn with_inner<");
        assert!(shape(&taken).contains("with_inner"));
        // An operation whose URL reaches reqwest in a way the rewrite does
        // not know would keep formatting its URL on `baseurl`.
        let unknown_start = GENERATED.replace("self.client.post(url)", "self.client.post(&url)");
        assert!(shape(&unknown_start).contains("create"));
    }

    #[test]
    fn the_generated_clients_send_no_api_version_and_format_no_url_per_call() {
        for api in Api::ALL {
            let source = generated_client(api);
            assert!(!source.contains("api-version"), "{api:?}");
            assert!(!source.contains("header_map"), "{api:?}");
            // None of the specs' operations has a path parameter.
            assert!(!source.contains("let url"), "{api:?}");
            assert!(source.contains(".request_to("), "{api:?}");
            assert!(
                source.contains("pub fn with_inner(&self, inner: Inner) -> Self"),
                "{api:?}"
            );
        }
    }

    /// The client crates are library code: nothing in a generated client
    /// may panic, whatever reqwest or the server does.
    #[test]
    fn the_generated_clients_have_no_panicking_call() {
        for api in Api::ALL {
            let source = generated_client(api);
            for panicking in [".unwrap()", ".expect(", "panic!", "unreachable!", "todo!"] {
                assert!(!source.contains(panicking), "{api:?}: {panicking}");
            }
            assert!(source.contains("pub fn new_with_client("), "{api:?}");
        }
    }
}
