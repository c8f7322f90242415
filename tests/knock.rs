//! `POST /api/knock/{port}`, the picture's knock: the server connects to its own address on
//! a port the page shows and says what the kernel answered; other ports are not its to try,
//! knocks are rate-limited per client, and another site's page cannot knock. (A knock that
//! hears nothing, at a blackhole row, is in `blackhole.rs`.)

use reqwest::StatusCode;
use serde_json::Value;
use switchboard_testkit::Stack;

async fn knock(stack: &Stack, port: u16) -> reqwest::Response {
    crate::http_client()
        .post(stack.url("http", &format!("/api/knock/{port}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_knock_says_what_the_kernel_answered_on_the_server_s_own_address() {
    let nobody = crate::free_port();
    let stack = Stack::builder()
        .service("http")
        .configure(|c| {
            c.http.show_unbound = vec![nobody];
            c.http.knock_rate = 3;
        })
        .start()
        .await
        .unwrap();
    let own = stack.addr("http").port();

    let refused: Value = knock(&stack, nobody).await.json().await.unwrap();
    assert_eq!(refused["answer"], "refused", "{refused}");
    assert_eq!(refused["address"], format!("127.0.0.1:{nobody}"));
    assert!(
        refused["meaning"]
            .as_str()
            .unwrap()
            .contains("the kernel itself answered with a reset"),
        "{refused}"
    );
    let open: Value = knock(&stack, own).await.json().await.unwrap();
    assert_eq!(open["answer"], "open", "{open}");

    // Only the doors on the page.
    let elsewhere = knock(&stack, 9).await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    let text = elsewhere.text().await.unwrap();
    assert!(text.contains("not on the page"), "{text}");

    // At most knock_rate a second from one client: the third was the 404 above.
    let over = knock(&stack, own).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.headers()["retry-after"], "1");
    let text = over.text().await.unwrap();
    assert!(text.contains("[http] knock_rate"), "{text}");
}

#[tokio::test]
async fn another_site_s_page_cannot_knock() {
    let stack = Stack::start(&["http"]).await.unwrap();
    crate::assert_cross_site_refused(stack.url("http", "/api/knock/21")).await;
}
