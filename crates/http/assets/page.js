// Keeps the switchboard page live: every event from /api/events updates the directory's
// counts and adds a line to the feed. The page works without this script; it only adds.
"use strict";
(function () {
  const feed = document.getElementById("feed");
  const status = document.getElementById("feed-status");
  if (!feed || !window.EventSource) return;
  status.textContent = "(connecting…)";

  const MAX_LINES = 100;
  const source = new EventSource("/api/events");

  function cell(port, field) {
    return document.querySelector('tr[data-port="' + port + '"] [data-field="' + field + '"]');
  }
  function bump(port, field, by) {
    const c = cell(port, field);
    if (c) c.textContent = String(Number(c.textContent) + by);
  }
  function say(kind, at, text) {
    const li = document.createElement("li");
    li.className = kind;
    const time = document.createElement("time");
    time.dateTime = at;
    time.textContent = at.slice(11, 19);
    li.append(time, " " + text);
    feed.prepend(li);
    while (feed.children.length > MAX_LINES) feed.lastElementChild.remove();
  }
  // Rows are keyed "80" for TCP and "7/udp" for UDP: 7/tcp and 7/udp are two ports.
  function key(p) {
    return p.protocol === "udp" ? p.port + "/udp" : String(p.port);
  }
  function on(kind, handle) {
    source.addEventListener(kind, function (e) {
      const d = JSON.parse(e.data);
      d.row = key(d);
      handle(d);
    });
  }
  // The picture (building.js) listens to the same stream, and keys its doors the same way.
  window.switchboardEvents = { on: on, key: key };

  source.onopen = function () { status.textContent = "(live)"; };
  source.onerror = function () { status.textContent = "(reconnecting…)"; };

  on("connection_opened", function (d) {
    bump(d.row, "active", 1);
    bump(d.row, "accepted", 1);
    say("opened", d.at, d.peer + " → port " + d.row + " (" + d.service + "): connected");
  });
  on("connection_closed", function (d) {
    bump(d.row, "active", -1);
    say("closed", d.at, d.peer + " → port " + d.row + " (" + d.service + "): closed after " +
      Math.round(d.duration_ms) + " ms, " + d.bytes_in + " bytes in, " + d.bytes_out + " out" +
      (d.error ? " — " + d.error : ""));
  });
  on("upstream_closed", function (d) {
    say("closed", d.at, "port " + d.row + " (" + d.service + ") → " + d.upstream + ": upstream leg closed, " +
      d.bytes_up + " bytes up, " + d.bytes_down + " down; the " + d.closed_first + " finished first");
  });
  on("tls_established", function (d) {
    say("tls", d.at, d.peer + " → port " + d.row + ": TLS " + d.tls.version + (d.tls.alpn ? ", " + d.tls.alpn : ""));
  });
  on("tls_failed", function (d) {
    say("failed", d.at, d.peer + " → port " + d.row + ": TLS handshake failed: " + d.reason);
  });
  on("message_captured", function (d) {
    const count = document.getElementById("messages");
    if (count) count.textContent = String(Number(count.textContent) + 1);
    say("mail", d.at, "mail from <" + d.from + "> to <" + d.to.join(">, <") + "> captured (" + d.size + " bytes)");
  });
  // UDP has no connections: each datagram is counted, and answered or not, on its own.
  on("datagram", function (d) {
    bump(d.row, "accepted", 1);
    say("opened", d.at, d.peer + " → port " + d.row + " (" + d.service + "): a datagram of " +
      d.bytes_in + " bytes, " + (d.bytes_out ? "answered with " + d.bytes_out : "not answered"));
  });
  // A program on a port: one process per connection, appearing and disappearing.
  on("program_started", function (d) {
    say("opened", d.at, "port " + d.row + " (" + d.service + "): started `" + d.command + "` as process " + d.pid);
  });
  on("program_exited", function (d) {
    say("closed", d.at, "port " + d.row + " (" + d.service + "): process " + d.pid + " ended (" + d.status +
      ") after " + Math.round(d.duration_ms) + " ms");
  });
  on("port_bound", function (d) {
    const c = cell(d.row, "state");
    const hole = d.service === "blackhole";
    if (c) c.textContent = hole ? "listening, never accepting — a blackhole: its queue is full, so the kernel drops every knock, as a firewall's drop rule would" : "listening";
    say("port", d.at, "now listening on " + d.addr + (hole ? ", never accepting: knocks there are dropped" : ""));
  });
  on("port_closed", function (d) {
    const c = cell(d.row, "state");
    const udp = d.protocol === "udp";
    if (c) c.textContent = udp ? "closed — the kernel answers port unreachable" : "closed — the kernel refuses connections";
    say("port", d.at, "closed " + d.addr + (udp ? "/udp: datagrams get ICMP port unreachable" : ": new connections are refused"));
  });
  on("connection_denied", function (d) {
    bump(d.row, "turned_away", 1);
    say("failed", d.at, d.peer + " → port " + d.row + ": closed at once by the rule \"" + d.rule + "\"");
  });
  on("connection_limited", function (d) {
    bump(d.row, "turned_away", 1);
    say("limit", d.at, d.peer + " → port " + d.row + ": turned away (over " + d.limit + ")");
  });
  on("connection_reset", function (d) {
    say("failed", d.at, d.peer + " → port " + d.row + ": reset on purpose (" + d.left + " more to reset)");
  });
  // A fault shows on its port's row while it lasts (a toxic, a timed close, resets to come).
  on("fault_started", function (d) {
    const c = cell(d.row, "faults");
    if (c && !c.querySelector('[data-fault="' + CSS.escape(d.fault) + '"]')) {
      const mark = document.createElement("mark");
      mark.dataset.fault = d.fault;
      mark.title = d.detail;
      mark.textContent = d.fault;
      c.append(" ", mark);
    }
    say("fault", d.at, "port " + d.row + " (" + d.service + "): fault " + d.fault + " started: " + d.detail);
  });
  on("fault_ended", function (d) {
    // The SMTP chaos triggers are shared by every SMTP port: their end clears every row.
    const rows = d.fault.startsWith("chaos ") ? "" : 'tr[data-port="' + d.row + '"] ';
    document.querySelectorAll(rows + '[data-field="faults"] [data-fault="' + CSS.escape(d.fault) + '"]')
      .forEach(function (mark) { mark.remove(); });
    say("fault", d.at, "port " + d.row + " (" + d.service + "): fault " + d.fault + " ended: " + d.reason);
  });
  on("request_unmatched", function (d) {
    say("failed", d.at, "port " + d.row + " (" + d.service + "): no stub answers " + d.method + " " + d.url +
      (d.closest ? "; the closest, " + d.closest + ", does not match its " + d.mismatched.join(", ") : ""));
  });
  on("port_at_limit", function (d) {
    say("limit", d.at, "port " + d.row + " is full (" + d.limit + " connections): new ones wait");
  });
  // Events missed while the feed fell behind: the counts are read afresh from /api/ports,
  // and the picture (listening for "switchboard:resync") redraws what is open now.
  function resync() {
    return fetch("/api/ports").then(function (r) { return r.json(); }).then(function (table) {
      table.ports.forEach(function (p) {
        const row = key(p);
        const set = function (field, value) { const c = cell(row, field); if (c) c.textContent = String(value); };
        set("active", p.active);
        set("accepted", p.accepted);
        set("turned_away", p.denied + p.limited);
      });
      document.dispatchEvent(new CustomEvent("switchboard:resync", { detail: table }));
    });
  }
  window.switchboardEvents.resync = resync;
  source.addEventListener("lagged", function (e) {
    say("lagged", new Date().toISOString(), "missed " + JSON.parse(e.data).missed + " events (the feed fell behind); counts read afresh");
    resync();
  });
})();
