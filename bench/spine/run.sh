#!/usr/bin/env bash
# Benchmarks of the spine (figures go to docs/performance.md):
#  1. a no-op request (Ping) over an open control connection: p50/p99 (bench-ping);
#  2. `cluster-ai run -- true` end to end beside running `true` locally (hyperfine);
#  3. idle RSS of the scheduler and of an agent.
# Usage: bench/spine/run.sh [BUILD_DIR]   (an optimized build: meson setup -Dbuildtype=release)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
dir=$(mktemp -d)
chmod 711 "$dir"
: >"$dir/scheduler.yaml"
trap 'kill $(cat "$dir"/*.pid 2>/dev/null) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
sock=$dir/s.sock
cli() { "$build/cli/cluster-ai" --socket "$sock" "$@"; }

printf 'run_as: nobody\n' >"$dir/agent.yaml"
"$build/daemon/cluster-scheduler" --listen 127.0.0.1:0 --control-socket "$sock" \
        --state-dir "$dir/sched" --auto-approve --config "$dir/scheduler.yaml" --log-level warning \
        2>"$dir/sched.log" & echo $! >"$dir/sched.pid"
for i in $(seq 100); do cli status >/dev/null 2>&1 && break; sleep 0.05; done
addr=$(cli status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
for a in a1 a2; do
        "$build/agent/cluster-agent" --scheduler "$addr" --name $a --state-dir "$dir/$a" \
                --config "$dir/agent.yaml" --log-level warning 2>"$dir/$a.log" &
        echo $! >"$dir/$a.pid"
done
for i in $(seq 100); do
        [ "$(cli workers --json | grep -c '"state": "ready"')" = 2 ] && break; sleep 0.05
done

echo "== no-op request over an open connection"
for i in 1 2 3; do "$build/bench/spine/bench-ping" "$sock" 20000; done

echo "== cluster-ai run -- true, beside true locally"
hyperfine -N --warmup 10 --runs 300 "$build/cli/cluster-ai --socket $sock run -- true" "true" \
        --export-json "$dir/run.json" >/dev/null 2>&1
python3 - "$dir/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print("%-40s median %7.2f ms  (min %.2f, max %.2f)" % (x["command"].split("/")[-1][:40],
          x["median"] * 1e3, x["min"] * 1e3, x["max"] * 1e3))
print("ratio cluster-ai run / local: %.1fx" % (r[0]["median"] / r[1]["median"]))
PY

echo "== idle RSS after 3 s (scheduler with 2 agents connected, one agent)"
sleep 3
for p in sched a1; do
        printf '%s: ' "$p"; grep VmRSS "/proc/$(cat "$dir/$p.pid")/status"
done
