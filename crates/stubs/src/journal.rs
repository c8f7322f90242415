//! The request journal: every request to a stubs port, newest last, at most
//! `[stubs] max_journal` of them holding at most `[stubs] max_journal_bytes` of bodies (the
//! oldest are forgotten first).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::matcher::{Request, RequestPattern};

/// One request as the journal shows it (WireMock's `LoggedRequest`).
pub type Logged = Value;

struct Entry {
    id: String,
    request: Request,
    /// When it arrived. Its WireMock shape ([`logged`]) is made when someone asks, not for
    /// every request served (most are never listed).
    at: SystemTime,
    /// The stub that answered, if one did.
    stub: Option<Arc<Value>>,
    status: u16,
}

impl Entry {
    fn logged(&self) -> Logged {
        logged(&self.request, self.at)
    }
}

pub(crate) struct Journal {
    entries: VecDeque<Entry>,
    max: usize,
    max_bytes: usize,
    /// The bodies' bytes held now.
    bytes: usize,
}

impl Journal {
    pub(crate) fn new(max: usize, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            max,
            max_bytes,
            bytes: 0,
        }
    }

    pub(crate) fn record(&mut self, request: Request, stub: Option<Arc<Value>>, status: u16) {
        let size = request.body.len();
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max || self.bytes + size > self.max_bytes)
        {
            if let Some(oldest) = self.entries.pop_front() {
                self.bytes -= oldest.request.body.len();
            }
        }
        self.bytes += size;
        self.entries.push_back(Entry {
            id: uuid::Uuid::new_v4().to_string(),
            at: SystemTime::now(),
            request,
            stub,
            status,
        });
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn event_of(entry: &Entry) -> Value {
        let mut event = json!({
            "id": entry.id,
            "request": entry.logged(),
            "responseDefinition": {"status": entry.status, "fromConfiguredStub": entry.stub.is_some()},
            "wasMatched": entry.stub.is_some(),
        });
        if let Some(stub) = &entry.stub {
            event["stubMapping"] = Value::clone(stub);
        }
        event
    }

    /// Newest first, as WireMock lists them.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.entries.iter().rev().map(Self::event_of).collect()
    }

    pub(crate) fn event(&self, id: &str) -> Option<Value> {
        self.entries.iter().find(|e| e.id == id).map(Self::event_of)
    }

    pub(crate) fn find(&self, pattern: &RequestPattern) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|e| pattern.mismatches(&e.request).is_empty())
            .map(Entry::logged)
            .collect()
    }

    pub(crate) fn unmatched(&self) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|e| e.stub.is_none())
            .map(Entry::logged)
            .collect()
    }

    pub(crate) fn unmatched_requests(&self) -> Vec<(Request, Logged)> {
        self.entries
            .iter()
            .filter(|e| e.stub.is_none())
            .map(|e| (e.request.clone(), e.logged()))
            .collect()
    }
}

/// A request in WireMock's `LoggedRequest` shape.
fn logged(request: &Request, at: SystemTime) -> Logged {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        match headers.get_mut(name) {
            Some(Value::String(first)) => {
                let first = std::mem::take(first);
                headers.insert(name.clone(), json!([first, value]));
            }
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    let cookies: Map<String, Value> = request
        .cookies()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut query = Map::new();
    for (name, value) in request.query() {
        let entry = query
            .entry(name.clone())
            .or_insert_with(|| json!({"key": name, "values": []}));
        if let Some(values) = entry["values"].as_array_mut() {
            values.push(Value::String(value));
        }
    }
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    json!({
        "url": request.url,
        "absoluteUrl": request.absolute_url,
        "method": request.method,
        "clientIp": request.client_ip,
        "headers": headers,
        "cookies": cookies,
        "queryParams": query,
        "browserProxyRequest": false,
        "loggedDate": millis,
        "loggedDateString": switchboard_core::timestamp(at),
        "body": String::from_utf8_lossy(&request.body),
        "bodyAsBase64": base64::engine::general_purpose::STANDARD.encode(&request.body),
    })
}
