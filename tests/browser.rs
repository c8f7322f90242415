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

mod hostile_mail;

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

/// Wait until the page has an element at `xpath`; `what` says in words what that means.
async fn shows(
    browser: &fantoccini::Client,
    xpath: &str,
    what: &str,
) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|_| panic!("the page never showed this: {what}"))
}

/// Click the element `locator` finds.
async fn click(browser: &fantoccini::Client, locator: Locator<'_>) {
    browser.find(locator).await.unwrap().click().await.unwrap();
}

/// The page of `stack`'s http port in headless Chromium of this size (with more Chromium
/// `flags`), once its live feed has connected; keep the chromedriver for as long as the
/// browser.
async fn live_page(
    stack: &Stack,
    (width, height): (u32, u32),
    flags: &[&str],
) -> (tokio::process::Child, fantoccini::Client) {
    let (driver, port) = chromedriver().await;
    let browser = browser_with(port, width, height, flags).await;
    browser.goto(&stack.url("http", "/")).await.unwrap();
    shows(
        &browser,
        "//*[@id='feed-status'][text()='(live)']",
        "the live feed connected",
    )
    .await;
    (driver, browser)
}

/// Headless Chromium of this size, driven through the chromedriver on `port`.
async fn browser_at(port: u16, width: u32, height: u32) -> fantoccini::Client {
    browser_with(port, width, height, &[]).await
}

/// The same, with more Chromium flags (`--force-dark-mode`).
async fn browser_with(port: u16, width: u32, height: u32, flags: &[&str]) -> fantoccini::Client {
    browser_with_prefs(port, (width, height), flags, serde_json::Value::Null).await
}

/// The same, with Chromium preferences too (`download.default_directory`).
async fn browser_with_prefs(
    port: u16,
    (width, height): (u32, u32),
    flags: &[&str],
    prefs: serde_json::Value,
) -> fantoccini::Client {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        format!("--window-size={width},{height}"),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let mut capabilities = serde_json::Map::new();
    let mut options = serde_json::json!({ "args": args });
    if !prefs.is_null() {
        options["prefs"] = prefs;
    }
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn the_page_renders_and_its_feed_shows_live_connections() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let (_driver, port) = chromedriver().await;
    let browser = browser_at(port, 1000, 1600).await;

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
    shows(
        &browser,
        "//*[@id='feed-status'][text()='(live)']",
        "the live feed connected",
    )
    .await;
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

    // A fault shows on its port's row while it lasts, and the feed says when it starts
    // and ends (this one ends by itself).
    let toxic =
        serde_json::json!({"type": "latency", "attributes": {"latency": 1}, "duration": "500ms"});
    let added = crate::http_client()
        .post(stack.url("http", &format!("/api/ports/{smtp}/toxics")))
        .json(&toxic)
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success());
    let mark = format!(r#"tr[data-port="{smtp}"] mark[data-fault="latency_downstream"]"#);
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(&mark))
        .await
        .expect("the fault did not show on its row");
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(
            "//ol[@id='feed']/li[contains(., 'fault latency_downstream ended')]",
        ))
        .await
        .expect("the fault's end did not appear in the feed");
    assert!(
        browser.find(Locator::Css(&mark)).await.is_err(),
        "the ended fault is still shown on its row"
    );

    let png = browser.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page.png");
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG"));
    browser.close().await.unwrap();
}

/// A request no stub answers shows on the page's live feed, naming the closest stub.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn an_unmatched_stub_request_shows_on_the_feed() {
    let stack = Stack::start(&["http", "stubs"]).await.unwrap();
    let (_driver, browser) = live_page(&stack, (1000, 1200), &[]).await;
    stack
        .stubs()
        .add(serde_json::json!({"name": "charges", "request": {"method": "POST", "url": "/v1/charges"}}))
        .unwrap();
    let answer = crate::http_client()
        .get(stack.url("stubs", "/v1/charges"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::NOT_FOUND);
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(
            "//ol[@id='feed']/li[contains(., 'no stub answers GET /v1/charges') and contains(., 'does not match its method')]",
        ))
        .await
        .expect("the unmatched request did not appear in the feed");
    browser.close().await.unwrap();
}

/// The inetd lessons on the page: a UDP row is a row of its own (7/udp beside 7/tcp) whose
/// count follows each datagram, and a program on a port appears in the feed as it starts and
/// as it ends.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn udp_datagrams_and_programs_on_ports_show_on_the_page() {
    let stack = Stack::builder()
        .service("http")
        .udp_service("echo")
        .service("exec")
        .port(|row| {
            row.set_keys(&switchboard_exec::Program {
                command: vec!["cat".into()],
                allow_exec_same_user: true,
                ..Default::default()
            })
        })
        .start()
        .await
        .unwrap();
    let udp = stack.udp_addr("echo");
    let (_driver, browser) = live_page(&stack, (1000, 1200), &[]).await;
    let row = format!("//tr[@data-port='{}/udp']", udp.port());
    let protocol = browser
        .find(Locator::XPath(&format!("{row}/td[2]")))
        .await
        .expect("the UDP row is on the page")
        .text()
        .await
        .unwrap();
    assert_eq!(protocol, "udp");

    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"ping", udp).await.unwrap();
    client.recv(&mut [0u8; 16]).await.unwrap();
    let counted = format!("{row}/td[@data-field='accepted'][text()='1']");
    shows(&browser, &counted, "the datagram counted on its row").await;
    let fed = format!(
        "//ol[@id='feed']/li[contains(., 'port {}/udp (echo): a datagram of 4 bytes, answered with 4')]",
        udp.port()
    );
    shows(&browser, &fed, "the datagram in the feed").await;

    let mut cat = tokio::net::TcpStream::connect(stack.addr("exec"))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut cat).await.unwrap();
    crate::classic::read_to_close(&mut cat).await;
    for line in ["started `cat` as process", "ended (exit 0)"] {
        let fed = format!("//ol[@id='feed']/li[contains(., '{line}')]");
        shows(&browser, &fed, line).await;
    }
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
    let browser = browser_at(port, 1000, 800).await;
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

/// A tiny web server that counts the requests it gets: what a tracking pixel's owner sees.
async fn pixel_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    (addr, hits)
}

fn red_png(side: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        side,
        side,
        image::Rgb([255, 0, 0]),
    ))
    .write_to(&mut out, image::ImageFormat::Png)
    .unwrap();
    out.into_inner()
}

/// How many clearly red pixels a PNG screenshot has.
fn red_pixels(png: &[u8]) -> usize {
    image::load_from_memory(png)
        .unwrap()
        .to_rgb8()
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60)
        .count()
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn the_mailbox_shows_mail_live_safely_and_answers_the_keyboard() {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let (pixel, hits) = pixel_server().await;
    let (_driver, port) = chromedriver().await;
    let browser = browser_at(port, 1200, 900).await;
    browser.goto(&stack.url("http", "/mail")).await.unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(
            "//*[@id='list-status'][starts-with(., 'No mail yet')]",
        ))
        .await
        .expect("the empty mailbox did not say so");
    let title = browser.title().await.unwrap();

    // An app's mail: text and HTML, an inline image, a PDF, and what an attacker would try.
    let pdf = b"%PDF-1.4\n% switchboard test\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let html = format!(
        "<h1>Hello from the app</h1><p><img alt=logo src=\"cid:logo\" width=\"120\" height=\"120\"></p>\
         <img alt=pixel src=\"http://{pixel}/pixel.png\">\
         <script>top.document.title = 'pwned by script';</script>\
         <img src=\"nowhere\" onerror=\"top.document.title = 'pwned by onerror'\">"
    );
    let email =
        Message::builder()
            .from("The App <app@example.test>".parse().unwrap())
            .to("Alice <alice@example.test>".parse().unwrap())
            .subject("Your invoice")
            .multipart(
                MultiPart::mixed()
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(SinglePart::plain("Your invoice is attached.".to_owned()))
                            .multipart(
                                MultiPart::related()
                                    .singlepart(SinglePart::html(html))
                                    .singlepart(Attachment::new_inline("logo".to_owned()).body(
                                        red_png(120),
                                        ContentType::parse("image/png").unwrap(),
                                    )),
                            ),
                    )
                    .singlepart(
                        Attachment::new("invoice.pdf".to_owned())
                            .body(pdf.clone(), ContentType::parse("application/pdf").unwrap()),
                    ),
            )
            .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(stack.addr("smtp").port())
        .build();
    mailer.send(email).await.unwrap();

    // It appears without a reload.
    let row = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#list .row.unread"))
        .await
        .expect("the new message did not appear live");
    assert!(row.text().await.unwrap().contains("Your invoice"));
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(
        shots.join("mailbox-list.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    row.click().await.unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(
            "//*[@id='message-subject'][. = 'Your invoice']",
        ))
        .await
        .unwrap();
    let envelope = browser
        .find(Locator::Id("envelope-text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let smtp = stack.addr("smtp").port();
    assert!(
        envelope.contains(&format!("arrived on port {smtp} (smtp)")),
        "{envelope}"
    );
    assert!(
        envelope.contains("MAIL FROM <app@example.test>"),
        "{envelope}"
    );

    // The HTML shows, with its inline image from the message itself.
    let frame = browser.find(Locator::Id("html-frame")).await.unwrap();
    let rendered = tokio::time::timeout(PATIENCE, async {
        loop {
            let red = red_pixels(&frame.screenshot().await.unwrap());
            if red > 1000 {
                return red;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the inline image was not shown");
    assert!(rendered > 1000);
    // Nothing in the message ran, and the remote image was not fetched.
    let now = browser.title().await.unwrap();
    assert!(!now.contains("pwned"), "{now}");
    assert!(title.contains("Mailbox"), "{title}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a remote image was fetched"
    );
    std::fs::write(
        shots.join("mailbox-message.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    println!("screenshots: {}", shots.display());

    // Until the reader asks for remote images.
    click(&browser, Locator::Id("load-remote")).await;
    tokio::time::timeout(PATIENCE, async {
        while hits.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the remote image was not loaded when asked");
    assert!(!browser.title().await.unwrap().contains("pwned"));

    // The attachment downloads byte for byte.
    click(&browser, Locator::Id("tab-attachments")).await;
    let link = browser
        .find(Locator::LinkText("invoice.pdf"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let downloaded = crate::http_client()
        .get(stack.url("http", &link))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.as_ref(), pdf.as_slice());

    // The keyboard: a second message, then j/k and Enter.
    crate::send_mail(
        stack.addr("smtp"),
        "b@example.test",
        &["alice@example.test"],
        "Subject: Second\r\n\r\nx\r\n",
    )
    .await;
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath("//ul[@id='list']/li[2]"))
        .await
        .expect("the second message did not appear");
    let body = browser.find(Locator::Css("body")).await.unwrap();
    body.send_keys("j").await.unwrap();
    body.send_keys("j").await.unwrap();
    body.send_keys("k").await.unwrap();
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}") // WebDriver's Enter key
        .await
        .unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath("//*[@id='message-subject'][. = 'Second']"))
        .await
        .expect("j, j, k and Enter did not open the newest message");

    // Deleting removes it from the list, live; deleting through the API does too.
    click(&browser, Locator::Id("delete-one")).await;
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath("//ul[@id='list'][count(li) = 1]"))
        .await
        .expect("the deleted message stayed in the list");
    // A phone's width: the list alone, then the message alone.
    browser.set_window_size(360, 740).await.unwrap();
    std::fs::write(
        shots.join("mailbox-narrow.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    stack.mail().delete_all().await;
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath("//ul[@id='list'][count(li) = 0]"))
        .await
        .expect("a deletion through the API did not reach the list");
    browser.close().await.unwrap();
}

/// Save a screenshot of the page as `name` under Cargo's test temporary directory, for a
/// reviewer to look at.
async fn save_screenshot(browser: &fantoccini::Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
}

/// The building: a door per row (and painted-over ones for 21 and 22); a connection is an
/// envelope that goes in and leaves; a port closed through the control API is bricked up
/// and opening it restores the door; a knock on 21 is refused by the kernel, and one on the
/// blackhole's door (a hole) hears nothing.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn the_building_draws_every_door_and_moves_with_the_traffic() {
    let stack = Stack::builder()
        .service("http")
        .service("echo")
        .port(|row| row.rules.deny = vec!["127.0.0.3".parse().unwrap()])
        .service("smtp")
        .service("blackhole")
        .configure(|c| c.http.knock_timeout = std::time::Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let blackhole = stack.addr("blackhole").port();
    let echo = stack.addr("echo").port();
    let (_driver, browser) = live_page(&stack, (1000, 1300), &[]).await;
    let doors = browser
        .find_all(Locator::Css("svg.building g.door"))
        .await
        .unwrap();
    assert_eq!(
        doors.len(),
        4 + 2,
        "a door per row, and 21 and 22 painted over"
    );
    shows(
        &browser,
        &format!("//*[local-name()='g'][@data-door='{blackhole}']/*[local-name()='ellipse'][@class='hole']"),
        "the blackhole's door, a hole",
    )
    .await;
    shows(
        &browser,
        "//*[local-name()='g'][@data-door='21'][contains(@class, 'unbound')]",
        "21 painted over",
    )
    .await;

    // A connection goes in as an envelope from its address:port, and leaves when it closes.
    let mut client = tokio::net::TcpStream::connect(stack.addr("echo"))
        .await
        .unwrap();
    let me = client.local_addr().unwrap();
    let envelope = format!(
        "//*[local-name()='g'][contains(@class, 'envelope')]/*[local-name()='title'][contains(., 'from {me}')]"
    );
    shows(&browser, &envelope, "the connection's envelope").await;
    tokio::io::AsyncWriteExt::shutdown(&mut client)
        .await
        .unwrap();
    crate::classic::read_to_close(&mut client).await;
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(&format!(
            "//*[local-name()='title'][contains(., 'from {me}: ')]"
        )))
        .await
        .expect("the envelope did not learn its bytes on leaving");
    let gone = tokio::time::timeout(PATIENCE, async {
        while browser.find(Locator::XPath(&envelope)).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the envelope never left");

    // A connection an access rule denies bounces at the door, which says the rule.
    let denied = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    denied
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 3], 0)).into())
        .unwrap();
    let _ = denied.connect(&stack.addr("echo").into());
    let says = format!(
        "//*[local-name()='g'][@data-door='{echo}']/*[local-name()='text'][@class='says'][contains(., 'denied: deny 127.0.0.3/32')]"
    );
    shows(&browser, &says, "the denied connection's rule at its door").await;

    // Closed through the control API: bricked up; open again: restored.
    stack.close("echo").await.unwrap();
    let bricked = format!("//*[local-name()='g'][@data-door='{echo}'][contains(@class, 'closed')]");
    shows(&browser, &bricked, "the closed port's door bricked up").await;
    save_screenshot(&browser, "building-closed.png").await;
    stack.open("echo").await.unwrap();
    let open =
        format!("//*[local-name()='g'][@data-door='{echo}'][not(contains(@class, 'closed'))]");
    shows(&browser, &open, "the door restored").await;

    // A port added while the page is open appears as a door of its own.
    let added: serde_json::Value = crate::http_client()
        .post(stack.url("http", "/api/ports"))
        .json(&serde_json::json!({"port": 0, "service": "echo", "bind": ["127.0.0.1"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = added["port"].as_u64().unwrap();
    let door = format!("//*[local-name()='g'][@data-door='{new}']");
    shows(&browser, &door, "the port added at run time").await;
    shows(
        &browser,
        "//*[@id='feed-status'][text()='(live)']",
        "the live feed connected again",
    )
    .await;

    // A knock on 21: the kernel refuses; the page says no service saw it.
    click(&browser, Locator::Css("button[data-knock='21']")).await;
    let answer = shows(
        &browser,
        "//p[@id='knock-answer'][@data-answer='refused']",
        "the knock's answer",
    )
    .await;
    let said = answer.text().await.unwrap();
    assert!(
        said.contains("no service of switchboard's ever saw the knock"),
        "{said}"
    );

    // A knock on the blackhole: nothing comes back; its door says so.
    click(
        &browser,
        Locator::Css(&format!("button[data-knock='{blackhole}']")),
    )
    .await;
    shows(
        &browser,
        "//p[@id='knock-answer'][@data-answer='timeout']",
        "the blackhole knock's answer",
    )
    .await;
    let says = format!(
        "//*[local-name()='g'][@data-door='{blackhole}']/*[local-name()='text'][@class='says'][text()='no answer']"
    );
    shows(
        &browser,
        &says,
        "the blackhole's door saying there was no answer",
    )
    .await;
    save_screenshot(&browser, "building.png").await;
    browser.close().await.unwrap();
}

/// A burst of 1,000 connections leaves the page responsive: at most 24 envelopes move at
/// once (the rest are counted on their door), every connection is counted in the table, and
/// the page still answers a script at once afterwards. At 360 px wide, in dark mode.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn a_burst_of_connections_leaves_the_picture_bounded_and_the_page_responsive() {
    // Room for the whole burst at once (the default, 512 a port, would turn some away).
    let stack = Stack::builder()
        .configure(|c| c.supervisor.max_connections = 2000)
        .service("http")
        .service("echo")
        .start()
        .await
        .unwrap();
    let echo = stack.addr("echo");
    let (_driver, browser) = live_page(&stack, (360, 800), &["--force-dark-mode"]).await;
    let background = browser
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(background, "rgb(17, 17, 17)", "dark mode's background");
    // Watch the most envelopes ever drawn at once.
    browser
        .execute(
            "const group = document.querySelector('svg.building g.envelopes'); \
             window.mostEnvelopes = 0; \
             new MutationObserver(() => { window.mostEnvelopes = Math.max(window.mostEnvelopes, group.childElementCount); }) \
               .observe(group, {childList: true});",
            vec![],
        )
        .await
        .unwrap();
    let burst: Vec<_> = (0..1000)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(echo).await.unwrap();
                tokio::io::AsyncWriteExt::shutdown(&mut stream)
                    .await
                    .unwrap();
                crate::classic::read_to_close(&mut stream).await;
            })
        })
        .collect();
    for connection in burst {
        connection.await.unwrap();
    }
    // Events the feed missed while it fell behind (the page resyncs on `lagged`), and any
    // still on their way: read the counts afresh once the burst is over.
    browser
        .execute("window.switchboardEvents.resync();", vec![])
        .await
        .unwrap();
    let counted = format!(
        "//tr[@data-port='{}']/td[@data-field='accepted'][text()='1000']",
        echo.port()
    );
    shows(&browser, &counted, "every connection counted in the table").await;
    let started = std::time::Instant::now();
    let most = browser
        .execute("return window.mostEnvelopes;", vec![])
        .await
        .unwrap();
    assert!(
        started.elapsed() < PATIENCE,
        "the page took {:?} to answer",
        started.elapsed()
    );
    let most = most.as_u64().unwrap();
    assert!(most <= 24, "{most} envelopes at once");
    assert!(most > 0, "the burst was drawn at all");
    save_screenshot(&browser, "building-360.png").await;
    browser.close().await.unwrap();
}

/// With prefers-reduced-motion, the picture does not move: envelopes appear and disappear.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; .ci/run installs them and runs this"]
async fn the_building_respects_reduced_motion() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let (_driver, browser) =
        live_page(&stack, (800, 900), &["--force-prefers-reduced-motion"]).await;
    let client = tokio::net::TcpStream::connect(stack.addr("echo"))
        .await
        .unwrap();
    let me = client.local_addr().unwrap();
    let envelope = format!("//*[local-name()='title'][contains(., 'from {me}')]");
    shows(&browser, &envelope, "the connection's envelope").await;
    let durations = browser
        .execute(
            "return document.getAnimations().map(a => a.effect.getComputedTiming().duration);",
            vec![],
        )
        .await
        .unwrap();
    let durations = durations.as_array().unwrap();
    assert!(
        !durations.is_empty(),
        "the envelope was placed by an animation"
    );
    assert!(durations.iter().all(|d| d == 0), "{durations:?}");
    browser.close().await.unwrap();
}
