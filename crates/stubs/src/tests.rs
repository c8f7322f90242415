//! The store: priority, scenarios, the journal, and a WireMock directory.

use serde_json::{Value, json};

use super::*;

fn stubs() -> Stubs {
    Stubs::load(StubsSettings::default()).unwrap().0
}

fn get(url: &str) -> Request {
    Request {
        method: "GET".into(),
        url: url.into(),
        ..Request::default()
    }
}

fn status(served: Served) -> Result<u16, String> {
    match served {
        Served::Stub { response, .. } => Ok(response.status),
        Served::Unmatched { diff, .. } => Err(diff),
    }
}

#[test]
fn the_highest_priority_then_the_newest_stub_answers() {
    let stubs = stubs();
    stubs
        .add(json!({"request": {"urlPathPattern": "/users/.*"}, "response": {"status": 200}}))
        .unwrap();
    stubs
        .add(json!({"request": {"urlPathPattern": "/users/.*"}, "response": {"status": 201}}))
        .unwrap();
    assert_eq!(
        status(stubs.serve_now(get("/users/1"))),
        Ok(201),
        "the newest"
    );
    stubs
        .add(
            json!({"priority": 1, "request": {"urlPath": "/users/1"}, "response": {"status": 202}}),
        )
        .unwrap();
    stubs
        .add(
            json!({"priority": 9, "request": {"urlPath": "/users/1"}, "response": {"status": 203}}),
        )
        .unwrap();
    assert_eq!(
        status(stubs.serve_now(get("/users/1"))),
        Ok(202),
        "priority 1 first"
    );
    assert_eq!(
        stubs.list()[0]["priority"],
        1,
        "listed highest priority first"
    );
}

#[test]
fn a_scenario_fails_twice_then_succeeds() {
    let stubs = stubs();
    for (required, next, code) in [
        ("Started", Some("one failure"), 503),
        ("one failure", Some("two failures"), 503),
        ("two failures", None, 200),
    ] {
        let mut stub = json!({"scenarioName": "retry", "requiredScenarioState": required,
            "request": {"method": "POST", "url": "/v1/charges"}, "response": {"status": code}});
        if let Some(next) = next {
            stub["newScenarioState"] = json!(next);
        }
        stubs.add(stub).unwrap();
    }
    let post = || Request {
        method: "POST".into(),
        url: "/v1/charges".into(),
        ..Request::default()
    };
    let codes: Vec<_> = (0..4)
        .map(|_| status(stubs.serve_now(post())).unwrap())
        .collect();
    assert_eq!(codes, [503, 503, 200, 200]);
    assert_eq!(stubs.scenarios()[0]["state"], "two failures");
    assert_eq!(
        stubs.scenarios()[0]["possibleStates"],
        json!(["Started", "one failure", "two failures"])
    );
    stubs.reset_scenarios();
    assert_eq!(status(stubs.serve_now(post())), Ok(503), "Started again");
}

#[test]
fn an_unmatched_request_names_the_closest_stub_and_what_it_missed() {
    let stubs = stubs();
    let no_stub = status(stubs.serve_now(get("/x"))).unwrap_err();
    assert!(no_stub.contains("No stub is configured"), "{no_stub}");
    stubs
        .add(
            json!({"name": "charge", "request": {"method": "POST", "url": "/v1/charges",
            "headers": {"Content-Type": {"equalTo": "application/json"}}}}),
        )
        .unwrap();
    stubs
        .add(json!({"request": {"method": "DELETE", "url": "/elsewhere"}}))
        .unwrap();
    let diff = status(stubs.serve_now(get("/v1/charges"))).unwrap_err();
    assert!(diff.contains("GET /v1/charges"), "{diff}");
    assert!(diff.contains("Closest stub: \"charge\""), "{diff}");
    assert!(diff.contains("does not match: method"), "{diff}");
    assert!(
        diff.contains("does not match: header Content-Type"),
        "{diff}"
    );
    assert!(!diff.contains("URL"), "the URL did match: {diff}");
    let near = stubs.near_misses_now();
    assert_eq!(near.len(), 2, "one per unmatched request, oldest first");
    assert_eq!(near[1]["request"]["url"], "/v1/charges");
    assert_eq!(near[1]["stubMapping"]["name"], "charge");
    assert_eq!(
        near[1]["matchResult"]["mismatched"],
        json!(["method", "header Content-Type"])
    );
}

#[test]
fn the_journal_records_finds_counts_and_forgets_the_oldest() {
    let (stubs, _) = Stubs::load(StubsSettings {
        max_journal: 3,
        ..StubsSettings::default()
    })
    .unwrap();
    stubs.add(json!({"request": {"urlPath": "/a"}})).unwrap();
    for url in ["/a?n=1", "/b", "/a?n=2", "/a?n=3"] {
        stubs.serve_now(get(url));
    }
    let requests = stubs.requests();
    assert_eq!(requests.len(), 3, "the oldest was forgotten");
    assert_eq!(requests[0]["request"]["url"], "/a?n=3", "newest first");
    assert_eq!(requests[0]["wasMatched"], true);
    assert_eq!(
        requests[0]["request"]["queryParams"]["n"]["values"],
        json!(["3"])
    );
    let id = requests[1]["id"].as_str().unwrap();
    assert_eq!(stubs.request(id).unwrap()["request"]["url"], "/a?n=2");
    let pattern = RequestPattern::parse(&json!({"urlPath": "/a"}), &Limits::default()).unwrap();
    assert_eq!(stubs.find_now(&pattern).len(), 2);
    assert_eq!(stubs.unmatched().len(), 1);
    stubs.clear_requests();
    assert!(stubs.requests().is_empty());
}

#[test]
fn a_journal_entry_says_when_the_request_arrived_not_when_it_was_listed() {
    let stubs = stubs();
    stubs.serve_now(get("/early"));
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // The entry's WireMock shape is made when it is listed; its date must still be the
    // arrival's, which this pause puts well before the listing.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let logged = &stubs.requests()[0]["request"];
    assert!(logged["loggedDate"].as_u64().unwrap() <= after, "{logged}");
    assert_eq!(stubs.unmatched()[0]["loggedDate"], logged["loggedDate"]);
}

#[test]
fn the_journal_keeps_at_most_its_bytes_of_bodies() {
    let (stubs, _) = Stubs::load(StubsSettings {
        max_journal_bytes: 10,
        ..StubsSettings::default()
    })
    .unwrap();
    let post = |body: &str| Request {
        method: "POST".into(),
        url: "/".into(),
        body: body.as_bytes().to_vec(),
        ..Request::default()
    };
    stubs.serve_now(post("12345"));
    stubs.serve_now(post("67890"));
    assert_eq!(stubs.requests().len(), 2, "10 bytes fit");
    stubs.serve_now(post("abc"));
    let bodies: Vec<_> = stubs
        .requests()
        .iter()
        .map(|r| r["request"]["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("abc"), json!("67890")], "the oldest went");
    stubs.serve_now(post("a body above the budget"));
    assert_eq!(stubs.requests().len(), 1, "the newest is always kept");
    let err = StubsSettings {
        max_journal: 0,
        ..StubsSettings::default()
    }
    .validate()
    .unwrap_err();
    assert!(
        err.message.contains("max_journal must be at least 1"),
        "{err}"
    );
    let err = StubsSettings {
        max_journal_bytes: 0,
        ..StubsSettings::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.message.contains("max_journal_bytes"), "{err}");
}

#[test]
fn a_wiremock_directory_loads_saves_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    std::fs::create_dir_all(dir.path().join("__files")).unwrap();
    std::fs::write(
        mappings.join("one.json"),
        r#"{"request": {"url": "/one"}, "response": {"bodyFileName": "one.txt"}}"#,
    )
    .unwrap();
    std::fs::write(
        mappings.join("many.json"),
        r#"{"mappings": [{"request": {"url": "/two"}}, {"request": {"url": "/three"}}]}"#,
    )
    .unwrap();
    std::fs::write(mappings.join("broken.json"), "{ not json").unwrap();
    std::fs::write(dir.path().join("__files/one.txt"), "from a file").unwrap();
    let settings = StubsSettings {
        dir: Some(dir.path().to_owned()),
        ..StubsSettings::default()
    };

    let (stubs, warnings) = Stubs::load(settings.clone()).unwrap();
    assert_eq!(stubs.list().len(), 3);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("broken.json"), "{warnings:?}");
    assert_eq!(stubs.body_file("one.txt").unwrap(), b"from a file");

    let strict = Stubs::load(StubsSettings {
        strict: true,
        ..settings.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        strict.contains("broken.json") && strict.contains("strict"),
        "{strict}"
    );

    std::fs::remove_file(mappings.join("broken.json")).unwrap();
    let added = stubs.add(json!({"request": {"url": "/four"}})).unwrap();
    assert_eq!(stubs.reset_mappings().unwrap().len(), 0);
    assert_eq!(stubs.list().len(), 3, "back to the directory's");
    stubs.add(added.clone()).unwrap();
    assert_eq!(
        stubs.save().unwrap(),
        1,
        "only what is not in the directory yet"
    );
    assert_eq!(stubs.save().unwrap(), 0);
    let saved: Value = serde_json::from_slice(
        &std::fs::read(mappings.join(format!("{}.json", added["id"].as_str().unwrap()))).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["request"]["url"], "/four");
}

#[test]
fn ids_are_kept_replaced_and_removed() {
    let stubs = stubs();
    let added = stubs
        .add(json!({"id": "8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7", "request": {"url": "/x"}}))
        .unwrap();
    assert_eq!(added["uuid"], "8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7");
    let id = added["id"].as_str().unwrap();
    let replaced = stubs
        .replace(
            id,
            json!({"request": {"url": "/y"}, "response": {"status": 418}}),
        )
        .unwrap()
        .unwrap();
    assert_eq!(replaced["id"], id);
    assert_eq!(status(stubs.serve_now(get("/y"))), Ok(418));
    assert!(stubs.replace("nope", json!({})).unwrap().is_none());
    assert!(stubs.remove(id));
    assert!(!stubs.remove(id));
    let err = stubs
        .add(json!({"request": {"urlPattern": "("}}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("urlPattern"), "{err}");
}

#[tokio::test]
async fn matching_runs_on_its_own_thread_and_outlives_a_panic() {
    let stubs = stubs();
    stubs
        .add(json!({"request": {"urlPath": "/a"}, "response": {"status": 204}}))
        .unwrap();
    let thread = stubs
        .on_matcher(|_| std::thread::current().name().map(str::to_owned))
        .await;
    assert_eq!(thread, Ok(Some("stub-matcher".to_owned())));
    let failed = stubs
        .on_matcher(|_| -> u8 { std::panic::panic_any("a bug in a matcher") })
        .await;
    assert_eq!(failed, Err(MatcherFailed));
    assert_eq!(status(stubs.serve(get("/a")).await.unwrap()), Ok(204));
    let pattern = stubs.pattern(&json!({"urlPath": "/a"})).unwrap();
    assert_eq!(stubs.find(pattern).await.unwrap().len(), 1);
    assert_eq!(stubs.near_misses().await.unwrap().len(), 0);
}

#[test]
fn an_id_must_name_a_file_in_mappings() {
    let stubs = stubs();
    for id in [
        "../x",
        "/etc/x",
        "a/b",
        "..",
        ".",
        "",
        "a\nb",
        &"x".repeat(251),
    ] {
        let error = stubs
            .add(json!({"id": id, "request": {"urlPath": "/a"}}))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("id "), "{id:?}: {error}");
    }
    let error = stubs.add(json!({"id": 7})).unwrap_err().to_string();
    assert!(error.contains("id must be a string"), "{error}");
    assert!(stubs.add(json!({"id": "x".repeat(250)})).is_ok());
    assert!(stubs.add(json!({"uuid": "kept-as-given"})).is_ok());
}

#[test]
fn comparing_ignoring_array_order_is_bounded_before_it_starts() {
    let (stubs, _) = Stubs::load(StubsSettings {
        max_json_comparisons: 1000,
        ..StubsSettings::default()
    })
    .unwrap();
    // Ten expected values: a body of up to 100 values may be compared.
    stubs
        .add(
            json!({"request": {"bodyPatterns": [{"equalToJson": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                     "ignoreArrayOrder": true, "ignoreExtraElements": true}]},
                     "response": {"status": 200}}),
        )
        .unwrap();
    let post = |body: String| Request {
        method: "POST".into(),
        url: "/".into(),
        body: body.into_bytes(),
        ..Request::default()
    };
    let small: Vec<u32> = (1..=99).rev().collect();
    assert_eq!(
        status(stubs.serve_now(post(serde_json::to_string(&small).unwrap()))),
        Ok(200)
    );
    let big: Vec<u32> = (1..=100).rev().collect();
    let refused = status(stubs.serve_now(post(serde_json::to_string(&big).unwrap()))).unwrap_err();
    assert!(
        refused.contains("too big to compare ignoring array order: [stubs] max_json_comparisons"),
        "{refused}"
    );
}
