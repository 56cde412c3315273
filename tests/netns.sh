#!/usr/bin/env bash
# Every lesson across a real (virtual) network: each lesson's server runs in
# one network namespace and its `check` and `client` in another, joined by a
# veth pair, so that nothing goes over loopback. This shows what loopback
# hides: non-loopback addresses (per-address limits apply), `--host 0.0.0.0`,
# and a client address different from the server's.
#
# Needs Linux, root and `ip netns`; otherwise it says so and exits 0 (skipped).
# Usage: tests/netns.sh BIN_DIR [LESSON...]   (the folder holding the lesson
# binaries; the lessons to run, all of them if none is named)
# Run by `cargo test --test netns`.
set -euo pipefail

bin=${1:?usage: netns.sh BIN_DIR [LESSON...]}
shift
lessons=("$@")
[ ${#lessons[@]} -gt 0 ] || lessons=(basic multiclients multiclients_threaded framed_header sandbox)
skip() { echo "skipped: $*"; exit 0; }
[ "$(uname -s)" = Linux ] || skip "network namespaces are Linux only"
[ "$(id -u)" = 0 ] || skip "creating network namespaces needs root"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"

# Names unique to this run, so parallel runs do not collide.
srv="sl_srv_$$"; cli="sl_cli_$$"; veth="slv$$"
server_ip=10.77.$(( $$ % 250 )).1; client_ip=10.77.$(( $$ % 250 )).2
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$srv" 2>/dev/null || skip "cannot create a network namespace here"
ip netns add "$cli"
ip link add "${veth}a" type veth peer name "${veth}b"
ip link set "${veth}a" netns "$srv"
ip link set "${veth}b" netns "$cli"
ip -n "$srv" addr add "$server_ip/24" dev "${veth}a"
ip -n "$cli" addr add "$client_ip/24" dev "${veth}b"
for ns in "$srv" "$cli"; do ip -n "$ns" link set lo up; done
ip -n "$srv" link set "${veth}a" up
ip -n "$cli" link set "${veth}b" up

failures=0 passes=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
pass() { echo "ok $*"; passes=$((passes + 1)); }

# start_server LESSON [OPTION...]: starts its server on every interface of
# the server's namespace, port 0, logging to $work/LESSON.out, and sets
# `port` from its `listening on` line (0 if none).
start_server() {
    local lesson=$1 out="$work/$1.out"
    shift
    ip netns exec "$srv" "$bin/$lesson" server --host 0.0.0.0 --port 0 "$@" >"$out" 2>&1 &
    pids+=($!)
    port=0
    for _ in $(seq 200); do
        if grep -q '^listening on ' "$out"; then
            port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out" | head -n 1)
            return
        fi
        sleep 0.05 # polling a file for the server's first line
    done
    echo "no 'listening on' line from $lesson: $(cat "$out")" >&2
}

# in_client_ns COMMAND...: runs a command in the client's namespace, at most 60 s.
in_client_ns() { timeout 60 ip netns exec "$cli" "$@"; }

for lesson in "${lessons[@]}"; do
    [ -x "$bin/$lesson" ] || { fail "$lesson: no binary at $bin/$lesson (build it first)"; continue; }
    start_server "$lesson"
    [ "$port" != 0 ] || { fail "$lesson: server did not start"; continue; }
    if in_client_ns "$bin/$lesson" check --host "$server_ip" --port "$port" >"$work/check.out" 2>&1; then
        pass "$lesson check across the veth pair ($(tail -n 1 "$work/check.out"))"
    else
        fail "$lesson check across the veth pair:"; sed 's/^/    /' "$work/check.out"
    fi
    [ "$lesson" = basic ] && continue # its server served its one client: the check
    case $lesson in
        multiclients_threaded | sandbox) input=$'hello across the network\n/quit\n' ;;
        *) input=$'hello across the network\n' ;;
    esac
    if printf '%s' "$input" | in_client_ns "$bin/$lesson" client --host "$server_ip" --port "$port" \
        >"$work/client.out" 2>&1; then
        pass "$lesson client across the veth pair"
    else
        fail "$lesson client across the veth pair:"; sed 's/^/    /' "$work/client.out"
    fi
    if grep -q "$client_ip" "$work/$lesson.out"; then
        pass "$lesson server logs the client's address $client_ip"
    else
        fail "$lesson: the server's log never names the client's address $client_ip"
    fi
done

# The per-address cap, which loopback never reaches: lesson 3's server with
# --max-per-address 1, one client holding its place, a second refused with a
# line it can read.
if [[ " ${lessons[*]} " == *" multiclients_threaded "* ]]; then
    lesson=multiclients_threaded
    start_server "$lesson" --max-per-address 1
    (sleep 5 | in_client_ns "$bin/$lesson" client --host "$server_ip" --port "$port" >"$work/first.out" 2>&1) &
    pids+=($!)
    for _ in $(seq 200); do
        grep -q 'joined' "$work/$lesson.out" && break
        sleep 0.05 # polling the server's log for the first client's arrival
    done
    printf 'hello\n' | in_client_ns "$bin/$lesson" client --host "$server_ip" --port "$port" \
        >"$work/second.out" 2>&1 || true
    if grep -q "connections from your address already" "$work/second.out"; then
        pass "$lesson refuses a second connection from one address with --max-per-address 1"
    else
        fail "$lesson --max-per-address 1 did not refuse the second client:"; sed 's/^/    /' "$work/second.out"
    fi
fi

echo "netns: $passes passed, $failures failed"
[ "$failures" = 0 ]
