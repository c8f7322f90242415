//! The local CA and the server certificate: create them on first use, reuse them after,
//! renew the server certificate when it no longer fits, and never replace the CA silently.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use switchboard_files::Visibility;

use crate::constraints::Permitted;
use crate::error::CertError;
use crate::files::{warn_if_exposed, write_atomic};
use crate::identity::{Identity, check_pair};
use crate::inspect::{self, CertInfo};

/// How long the CA is valid. Long, because every client that trusts it would have to be
/// told about a new one.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a server certificate is valid: under the 398 days that browsers and Apple
/// accept for a server certificate, and renewed automatically anyway.
pub const SERVER_VALIDITY: Duration = Duration::days(397);
/// A server certificate with less time left than this is renewed at start-up.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// Certificates start a little in the past, so that a client whose clock is slightly
/// behind still accepts them.
const BACKDATE: Duration = Duration::hours(1);

/// Where the four files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl Paths {
    /// `ca.pem`, `ca-key.pem`, `server.pem` and `server-key.pem` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
        }
    }
}

/// What happened to a certificate at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Created,
    Reused,
    /// Replaced by a new one, for the reason given.
    Renewed(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Created => f.write_str("created"),
            Action::Reused => f.write_str("reused"),
            Action::Renewed(reason) => write!(f, "renewed: {reason}"),
        }
    }
}

/// The local CA and the server certificate it signed, ready for TLS.
#[derive(Debug)]
pub struct LocalCa {
    pub paths: Paths,
    pub ca: CertInfo,
    pub ca_action: Action,
    pub server: CertInfo,
    pub server_action: Action,
    /// The CA certificate, for clients to trust.
    pub ca_pem: String,
    /// The CA's certificate revocation list (DER): it revokes nothing, and exists because
    /// some clients (Windows' TLS among them) refuse a certificate whose revocation they
    /// cannot check. Signed at every start, valid as long as the server certificate.
    pub crl_der: Vec<u8>,
    pub identity: Identity,
}

impl LocalCa {
    /// A description for people: both certificates, and how to trust the CA.
    pub fn report(&self) -> String {
        let ca = self.paths.ca_cert.display();
        let mut out = String::new();
        out.push_str(&describe("Local CA", &self.ca, &self.ca_action));
        out.push_str(&describe(
            "Server certificate",
            &self.server,
            &self.server_action,
        ));
        out.push_str(&format!(
            "\nTrust the CA once, and every certificate switchboard issues is trusted:\n  \
               curl:           curl --cacert {ca} https://localhost/\n  \
               most tools:     SSL_CERT_FILE={ca} <command>\n  \
               Debian/Ubuntu:  sudo cp {ca} /usr/local/share/ca-certificates/switchboard.crt && sudo update-ca-certificates\n  \
               Python:         REQUESTS_CA_BUNDLE={ca} python app.py\n  \
               Node.js:        NODE_EXTRA_CA_CERTS={ca} node app.js\n\
             More, for each OS and runtime: certs/README.md in switchboard's repository.\n"
        ));
        out
    }
}

fn describe(title: &str, info: &CertInfo, action: &Action) -> String {
    let mut out = format!(
        "{title}: {} ({action})\n  subject    {}\n",
        info.path.display(),
        info.subject
    );
    if !info.names.is_empty() {
        out.push_str(&format!("  names      {}\n", info.names.join(", ")));
    }
    if info.issuer != info.subject {
        out.push_str(&format!("  issuer     {}\n", info.issuer));
    }
    if info.is_ca {
        match &info.permitted {
            Some(permitted) => {
                out.push_str(&format!("  signs for  {}\n", permitted.describe()));
            }
            None => out.push_str(
                "  signs for  any name (no name constraints): replace it with \
                 `switchboard certs --renew-ca`\n",
            ),
        }
    }
    out.push_str(&format!(
        "  valid      {} to {}\n  SHA-256    {}\n",
        info.not_before.date(),
        info.not_after.date(),
        info.sha256
    ));
    out
}

/// The names every server certificate carries: `localhost`, `127.0.0.1`, `::1` and this
/// machine's host name.
pub fn default_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = gethostname::gethostname()
        .to_string_lossy()
        .to_ascii_lowercase();
    let plausible = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if plausible && !names.contains(&host) {
        names.push(host);
    }
    names
}

/// Create or reuse the CA and server certificate in `dir`; `extra_names` are added to the
/// server certificate's names.
pub fn ensure(dir: &Path, extra_names: &[String]) -> Result<LocalCa, CertError> {
    ensure_at(dir, extra_names, None, OffsetDateTime::now_utc())
}

/// [`ensure`] as if the time were `now` (tests use it to travel in time), with the address
/// of the CA's revocation list written into the server certificate when `crl_url` is given
/// (a certificate with another one, or none, is renewed).
pub fn ensure_at(
    dir: &Path,
    extra_names: &[String],
    crl_url: Option<&str>,
    now: OffsetDateTime,
) -> Result<LocalCa, CertError> {
    make(dir, extra_names, crl_url, now, CaPolicy::Keep)
}

/// Replace the CA in `dir` with a new one (constrained to local names and `extra_names`),
/// and issue a server certificate from it: `switchboard certs --renew-ca`. Clients that
/// trusted the old CA must trust the new `ca.pem`.
pub fn renew_ca(dir: &Path, extra_names: &[String]) -> Result<LocalCa, CertError> {
    make(
        dir,
        extra_names,
        None,
        OffsetDateTime::now_utc(),
        CaPolicy::Renew,
    )
}

/// Whether an existing CA is kept (always, unless asked) or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaPolicy {
    Keep,
    Renew,
}

fn make(
    dir: &Path,
    extra_names: &[String],
    crl_url: Option<&str>,
    now: OffsetDateTime,
    policy: CaPolicy,
) -> Result<LocalCa, CertError> {
    // Readable by all, as the CA's certificate in it must be; the keys in it are 0600.
    switchboard_files::create_dir_all(dir, Visibility::Public).map_err(|source| {
        CertError::Write {
            path: dir.to_owned(),
            source,
        }
    })?;
    let paths = Paths::in_dir(dir);
    let names = requested_names(extra_names)?;

    let (ca, ca_action) = match policy {
        CaPolicy::Keep => load_or_create_ca(&paths, &names, now)?,
        CaPolicy::Renew => {
            let reason = "asked for with --renew-ca; clients must trust the new ca.pem";
            (
                create_ca(&paths, &names, now)?,
                Action::Renewed(reason.to_owned()),
            )
        }
    };
    let names = within_constraints(&ca.info, names, extra_names)?;
    let wanted = Wanted {
        names: &names,
        crl_url,
    };
    let (identity, server, server_action) = load_or_issue_server(&paths, &ca, &wanted, now)?;
    let crl_der = revocation_list(&ca, now, server.not_after)?;
    Ok(LocalCa {
        paths,
        ca: ca.info,
        ca_action,
        server,
        server_action,
        ca_pem: ca.pem,
        crl_der,
        identity,
    })
}

/// The names of `names` the CA may sign for. A name asked for (`extra`) that it may not is
/// an error naming the fix; a default one (this machine's host name, which changes with a
/// container) is left out with a warning.
fn within_constraints(
    ca: &CertInfo,
    names: Vec<String>,
    extra: &[String],
) -> Result<Vec<String>, CertError> {
    let Some(permitted) = &ca.permitted else {
        tracing::warn!(
            "the local CA {} has no name constraints: its key can sign for any site, for \
             every client that trusts it. Run `switchboard certs --renew-ca` to replace it \
             with one limited to local names (clients must then trust the new ca.pem)",
            ca.path.display()
        );
        return Ok(names);
    };
    let mut kept = Vec::with_capacity(names.len());
    for name in names {
        if permitted.permits(&name) {
            kept.push(name);
        } else if extra.iter().any(|e| e.trim().eq_ignore_ascii_case(&name)) {
            return Err(CertError::OutsideConstraints {
                ca: ca.path.clone(),
                name,
                permitted: permitted.describe(),
            });
        } else {
            tracing::warn!(
                "the server certificate leaves out {name}: the local CA may not sign for it \
                 (add it with --name and `switchboard certs --renew-ca` if clients use it)"
            );
        }
    }
    Ok(kept)
}

fn requested_names(extra: &[String]) -> Result<Vec<String>, CertError> {
    let mut names = default_names();
    for name in extra {
        let name = name.trim().to_ascii_lowercase();
        let valid = name.parse::<IpAddr>().is_ok()
            || (!name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*')));
        if !valid {
            return Err(CertError::InvalidName(name));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The CA's certificate, key and what it says about itself.
struct Ca {
    der: CertificateDer<'static>,
    key: KeyPair,
    pem: String,
    info: CertInfo,
}

fn load_or_create_ca(
    paths: &Paths,
    names: &[String],
    now: OffsetDateTime,
) -> Result<(Ca, Action), CertError> {
    match (paths.ca_cert.exists(), paths.ca_key.exists()) {
        // Without ca.pem nobody can trust this CA yet, so creating one loses nothing (a
        // lone ca-key.pem is what an interrupted first start leaves behind).
        (false, _) => Ok((create_ca(paths, names, now)?, Action::Created)),
        (true, false) => Err(CertError::MissingCaKey {
            cert: paths.ca_cert.clone(),
            key: paths.ca_key.clone(),
        }),
        (true, true) => Ok((load_ca(paths, now)?, Action::Reused)),
    }
}

/// A new CA that may sign for local names and `names` only (constraints.rs).
fn create_ca(paths: &Paths, names: &[String], now: OffsetDateTime) -> Result<Ca, CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    dn.push(DnType::CommonName, format!("switchboard local CA ({host})"));
    dn.push(DnType::OrganizationName, "switchboard");
    params.distinguished_name = dn;
    // May sign server certificates, but no further CAs below it.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.name_constraints = Some(Permitted::for_names(names).to_constraints());
    let cert = params.self_signed(&key)?;

    // The key first: a ca.pem without its key would be a CA nobody can use.
    write_atomic(
        &paths.ca_key,
        key.serialize_pem().as_bytes(),
        Visibility::Private,
    )?;
    write_atomic(&paths.ca_cert, cert.pem().as_bytes(), Visibility::Public)?;
    let info = CertInfo::of(cert.der(), &paths.ca_cert)?;
    Ok(Ca {
        der: cert.der().clone(),
        key,
        pem: cert.pem(),
        info,
    })
}

fn load_ca(paths: &Paths, now: OffsetDateTime) -> Result<Ca, CertError> {
    let pem = read_to_string(&paths.ca_cert)?;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| CertError::Malformed {
        path: paths.ca_cert.clone(),
        what: "certificate",
        detail: e.to_string(),
    })?;
    let key_pem = read_to_string(&paths.ca_key)?;
    warn_if_exposed(&paths.ca_key);
    let key = KeyPair::from_pem(&key_pem).map_err(|e| CertError::Malformed {
        path: paths.ca_key.clone(),
        what: "private key",
        detail: e.to_string(),
    })?;
    let key_der =
        PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| CertError::Malformed {
            path: paths.ca_key.clone(),
            what: "private key",
            detail: e.to_owned(),
        })?;
    check_pair(
        std::slice::from_ref(&der),
        &key_der,
        &paths.ca_cert,
        &paths.ca_key,
    )?;
    let info = CertInfo::of(&der, &paths.ca_cert)?;
    if !info.is_ca {
        return Err(CertError::NotCa(paths.ca_cert.clone()));
    }
    if info.not_after <= now {
        return Err(CertError::CaExpired {
            path: paths.ca_cert.clone(),
            key: paths.ca_key.clone(),
            not_after: info.not_after,
        });
    }
    if info.not_after - now < RENEW_BEFORE {
        tracing::warn!(
            "the local CA {} expires on {}; delete ca.pem and ca-key.pem to create a new one \
             (clients will have to trust the new CA)",
            paths.ca_cert.display(),
            info.not_after.date()
        );
    }
    Ok(Ca {
        der,
        key,
        pem,
        info,
    })
}

/// What the server certificate must carry.
struct Wanted<'a> {
    names: &'a [String],
    /// Where clients find the CA's revocation list; `None`: whatever it says.
    crl_url: Option<&'a str>,
}

fn load_or_issue_server(
    paths: &Paths,
    ca: &Ca,
    wanted: &Wanted<'_>,
    now: OffsetDateTime,
) -> Result<(Identity, CertInfo, Action), CertError> {
    if !(paths.server_cert.exists() && paths.server_key.exists()) {
        let (identity, info) = issue_server(paths, ca, wanted, now)?;
        return Ok((identity, info, Action::Created));
    }
    let chain = read_chain(&paths.server_cert)?;
    let key = read_key(&paths.server_key)?;
    warn_if_exposed(&paths.server_key);
    check_pair(&chain, &key, &paths.server_cert, &paths.server_key)?;
    let info = CertInfo::of(&chain[0], &paths.server_cert)?;
    match renewal_reason(&chain[0], &info, ca, wanted, now)? {
        None => Ok((Identity { chain, key }, info, Action::Reused)),
        Some(reason) => {
            let (identity, info) = issue_server(paths, ca, wanted, now)?;
            Ok((identity, info, Action::Renewed(reason)))
        }
    }
}

/// Why an existing server certificate must be replaced, if it must.
fn renewal_reason(
    der: &CertificateDer<'_>,
    info: &CertInfo,
    ca: &Ca,
    wanted: &Wanted<'_>,
    now: OffsetDateTime,
) -> Result<Option<String>, CertError> {
    let cert = inspect::parse(der, &info.path)?;
    let ca_cert = inspect::parse(&ca.der, &ca.info.path)?;
    if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
        return Ok(Some("it was not signed by the current CA".to_owned()));
    }
    if info.not_after <= now {
        return Ok(Some(format!("it expired on {}", info.not_after.date())));
    }
    if info.not_after - now < RENEW_BEFORE {
        return Ok(Some(format!(
            "it expires soon, on {}",
            info.not_after.date()
        )));
    }
    if info.not_before > now {
        return Ok(Some(format!("it is not valid before {}", info.not_before)));
    }
    let missing: Vec<&str> = wanted
        .names
        .iter()
        .filter(|n| !info.covers(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Ok(Some(format!("it lacks the name(s) {}", missing.join(", "))));
    }
    if let Some(url) = wanted.crl_url
        && info.crl_urls != [url]
    {
        return Ok(Some(format!("its revocation list address is not {url}")));
    }
    Ok(None)
}

fn issue_server(
    paths: &Paths,
    ca: &Ca,
    wanted: &Wanted<'_>,
    now: OffsetDateTime,
) -> Result<(Identity, CertInfo), CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(wanted.names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, wanted.names[0].clone());
    dn.push(DnType::OrganizationName, "switchboard");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + SERVER_VALIDITY;
    if let Some(url) = wanted.crl_url {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![url.to_owned()],
        }];
    }
    let issuer = Issuer::from_ca_cert_der(&ca.der, &ca.key)?;
    let cert = params.signed_by(&key, &issuer)?;

    write_atomic(
        &paths.server_key,
        key.serialize_pem().as_bytes(),
        Visibility::Private,
    )?;
    write_atomic(
        &paths.server_cert,
        cert.pem().as_bytes(),
        Visibility::Private,
    )?;
    let info = CertInfo::of(cert.der(), &paths.server_cert)?;
    let identity = Identity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    };
    Ok((identity, info))
}

/// An empty revocation list signed by the CA, valid from now until `until`. Its number is
/// the time in seconds, so each one is newer than the last (RFC 5280 5.2.3).
fn revocation_list(
    ca: &Ca,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<u8>, CertError> {
    let number = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let params = CertificateRevocationListParams {
        this_update: now - BACKDATE,
        next_update: until.max(now + Duration::days(1)),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let issuer = Issuer::from_ca_cert_der(&ca.der, &ca.key)?;
    Ok(params.signed_by(&issuer)?.der().to_vec())
}

fn read_to_string(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file, leaf first.
pub(crate) fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = read_to_string(path)?;
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Malformed {
            path: path.to_owned(),
            what: "certificate",
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::Malformed {
            path: path.to_owned(),
            what: "certificate",
            detail: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(chain)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let pem = read_to_string(path)?;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| CertError::Malformed {
        path: path.to_owned(),
        what: "private key",
        detail: e.to_string(),
    })
}
