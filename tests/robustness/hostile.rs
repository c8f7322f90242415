//! The attack of issue 39, items 1 to 4, against the built binary in one run: a stub id
//! that names a file outside the stubs directory, a JSONPath nested a thousand deep, a
//! mailed image that declares 8000×8000 pixels of 16 bits a channel (four thumbnails of it
//! at once), and a regular expression that costs 30 s a match. Afterwards the process is
//! alive and serving, its memory stayed under 200 MB at its peak, and nothing outside its
//! directories changed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::one_at_a_time;

/// The server's peak resident memory must stay under this.
const MEMORY_BOUND_KIB: u64 = 200 * 1024;

/// Every file under `dir` with its text, skipping the directories in `skip`.
fn snapshot(dir: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(at) = todo.pop() {
        if skip.contains(&at) {
            continue;
        }
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    files
}

/// A PNG of 8000×8000 pixels, RGB with 16 bits a channel, all black: some 380 KB that
/// decode to 384 MB.
fn decompression_bomb() -> Vec<u8> {
    let (width, height) = (8000u32, 8000u32);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; width as usize * 6];
    for _ in 0..height {
        stream.write_all(&row).unwrap();
    }
    stream.finish().unwrap();
    drop(writer);
    out
}

async fn request(method: reqwest::Method, addr: SocketAddr, path: &str) -> reqwest::RequestBuilder {
    // reqwest's rustls backend needs a crypto provider chosen; ours is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new().request(method, format!("http://{addr}{path}"))
}

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> (u16, String) {
    let response = request(reqwest::Method::POST, addr, path)
        .await
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_attack_of_issue_39_leaves_switchboard_alive_bounded_and_inside_its_folders() {
    let _turn = one_at_a_time().await;
    // Everything the server may write lives in `work/area`: the attack aims above it.
    let root = tempfile::tempdir().unwrap();
    let area = root.path().join("work").join("area");
    let (stubs_dir, mail_dir) = (area.join("stubs"), area.join("mail"));
    std::fs::create_dir_all(&stubs_dir).unwrap();
    std::fs::write(root.path().join("work").join("package.json"), "{}").unwrap();
    let config = format!(
        "{}[stubs]\ndir = {:?}\n",
        switchboard_testkit::binary::port_table(&["http", "stubs"]),
        stubs_dir.to_str().unwrap()
    );
    let mut server = crate::switchboard()
        .start(&config, &["--mail-dir", mail_dir.to_str().unwrap()])
        .await;
    let (http, stubs) = (server.addr("http"), server.addr("stubs"));
    let ours = [stubs_dir.clone(), mail_dir.clone()];
    let before = snapshot(root.path(), &ours);

    // 1. Stub ids that name files elsewhere, then a save.
    let planted = root.path().join("work").join("package");
    for id in [
        "../../package",
        "../../../planted",
        planted.to_str().unwrap(),
    ] {
        let (status, body) = post_json(
            stubs,
            "/__admin/mappings",
            &json!({"id": id, "request": {"url": "/x"}, "response": {"status": 200}}),
        )
        .await;
        assert_eq!(status, 422, "id {id:?}: {body}");
    }
    let (status, body) = post_json(stubs, "/__admin/mappings/save", &json!({})).await;
    assert_eq!(status, 200, "{body}");

    // 2. A JSONPath of a thousand nested parentheses, in a stub and in a journal search.
    let deep = format!("$[?{}@.a == 1{}]", "(".repeat(1000), ")".repeat(1000));
    let pattern = json!({"bodyPatterns": [{"matchesJsonPath": deep}]});
    let (status, body) = post_json(
        stubs,
        "/__admin/mappings",
        &json!({"request": pattern, "response": {}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post_json(stubs, "/__admin/requests/find", &pattern).await;
    assert_eq!(status, 422, "{body}");

    // 3. An image that decodes to 384 MB, its thumbnail asked for four times at once.
    let bomb = base64::engine::general_purpose::STANDARD.encode(decompression_bomb());
    let (status, body) = post_json(
        http,
        "/api/v1/send",
        &json!({"From": {"Email": "a@example.test"}, "To": [{"Email": "b@example.test"}],
                "Subject": "a picture", "Attachments": [{"Content": bomb, "Filename": "x.png",
                "ContentType": "image/png"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    let message: Value = request(reqwest::Method::GET, http, &format!("/api/v1/message/{id}"))
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let part = message["Attachments"][0]["PartID"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut thumbs = JoinSet::new();
    for _ in 0..4 {
        let path = format!("/api/v1/message/{id}/part/{part}/thumb");
        thumbs.spawn(async move {
            let response = request(reqwest::Method::GET, http, &path)
                .await
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        });
    }
    while let Some(thumb) = thumbs.join_next().await {
        let (status, jpeg) = thumb.unwrap();
        // A blank thumbnail: the image is not decoded.
        assert_eq!(status, 200);
        assert!(jpeg.starts_with(&[0xff, 0xd8]), "not a JPEG");
    }

    // 4. A regular expression that costs 30 s of CPU per 100 KB matched.
    let (status, body) = post_json(
        stubs,
        "/__admin/mappings",
        &json!({"request": {"bodyPatterns": [{"matches": "(?:[a-z]{0,100}){400}!"}]},
                "response": {}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // Alive, serving, bounded, and nothing outside its folders changed.
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "switchboard died:\n{}",
        server.logs.transcript()
    );
    let health = request(reqwest::Method::GET, http, "/healthz")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (_, peak) = server.memory_kib();
    eprintln!("peak resident memory: {peak} KiB");
    assert!(
        peak < MEMORY_BOUND_KIB,
        "peak memory {peak} KiB, over {MEMORY_BOUND_KIB} KiB"
    );
    assert_eq!(
        snapshot(root.path(), &ours),
        before,
        "files outside switchboard's directories changed"
    );
    server.assert_no_panic();
}
