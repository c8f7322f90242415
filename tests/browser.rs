//! The page in a real browser: headless Chromium, driven over WebDriver (chromedriver).
//!
//! Needs Debian's `chromium` and `chromium-driver`; `.ci/run` installs them and runs this
//! with `cargo test --test scenarios browser -- --ignored`. A screenshot of the page is saved
//! as `page.png` in Cargo's test temporary directory (printed by the test).

use std::process::Stdio;

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use switchboard_testkit::Stack;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::{PATIENCE, send_mail};

/// Start chromedriver on a port it picks, and learn the port from what it prints.
async fn chromedriver() -> (tokio::process::Child, u16) {
    let mut driver = Command::new("chromedriver")
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver is not installed (Debian package chromium-driver)");
    let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest.trim_end_matches('.').parse::<u16>().unwrap();
            }
        }
        panic!("chromedriver exited before it was ready");
    })
    .await
    .expect("chromedriver did not start");
    // Keep reading so that chromedriver never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (driver, port)
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn the_page_renders_and_its_feed_shows_live_connections() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let (_driver, port) = chromedriver().await;
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1600"]}),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();

    browser.goto(&stack.url("http", "/")).await.unwrap();
    // The directory: our two ports and the two well-known ports nobody serves.
    let rows = browser
        .find_all(Locator::Css("#ports tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    let smtp = stack.addr("smtp").port();
    let row = browser
        .find(Locator::Css(&format!(r#"tr[data-port="{smtp}"]"#)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("smtp") && row.contains("listening"), "{row}");

    // The script connects to /api/events; then a connection made now shows in the feed.
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath("//*[@id='feed-status'][text()='(live)']"))
        .await
        .expect("the live feed did not connect");
    send_mail(
        stack.addr("smtp"),
        "browser@example.test",
        &["you@example.test"],
        "Subject: hi\r\n\r\nx\r\n",
    )
    .await;
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(
            "//ol[@id='feed']/li[contains(., 'mail from <browser@example.test>')]",
        ))
        .await
        .expect("the captured mail did not appear in the feed");
    let feed = browser
        .find(Locator::Id("feed"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        feed.contains(&format!("→ port {smtp} (smtp): connected")),
        "{feed}"
    );
    // The counts in the table followed the events.
    let total = browser
        .find(Locator::Css(&format!(
            r#"tr[data-port="{smtp}"] [data-field="accepted"]"#
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(total, "1");
    let messages = browser
        .find(Locator::Id("messages"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(messages, "1");

    let png = browser.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page.png");
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG"));
    browser.close().await.unwrap();
}

/// The page's own requests (same origin) pass the guard against cross-site requests; a
/// page from another origin, in the same browser on the same machine, cannot close a port.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn the_pages_own_requests_pass_and_another_sites_do_not() {
    let stack = Stack::start(&["http", "http", "echo"]).await.unwrap();
    let (ours, other) = (stack.addrs("http")[0], stack.addrs("http")[1]);
    let echo = stack.addr("echo").port();
    let (_driver, port) = chromedriver().await;
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu"]}),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let post = |url: String, mode: &'static str| {
        let browser = browser.clone();
        async move {
            let script = "const [url, mode, done] = arguments; \
                 fetch(url, {method: 'POST', mode}).then(r => done(r.status), e => done(String(e)));";
            browser
                .execute_async(script, vec![url.into(), mode.into()])
                .await
                .unwrap()
        }
    };

    // Same origin: the page at 127.0.0.1:<ours> closes and reopens the echo port.
    browser.goto(&format!("http://{ours}/")).await.unwrap();
    let closed = post(format!("/api/ports/{echo}/close"), "same-origin").await;
    assert_eq!(closed, 200);
    crate::assert_refused(stack.addr("echo")).await;
    let opened = post(format!("/api/ports/{echo}/open"), "same-origin").await;
    assert_eq!(opened, 200);

    // Another origin (another port of this machine, under another name): its page sends a
    // "simple" POST that needs no preflight; the browser marks it cross-site and switchboard
    // refuses it, so the port stays open.
    browser
        .goto(&format!("http://localhost:{}/", other.port()))
        .await
        .unwrap();
    let _opaque = post(format!("http://{ours}/api/ports/{echo}/close"), "no-cors").await;
    let table: serde_json::Value =
        crate::json_of(crate::http_client().get(format!("http://{ours}/api/ports"))).await;
    let row = table["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == echo)
        .unwrap()
        .clone();
    assert_eq!(row["state"], "listening", "{row}");
    tokio::net::TcpStream::connect(stack.addr("echo"))
        .await
        .expect("the echo port was closed by another site's page");
    browser.close().await.unwrap();
}
