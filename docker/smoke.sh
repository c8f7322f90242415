#!/usr/bin/env bash
# The Docker suite: build the image without pulling anything, run docker/compose.yaml, and
# check it from this machine and from the client containers; then remove every container,
# network and volume it made (the image stays, tagged switchboard:latest).
#
#   docker/smoke.sh          needs a Docker engine, Compose (v2 or v1.29), curl, readelf
#
# Host ports are chosen by Docker (port 0), so a running switchboard does not collide.
set -euo pipefail
cd "$(dirname "$0")/.."

project=switchboard-smoke-$$
image=switchboard:latest
scratch=$(mktemp -d)

say() { printf 'smoke: %s\n' "$*" >&2; }
fail() {
    printf 'smoke: FAILED: %s\n' "$*" >&2
    exit 1
}

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    fail "no Docker Compose: install docker compose (v2) or docker-compose (v1.29)"
fi
# Every call names the client profiles, so that `down` also removes the client containers.
dc() {
    "${compose[@]}" --project-name "$project" --file docker/compose.yaml \
        --profile demo --profile firewall "$@"
}

# The id of a service's container, running or exited.
container_of() {
    docker ps --all --quiet \
        --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1"
}

teardown() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        say "the server's last log lines:"
        dc logs --no-color --tail 40 switchboard >&2 2>&1 || true
    fi
    dc down --volumes --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$scratch"
    exit "$status"
}
trap teardown EXIT

wait_healthy() {
    local id=$1 state
    for _ in $(seq 120); do
        state=$(docker inspect --format '{{.State.Health.Status}}' "$id")
        case $state in
        healthy) return 0 ;;
        unhealthy) fail "the container's health check says unhealthy" ;;
        esac
        sleep 0.5 # polling Docker's own health state, not guessing start-up time
    done
    fail "not healthy within 60 s (health: $state)"
}

# host:port where Docker publishes a container port on this machine.
published() {
    local where
    where=$(dc port switchboard "$1" | tail -n 1)
    [ -n "$where" ] || fail "port $1 is not published"
    printf '%s' "${where/0.0.0.0/127.0.0.1}"
}

fetch() { curl --silent --show-error --fail --max-time 10 "$@"; }

# host:port where Docker publishes a port of a container started with `docker run`.
port_of() { docker port "$1" "$2/tcp" | head -n 1; }

# Wait until the server at $1 (http://host:port) answers GET /readyz, then check it does.
wait_ready() {
    for _ in $(seq 100); do
        fetch "$1/readyz" >/dev/null 2>&1 && break
        sleep 0.2 # polling the server's own readiness route
    done
    expect "GET /readyz" "$(fetch "$1/readyz")" '^ready$'
}

expect() { # expect WHAT TEXT PATTERN: TEXT must match the extended regex PATTERN
    grep --quiet --extended-regexp -- "$3" <<<"$2" || fail "$1: expected /$3/ in:
$2"
}

say "building the image from a binary compiled here (nothing pulled)"
docker/build-offline.sh "$image"
size=$(docker image inspect --format '{{.Size}}' "$image")
# The budget catches accidents (debug info, a second TLS stack, a C library linked in),
# not features: it was 10 MB until Toxiproxy's API took the binary past it, then 12 MB;
# 20 MB leaves room for the mail departments, FTP and SSH, each issue reporting its bytes.
[ "$size" -lt 20000000 ] || fail "the image is $size bytes; it must stay under 20 MB"
user=$(docker image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', not the numeric user 10001"
say "image $image: $((size / 1024)) KiB, user $user"

say "compose config is valid for ${compose[*]}"
dc config --quiet || fail "docker/compose.yaml is not valid"

say "starting the server"
volumes_before=$(docker volume ls --quiet | sort)
export PUBLISH_HTTP_PORT=0 PUBLISH_HTTPS_PORT=0 PUBLISH_SMTP_PORT=0 PUBLISH_TOXIPROXY_PORT=0
# Without the profile: `up` starts only the server.
"${compose[@]}" --project-name "$project" --file docker/compose.yaml up --detach --no-build
server=$(container_of switchboard)
[ -n "$server" ] || fail "no switchboard container"
[ -z "$(container_of probe)" ] || fail "up without the demo profile started the clients"
wait_healthy "$server"

check_host() {
    http=$(published 80)
    https=$(published 443)
    smtp=$(published 25)
    say "from the host: http $http, https $https, smtp $smtp"

    expect "GET /healthz" "$(fetch "http://$http/healthz")" '^ok$'
    expect "GET /whoami" "$(fetch "http://$http/whoami?format=json")" '"service":"http"'

    # The CA, as kept in the certs volume, and as served at /ca.pem.
    docker cp "$server:/certs/ca.pem" "$scratch/ca.pem" || fail "no /certs/ca.pem in the container"
    fetch "http://$http/ca.pem" >"$scratch/ca-served.pem"
    cmp --silent "$scratch/ca.pem" "$scratch/ca-served.pem" ||
        fail "/ca.pem differs from the CA in the certs volume"
    if curl --silent --max-time 10 "https://localhost:${https##*:}/" >/dev/null; then
        fail "a client that does not trust the local CA accepted the certificate"
    fi
    expect "HTTPS trusting the CA" \
        "$(fetch --cacert "$scratch/ca.pem" "https://localhost:${https##*:}/whoami?format=json")" \
        '"service":"https"'
    expect "HTTPS by the compose service name" \
        "$(fetch --cacert "$scratch/ca.pem" --resolve "switchboard:${https##*:}:127.0.0.1" \
            "https://switchboard:${https##*:}/healthz")" '^ok$'
}

check_host
ca_before=$(cat "$scratch/ca.pem")

say "a mail sent to smtp is read back through the API"
token=smoke-$$-$RANDOM
printf 'From: app@example.test\r\nTo: user@example.test\r\nSubject: %s\r\n\r\nHello from the smoke test.\r\n' \
    "$token" >"$scratch/message.eml"
fetch "smtp://$smtp" --mail-from app@example.test --mail-rcpt user@example.test \
    --upload-file "$scratch/message.eml" || fail "the SMTP server did not accept the message"
expect "the captured message" "$(fetch "http://$http/api/v1/search?query=subject:$token")" \
    "\"total\":1,.*\"Subject\":\"$token\""

say "Toxiproxy's API from the host: a toxic on the SMTP row, then a reset"
toxiproxy=$(published 8474)
expect "GET /proxies" "$(fetch "http://$toxiproxy/proxies")" '"smtp-25":\{[^}]*"upstream":"smtp"'
fetch -X POST -d '{"type":"reset_peer","attributes":{"timeout":0}}' \
    "http://$toxiproxy/proxies/smtp-25/toxics" >/dev/null || fail "the toxic was not added"
if fetch "smtp://$smtp" --mail-from app@example.test --mail-rcpt user@example.test \
    --upload-file "$scratch/message.eml" 2>/dev/null; then
    fail "SMTP worked through a reset_peer toxic"
fi
fetch -X POST "http://$toxiproxy/reset" || fail "POST /reset failed"
expect "the toxics after a reset" "$(fetch "http://$toxiproxy/proxies/smtp-25/toxics")" '^\[\]$'

say "restarting: the CA and the mail survive in their volumes"
dc restart switchboard >/dev/null
wait_healthy "$server"
check_host
[ "$(cat "$scratch/ca.pem")" = "$ca_before" ] || fail "the CA changed across a restart"
expect "the message after a restart" "$(fetch "http://$http/api/v1/search?query=subject:$token")" \
    '"total":1,'

say "the client containers"
dc up --detach --no-build probe allowed-client denied-client
client_output() {
    local id code
    id=$(container_of "$1")
    [ -n "$id" ] || fail "no $1 container"
    code=$(timeout 60 docker wait "$id") || fail "$1 did not finish within 60 s"
    [ "$code" = 0 ] || fail "$1 exited with $code: $(docker logs "$id" 2>&1)"
    docker logs "$id" 2>&1
}
probe=$(client_output probe)
printf '%s\n' "$probe" >&2
expect "probe" "$probe" '^switchboard resolves to 172\.29\.80\.10$'
for row in '21 .* refused' '22 .* refused' '25 .* open +smtp ' '80 .* open +http ' '443 .* open +https '; do
    expect "probe" "$probe" "^$row"
done
allowed=$(client_output allowed-client)
expect "allowed-client" "$allowed" '^8081 .* open +http +HTTP/1.1 200 OK'
denied=$(client_output denied-client)
expect "denied-client" "$denied" '^8081 .* open .*closed the connection without a word'
expect "the server's log" "$(dc logs --no-color switchboard 2>&1)" \
    'connection denied: 172\.29\.80\.30:[0-9]+ → port 8081'

if [ "$(id -u)" = 0 ] && command -v nft >/dev/null && command -v nsenter >/dev/null; then
    say "a firewall in the server's network namespace, from the host (docker/firewall.sh)"
    docker/firewall.sh apply "$server" >/dev/null
    dc up --detach --no-build firewall-allowed firewall-other
    allowed=$(client_output firewall-allowed)
    other=$(client_output firewall-other)
    printf '%s\n%s\n' "$allowed" "$other" >&2
    for row in '25 .* refused' '80 .* open +http ' '443 .* timeout'; do
        expect "firewall-allowed" "$allowed" "^$row"
    done
    for row in '25 .* refused' '80 .* timeout' '443 .* timeout'; do
        expect "firewall-other" "$other" "^$row"
    done
    if dc logs --no-color switchboard 2>&1 |
        grep -E '172\.29\.80\.4[01]:[0-9]+ → port (25|443) |172\.29\.80\.41:[0-9]+ → port 80 '; then
        fail "switchboard saw a connection the firewall stopped"
    fi
    docker/firewall.sh remove "$server" >/dev/null
    expect "443 from the host once the firewall is removed" \
        "$(fetch --cacert "$scratch/ca.pem" --resolve switchboard:443:172.29.80.10 https://switchboard/healthz)" '^ok$'
else
    say "skipped the firewall profile: it needs root, nft and nsenter on this machine"
fi

say "the image configured by variables alone: Mailpit's ports, a smaller store, no CA files"
# A test rig's service container: no file mounted, everything from -e.
preset=$(docker run --detach --label "com.docker.compose.project=$project" \
    -e SWITCHBOARD_PRESET=mailpit -e SWITCHBOARD_MAIL_MAX_MESSAGES=1 \
    -e SWITCHBOARD_CONFIG_TOML=$'[http]\nhosts = ["mailpit.test"]\n' \
    -p 127.0.0.1::1025 -p 127.0.0.1::8025 "$image")
mailpit_smtp=$(port_of "$preset" 1025)
mailpit_http=$(port_of "$preset" 8025)
wait_ready "http://$mailpit_http"
for n in 1 2; do
    fetch "smtp://$mailpit_smtp" --mail-from app@example.test --mail-rcpt user@example.test \
        --upload-file "$scratch/message.eml" || fail "SMTP on 1025 did not accept message $n"
done
expect "SWITCHBOARD_MAIL_MAX_MESSAGES=1" "$(fetch "http://$mailpit_http/api/v1/messages")" '"total":1,'
expect "the inline config's [http] hosts" \
    "$(fetch -H 'Host: mailpit.test' "http://$mailpit_http/api/v1/info")" '"Messages":1'
docker rm --force --volumes "$preset" >/dev/null

say "the Kubernetes pod's settings (deploy/kubernetes): read-only, user 10001, no capabilities"
# What the Deployment's security context asks, as Docker flags: the container must bind 25,
# 80 and 443 and serve with nothing writable but its two volumes.
pod=$(docker run --detach --label "com.docker.compose.project=$project" \
    --read-only --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges \
    --sysctl net.ipv4.ip_unprivileged_port_start=0 \
    --tmpfs /certs:uid=10001,gid=10001,mode=0700 --tmpfs /mail:uid=10001,gid=10001,mode=0700 \
    --volume "$PWD/deploy/kubernetes/base/switchboard.toml:/etc/switchboard/switchboard.toml:ro" \
    -p 127.0.0.1::80 -p 127.0.0.1::25 -p 127.0.0.1::443 \
    "$image" serve --config /etc/switchboard/switchboard.toml)
pod_http=$(port_of "$pod" 80)
wait_ready "http://$pod_http"
expect "GET /livez (the liveness probe)" "$(fetch "http://$pod_http/livez")" '^ok$'
fetch "smtp://$(port_of "$pod" 25)" --mail-from app@example.test \
    --mail-rcpt user@example.test --upload-file "$scratch/message.eml" ||
    fail "SMTP did not accept a message with a read-only root filesystem"
expect "the message, stored in /mail" "$(fetch "http://$pod_http/api/v1/messages")" '"total":1,'
fetch "http://$pod_http/ca.pem" >"$scratch/pod-ca.pem"
expect "HTTPS with the CA made in /certs" \
    "$(fetch --cacert "$scratch/pod-ca.pem" "https://localhost:$(port_of "$pod" 443 | cut -d: -f2)/healthz")" '^ok$'
docker rm --force --volumes "$pod" >/dev/null

say "removing the containers, network and volumes"
dc down --volumes --remove-orphans >/dev/null 2>&1
left=$(docker ps --all --quiet --filter "label=com.docker.compose.project=$project")
left+=$(docker volume ls --quiet --filter "label=com.docker.compose.project=$project")
left+=$(docker network ls --quiet --filter "label=com.docker.compose.project=$project")
# Anonymous volumes (the image declares /certs and /mail) carry no project label.
left+=$(comm -13 <(printf '%s\n' "$volumes_before") <(docker volume ls --quiet | sort))
[ -z "$left" ] || fail "left behind: $left"
docker image inspect "$image" >/dev/null || fail "the image $image is gone"
say "passed"
