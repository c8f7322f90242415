#!/usr/bin/env bash
# A firewall in front of the switchboard container, applied from the host: the container's
# image has no firewall tools (it is switchboard alone) and no right to change its own
# network, so the host enters the container's network namespace (nsenter) and loads the
# firewall lab's rules there (docs/firewall-lab.md). Nothing on the host changes.
#
#   sudo docker/firewall.sh apply  [CONTAINER]   # drop 443, reject 25, 80 from 172.29.80.40 only
#   sudo docker/firewall.sh show   [CONTAINER]
#   sudo docker/firewall.sh remove [CONTAINER]
#
# CONTAINER defaults to the compose project's switchboard service. Then the `firewall`
# profile's two clients (172.29.80.40 and 172.29.80.41) probe 25, 80 and 443:
#   docker compose -f docker/compose.yaml --profile firewall up firewall-allowed firewall-other
# Needs root, nsenter (util-linux) and nft (nftables) on the host.
set -euo pipefail

action=${1:-}
container=${2:-}
allowed=172.29.80.40

case $action in
apply | show | remove) ;;
*)
    echo "usage: $0 apply|show|remove [CONTAINER]" >&2
    exit 2
    ;;
esac
[ "$(id -u)" = 0 ] || { echo "firewall.sh: run as root (nsenter needs it)" >&2; exit 2; }
command -v nft >/dev/null || { echo "firewall.sh: needs nft on the host (Debian: nftables)" >&2; exit 2; }
if [ -z "$container" ]; then
    container=$(docker ps --quiet --filter label=com.docker.compose.service=switchboard | head -n 1)
    [ -n "$container" ] || { echo "firewall.sh: no running switchboard container; give its name" >&2; exit 2; }
fi
pid=$(docker inspect --format '{{.State.Pid}}' "$container")
[ "$pid" -gt 0 ] || { echo "firewall.sh: $container is not running" >&2; exit 2; }
# The container's network namespace, with the host's nft.
in_container() { nsenter --target "$pid" --net "$@"; }

case $action in
apply)
    in_container nft --define "allowed=$allowed" -f "$(dirname "$0")/../docs/firewall-lab.nft"
    echo "firewall applied in $container's network namespace:"
    in_container nft list table inet lab
    ;;
show) in_container nft list ruleset ;;
remove)
    in_container nft delete table inet lab 2>/dev/null || true
    echo "firewall removed from $container's network namespace"
    ;;
esac
