//! What the fuzz targets in `fuzz/` run. Each function takes arbitrary bytes, gives them to
//! one of switchboard's parsers — everything that reads input from the network or from a
//! user — and panics when a promise breaks: a crash, a reply that is not a reply, a
//! message acknowledged but not stored, text that could drive a terminal.
//!
//! `fuzz/fuzz_targets/<name>.rs` is one line calling the function of [`TARGETS`] named
//! `<name>`. This crate's tests replay `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/`
//! through the same functions, so every input that ever failed stays a test of
//! `cargo test --workspace`, with no fuzzer needed.

// Panicking on a broken promise is how a fuzz target reports it.
#![allow(clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde_json::Value;
use switchboard_app::{Config, port_spec};
use switchboard_core::{Cidr, DatagramService};
use switchboard_faults::{Toxic, ToxicSpec};
use switchboard_mail::{Envelope, MailStore, Query, Triggers};

pub use switchboard_smtp::fuzzing::data as smtp_data;

/// A whole SMTP session from a scripted client (see `switchboard_smtp::fuzzing::session`).
pub fn smtp_session(input: &[u8]) {
    switchboard_smtp::fuzzing::session(input);
}

/// What a fuzz target runs: it panics when the input breaks a promise.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the file under `fuzz/fuzz_targets/`) and what it runs.
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_session", smtp_session),
    ("smtp_data", smtp_data),
    ("config", config),
    ("probe_classify", probe_classify),
    ("mail_message", mail_message),
    ("mail_search", mail_search),
    ("proc_net_tcp", proc_net_tcp),
    ("toxic", toxic),
    ("cidr", cidr),
    ("chaos", chaos),
    ("port_row", port_row),
    ("toxiproxy", toxiproxy),
    ("send", send),
    ("stub", stub),
    ("udp_datagram", udp_datagram),
    ("duration", duration),
    ("thumbnail", thumbnail),
    ("file_name", file_name),
];

/// A config file: it loads, or the error names the file and what is wrong.
pub fn config(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Err(error) = Config::from_toml(text, "fuzz.toml") {
        let message = error.to_string();
        assert!(message.starts_with("fuzz.toml"), "{message}");
    }
}

/// What `switchboard probe` prints of a server's first bytes: one line, with nothing a
/// terminal would take as a command (a hostile server must not drive your terminal).
pub fn probe_classify(input: &[u8]) {
    if let Some(found) = switchboard_probe::classify(input) {
        assert_printable(&found.detail);
    }
    assert_printable(&switchboard_probe::printable(&String::from_utf8_lossy(
        input,
    )));
}

fn assert_printable(text: &str) {
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// A message as the SMTP service stores it, and everything the mail API computes from it.
pub fn mail_message(input: &[u8]) {
    block_on(async {
        let store = MailStore::in_memory(1);
        let stored = store
            .insert(envelope(), input.to_vec().into(), &via())
            .await
            .unwrap_or_else(|e| panic!("an in-memory store refused a message: {e}"));
        assert_eq!(&stored.raw[..], input);
        // Parsed when first asked for, as the API's list does.
        let summary = stored.summary();
        assert!(summary.snippet.chars().count() <= 250, "snippet too long");
        let details = stored.details();
        for part in details.attachments.iter().chain(&details.inline) {
            assert!(
                stored.part(&part.part_id).is_some(),
                "part {}",
                part.part_id
            );
        }
        let _ = stored.headers();
        // Every search reaches every stored message without a panic.
        for query in [
            "hello",
            "from:from@fuzz",
            "to:x subject:\"a b\"",
            "is:unread",
        ] {
            if let Ok(query) = Query::parse(query) {
                let _ = query.matches(&stored);
            }
        }
    });
}

/// Run `work` to its end on a runtime of its own (the store's API is async).
fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"))
        .block_on(work)
}

/// The connection a fuzzed message comes in on.
fn via() -> switchboard_core::ConnInfo {
    switchboard_core::ConnInfo {
        id: 1,
        service: "smtp",
        local: ([127, 0, 0, 1], 25).into(),
        peer: ([127, 0, 0, 1], 40000).into(),
        tls: None,
    }
}

fn envelope() -> Envelope {
    Envelope {
        mail_from: "from@fuzz.test".to_owned(),
        rcpt_to: vec!["to@fuzz.test".to_owned()],
        helo: "fuzz.test".to_owned(),
        peer: ([127, 0, 0, 1], 40000).into(),
        tls: false,
        auth_user: None,
        arrival: Default::default(),
    }
}

/// A search query (`/api/v1/search?query=…`): parsed, then matched against a message.
pub fn mail_search(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(query) = Query::parse(text) else {
        return;
    };
    block_on(async {
        let store = MailStore::in_memory(1);
        let raw =
            "From: A <a@fuzz.test>\r\nTo: b@fuzz.test\r\nSubject: Hello there\r\n\r\nBody\r\n";
        if let Ok(message) = store
            .insert(envelope(), raw.as_bytes().to_vec().into(), &via())
            .await
        {
            let _ = query.matches(&message);
        }
    });
}

/// `/proc/net/tcp` and `tcp6`: whatever the kernel (or a future kernel) writes.
pub fn proc_net_tcp(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    for ipv6 in [false, true] {
        for socket in switchboard_probe::sockets::parse_table(&text, ipv6) {
            assert_eq!(socket.local.is_ipv6(), ipv6, "{socket:?}");
        }
    }
}

/// A toxic in Toxiproxy's JSON, as the control API receives it, and a patch to it.
pub fn toxic(input: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<ToxicSpec>(input) else {
        return;
    };
    if let Ok(toxic) = Toxic::from_spec(spec) {
        let toxicity = toxic.toxicity;
        assert!((0.0..=1.0).contains(&toxicity), "toxicity {toxicity}");
        // Every time a toxic takes is at most a day: no deadline the engine computes from
        // it can overflow the clock.
        let json = serde_json::to_value(&toxic).unwrap_or_default();
        let day = 24 * 60 * 60 * 1000;
        for key in ["latency", "jitter", "delay", "timeout"] {
            if let Some(ms) = json["attributes"][key].as_u64() {
                let ms = if toxic.kind.type_name() == "slicer" {
                    ms / 1000
                } else {
                    ms
                };
                assert!(ms <= day, "{key} {ms} ms in {json}");
            }
        }
        if let Some(duration) = toxic.duration {
            assert!(duration.as_millis() <= day.into(), "duration {duration:?}");
        }
        if let Ok(patch) = serde_json::from_slice(input) {
            let _ = toxic.patched(&patch);
        }
    }
}

/// An address range of an access rule: parsed, printed, parsed again to the same range.
pub fn cidr(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(range) = Cidr::from_str(text) else {
        return;
    };
    let again = Cidr::from_str(&range.to_string())
        .unwrap_or_else(|e| panic!("{range} does not parse again: {e}"));
    assert_eq!(range, again);
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ] {
        assert_eq!(range.contains(ip), again.contains(ip));
    }
}

/// SMTP chaos triggers in Mailpit's JSON, as `PUT /api/v1/chaos` receives them.
pub fn chaos(input: &[u8]) {
    if let Ok(triggers) = serde_json::from_slice::<Triggers>(input) {
        let _ = triggers.validate();
    }
}

/// A `[[port]]` row as `POST /api/ports` receives it: refused with a reason, or a spec
/// that is what the row said (a proxy shows its upstream, a program its command, and only
/// services with keys of their own keep any).
pub fn port_row(input: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    match port_spec(json.clone(), 100) {
        Ok(spec) => {
            assert_eq!(json["port"], spec.port, "{spec:?}");
            assert_eq!(json["service"], spec.service, "{spec:?}");
            let shows = spec.target.as_ref().map(|t| t.key);
            assert_eq!(
                shows == Some("upstream"),
                spec.service == "proxy",
                "{spec:?}"
            );
            assert_eq!(shows == Some("command"), spec.service == "exec", "{spec:?}");
            // The services whose rows have no keys of their own keep none.
            let plain = [
                "http", "https", "smtp", "smtps", "echo", "discard", "daytime",
            ];
            let plain = [&plain[..], &["chargen", "time", "toxiproxy", "blackhole"]].concat();
            if plain.contains(&spec.service) {
                assert!(spec.keys.is_none(), "{spec:?}");
            }
            assert!(
                spec.runtime,
                "a row from the API is guarded as one: {spec:?}"
            );
        }
        Err(reason) => assert!(!reason.message.is_empty()),
    }
}

/// A body of Toxiproxy's `POST /proxies` or `/populate`: each proxy becomes a `proxy` row
/// (never a program, whatever the body says), which the control API then checks.
pub fn toxiproxy(input: &[u8]) {
    let Ok(rows) = switchboard_toxiproxy::fuzzing::rows(input) else {
        return;
    };
    for json in rows {
        assert_eq!(json["service"], "proxy", "{json}");
        match port_spec(json.clone(), 100) {
            Ok(spec) => {
                let shows = spec.target.as_ref().map(|t| t.key);
                assert_eq!(shows, Some("upstream"), "{spec:?}");
                let keys = spec.keys.as_deref();
                assert!(
                    keys.and_then(|k| k.downcast::<switchboard_proxy::ProxyRow>())
                        .is_some(),
                    "{spec:?}"
                );
            }
            // The API's own rows have only keys a proxy row has; a value may be refused.
            Err(reason) => assert!(
                !reason.message.contains("unknown field")
                    && !reason.message.contains("not a [[port]] row"),
                "the API's own row {json} is not a row: {reason}"
            ),
        }
    }
}

/// Header names a MIME part of a message built by the send API may have.
const SEND_PART_HEADERS: &[&str] = &[
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
];

/// Header names a message built by the send API may have besides those its request's
/// `Headers` asks for.
const SEND_HEADERS: &[&str] = &[
    "content-transfer-encoding",
    "content-type",
    "date",
    "cc",
    "from",
    "message-id",
    "mime-version",
    "reply-to",
    "subject",
    "to",
    "x-tags",
];

/// Mailpit's send API (`POST /api/v1/send`): a message is built or the request refused,
/// and no field smuggles a header of its own into the message (header injection) or a
/// line break into the envelope.
pub fn send(input: &[u8]) {
    let Ok((raw, from, recipients)) = switchboard_mailpit::fuzzing::send(input) else {
        return;
    };
    for address in std::iter::once(&from).chain(&recipients) {
        assert!(!address.contains(['\r', '\n']), "{address:?}");
    }
    let request: Value = serde_json::from_slice(input)
        .unwrap_or_else(|e| panic!("a request that built a message is not JSON: {e}"));
    let asked: Vec<String> = request["Headers"]
        .as_object()
        .map(|headers| headers.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    block_on(async {
        let store = MailStore::in_memory(1);
        let stored = store
            .insert(envelope(), raw.clone().into(), &via())
            .await
            .unwrap_or_else(|e| panic!("an in-memory store refused a message: {e}"));
        for name in stored.headers().keys() {
            let name = name.to_ascii_lowercase();
            assert!(
                SEND_HEADERS.contains(&name.as_str()) || asked.contains(&name),
                "a header nobody asked for: {name}"
            );
        }
    });
    // Nor into a part's head, through an attachment's ContentType, ContentID or Filename.
    let parsed = mail_parser::MessageParser::default()
        .parse(&raw[..])
        .unwrap_or_else(|| panic!("the send API built a message mail-parser cannot read"));
    for part in parsed.parts.iter().skip(1) {
        for header in &part.headers {
            let name = header.name.as_str().to_ascii_lowercase();
            assert!(
                SEND_PART_HEADERS.contains(&name.as_str()),
                "a part header nobody asked for: {name}"
            );
        }
    }
}

/// A WireMock stub mapping (`POST /__admin/mappings`), then a request for the path that
/// follows the first NUL byte: the mapping is refused or added, and the request is
/// answered with a three-digit status and recorded in the journal.
pub fn stub(input: &[u8]) {
    let (mapping, path) = match input.iter().position(|b| *b == 0) {
        Some(at) => (&input[..at], String::from_utf8_lossy(&input[at + 1..])),
        None => (input, "/".into()),
    };
    let Ok(json) = serde_json::from_slice::<Value>(mapping) else {
        return;
    };
    let stubs = switchboard_stubs::Stubs::empty();
    if stubs.add(json).is_err() {
        return;
    }
    let served = block_on(stubs.serve(stub_request(&path)))
        .unwrap_or_else(|e| panic!("the stubs could not answer: {e}"));
    if let switchboard_stubs::Served::Stub { response, .. } = served {
        // Three digits, as HTTP/1.1 can carry (600 to 999 on purpose: a client under test
        // may meet them).
        assert!(
            (100..=999).contains(&response.status),
            "{}",
            response.status
        );
        // The wait it asks for, however big its numbers (the service caps it).
        let _ = response.delay();
    }
    assert_eq!(stubs.requests().len(), 1, "the journal lost the request");
}

/// A JSON POST for `path` (its body the path too, for body matchers to look at).
fn stub_request(path: &str) -> switchboard_stubs::Request {
    switchboard_stubs::Request {
        method: "POST".to_owned(),
        url: path.to_owned(),
        absolute_url: format!("http://fuzz.test{path}"),
        client_ip: "127.0.0.1".to_owned(),
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: path.as_bytes().to_vec(),
    }
}

/// A duration from a request's query (`delay=`, `timeout=`, `for=`): read as at most its
/// maximum, or refused with a reason (one that names the maximum when it is over it);
/// never a panic, whatever the number (`1e308`, `18446744073709551615s`).
pub fn duration(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    const MAX: std::time::Duration = std::time::Duration::from_secs(10);
    match switchboard_web::params::duration("t", text, MAX, "[fuzz] max") {
        Ok(time) => assert!(time <= MAX, "{text}: {time:?}"),
        Err(why) => assert!(why.to_string().starts_with(&format!("t={text}: ")), "{why}"),
    }
}

/// An attachment's bytes through the thumbnail route, with a decoded size limit of 4 MiB:
/// always a JPEG, and never a picture decoded that is bigger than the limit.
pub fn thumbnail(input: &[u8]) {
    const MAX: u64 = 4 * 1024 * 1024;
    let jpeg = switchboard_mailpit::fuzzing::thumbnail(input, MAX);
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "not a JPEG");
    if let Some(bytes) = switchboard_mailpit::fuzzing::decoded_bytes(input, MAX) {
        assert!(bytes as u64 <= MAX, "decoded {bytes} bytes");
    }
}

/// A name from a request that would become a file: refused, or one component that stays in
/// its directory; a path, components that each are; a name cleaned for a download, always
/// safe.
pub fn file_name(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(name) = switchboard_files::safe_name(&text) {
        assert!(
            !name.contains(['/', '\\', '\0']) && name != ".." && name != ".",
            "{name:?}"
        );
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.len() <= switchboard_files::MAX_NAME_BYTES);
    }
    if let Ok(path) = switchboard_files::safe_path(&text) {
        for part in path.components() {
            assert!(
                matches!(part, std::path::Component::Normal(_)),
                "{text:?} gives {path:?}"
            );
        }
    }
    let cleaned = switchboard_files::cleaned_name(&text, "attachment");
    assert!(
        switchboard_files::safe_name(&cleaned).is_ok(),
        "{cleaned:?}"
    );
}

/// A datagram to each UDP builtin: no answer is longer than the datagram or RFC 864's
/// 512 bytes, whichever is more (the supervisor's `udp_max_answer` cuts there too), so
/// none amplifies a spoofed request by more than that.
pub fn udp_datagram(input: &[u8]) {
    let services: [&dyn DatagramService; 5] = [
        &switchboard_echo::EchoService,
        &switchboard_classic::DiscardService,
        &switchboard_classic::DaytimeService,
        &switchboard_classic::TimeService,
        &switchboard_classic::ChargenService::default(),
    ];
    for service in services {
        if let Some(answer) = service.answer(input) {
            assert!(
                answer.len() <= input.len().max(512),
                "{} answers {} bytes to {}",
                service.name(),
                answer.len(),
                input.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::TARGETS;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    /// The files of `dir`, sorted; none if it does not exist.
    fn inputs(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|f| f.is_file());
        files.sort();
        files
    }

    #[test]
    fn every_seed_and_every_input_that_once_failed_passes() {
        for (name, run) in TARGETS {
            let seeds = inputs(&fuzz_dir().join("seeds").join(name));
            assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ has no seed inputs");
            let regressions = inputs(&fuzz_dir().join("regressions").join(name));
            for file in seeds.iter().chain(&regressions) {
                let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
                if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                    panic!("{name} fails on {}", file.display());
                }
            }
        }
    }

    /// A target that returns early on every seed tests nothing: these seeds get past the
    /// parser to the promises.
    #[test]
    fn the_seeds_reach_the_promises() {
        let seed = |path: &str| std::fs::read(fuzz_dir().join("seeds").join(path)).unwrap();
        let built = switchboard_mailpit::fuzzing::send(&seed("send/everything"));
        assert!(built.is_ok(), "{built:?}");
        let refused = switchboard_mailpit::fuzzing::send(&seed("send/envelope-injection"));
        assert!(refused.is_err(), "{refused:?}");
        let rows = switchboard_toxiproxy::fuzzing::rows(&seed("toxiproxy/populate"));
        assert_eq!(rows.map(|r| r.len()), Ok(2));
        for row in ["port_row/proxy", "port_row/exec", "port_row/blackhole"] {
            let row: serde_json::Value = serde_json::from_slice(&seed(row)).unwrap();
            let spec = switchboard_app::port_spec(row.clone(), 1);
            assert!(spec.is_ok(), "{row} → {spec:?}");
        }
        let injected = switchboard_mailpit::fuzzing::send(&seed("send/attachment-injection"));
        assert!(injected.is_err(), "{injected:?}");
        assert!(switchboard_mailpit::fuzzing::send(&seed("send/attachments")).is_ok());
        for refused in [
            "stub/deep-jsonpath",
            "stub/costly-regex",
            "stub/multiplying-union",
            "stub/id-traversal",
        ] {
            let input = seed(refused);
            let at = input.iter().position(|b| *b == 0).unwrap();
            let stubs = switchboard_stubs::Stubs::empty();
            let added = stubs.add(serde_json::from_slice(&input[..at]).unwrap());
            assert!(added.is_err(), "{refused} was added");
        }
        // The small images decode (their thumbnails are not blank), the bomb does not.
        for (image, blank) in [
            ("thumbnail/small.png", false),
            ("thumbnail/small.gif", false),
            ("thumbnail/declares-384MB.png", true),
        ] {
            let jpeg = switchboard_mailpit::fuzzing::thumbnail(&seed(image), 4 << 20);
            let white = jpeg_is_blank(&jpeg);
            assert_eq!(white, blank, "{image}");
        }
        for (mapping, status) in [
            ("stub/json-body", 201),
            ("stub/pattern-scenario", 200),
            ("stub/unordered-json", 202),
        ] {
            let input = seed(mapping);
            let at = input.iter().position(|b| *b == 0).unwrap();
            let stubs = switchboard_stubs::Stubs::empty();
            stubs
                .add(serde_json::from_slice(&input[..at]).unwrap())
                .unwrap();
            let path = String::from_utf8(input[at + 1..].to_vec()).unwrap();
            let served = super::block_on(stubs.serve(super::stub_request(&path))).unwrap();
            match served {
                switchboard_stubs::Served::Stub { response, .. } => {
                    assert_eq!(response.status, status, "{mapping}")
                }
                switchboard_stubs::Served::Unmatched { diff, .. } => panic!("{mapping}: {diff}"),
            }
        }
    }

    /// Whether a thumbnail is all white: the mark of a part that was not decoded.
    fn jpeg_is_blank(jpeg: &[u8]) -> bool {
        let image = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap();
        image.to_rgb8().iter().all(|b| *b > 240)
    }

    #[test]
    fn every_target_has_its_fuzz_target_file_and_no_file_is_orphaned() {
        let names: Vec<String> = TARGETS.iter().map(|(n, _)| format!("{n}.rs")).collect();
        let files: Vec<String> = inputs(&fuzz_dir().join("fuzz_targets"))
            .iter()
            .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
            .collect();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(files, expected, "fuzz/fuzz_targets/ and TARGETS disagree");
    }
}
