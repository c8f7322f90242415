//! The hostile mail corpus (`tests/hostile-mail/`) in headless Chromium: nothing in a message
//! runs, nothing calls out unless the reader allowed remote images for it (and then only
//! images), and every part saves under a safe name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fantoccini::Locator;
use serde_json::json;
use switchboard_testkit::Stack;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::{browser_with_prefs, chromedriver, click, shows};
use crate::{PATIENCE, json_of, send_mail};

/// A web server that records the path of every request it gets: what an attacker's server
/// would see.
struct Canary {
    addr: SocketAddr,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Canary {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // One task per connection: a browser opens some it sends nothing on.
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stream);
                    let mut request_line = String::new();
                    if lines.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or_default();
                    seen.lock().unwrap().push(path.to_owned());
                    let _ = lines
                        .into_inner()
                        .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        Self { addr, paths }
    }

    fn seen(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }

    /// Send the browser to the canary itself and wait for that request: everything the
    /// pages before it started has been sent or given up by then.
    async fn barrier(&self, browser: &fantoccini::Client, name: &str) {
        let path = format!("/barrier-{name}");
        browser
            .goto(&format!("http://{}{path}", self.addr))
            .await
            .unwrap();
        let arrived = tokio::time::timeout(PATIENCE, async {
            while !self.seen().contains(&path) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(arrived.is_ok(), "the canary never saw {path}");
    }
}

/// The corpus, with `CANARY` pointing at the canary and every line ending in CR LF.
fn corpus(canary: SocketAddr) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile-mail");
    let mut messages: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text
                .replace("\r\n", "\n")
                .replace('\n', "\r\n")
                .replace("CANARY", &format!("http://{canary}"));
            (
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                text,
            )
        })
        .collect();
    messages.sort();
    assert!(messages.len() >= 8, "the corpus is missing: {dir:?}");
    messages
}

/// What a script of the corpus did to the page it was shown in, if any ran: the title it
/// set, the messages it posted to the page.
async fn traces_of_scripts(browser: &fantoccini::Client) -> Vec<String> {
    let mut traces = Vec::new();
    let title = browser.title().await.unwrap();
    if title.contains("PWNED") {
        traces.push(format!("title: {title}"));
    }
    let posted = browser
        .execute("return window.__posted || [];", vec![])
        .await
        .unwrap();
    for message in posted.as_array().into_iter().flatten() {
        traces.push(format!("posted: {message}"));
    }
    traces
}

/// Open `url` as the page, and check that no script of message `name` ran there.
async fn open_and_find_nothing_ran(browser: &fantoccini::Client, url: &str, name: &str) {
    browser.goto(url).await.unwrap();
    let ran = traces_of_scripts(browser).await;
    assert!(ran.is_empty(), "{name}: scripts ran at {url}: {ran:?}");
}

/// Keep what frames post to the page, as a script of the corpus would if it ran.
async fn listen_for_posts(browser: &fantoccini::Client) {
    browser
        .execute(
            "window.__posted = []; \
             addEventListener('message', e => window.__posted.push(String(e.data)));",
            vec![],
        )
        .await
        .unwrap();
}

/// Whether `name` has characters that make text read as other text: control characters,
/// bidirectional overrides, isolates and marks.
fn misleading(name: &str) -> bool {
    name.chars().any(|c| {
        matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}')
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
            || c.is_control()
    })
}

/// Whether a saved file's name is unsafe: misleading, with a folder, or hidden.
fn unsafe_name(name: &str) -> bool {
    misleading(name) || name.starts_with('.') || name.contains(['/', '\\'])
}

/// The files saved in `dir` once `count` downloads have finished.
async fn saved_files(dir: &Path, count: usize) -> Vec<PathBuf> {
    let finished = || -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().ends_with(".crdownload"))
            .collect()
    };
    let waited = tokio::time::timeout(PATIENCE, async {
        while finished().len() < count {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let files = finished();
    assert!(
        waited.is_ok(),
        "{} of {count} downloads finished: {files:?}",
        files.len()
    );
    files
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn hostile_mail_runs_nothing_calls_nowhere_and_saves_under_safe_names() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let canary = Canary::start().await;
    let downloads = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for (name, raw) in corpus(canary.addr) {
        let id = send_mail(
            stack.addr("smtp"),
            "attacker@example.test",
            &["dev@example.test"],
            &raw,
        )
        .await;
        ids.push((name, id));
    }
    let prefs = json!({
        "download.default_directory": downloads.path(),
        "download.prompt_for_download": false,
        "safebrowsing.enabled": false,
    });
    let (_driver, port) = chromedriver().await;
    let browser = browser_with_prefs(port, (1200, 900), &[], prefs).await;

    // 1. The mailbox: each message opened, its HTML shown in the sandboxed frame, its
    //    attachments listed.
    browser.goto(&stack.url("http", "/mail")).await.unwrap();
    listen_for_posts(&browser).await;
    for (name, id) in &ids {
        let row = format!("//*[@id='list']//*[@data-id='{id}']");
        shows(&browser, &row, &format!("{name} in the list")).await;
        click(&browser, Locator::XPath(&row)).await;
        shows(
            &browser,
            &format!("{row}[@aria-selected='true']"),
            &format!("{name} opened"),
        )
        .await;
        click(&browser, Locator::Id("tab-attachments")).await;
        for link in browser
            .find_all(Locator::Css("#attachments a"))
            .await
            .unwrap()
        {
            let shown = link.text().await.unwrap();
            // Shown as the sender wrote it (folders and all), but never reordered.
            assert!(!misleading(&shown), "{name}: the list shows {shown:?}");
        }
    }
    let ran = traces_of_scripts(&browser).await;
    assert!(ran.is_empty(), "scripts ran in /mail: {ran:?}");

    // 2. Each message's HTML on its own, as a page of switchboard's origin.
    for (name, id) in &ids {
        let view = stack.url("http", &format!("/view/{id}.html"));
        open_and_find_nothing_ran(&browser, &view, name).await;
    }
    canary.barrier(&browser, "without-remote").await;
    let called = canary.seen();
    assert_eq!(
        called,
        ["/barrier-without-remote"],
        "requests left for a remote server without the reader's leave"
    );

    // 3. With remote images allowed for the message: images load, nothing else does.
    for (name, id) in &ids {
        let view = stack.url("http", &format!("/view/{id}.html?remote=1"));
        open_and_find_nothing_ran(&browser, &view, name).await;
    }
    canary.barrier(&browser, "with-remote").await;
    let called = canary.seen();
    assert!(
        called.iter().any(|path| path == "/img-plain"),
        "remote images were allowed but none loaded: {called:?}"
    );
    let not_images: Vec<&String> = called
        .iter()
        .filter(|path| {
            let last = path.rsplit('/').next().unwrap_or_default();
            !last.starts_with("img-") && !last.starts_with("barrier-")
        })
        .collect();
    assert!(
        not_images.is_empty(),
        "more than images left: {not_images:?}"
    );

    // 4. Every part URL, navigated to: saved (never shown), under a safe name.
    let mut parts = 0;
    for (name, id) in &ids {
        let message =
            json_of(crate::http_client().get(stack.url("http", &format!("/api/v1/message/{id}"))))
                .await;
        for part in ["Attachments", "Inline"]
            .iter()
            .flat_map(|list| message[*list].as_array().cloned().unwrap_or_default())
        {
            let url = format!(
                "/api/v1/message/{id}/part/{}",
                part["PartID"].as_str().unwrap()
            );
            open_and_find_nothing_ran(&browser, &stack.url("http", &url), name).await;
            parts += 1;
        }
    }
    let files = saved_files(downloads.path(), parts).await;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "passwd",
        "win.ini",
        "invoicefdp.exe",
        "bashrc",
        "drawing.svg",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected} in {names:?}"
        );
    }
    for name in &names {
        assert!(!unsafe_name(name), "saved as {name:?}");
    }
    let called_after = canary.seen();
    assert_eq!(
        called_after.len(),
        called.len(),
        "a part called out: {called_after:?}"
    );
    browser.close().await.unwrap();
}
