#!/usr/bin/env bash
# Sets up and runs a local cluster-ai cluster on this machine (Debian 12):
# installs the build packages, builds, starts a scheduler and two agents on
# loopback in a private directory, and runs a demo command through the cluster.
# The cluster keeps running; `scripts/demo.sh stop` stops it.
#
#   scripts/demo.sh          set up, start, demo
#   scripts/demo.sh stop     stop the demo cluster
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${CLUSTER_DEMO_DIR:-/tmp/cluster-ai-demo}
build=$top/build-release

stop() {
        for f in "$dir"/*.pid; do
                [ -f "$f" ] || continue
                kill "$(cat "$f")" 2>/dev/null || true
                rm -f "$f"
        done
}

if [ "${1:-}" = stop ]; then
        stop
        echo "demo cluster stopped (state kept in $dir)"
        exit 0
fi

bash "$top/scripts/install-deps.sh"
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=release >/dev/null
ninja -C "$build" >/dev/null

stop
mkdir -p "$dir"
: >"$dir/scheduler.yaml"
sock=$dir/scheduler.sock
cli() { "$build/cli/cluster-ai" --socket "$sock" "$@"; }

"$build/daemon/cluster-scheduler" --listen 127.0.0.1:8786 --control-socket "$sock" \
        --state-dir "$dir/scheduler" --config "$dir/scheduler.yaml" >"$dir/scheduler.log" 2>&1 &
echo $! >"$dir/scheduler.pid"
for i in $(seq 50); do cli status >/dev/null 2>&1 && break; sleep 0.1; done
cli status >/dev/null

# Tasks run as an unprivileged user when the agents run as root.
printf 'run_as: nobody\n' >"$dir/agent.yaml"
chmod 711 "$dir"
token=$(cli token create --description demo)
for name in agent-1 agent-2; do
        "$build/agent/cluster-agent" --scheduler 127.0.0.1:8786 --name "$name" \
                --token "$token" --state-dir "$dir/$name" --config "$dir/agent.yaml" \
                >"$dir/$name.log" 2>&1 &
        echo $! >"$dir/$name.pid"
done
for i in $(seq 100); do
        [ "$(cli workers --json | grep -c '"state": "ready"')" = 2 ] && break
        sleep 0.1
done

cli workers
echo
echo "\$ cluster-ai run -- sh -c 'echo hello from \$(hostname), pid \$\$; uname -sr'"
cli run -- sh -c 'echo hello from $(hostname), pid $$; uname -sr'
echo
echo "The cluster keeps running. Try:"
echo "  $build/cli/cluster-ai --socket $sock status"
echo "  $build/cli/cluster-ai --socket $sock run --cpus 1 -- make -j4"
echo "Logs are in $dir; stop it with: scripts/demo.sh stop"
