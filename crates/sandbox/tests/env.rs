//! The environments a downstream test hands the SDK (`from_lookup`) or a
//! child process, instead of setting process variables.

use refresh_sandbox::{ExposeSecret, Sandbox};

#[tokio::test]
async fn vcf_env_holds_the_url_and_demo_credentials() {
    let sandbox = Sandbox::builder()
        .vcf_username("ops@example.test")
        .vcf_password("not-the-default")
        .start()
        .await
        .expect("sandbox starts");
    let env = sandbox.vcf_env();
    assert_eq!(env("VCF_SDDC_MANAGER_HOST"), Some(sandbox.vcf_url()));
    assert_eq!(
        env("VCF_SDDC_MANAGER_USERNAME").as_deref(),
        Some("ops@example.test")
    );
    assert_eq!(
        env("VCF_SDDC_MANAGER_PASSWORD").as_deref(),
        Some("not-the-default")
    );
    for unknown in [
        "VCF_ALLOW_UNVERIFIED_TLS",
        "VOLT_API_TOKEN",
        "vcf_sddc_manager_host",
        "",
        "PATH",
    ] {
        assert_eq!(env(unknown), None, "{unknown:?}");
    }

    // The same values as pairs, and they log in.
    let vars = sandbox.vcf_env_vars();
    let names: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "VCF_SDDC_MANAGER_HOST",
            "VCF_SDDC_MANAGER_USERNAME",
            "VCF_SDDC_MANAGER_PASSWORD"
        ]
    );
    for (name, value) in &vars {
        assert_eq!(env(name).as_ref(), Some(value), "{name}");
    }
    let credentials = vcf_tokens::types::TokenCreationSpec {
        username: env("VCF_SDDC_MANAGER_USERNAME"),
        password: env("VCF_SDDC_MANAGER_PASSWORD"),
        ..Default::default()
    };
    let host = env("VCF_SDDC_MANAGER_HOST").expect("the host");
    let client = vcf_tokens::Client::new_with_client(&host, reqwest::Client::new(), None);
    let pair = client
        .create_token(&credentials)
        .await
        .expect("the environment's credentials log in")
        .into_inner();
    assert!(sandbox.is_valid_access_token(&pair.access_token.expect("a token")));
    sandbox.assert_spec_clean();
}

#[tokio::test]
async fn the_lookup_outlives_the_borrow_and_crosses_threads() {
    let sandbox = Sandbox::start_default().await.expect("sandbox starts");
    let env = sandbox.vcf_env();
    let url = sandbox.vcf_url();
    let password = sandbox
        .credentials()
        .vcf_password
        .expose_secret()
        .to_owned();
    drop(sandbox);
    let (host, read) = std::thread::spawn(move || {
        (
            env("VCF_SDDC_MANAGER_HOST"),
            env("VCF_SDDC_MANAGER_PASSWORD"),
        )
    })
    .join()
    .expect("the thread");
    assert_eq!(host, Some(url));
    assert_eq!(read, Some(password));
}

#[tokio::test]
async fn f5xc_env_holds_the_url_and_demo_token() {
    let sandbox = Sandbox::builder()
        .f5xc_api_token("tok-123")
        .start()
        .await
        .expect("sandbox starts");
    let env = sandbox.f5xc_env();
    assert_eq!(env("VOLT_API_URL"), Some(sandbox.f5xc_url()));
    assert_eq!(env("VOLT_API_TOKEN").as_deref(), Some("tok-123"));
    for unknown in [
        "VOLT_API_P12_FILE",
        "VCF_SDDC_MANAGER_HOST",
        "VES_P12_PASSWORD",
    ] {
        assert_eq!(env(unknown), None, "{unknown}");
    }
    let vars = sandbox.f5xc_env_vars();
    assert_eq!(
        vars,
        [
            ("VOLT_API_URL", sandbox.f5xc_url()),
            ("VOLT_API_TOKEN", "tok-123".to_owned())
        ]
    );
}

#[tokio::test]
async fn with_tls_the_host_is_https_and_the_ca_is_separate() {
    let sandbox = Sandbox::builder()
        .tls(true)
        .start()
        .await
        .expect("sandbox starts");
    let host = sandbox.vcf_env()("VCF_SDDC_MANAGER_HOST").expect("the host");
    assert!(host.starts_with("https://"), "{host}");
    let ca = sandbox.ca_pem().expect("a CA");
    for (_, value) in sandbox.vcf_env_vars() {
        assert!(!value.contains(ca), "the CA is not part of the environment");
    }
}
