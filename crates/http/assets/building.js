// The building: the page's port table drawn as a picture, and moved by the live events.
//
// The address is a building, each port a door to a department, the kernel the mail room
// that returns letters for departments that do not exist. The doors are read from the table
// below the picture (one row, one door), so the picture and the text never disagree; the
// table stays the text version for screen readers and for people who prefer it.
//
// Each connection is an envelope: it comes up the street from the client's address:port,
// goes in through its door, and leaves when the connection closes. A connection denied by a
// rule bounces at the door. A closed port's door is bricked up, a blackhole's is a hole that
// swallows knocks; a fault shows on its door while it lasts. At most MAX_ENVELOPES move at
// once: the rest are counted on their door, so a flood cannot freeze the browser. With
// prefers-reduced-motion, nothing moves: envelopes appear and disappear.
"use strict";
(function () {
  const figure = document.getElementById("building");
  const table = document.getElementById("ports");
  if (!figure || !table || !window.switchboardEvents) return;

  const NS = "http://www.w3.org/2000/svg";
  const MAX_ENVELOPES = 24;
  // Doors per floor: six on a wide screen, fewer on a phone, so that each stays readable.
  const PER_FLOOR = Math.max(2, Math.min(6, Math.floor((figure.clientWidth || 600) / 110)));
  const DOOR_W = 64, DOOR_H = 96, GAP = 26, FLOOR_H = 168, ROOF = 58, STREET = 70;
  const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  // One door per row of the table, in its order.
  const doors = Array.from(table.querySelectorAll("tbody tr")).map(function (tr, i) {
    return {
      key: tr.dataset.port,
      port: tr.dataset.port.split("/")[0],
      protocol: tr.dataset.protocol || "tcp",
      service: tr.dataset.service || "",
      sign: tr.dataset.sign || "",
      unbound: tr.classList.contains("unbound"),
      closed: tr.dataset.state === "closed",
      // The faults active when the page was made; events keep them current from here.
      faults: Array.from(tr.querySelectorAll('[data-field="faults"] [data-fault]')).map(function (m) {
        return m.dataset.fault;
      }),
      index: i,
    };
  });
  if (doors.length === 0) return;

  const floors = Math.ceil(doors.length / PER_FLOOR);
  const across = Math.min(doors.length, PER_FLOOR);
  const width = Math.max(360, across * (DOOR_W + GAP) + GAP + 40);
  const height = ROOF + floors * FLOOR_H + STREET;
  const left = (width - (across * (DOOR_W + GAP) - GAP)) / 2;

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, words, cls) {
    const t = el("text", { x: x, y: y, "class": cls || "" }, parent);
    t.textContent = words;
    return t;
  }

  const svg = el("svg", {
    viewBox: "0 0 " + width + " " + height,
    role: "img",
    "aria-labelledby": "building-summary",
    "class": "building",
  });
  // The facade, the address on the front, the street below.
  el("rect", { x: 10, y: ROOF - 8, width: width - 20, height: floors * FLOOR_H + 8, "class": "wall" }, svg);
  el("path", { d: "M4 " + (ROOF - 6) + " L" + width / 2 + " 8 L" + (width - 4) + " " + (ROOF - 6) + " Z", "class": "roof" }, svg);
  text(svg, width / 2, ROOF - 16, figure.dataset.host || "", "address");
  el("rect", { x: 0, y: height - STREET + 8, width: width, height: STREET - 8, "class": "street" }, svg);
  text(svg, 14, height - 14, "the street: clients come from here", "street-label");
  const envelopes = el("g", { "class": "envelopes" }, svg);

  // Where door `i` stands: its top-left corner.
  function spot(i) {
    const floor = Math.floor(i / PER_FLOOR), col = i % PER_FLOOR;
    return { x: left + col * (DOOR_W + GAP), y: ROOF + floor * FLOOR_H + 34 };
  }

  const byKey = {};
  doors.forEach(function (door) {
    const at = spot(door.index);
    const g = el("g", { "class": "door", "data-door": door.key, transform: "translate(" + at.x + "," + at.y + ")" }, svg);
    const title = el("title", {}, g);
    text(g, DOOR_W / 2, -8, door.port + (door.protocol === "udp" ? "/udp" : ""), "number");
    el("rect", { x: 0, y: 0, width: DOOR_W, height: DOOR_H, rx: 3, "class": "leaf" }, g);
    el("circle", { cx: DOOR_W - 10, cy: DOOR_H / 2, r: 3, "class": "knob" }, g);
    // Bricks, shown when the door is bricked up (closed) or painted over (unbound).
    const bricks = el("g", { "class": "bricks" }, g);
    // Courses of bricks, every other one offset by half a brick.
    const courses = [[[0, 20], [22, 20], [44, 20]], [[0, 9], [11, 20], [33, 20], [55, 9]]];
    for (let row = 0; row < 8; row++) {
      courses[row % 2].forEach(function (b) {
        el("rect", { x: b[0], y: row * 12, width: b[1], height: 10, "class": "brick" }, bricks);
      });
    }
    // Mail doors have a slot; a proxy's door has a line out to its upstream.
    if (door.service === "smtp" || door.service === "smtps") {
      el("rect", { x: 14, y: 30, width: DOOR_W - 28, height: 5, rx: 1, "class": "slot" }, g);
    }
    if (door.sign.indexOf("→") === 0) {
      const down = height - STREET + 14 - at.y;
      el("path", { d: "M" + DOOR_W / 2 + " " + (DOOR_H + 40) + " V" + down + " H" + (DOOR_W + GAP), "class": "upstream" }, g);
    }
    // A blackhole's door opens onto a hole: knocks fall in and nothing comes back.
    if (door.service === "blackhole") {
      el("ellipse", { cx: DOOR_W / 2, cy: DOOR_H / 2, rx: DOOR_W / 2 - 8, ry: DOOR_H / 2 - 10, "class": "hole" }, g);
    }
    // TLS doors carry a lock.
    if (door.sign.indexOf("TLS") === 0) {
      const lock = el("g", { "class": "lock", transform: "translate(" + (DOOR_W - 16) + "," + (DOOR_H / 2 + 6) + ")" }, g);
      el("path", { d: "M2 0 V-4 A4 4 0 0 1 10 -4 V0", "class": "shackle" }, lock);
      el("rect", { x: 0, y: 0, width: 12, height: 9, rx: 1 }, lock);
    }
    g.appendChild(bricks); // over the slot and the lock when the door is bricked up
    text(g, DOOR_W / 2, DOOR_H + 18, door.unbound ? (door.service || "nobody") : door.service, "sign");
    if (door.sign) text(g, DOOR_W / 2, DOOR_H + 34, door.sign, "detail");
    const badge = text(g, DOOR_W / 2, DOOR_H / 2 + 5, "", "badge");
    const marks = text(g, 4, 16, "", "faults");
    const says = text(g, DOOR_W / 2, -24, "", "says");
    door.g = g;
    door.title = title;
    door.badge = badge;
    door.marksText = marks;
    door.says = says;
    door.waiting = 0;
    door.marks = {};
    door.faults.forEach(function (fault) { door.marks[fault] = mark(fault); });
    byKey[door.key] = door;
    paint(door);
  });
  figure.insertBefore(svg, figure.firstChild);

  // Knock: the server tries its own address on the door's port, and the page shows what the
  // kernel answered. One button per TCP door (UDP has no handshake to knock with).
  const knocks = document.createElement("div");
  knocks.className = "knocks";
  knocks.setAttribute("role", "group");
  knocks.setAttribute("aria-label", "Knock on a door: try to connect to a port of this building");
  const heard = document.createElement("p");
  heard.id = "knock-answer";
  heard.setAttribute("aria-live", "polite");
  doors.filter(function (door) { return door.protocol === "tcp"; }).forEach(function (door) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.knock = door.port;
    button.textContent = "Knock on " + door.port;
    button.addEventListener("click", function () { knock(door, button); });
    knocks.appendChild(button);
    door.g.addEventListener("click", function () { knock(door, button); });
  });
  figure.appendChild(knocks);
  figure.appendChild(heard);

  function knock(door, button) {
    button.disabled = true;
    fetch("/api/knock/" + door.port, { method: "POST" })
      .then(function (r) { return r.json(); })
      .then(function (a) {
        const words = a.answer ? "port " + door.port + ": " + a.answer + " — " + a.meaning : a.error;
        heard.textContent = words;
        heard.dataset.answer = a.answer || "error";
        door.g.dataset.knocked = a.answer || "error";
        if (a.answer === "open") say(door, "open: someone answered");
        else if (a.answer === "refused") bounce({ row: door.key, peer: "your knock" }, "refused by the kernel");
        else if (a.answer === "timeout") say(door, "no answer");
        else say(door, a.answer || "no knock");
      })
      .catch(function (e) { heard.textContent = "the knock did not go out: " + e; })
      .finally(function () { button.disabled = false; });
  }

  function paint(door) {
    door.g.classList.toggle("unbound", door.unbound);
    door.g.classList.toggle("closed", door.closed);
    door.badge.textContent = door.waiting > 0 ? "+" + door.waiting : "";
    door.marksText.textContent = Object.keys(door.marks).map(function (k) { return door.marks[k]; }).join("");
    door.title.textContent = door.unbound
      ? "port " + door.port + ": nobody listens here; the kernel refuses connections"
      : "port " + door.key + ", " + door.service + (door.closed ? ": closed, the kernel refuses connections"
        : door.service === "blackhole" ? ": listening, but its queue is full: the kernel drops every knock, as a firewall's drop rule would"
        : ": open");
  }

  // A word said at a door for a moment (a denial's rule, a knock's answer).
  function say(door, words) {
    door.says.textContent = words;
    clearTimeout(door.saying);
    door.saying = setTimeout(function () { door.says.textContent = ""; }, 4000);
  }

  // Envelopes: id → its element. Those drawn (arriving, inside or leaving) are capped; the
  // rest are counted on their door.
  const moving = new Map();
  function full() { return envelopes.childElementCount >= MAX_ENVELOPES; }
  function street(door) {
    const at = spot(door.index);
    return { x: at.x + DOOR_W / 2 - 14, y: height - STREET + 20 };
  }
  function inside(door) {
    const at = spot(door.index);
    return { x: at.x + DOOR_W / 2 - 14, y: at.y + DOOR_H - 26 };
  }
  function envelope(door, label) {
    const from = street(door);
    const g = el("g", { "class": "envelope", transform: "translate(" + from.x + "," + from.y + ")" }, envelopes);
    el("rect", { width: 28, height: 18, rx: 2 }, g);
    el("path", { d: "M0 0 L14 10 L28 0" }, g);
    el("title", {}, g).textContent = label;
    return g;
  }
  function move(g, from, to, then) {
    const frames = [
      { transform: "translate(" + from.x + "px," + from.y + "px)" },
      { transform: "translate(" + to.x + "px," + to.y + "px)" },
    ];
    g.setAttribute("transform", "");
    const run = g.animate(frames, { duration: still ? 0 : 500, easing: "ease-in-out", fill: "forwards" });
    if (then) run.onfinish = then;
  }

  function arrive(d) {
    const door = byKey[d.row];
    if (!door) return;
    if (full()) {
      door.waiting += 1;
      moving.set(d.id, { door: door, counted: true });
      paint(door);
      return;
    }
    const g = envelope(door, "connection " + d.id + " from " + d.peer);
    move(g, street(door), inside(door));
    moving.set(d.id, { door: door, g: g });
  }
  function leave(d) {
    const entry = moving.get(d.id);
    if (!entry) return;
    moving.delete(d.id);
    if (entry.counted) {
      entry.door.waiting = Math.max(0, entry.door.waiting - 1);
      paint(entry.door);
      return;
    }
    entry.g.querySelector("title").textContent += ": " + d.bytes_in + " bytes in, " + d.bytes_out + " bytes out";
    move(entry.g, inside(entry.door), street(entry.door), function () { entry.g.remove(); });
  }
  function bounce(d, words) {
    const door = byKey[d.row];
    if (!door) return;
    say(door, words);
    if (full() || still) return;
    const g = envelope(door, d.peer + ": " + words);
    const at = spot(door.index);
    move(g, street(door), { x: at.x + DOOR_W / 2 - 14, y: at.y + DOOR_H + 6 }, function () {
      move(g, { x: at.x + DOOR_W / 2 - 14, y: at.y + DOOR_H + 6 }, street(door), function () { g.remove(); });
    });
  }

  // A fault's mark on its door, in words (emoji fonts are not everywhere): slow, cut, or the
  // fault's own name.
  function mark(fault) {
    if (/latency|bandwidth|slow|slicer/.test(fault)) return "slow ";
    if (/reset|limit_data|timeout|close/.test(fault)) return "cut ";
    return fault + " ";
  }

  // After missed events (the feed fell behind), what is open now comes from /api/ports:
  // every envelope is put away and each door counts its open connections instead.
  document.addEventListener("switchboard:resync", function (e) {
    moving.clear();
    while (envelopes.firstChild) envelopes.firstChild.remove();
    e.detail.ports.forEach(function (p) {
      const door = byKey[window.switchboardEvents.key(p)];
      if (!door) return;
      door.waiting = p.active;
      door.closed = p.state === "closed";
      paint(door);
    });
  });

  // The page's one event stream (page.js), each event with its row's key in `row`.
  const on = window.switchboardEvents.on;
  on("connection_opened", arrive);
  on("connection_closed", leave);
  on("connection_denied", function (d) { bounce(d, "denied: " + d.rule); });
  on("connection_limited", function (d) { bounce(d, "turned away: over " + d.limit); });
  on("datagram", function (d) {
    bounce(d, d.bytes_out ? "answered " + d.bytes_out + " bytes" : "taken, no answer");
  });
  on("port_closed", function (d) {
    const door = byKey[d.row];
    if (door) { door.closed = true; paint(door); }
  });
  on("port_bound", function (d) {
    const door = byKey[d.row];
    if (door) { door.closed = false; paint(door); return; }
    // A port added while the page is open: the table and the picture are the server's,
    // so fetch them afresh.
    if (!document.hidden) window.location.reload();
  });
  on("fault_started", function (d) {
    const door = byKey[d.row];
    if (door) { door.marks[d.fault] = mark(d.fault); paint(door); }
  });
  on("fault_ended", function (d) {
    const door = byKey[d.row];
    if (door) { delete door.marks[d.fault]; paint(door); }
  });
})();
