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
