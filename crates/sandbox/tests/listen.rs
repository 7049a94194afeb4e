//! Listening beyond loopback: secrets nobody published, a URL other
//! machines can use, and a certificate that names it.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use refresh_sandbox::{ExposeSecret, Sandbox};

/// This machine's address on its default IPv4 route, if it has one.
fn lan_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

fn secrets(sandbox: &Sandbox) -> [String; 4] {
    let c = sandbox.credentials();
    [
        c.vcf_password.expose_secret().to_owned(),
        c.vcf_api_key.expose_secret().to_owned(),
        c.vcf_id_token.expose_secret().to_owned(),
        c.f5xc_api_token.expose_secret().to_owned(),
    ]
}

#[tokio::test]
async fn a_wildcard_listen_gets_random_secrets_and_a_usable_url() {
    let demo = Sandbox::start_default().await.expect("a loopback sandbox");
    assert!(!demo.listens_beyond_loopback());
    let exposed = Sandbox::builder()
        .listen(SocketAddr::from(([0, 0, 0, 0], 0)))
        .start()
        .await
        .expect("a wildcard sandbox");
    let again = Sandbox::builder()
        .listen(SocketAddr::from(([0, 0, 0, 0], 0)))
        .start()
        .await
        .expect("another");

    assert!(exposed.listens_beyond_loopback());
    assert!(exposed.local_addr().ip().is_unspecified());
    let demo_secrets = secrets(&demo);
    for (secret, (published, other)) in secrets(&exposed)
        .iter()
        .zip(demo_secrets.iter().zip(secrets(&again)))
    {
        assert_ne!(secret, published, "not the published demo secret");
        assert_ne!(*secret, other, "random per sandbox");
    }
    assert_eq!(
        exposed.credentials().vcf_username,
        demo.credentials().vcf_username
    );

    let url = exposed.vcf_url();
    assert!(!url.contains("0.0.0.0"), "{url}");
    let expected_host = lan_address().map_or("127.0.0.1".to_owned(), |ip| ip.to_string());
    assert_eq!(
        url,
        format!("http://{expected_host}:{}", exposed.local_addr().port())
    );
    // The URL works, with the random password and not with the demo one.
    common::create_pair(&exposed).await;
    let demo_password = vcf_tokens::types::TokenCreationSpec {
        username: Some(demo.credentials().vcf_username.clone()),
        password: Some(demo_secrets[0].clone()),
        ..Default::default()
    };
    let refused = common::vcf(&exposed)
        .create_token(&demo_password)
        .await
        .expect_err("the demo password is refused");
    assert_eq!(common::error_status(&refused), 400);
    exposed.assert_spec_clean();
}

#[tokio::test]
async fn secrets_set_on_the_builder_are_kept_beyond_loopback() {
    let sandbox = Sandbox::builder()
        .listen(SocketAddr::from(([0, 0, 0, 0], 0)))
        .vcf_password("chosen-password")
        .start()
        .await
        .expect("sandbox starts");
    let [password, api_key, ..] = secrets(&sandbox);
    assert_eq!(password, "chosen-password");
    assert!(api_key.starts_with("sbx-"), "the others are still random");
}

/// A client that trusts only the sandbox's certificate, verifying names.
fn trusting(sandbox: &Sandbox) -> vcf_tokens::Client {
    let pem = sandbox.ca_pem().expect("TLS");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM")])
        .build()
        .expect("client");
    vcf_tokens::Client::new_with_client(&sandbox.vcf_url(), http, None)
}

#[tokio::test]
async fn the_certificate_names_the_address_the_url_gives() {
    let mut listens = vec![SocketAddr::from(([0, 0, 0, 0], 0))];
    match lan_address() {
        Some(ip) => listens.push(SocketAddr::new(ip, 0)),
        None => eprintln!("no address beyond loopback here: the wildcard only"),
    }
    for listen in listens {
        let sandbox = Sandbox::builder()
            .listen(listen)
            .tls(true)
            .start()
            .await
            .expect("sandbox starts");
        assert!(sandbox.vcf_url().starts_with("https://"));
        trusting(&sandbox)
            .create_token(&common::good_credentials(&sandbox))
            .await
            .unwrap_or_else(|e| panic!("{listen}: {} verifies: {e:?}", sandbox.vcf_url()));
        sandbox.assert_spec_clean();
    }
}
