#!/usr/bin/env bash
# The firewall lab (docs/firewall-lab.md): the three answers to a knock, made by real
# mechanisms, and what switchboard sees of each.
#
# Two network namespaces joined by a veth pair: a client (192.0.2.10 and 192.0.2.11) and a
# server (192.0.2.1) where switchboard serves. A firewall in the server namespace (nftables,
# or iptables where nft is missing) drops 443, rejects 25 with a reset, and accepts 80 from
# 192.0.2.10 only; switchboard's own rule admits 192.0.2.10 on 8080; 9999 is a blackhole
# row. Then `switchboard probe --json` from the client namespace, as each client address,
# and switchboard's log and port counts must say exactly what the lesson says. Any state
# that is not as expected makes the script exit non-zero.
#
# Run as root (namespaces and firewalls need it):
#     sudo docs/firewall-lab.sh [path/to/switchboard]
# LAB_FIREWALL=iptables forces the iptables path; LAB_KEEP=1 keeps the lab's directory.
# The namespaces are removed whatever happens.
set -euo pipefail

switchboard=$(realpath "${1:-target/debug/switchboard}")
[ "$(id -u)" = 0 ] || { echo "firewall-lab: run as root (network namespaces need it)" >&2; exit 2; }
[ -x "$switchboard" ] || { echo "firewall-lab: no switchboard binary at $switchboard; build it with cargo build" >&2; exit 2; }
command -v ip >/dev/null || { echo "firewall-lab: needs ip (Debian: iproute2)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "firewall-lab: needs python3 to read JSON" >&2; exit 2; }
firewall=${LAB_FIREWALL:-$(command -v nft >/dev/null && echo nft || echo iptables)}
command -v "$firewall" >/dev/null || { echo "firewall-lab: needs nft (nftables) or iptables" >&2; exit 2; }

# The lab's own names and addresses (192.0.2.0/24 is TEST-NET-1, for documentation: it
# never routes anywhere real).
server=sblab-server-$$
client=sblab-client-$$
server_ip=192.0.2.1
allowed=192.0.2.10
other=192.0.2.11
lab=$(mktemp -d)
switchboard_pid=""

cleanup() {
    local status=$?
    set +e
    if [ -n "$switchboard_pid" ]; then
        kill "$switchboard_pid" 2>/dev/null
        wait "$switchboard_pid" 2>/dev/null
    fi
    ip netns del "$server" 2>/dev/null || true
    ip netns del "$client" 2>/dev/null || true
    if [ "$status" != 0 ]; then
        echo "--- switchboard's log ---" >&2
        cat "$lab/switchboard.log" >&2 2>/dev/null || true
    fi
    [ -n "${LAB_KEEP:-}" ] && echo "the lab's files: $lab" || rm -rf "$lab"
    exit "$status"
}
trap cleanup EXIT INT TERM

in_server() { ip netns exec "$server" "$@"; }
in_client() { ip netns exec "$client" "$@"; }
failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "  ok: $*"; }

echo "== the network: two namespaces and a cable (veth) between them"
ip netns add "$server"
ip netns add "$client"
ip link add "sbs$$" type veth peer name "sbc$$"
ip link set "sbs$$" netns "$server"
ip link set "sbc$$" netns "$client"
in_server ip addr add "$server_ip/24" dev "sbs$$"
in_client ip addr add "$allowed/24" dev "sbc$$"
in_client ip addr add "$other/24" dev "sbc$$"
for ns in "$server" "$client"; do
    ip netns exec "$ns" ip link set lo up
done
in_server ip link set "sbs$$" up
in_client ip link set "sbc$$" up
echo "server $server_ip; clients $allowed and $other"

echo "== the firewall in the server namespace ($firewall)"
if [ "$firewall" = nft ]; then
    in_server nft --define "allowed=$allowed" -f "$(dirname "$0")/firewall-lab.nft"
    in_server nft list ruleset
else
    in_server iptables -A INPUT -i lo -j ACCEPT
    in_server iptables -A INPUT -p tcp --dport 443 -j DROP
    in_server iptables -A INPUT -p tcp --dport 25 -j REJECT --reject-with tcp-reset
    in_server iptables -A INPUT -p tcp --dport 80 -s "$allowed" -j ACCEPT
    in_server iptables -A INPUT -p tcp --dport 80 -j DROP
    in_server iptables -S INPUT
fi

echo "== switchboard in the server namespace"
cat >"$lab/switchboard.toml" <<EOF
# The lab's port table: the three usual services, one port with switchboard's own rule,
# and a blackhole (a drop without a firewall).
[[port]]
port = 25
service = "smtp"

[[port]]
port = 80
service = "http"

[[port]]
port = 443
service = "https"

[[port]]
port = 8080
service = "http"
name = "http-allowlist"
allow = ["$allowed/32"]

[[port]]
port = 9999
service = "blackhole"
EOF
# Started by ip itself (not through a function) so that $! is switchboard's own process.
ip netns exec "$server" "$switchboard" serve --config "$lab/switchboard.toml" \
    --certs "$lab/certs" --log-format json >/dev/null 2>"$lab/switchboard.log" &
switchboard_pid=$!
# Ready when 80 answers from inside the server (every port is bound before any is served,
# and the server's own loopback is not filtered).
in_server "$switchboard" probe 127.0.0.1 80 --wait 30 >/dev/null \
    || { echo "switchboard did not come up" >&2; exit 1; }
echo "listening on 25, 80, 443, 8080 and 9999 (blackhole)"

ports=(25 80 443 8080 9999)
probe_as() { # probe_as ADDRESS: the text table, then the JSON, from that client address
    in_client "$switchboard" probe "$server_ip" "${ports[@]}" --timeout 1500 --from "$1"
    in_client "$switchboard" probe "$server_ip" "${ports[@]}" --timeout 1500 --from "$1" --json >"$lab/$1.json"
}
# expect ADDRESS PORT STATE [SERVICE]: what the probe from ADDRESS found on PORT.
expect() {
    local found
    found=$(python3 -c 'import json,sys
f = [x for x in json.load(open(sys.argv[1])) if x["port"] == int(sys.argv[2])][0]
print(f["state"], f["service"] or "-")' "$lab/$1.json" "$2")
    local state=${found% *} service=${found#* }
    if [ "$state" = "$3" ] && { [ -z "${4:-}" ] || [ "$service" = "$4" ]; }; then
        pass "from $1, port $2: $3${4:+ ($4)}"
    else
        fail "from $1, port $2: expected $3${4:+ ($4)}, found $state ($service)"
    fi
}

echo
echo "== from $allowed (the allowed client)"
probe_as "$allowed"
echo
echo "== from $other (another address of the same client)"
probe_as "$other"

echo
echo "== what the client saw"
expect "$allowed" 25 refused        # reject with tcp reset: refused, though smtp listens
expect "$other" 25 refused
expect "$allowed" 443 timeout       # drop: no answer at all (filtered)
expect "$other" 443 timeout
expect "$allowed" 80 open http      # accept from this address only
expect "$other" 80 timeout          # ... and the same port from another: filtered
expect "$allowed" 8080 open http    # switchboard's own rule: served
expect "$other" 8080 open           # ... accepted by the kernel, then closed by switchboard
expect "$allowed" 9999 timeout      # the blackhole: a drop without a firewall
expect "$other" 9999 timeout

# A reset comes back at once; a drop takes the whole timeout.
started=$(date +%s%N)
in_client "$switchboard" probe "$server_ip" 25 --timeout 5000 --json >/dev/null
refused_ms=$(( ($(date +%s%N) - started) / 1000000 ))
if [ "$refused_ms" -lt 2500 ]; then
    pass "the reset on 25 came back in $refused_ms ms (timeout 5000 ms)"
else
    fail "the reset on 25 took $refused_ms ms: a reject should answer at once"
fi

echo
echo "== what switchboard saw (its port counts, from its events, and its log)"
in_client curl -s --max-time 5 "http://$server_ip/api/ports" >"$lab/ports.json" \
    || fail "GET /api/ports from $allowed"
# counts PORT: "accepted denied" as switchboard counted them.
counts() {
    python3 -c 'import json,sys
p = [x for x in json.load(open(sys.argv[1]))["ports"] if x["port"] == int(sys.argv[2]) and x["protocol"] == "tcp"][0]
print(p["accepted"], p["denied"])' "$lab/ports.json" "$1"
}
# The messages of switchboard's JSON log lines, one a line.
python3 -c 'import json,sys
for line in open(sys.argv[1]):
    try: print(json.loads(line)["fields"]["message"])
    except (ValueError, KeyError): pass' "$lab/switchboard.log" >"$lab/messages.txt"
# Only the clients' connections: the readiness check above knocked from inside the server.
from_clients() { grep -E "^connection [a-z]+: 192\.0\.2\.1[01]:[0-9]+ → port $1 " "$lab/messages.txt" || true; }

read -r accepted denied <<<"$(counts 8080)"
denied_lines=$(from_clients 8080 | grep -c "^connection denied: $other:" || true)
if [ "$denied" -ge 1 ] && [ "$denied" = "$denied_lines" ] && [ "$accepted" -ge 1 ] \
    && ! from_clients 8080 | grep -q "^connection denied: $allowed:"; then
    pass "port 8080: $accepted served; $denied accepted, denied by switchboard's rule and closed, every one from $other:"
    from_clients 8080 | grep "^connection denied:" | head -1 | sed 's/^/        /'
else
    fail "port 8080: $accepted accepted, $denied denied, $denied_lines denial(s) of $other logged"
fi
# The kernel's rules and the blackhole: neither a count nor a log line in switchboard.
for port in 25 443 9999; do
    read -r accepted denied <<<"$(counts "$port")"
    if [ "$accepted" != 0 ] || [ "$denied" != 0 ]; then
        fail "port $port: switchboard counted $accepted accepted, $denied denied; it should see none"
    elif [ -n "$(from_clients "$port")" ]; then
        fail "port $port: switchboard's log shows a client's connection:
$(from_clients "$port")"
    else
        pass "port $port: no count and no line in switchboard's log: the kernel answered for it"
    fi
done
if from_clients 80 | grep -q "$other:"; then
    fail "port 80: switchboard saw $other, whom the firewall drops"
elif [ -z "$(from_clients 80)" ]; then
    fail "port 80: switchboard saw no connection from $allowed"
else
    pass "port 80: switchboard saw $allowed only"
fi

echo
if [ "$failures" -gt 0 ]; then
    echo "firewall lab: $failures check(s) failed"
    exit 1
fi
echo "firewall lab ($firewall): every answer as expected"
