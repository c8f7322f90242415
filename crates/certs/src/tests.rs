use std::fs;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn first_use_creates_and_later_uses_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let first = ensure(dir.path(), &[]).unwrap();
    assert_eq!(first.ca_action, Action::Created);
    assert_eq!(first.server_action, Action::Created);
    for file in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
    let again = ensure(dir.path(), &[]).unwrap();
    assert_eq!(again.ca_action, Action::Reused);
    assert_eq!(again.server_action, Action::Reused);
    assert_eq!(again.ca.sha256, first.ca.sha256, "the CA is kept");
    assert_eq!(again.server.sha256, first.server.sha256);
    assert_eq!(again.ca_pem, first.ca_pem);
}

#[cfg(unix)]
#[test]
fn private_keys_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    let mode = |f: &str| {
        fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca-key.pem"), 0o600);
    assert_eq!(mode("server-key.pem"), 0o600);
    assert_eq!(mode("ca.pem"), 0o644);
    assert_eq!(mode("server.pem"), 0o600);
}

#[test]
fn certificates_have_the_promised_shape() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ensure(dir.path(), &["switchboard.test".to_owned()]).unwrap();

    let ca_der = CertificateDer::from_pem_file(dir.path().join("ca.pem")).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca_cert.is_ca());
    assert!(ca_cert.key_usage().unwrap().unwrap().value.key_cert_sign());
    assert!(ca.ca.not_after - ca.ca.not_before >= Duration::days(3650));

    let server = &ca.identity.chain[0];
    let (_, cert) = X509Certificate::from_der(server).unwrap();
    assert!(!cert.is_ca());
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    // ECDSA P-256 keys, both.
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1"
    );
    assert_eq!(
        ca_cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1"
    );
    let valid = ca.server.not_after - ca.server.not_before;
    assert!(
        valid <= Duration::days(825) && valid >= Duration::days(30),
        "{valid}"
    );
    assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
    for name in ["localhost", "127.0.0.1", "::1", "switchboard.test"] {
        assert!(
            ca.server.covers(name),
            "{name} not in {:?}",
            ca.server.names
        );
    }
}

#[test]
fn an_expired_server_certificate_is_renewed_and_the_ca_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = ensure(dir.path(), &[]).unwrap();
    let later = ensure_at(dir.path(), &[], None, now() + Duration::days(400)).unwrap();
    assert_eq!(later.ca_action, Action::Reused);
    assert_eq!(later.ca.sha256, first.ca.sha256);
    assert!(
        matches!(&later.server_action, Action::Renewed(r) if r.contains("expired")),
        "{:?}",
        later.server_action
    );
    assert_ne!(later.server.sha256, first.server.sha256);
    // The renewed certificate is what is on disk now.
    let reloaded = ensure_at(dir.path(), &[], None, now() + Duration::days(400)).unwrap();
    assert_eq!(reloaded.server_action, Action::Reused);
    assert_eq!(reloaded.server.sha256, later.server.sha256);
}

#[test]
fn a_server_certificate_near_expiry_is_renewed() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    let later = ensure_at(
        dir.path(),
        &[],
        None,
        now() + SERVER_VALIDITY - Duration::days(10),
    )
    .unwrap();
    assert!(matches!(&later.server_action, Action::Renewed(r) if r.contains("expires soon")));
}

#[test]
fn a_missing_name_renews_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    let named = ensure(dir.path(), &["Mail.Example.Test".to_owned()]).unwrap();
    assert!(matches!(&named.server_action, Action::Renewed(r) if r.contains("mail.example.test")));
    assert!(named.server.covers("mail.example.test"));
    assert!(named.server.covers("localhost"));
    // Fewer names than the certificate has is no reason to renew.
    assert_eq!(
        ensure(dir.path(), &[]).unwrap().server_action,
        Action::Reused
    );
}

#[test]
fn a_new_ca_renews_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    fs::remove_file(dir.path().join("ca.pem")).unwrap();
    fs::remove_file(dir.path().join("ca-key.pem")).unwrap();
    let fresh = ensure(dir.path(), &[]).unwrap();
    assert_eq!(fresh.ca_action, Action::Created);
    assert!(
        matches!(&fresh.server_action, Action::Renewed(r) if r.contains("not signed by the current CA"))
    );
}

#[test]
fn a_ca_without_its_key_is_an_error_not_a_silent_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let first = ensure(dir.path(), &[]).unwrap();
    fs::remove_file(dir.path().join("ca-key.pem")).unwrap();
    let err = ensure(dir.path(), &[]).unwrap_err().to_string();
    assert!(err.contains("ca-key.pem does not"), "{err}");
    assert!(err.contains("Restore"), "{err}");
    // ca.pem is untouched.
    let pem = fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    assert_eq!(pem, first.ca_pem);
}

#[test]
fn a_lone_ca_key_is_replaced_by_a_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    fs::remove_file(dir.path().join("ca.pem")).unwrap();
    assert_eq!(ensure(dir.path(), &[]).unwrap().ca_action, Action::Created);
}

#[test]
fn malformed_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    fs::write(
        dir.path().join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = ensure(dir.path(), &[]).unwrap_err().to_string();
    assert!(
        err.contains("ca.pem is not a valid PEM certificate"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    fs::write(dir.path().join("server-key.pem"), "garbage").unwrap();
    let err = ensure(dir.path(), &[]).unwrap_err().to_string();
    assert!(
        err.contains("server-key.pem is not a valid PEM private key"),
        "{err}"
    );
}

#[test]
fn a_key_of_another_certificate_is_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    fs::copy(
        dir.path().join("ca-key.pem"),
        dir.path().join("server-key.pem"),
    )
    .unwrap();
    let err = ensure(dir.path(), &[]).unwrap_err().to_string();
    assert!(
        err.contains("server-key.pem is not the private key of"),
        "{err}"
    );
}

#[test]
fn an_expired_ca_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    let err = ensure_at(
        dir.path(),
        &[],
        None,
        now() + CA_VALIDITY + Duration::days(1),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expired on"), "{err}");
    assert!(err.contains("trust the new ca.pem"), "{err}");
}

#[test]
fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = ensure(dir.path(), &["no spaces allowed".to_owned()]).unwrap_err();
    assert!(matches!(err, CertError::InvalidName(_)), "{err}");
}

#[test]
fn a_certificate_of_your_own_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let own = rcgen::generate_simple_self_signed(vec!["own.example.test".to_owned()]).unwrap();
    let cert = dir.path().join("own.pem");
    let key = dir.path().join("own-key.pem");
    fs::write(&cert, own.cert.pem()).unwrap();
    fs::write(&key, own.signing_key.serialize_pem()).unwrap();
    let settings = TlsSettings {
        dir: Some(dir.path().join("local")),
        cert: Some(cert.clone()),
        key: Some(key.clone()),
        ..TlsSettings::default()
    };
    let (identity, source) = load(&settings).unwrap();
    assert_eq!(identity.chain[0].as_ref(), own.cert.der().as_ref());
    assert!(matches!(source, Source::Provided(info) if info.covers("own.example.test")));
    assert!(
        !dir.path().join("local").exists(),
        "no local CA when one is provided"
    );

    let half = TlsSettings {
        cert: Some(cert.clone()),
        ..TlsSettings::default()
    };
    assert!(matches!(load(&half).unwrap_err(), CertError::HalfProvided));

    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).unwrap();
    fs::write(&key, other.signing_key.serialize_pem()).unwrap();
    assert!(matches!(
        load(&settings).unwrap_err(),
        CertError::Mismatch { .. }
    ));
}

#[test]
fn the_tls_configuration_offers_h2_and_only_modern_versions() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ensure(dir.path(), &[]).unwrap();
    let config = server_config(&ca.identity, &[b"h2", b"http/1.1"]).unwrap();
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let versions: Vec<_> = config
        .crypto_provider()
        .cipher_suites
        .iter()
        .map(|s| s.version().version)
        .collect();
    assert!(versions.iter().all(|v| matches!(
        v,
        rustls::ProtocolVersion::TLSv1_2 | rustls::ProtocolVersion::TLSv1_3
    )));
    assert!(
        config.ignore_client_order,
        "the server chooses the cipher suite"
    );
}

#[test]
fn the_revocation_list_is_signed_by_the_ca_revokes_nothing_and_is_named_in_the_certificate() {
    use x509_parser::prelude::CertificateRevocationList;
    let dir = tempfile::tempdir().unwrap();
    let url = "http://localhost:8080/ca.crl";
    let ca = ensure_at(dir.path(), &[], Some(url), now()).unwrap();
    assert_eq!(ca.server.crl_urls, [url]);

    let (_, crl) = CertificateRevocationList::from_der(&ca.crl_der).unwrap();
    let ca_der = CertificateDer::from_pem_slice(ca.ca_pem.as_bytes()).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(crl.issuer(), ca_cert.subject());
    crl.verify_signature(ca_cert.public_key()).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    let next = crl.next_update().unwrap().timestamp();
    assert!(
        next >= ca.server.not_after.unix_timestamp() - 1,
        "valid as long as the certificate"
    );

    // The same address: reused. Another one: renewed. None asked for: whatever it has.
    let same = ensure_at(dir.path(), &[], Some(url), now()).unwrap();
    assert_eq!(same.server_action, Action::Reused);
    let moved = ensure_at(dir.path(), &[], Some("http://localhost/ca.crl"), now()).unwrap();
    assert!(
        matches!(&moved.server_action, Action::Renewed(r) if r.contains("revocation list")),
        "{:?}",
        moved.server_action
    );
    assert_eq!(moved.server.crl_urls, ["http://localhost/ca.crl"]);
    assert_eq!(
        ensure(dir.path(), &[]).unwrap().server_action,
        Action::Reused
    );
}

/// Whether a client that trusts `ca_pem` (rustls' own verifier, as switchboard's clients
/// use) accepts `leaf` for `name`.
fn accepted(ca_pem: &str, leaf: &CertificateDer<'static>, name: &str) -> Result<(), String> {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
        .build()
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(leaf, &[], &name, &[], rustls_pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What a stolen `ca-key.pem` would sign: a certificate for `name`, by the CA in `dir`.
fn forged(dir: &std::path::Path, name: &str) -> CertificateDer<'static> {
    let ca_der = CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&fs::read_to_string(dir.join("ca-key.pem")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca_der, &ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.signed_by(&key, &issuer).unwrap().der().clone()
}

/// Issue 42, item 5: the CA's key, if stolen, signs nothing a trusting client accepts
/// outside local names; switchboard's own certificate and local names still work.
#[test]
fn the_ca_may_sign_only_for_local_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ensure(dir.path(), &["mail.example.test".to_owned()]).unwrap();
    let own = &ca.identity.chain[0];
    for name in ["localhost", "mail.example.test", "127.0.0.1"] {
        assert_eq!(accepted(&ca.ca_pem, own, name), Ok(()), "{name}");
    }
    for name in ["app.localhost", "svc.internal", "10.0.0.7", "fd00::1"] {
        assert_eq!(
            accepted(&ca.ca_pem, &forged(dir.path(), name), name),
            Ok(()),
            "{name}"
        );
    }
    for name in [
        "example.com",
        "bank.example",
        "localhost.example.com",
        "8.8.8.8",
    ] {
        let refused = accepted(&ca.ca_pem, &forged(dir.path(), name), name).unwrap_err();
        assert!(refused.to_lowercase().contains("name"), "{name}: {refused}");
    }
    let permitted = ca
        .ca
        .permitted
        .as_ref()
        .expect("a new CA has name constraints");
    assert!(permitted.permits("app.localhost"), "{permitted:?}");
}

/// A CA made before it had constraints (here, by rcgen as switchboard used to) is kept:
/// clients trust it. `renew_ca` (`switchboard certs --renew-ca`) replaces it, and the
/// server certificate with it.
#[test]
fn an_unconstrained_ca_is_kept_until_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let old = params.self_signed(&key).unwrap();
    fs::write(dir.path().join("ca.pem"), old.pem()).unwrap();
    fs::write(dir.path().join("ca-key.pem"), key.serialize_pem()).unwrap();

    let kept = ensure(dir.path(), &["api.example.com".to_owned()]).unwrap();
    assert_eq!(kept.ca_action, Action::Reused);
    assert_eq!(kept.ca.permitted, None);
    assert!(
        kept.server.covers("api.example.com"),
        "the old CA may still sign it"
    );
    assert!(kept.report().contains("--renew-ca"), "{}", kept.report());

    let renewed = renew_ca(dir.path(), &[]).unwrap();
    assert!(matches!(renewed.ca_action, Action::Renewed(_)));
    assert_ne!(renewed.ca.sha256, kept.ca.sha256);
    assert!(renewed.ca.permitted.is_some());
    assert!(matches!(renewed.server_action, Action::Renewed(_)));
    assert_eq!(
        accepted(&renewed.ca_pem, &renewed.identity.chain[0], "localhost"),
        Ok(())
    );
}

/// A name asked for that the CA may not sign for is an error that names the fix, not a
/// certificate clients would refuse; the fix works.
#[test]
fn a_name_outside_the_cas_constraints_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), &[]).unwrap();
    let wanted = ["api.example.com".to_owned()];
    let refused = ensure(dir.path(), &wanted).unwrap_err().to_string();
    assert!(refused.contains("api.example.com"), "{refused}");
    assert!(
        refused.contains("switchboard certs --renew-ca --name api.example.com"),
        "{refused}"
    );

    let renewed = renew_ca(dir.path(), &wanted).unwrap();
    assert_eq!(
        accepted(
            &renewed.ca_pem,
            &renewed.identity.chain[0],
            "api.example.com"
        ),
        Ok(())
    );
    let again = ensure(dir.path(), &wanted).unwrap();
    assert_eq!(again.ca_action, Action::Reused);
}
