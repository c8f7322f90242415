//! Stubs in WireMock's model: "answer `POST /v1/charges` with this JSON; 503 twice, then
//! 200; then tell me how it was called". The `stubs` service (a row of the port table, served
//! by the http crate) answers each request with the best stub that matches it, and records
//! every request in a journal that tests query.
//!
//! A stub mapping is WireMock's JSON, unchanged: a `request` pattern ([`RequestPattern`]),
//! a `response` ([`ResponseDef`]), an optional `priority` (1 first; 5 when not given; the
//! newest first among equals), and a scenario (`scenarioName`, `requiredScenarioState`,
//! `newScenarioState`): a small state machine per name, starting in `Started`.
//!
//! Matching runs on one thread of its own ([`Stubs::serve`]): a costly match (each is
//! bounded, see `cost.rs`) never holds one of the async workers that serve every port.
//!
//! # Layout
//!
//! - `cost.rs`: what a pattern may cost, checked when it is added ([`Limits`]).
//! - `matcher.rs`: request patterns, and which fields a request missed.
//! - `response.rs`: response definitions: bodies, delays, faults.
//! - `journal.rs`: the bounded journal of requests and how they were answered.
//! - `files.rs`: a WireMock directory (`mappings/*.json`, `__files/`), loaded and saved,
//!   every name through `switchboard_files`.
//! - `lib.rs` (this file): [`Stubs`], the mappings and scenarios behind one lock, and the
//!   matching thread.

mod cost;
mod files;
mod journal;
mod matcher;
mod response;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::Deserialize;
use serde_json::{Value, json};

pub use cost::Limits;
pub use journal::Logged;
pub use matcher::{Mismatches, Request, RequestPattern, distance, json_equal};
pub use response::{BodySource, Distribution, Fault, ResponseDef};

use journal::Journal;
use switchboard_core::InvalidSetting;

/// The state every scenario starts in, as in WireMock.
pub const STARTED: &str = "Started";

/// The priority of a stub that gives none.
const DEFAULT_PRIORITY: i64 = 5;

/// The `[stubs]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StubsSettings {
    /// A WireMock directory: `mappings/*.json` loaded at start-up, bodies in `__files/`,
    /// and where `POST /__admin/mappings/save` writes.
    pub dir: Option<PathBuf>,
    /// A mapping file that cannot be read stops start-up (default: a warning, and the port
    /// starts with the good ones).
    pub strict: bool,
    /// The most requests the journal keeps; older ones are forgotten first.
    pub max_journal: usize,
    /// The most bytes of request bodies the journal keeps; older requests are forgotten
    /// first (the newest is always kept).
    pub max_journal_bytes: usize,
    /// The largest compiled program of a regular expression, in bytes; a larger one is
    /// refused when its stub is added. A match costs about this times the text's length.
    pub max_regex_size: usize,
    /// The deepest nesting of groups in a regular expression.
    pub max_regex_nesting: u32,
    /// The deepest nesting of brackets and parentheses in a JSONPath.
    pub max_jsonpath_depth: usize,
    /// The most pairs of JSON values one `equalToJson` with `ignoreArrayOrder` compares
    /// (the expected value's nodes times the body's); a bigger body does not match.
    pub max_json_comparisons: u64,
}

/// The most [`StubsSettings::max_regex_nesting`] and [`StubsSettings::max_jsonpath_depth`]
/// may be: each parser recurses once per level, and these keep it well inside a thread's
/// stack.
const MAX_NESTING: u32 = 100;
const MAX_JSONPATH_DEPTH: usize = 64;

impl Default for StubsSettings {
    fn default() -> Self {
        Self {
            dir: None,
            strict: false,
            max_journal: 1000,
            max_journal_bytes: 16 * 1024 * 1024,
            max_regex_size: 16 * 1024,
            max_regex_nesting: 32,
            max_jsonpath_depth: 16,
            max_json_comparisons: 10_000_000,
        }
    }
}

impl StubsSettings {
    /// Check what types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (key, value) in [
            ("max_journal", self.max_journal as u64),
            ("max_journal_bytes", self.max_journal_bytes as u64),
            ("max_regex_size", self.max_regex_size as u64),
            ("max_jsonpath_depth", self.max_jsonpath_depth as u64),
            ("max_json_comparisons", self.max_json_comparisons),
        ] {
            if value == 0 {
                return Err(InvalidSetting::new(
                    key,
                    format!("{key} must be at least 1"),
                ));
            }
        }
        if self.max_regex_nesting > MAX_NESTING {
            return Err(InvalidSetting::new(
                "max_regex_nesting",
                format!(
                    "max_regex_nesting = {} is above {MAX_NESTING}, the most the parser's stack \
                     allows",
                    self.max_regex_nesting
                ),
            ));
        }
        if self.max_jsonpath_depth > MAX_JSONPATH_DEPTH {
            return Err(InvalidSetting::new(
                "max_jsonpath_depth",
                format!(
                    "max_jsonpath_depth = {} is above {MAX_JSONPATH_DEPTH}, the most the \
                     parser's stack allows",
                    self.max_jsonpath_depth
                ),
            ));
        }
        Ok(())
    }

    /// The limits patterns are checked against.
    pub fn limits(&self) -> Limits {
        Limits {
            regex_size: self.max_regex_size,
            regex_nesting: self.max_regex_nesting,
            jsonpath_depth: self.max_jsonpath_depth,
            json_comparisons: self.max_json_comparisons,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        StubsSettings::default().limits()
    }
}

/// One stub: its JSON as given (with its `id`), and the same checked.
#[derive(Clone, Debug)]
struct Stub {
    id: String,
    /// Shared with the journal's entries for the requests it answered.
    json: Arc<Value>,
    pattern: RequestPattern,
    response: Arc<ResponseDef>,
    priority: i64,
    /// When it was added: the newest wins among equal priorities.
    serial: u64,
    /// It is in the stubs directory already (loaded from it, or saved there).
    persisted: bool,
    scenario: Option<Scenario>,
}

#[derive(Clone, Debug)]
struct Scenario {
    name: String,
    required: Option<String>,
    next: Option<String>,
}

impl Stub {
    /// Check a mapping against `limits`; it keeps its `id` (or `uuid`), or gets a new one.
    fn parse(mut json: Value, serial: u64, limits: &Limits) -> Result<Self, String> {
        let Some(object) = json.as_object_mut() else {
            return Err("a stub mapping is a JSON object with request and response".into());
        };
        let id = match object.get("id").or_else(|| object.get("uuid")) {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(id)) => {
                files::check_id(id)?;
                id.clone()
            }
            Some(other) => return Err(format!("id must be a string, not {other}")),
        };
        object.insert("id".into(), Value::String(id.clone()));
        object.insert("uuid".into(), Value::String(id.clone()));
        let pattern = RequestPattern::parse(object.get("request").unwrap_or(&Value::Null), limits)?;
        let response = ResponseDef::parse(object.get("response").unwrap_or(&Value::Null))?;
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let scenario = text("scenarioName").map(|name| Scenario {
            name,
            required: text("requiredScenarioState"),
            next: text("newScenarioState"),
        });
        let priority = match object.get("priority") {
            None | Some(Value::Null) => DEFAULT_PRIORITY,
            Some(p) => p
                .as_i64()
                .ok_or("priority must be a whole number (1 is first)")?,
        };
        Ok(Self {
            id,
            pattern,
            response: Arc::new(response),
            priority,
            serial,
            persisted: false,
            scenario,
            json: Arc::new(json),
        })
    }

    fn name(&self) -> String {
        match self.json.get("name").and_then(Value::as_str) {
            Some(name) => format!("\"{name}\" ({})", self.id),
            None => self.id.clone(),
        }
    }
}

/// How a request was answered.
#[derive(Debug)]
pub enum Served {
    /// By the stub `id`, with `response`.
    Stub {
        id: String,
        response: Arc<ResponseDef>,
    },
    /// By no stub: `diff` says which was closest and what it missed, in words.
    Unmatched {
        diff: String,
        /// The closest stub's name (or id) and the fields it missed, for the event.
        closest: Option<(String, Mismatches)>,
    },
}

struct State {
    stubs: Vec<Stub>,
    scenarios: HashMap<String, String>,
    journal: Journal,
    next_serial: u64,
}

/// The stubs, their scenarios and the request journal of every `stubs` row. Cloning is
/// cheap; every clone sees the same stubs.
#[derive(Clone)]
pub struct Stubs(Arc<Inner>);

struct Inner {
    state: Mutex<State>,
    settings: StubsSettings,
    limits: Limits,
    /// The matching thread's queue, made when it is first needed.
    matcher: OnceLock<Option<tokio::sync::mpsc::Sender<Job>>>,
}

/// Work for the matching thread.
type Job = Box<dyn FnOnce() + Send>;

/// Requests that may wait for the matching thread at once; more wait to join the queue.
const MATCH_QUEUE: usize = 64;

/// The matching thread could not do the work: it could not be started, or the work panicked
/// (which is a bug; the thread goes on with the next request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatcherFailed;

impl std::fmt::Display for MatcherFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("matching the request against the stubs failed")
    }
}

impl std::error::Error for MatcherFailed {}

/// Why the stubs could not do what was asked. Each variant's message is whole, naming the
/// field, the file or the setting.
#[derive(Debug, thiserror::Error)]
pub enum StubsError {
    /// A stub or a request pattern that cannot work (WireMock answers 422).
    #[error("{0}")]
    Invalid(String),
    /// A mapping of the stubs directory that cannot be used, with `[stubs] strict`.
    #[error("{0} ([stubs] strict = true)")]
    Strict(String),
    /// No `[stubs] dir` to read a body from or save the mappings in.
    #[error("{0}")]
    NoDir(String),
    /// Reading or writing the stubs directory failed.
    #[error("{0}")]
    Files(String),
}

impl std::fmt::Debug for Stubs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stubs")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl Stubs {
    /// No stubs and no directory, with the default settings.
    pub fn empty() -> Self {
        Self::new(StubsSettings::default())
    }

    fn new(settings: StubsSettings) -> Self {
        Self(Arc::new(Inner {
            state: Mutex::new(State {
                stubs: Vec::new(),
                scenarios: HashMap::new(),
                journal: Journal::new(settings.max_journal, settings.max_journal_bytes),
                next_serial: 0,
            }),
            limits: settings.limits(),
            settings,
            matcher: OnceLock::new(),
        }))
    }

    /// A request pattern (`POST /__admin/requests/find`, `count`), checked against the
    /// limits.
    pub fn pattern(&self, json: &Value) -> Result<RequestPattern, StubsError> {
        RequestPattern::parse(json, &self.0.limits).map_err(StubsError::Invalid)
    }

    /// Run `work` on the matching thread and wait for its answer. One thread for every
    /// stubs row: matching is serial anyway (it holds the stubs' lock, as scenarios
    /// move on), and a costly match holds that thread, never an async worker.
    async fn on_matcher<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Stubs) -> T + Send + 'static,
    ) -> Result<T, MatcherFailed> {
        let Some(queue) = self.matcher() else {
            return Err(MatcherFailed);
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let stubs = self.clone();
        let job: Job = Box::new(move || {
            let _ = answer.send(work(&stubs));
        });
        queue.send(job).await.map_err(|_| MatcherFailed)?;
        answered.await.map_err(|_| MatcherFailed)
    }

    /// The matching thread's queue, starting the thread the first time (none if it cannot
    /// be started).
    fn matcher(&self) -> Option<&tokio::sync::mpsc::Sender<Job>> {
        self.0
            .matcher
            .get_or_init(|| {
                let (queue, mut jobs) = tokio::sync::mpsc::channel::<Job>(MATCH_QUEUE);
                let started = std::thread::Builder::new()
                    .name("stub-matcher".into())
                    // Patterns and JSON documents are bounded in depth (cost.rs; serde_json
                    // refuses 128 levels), so this is plenty.
                    .stack_size(8 * 1024 * 1024)
                    .spawn(move || {
                        // Ends when every `Stubs` is gone (and with it every sender).
                        while let Some(job) = jobs.blocking_recv() {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    });
                match started {
                    Ok(_) => Some(queue),
                    Err(error) => {
                        tracing::error!(%error, "cannot start the thread that matches stubs");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Stubs from `settings.dir`'s `mappings/` (none without a directory). A file that
    /// cannot be read is an error with `strict`, else one of the returned warnings.
    pub fn load(settings: StubsSettings) -> Result<(Self, Vec<String>), StubsError> {
        let stubs = Self::new(settings);
        let warnings = stubs.load_files()?;
        Ok((stubs, warnings))
    }

    /// (Re)load the directory's mappings in place of the current ones.
    fn load_files(&self) -> Result<Vec<String>, StubsError> {
        let Some(dir) = &self.0.settings.dir else {
            self.state().stubs.clear();
            return Ok(Vec::new());
        };
        let (mappings, warnings) = files::read_mappings(dir);
        if self.0.settings.strict
            && let Some(first) = warnings.first()
        {
            return Err(StubsError::Strict(first.clone()));
        }
        let mut state = self.state();
        state.stubs.clear();
        let mut warnings = warnings;
        for (path, json) in mappings {
            let serial = state.next_serial;
            state.next_serial += 1;
            match Stub::parse(json, serial, &self.0.limits) {
                Ok(stub) => state.stubs.push(Stub {
                    persisted: true,
                    ..stub
                }),
                Err(e) if self.0.settings.strict => {
                    return Err(StubsError::Strict(format!("{}: {e}", path.display())));
                }
                Err(e) => warnings.push(format!("{}: {e}", path.display())),
            }
        }
        Ok(warnings)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stubs directory's body file `name` (`__files/name`), if it is inside `__files/`
    /// once every symlink is followed.
    pub fn body_file(&self, name: &str) -> Result<Vec<u8>, StubsError> {
        let Some(dir) = &self.0.settings.dir else {
            return Err(StubsError::NoDir(format!(
                "bodyFileName \"{name}\": no [stubs] dir is configured"
            )));
        };
        files::read_body(dir, name).map_err(StubsError::Files)
    }

    /// Add a stub; the answer is its JSON, with its id.
    pub fn add(&self, json: Value) -> Result<Value, StubsError> {
        let mut state = self.state();
        let stub =
            Stub::parse(json, state.next_serial, &self.0.limits).map_err(StubsError::Invalid)?;
        state.next_serial += 1;
        state.stubs.retain(|s| s.id != stub.id);
        let json = Value::clone(&stub.json);
        state.stubs.push(stub);
        Ok(json)
    }

    /// Every stub, highest priority first.
    pub fn list(&self) -> Vec<Value> {
        let mut stubs = self.state().stubs.clone();
        sort(&mut stubs);
        stubs
            .into_iter()
            .map(|s| Arc::unwrap_or_clone(s.json))
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        self.state()
            .stubs
            .iter()
            .find(|s| s.id == id)
            .map(|s| Value::clone(&s.json))
    }

    /// Replace the stub `id` (none: there is no such stub).
    pub fn replace(&self, id: &str, mut json: Value) -> Result<Option<Value>, StubsError> {
        if let Some(object) = json.as_object_mut() {
            object.insert("id".into(), Value::String(id.to_owned()));
        }
        let mut state = self.state();
        let Some(at) = state.stubs.iter().position(|s| s.id == id) else {
            return Ok(None);
        };
        let stub = Stub::parse(json, state.stubs[at].serial, &self.0.limits)
            .map_err(StubsError::Invalid)?;
        let json = Value::clone(&stub.json);
        state.stubs[at] = stub;
        Ok(Some(json))
    }

    /// Remove the stub `id`; whether there was one.
    pub fn remove(&self, id: &str) -> bool {
        let mut state = self.state();
        let before = state.stubs.len();
        state.stubs.retain(|s| s.id != id);
        state.stubs.len() != before
    }

    pub fn remove_all(&self) {
        self.state().stubs.clear();
    }

    /// Back to the directory's mappings (none without one).
    pub fn reset_mappings(&self) -> Result<Vec<String>, StubsError> {
        self.load_files()
    }

    /// Write every stub not in the directory yet to its `mappings/`, one file each (named
    /// by id); how many.
    pub fn save(&self) -> Result<usize, StubsError> {
        let Some(dir) = &self.0.settings.dir else {
            return Err(StubsError::NoDir(
                "no [stubs] dir is configured to save the mappings in".into(),
            ));
        };
        let mut state = self.state();
        let unsaved: Vec<(String, Value)> = state
            .stubs
            .iter()
            .filter(|s| !s.persisted)
            .map(|s| (s.id.clone(), Value::clone(&s.json)))
            .collect();
        files::write_mappings(dir, &unsaved).map_err(StubsError::Files)?;
        for stub in &mut state.stubs {
            stub.persisted = true;
        }
        Ok(unsaved.len())
    }

    /// Everything back as it started: the directory's stubs, every scenario `Started`, an
    /// empty journal.
    pub fn reset(&self) -> Result<Vec<String>, StubsError> {
        let warnings = self.load_files()?;
        let mut state = self.state();
        state.scenarios.clear();
        state.journal.clear();
        Ok(warnings)
    }

    /// Answer `request` on the matching thread: the best stub that matches it (moving its
    /// scenario on), recorded in the journal.
    pub async fn serve(&self, request: Request) -> Result<Served, MatcherFailed> {
        self.on_matcher(move |stubs| stubs.serve_now(request)).await
    }

    /// [`serve`](Self::serve), here and now.
    pub(crate) fn serve_now(&self, request: Request) -> Served {
        let mut guard = self.state();
        // Borrowed field by field: the matched stub stays borrowed from `stubs` while the
        // scenarios and the journal change (cloning it cost every request its whole JSON).
        let state = &mut *guard;
        let mut candidates: Vec<&Stub> = state.stubs.iter().collect();
        candidates.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.serial)));
        let mut closest: Option<(&Stub, Mismatches)> = None;
        let mut matched = None;
        for stub in candidates {
            let mut missed = stub.pattern.mismatches(&request);
            if let Some(scenario) = &stub.scenario {
                let current = state
                    .scenarios
                    .get(&scenario.name)
                    .map_or(STARTED, String::as_str);
                if scenario.required.as_deref().is_some_and(|r| r != current) {
                    missed.push(format!(
                        "scenario state (\"{}\" is {current})",
                        scenario.name
                    ));
                }
            }
            if missed.is_empty() {
                matched = Some(stub);
                break;
            }
            if closest
                .as_ref()
                .is_none_or(|(_, m)| distance(&missed) < distance(m))
            {
                closest = Some((stub, missed));
            }
        }
        let closest = closest.map(|(stub, missed)| (stub.name(), missed));
        match matched {
            Some(stub) => {
                if let Some(Scenario {
                    name,
                    next: Some(next),
                    ..
                }) = &stub.scenario
                {
                    state.scenarios.insert(name.clone(), next.clone());
                }
                state
                    .journal
                    .record(request, Some(stub.json.clone()), stub.response.status);
                Served::Stub {
                    id: stub.id.clone(),
                    response: stub.response.clone(),
                }
            }
            None => {
                let diff = diff(&request, closest.as_ref());
                state.journal.record(request, None, 404);
                Served::Unmatched { diff, closest }
            }
        }
    }

    /// The journal, newest first (`GET /__admin/requests`).
    pub fn requests(&self) -> Vec<Value> {
        self.state().journal.events()
    }

    pub fn request(&self, id: &str) -> Option<Value> {
        self.state().journal.event(id)
    }

    pub fn clear_requests(&self) {
        self.state().journal.clear();
    }

    /// The logged requests that match `pattern` (`POST /__admin/requests/find`, `count`),
    /// found on the matching thread.
    pub async fn find(&self, pattern: RequestPattern) -> Result<Vec<Value>, MatcherFailed> {
        self.on_matcher(move |stubs| stubs.find_now(&pattern)).await
    }

    pub(crate) fn find_now(&self, pattern: &RequestPattern) -> Vec<Value> {
        self.state().journal.find(pattern)
    }

    /// The requests no stub answered.
    pub fn unmatched(&self) -> Vec<Value> {
        self.state().journal.unmatched()
    }

    /// For each unmatched request, the closest stub and how far it was; matched on the
    /// matching thread.
    pub async fn near_misses(&self) -> Result<Vec<Value>, MatcherFailed> {
        self.on_matcher(Stubs::near_misses_now).await
    }

    pub(crate) fn near_misses_now(&self) -> Vec<Value> {
        let state = self.state();
        state
            .journal
            .unmatched_requests()
            .into_iter()
            .filter_map(|(request, logged)| {
                state
                    .stubs
                    .iter()
                    .map(|s| (s, s.pattern.mismatches(&request)))
                    .min_by_key(|(_, m)| distance(m))
                    .map(|(stub, missed)| {
                        json!({
                            "request": logged,
                            "stubMapping": &*stub.json,
                            "matchResult": {"distance": distance(&missed) as f64 / 10.0,
                                            "mismatched": missed},
                        })
                    })
            })
            .collect()
    }

    /// Every scenario with its state and the states its stubs name.
    pub fn scenarios(&self) -> Vec<Value> {
        let state = self.state();
        let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
        for scenario in state.stubs.iter().filter_map(|s| s.scenario.as_ref()) {
            let at = match by_name.iter().position(|(n, _)| *n == scenario.name) {
                Some(at) => at,
                None => {
                    by_name.push((scenario.name.clone(), vec![STARTED.to_owned()]));
                    by_name.len() - 1
                }
            };
            for s in [&scenario.required, &scenario.next].into_iter().flatten() {
                if !by_name[at].1.contains(s) {
                    by_name[at].1.push(s.clone());
                }
            }
        }
        by_name
            .into_iter()
            .map(|(name, possible)| {
                let current = state.scenarios.get(&name).map_or(STARTED, String::as_str);
                json!({"id": name, "name": name, "state": current, "possibleStates": possible})
            })
            .collect()
    }

    /// Every scenario back to `Started`.
    pub fn reset_scenarios(&self) {
        self.state().scenarios.clear();
    }
}

/// Highest priority (lowest number) first; the newest first among equals.
fn sort(stubs: &mut [Stub]) {
    stubs.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.serial)));
}

/// What a client gets for a request no stub answers: the closest stub and what it missed.
fn diff(request: &Request, closest: Option<&(String, Mismatches)>) -> String {
    let mut text = format!(
        "Request was not matched\n=======================\n\n{} {}\n\n",
        request.method, request.url
    );
    match closest {
        None => text += "No stub is configured (POST /__admin/mappings adds one).\n",
        Some((name, missed)) => {
            text += &format!("Closest stub: {name}\n");
            for field in missed {
                text += &format!("  does not match: {field}\n");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests;
