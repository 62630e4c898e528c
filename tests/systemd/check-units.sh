#!/usr/bin/env bash
# Checks the generated units offline with systemd's tools:
#   1. systemd-analyze verify on every unit: no message at all (warnings fail too);
#   2. every capability named in the units is one systemd knows (verify silently drops
#      unknown names);
#   3. systemd-analyze security --offline --threshold: the exposure gate;
#   4. (as root) sysusers.d and tmpfiles.d applied to a scratch root directory.
# Arguments: ANALYZE SYSUSERS TMPFILES UNITDIR BINDIR SCHEDULER AGENT SCHED_MAX AGENT_MAX
set -uo pipefail

analyze=$1 sysusers=$2 tmpfiles=$3 unitdir=$4 bindir=$5 scheduler=$6 agent=$7
sched_max=$8 agent_max=$9

if [ -z "$analyze" ]; then
        echo "SKIP: systemd-analyze is not installed (package systemd)"
        exit 77
fi

fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Test copies of the units, identical but for the programs they start, which must exist.
mkdir "$tmp/units"
for f in "$unitdir"/*.service "$unitdir"/*.socket; do
        sed -e "s|^ExecStart=$bindir/cluster-scheduler\$|ExecStart=$scheduler|" \
            -e "s|^ExecStart=$bindir/cluster-agent\$|ExecStart=$agent|" \
                "$f" >"$tmp/units/$(basename "$f")"
done
if grep -q "^ExecStart=$bindir/" "$tmp"/units/*; then
        echo "FAIL: an ExecStart= line was not rewritten:"
        grep "^ExecStart=" "$tmp"/units/*
        fail=1
fi

echo "== systemd-analyze verify"
out=$(cd "$tmp/units" && "$analyze" verify --man=no ./*.socket ./*.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "FAIL: verify (exit $rc):"
        echo "$out"
        fail=1
else
        echo "ok: $(ls "$tmp/units" | tr '\n' ' ')"
fi

echo "== capability names"
known=$("$analyze" capability 2>/dev/null | awk 'NR > 1 { print toupper($1) }')
if [ -z "$known" ]; then
        echo "note: this systemd-analyze cannot list capabilities, not checked"
else
        for cap in $(grep -h '^[A-Za-z]' "$tmp"/units/*.service | grep -o 'CAP_[A-Z_]*' | sort -u); do
                if ! grep -qx "$cap" <<<"$known"; then
                        echo "FAIL: unknown capability $cap"
                        fail=1
                fi
        done
        echo "ok"
fi

echo "== systemd-analyze security"
gate() {
        local unit=$1 max=$2 out rc
        out=$("$analyze" security --offline=yes --threshold="$max" "$tmp/units/$unit" 2>&1)
        rc=$?
        echo "$out" | tail -n 1
        if [ $rc -ne 0 ]; then
                echo "FAIL: $unit exposure is above $max/10 (or the check failed):"
                echo "$out" | grep -E '✗|Failed|rror' | head -n 30
                fail=1
        fi
}
gate cluster-scheduler.service "$sched_max"
gate cluster-agent.service "$agent_max"

echo "== sysusers.d, tmpfiles.d"
if [ "$(id -u)" != 0 ] || [ -z "$sysusers" ] || [ -z "$tmpfiles" ]; then
        echo "note: needs root and systemd-sysusers/systemd-tmpfiles, not checked"
else
        root="$tmp/root"
        mkdir -p "$root/etc"
        if ! "$sysusers" --root="$root" "$unitdir/sysusers-cluster-ai.conf" >"$tmp/log" 2>&1; then
                echo "FAIL: systemd-sysusers:"; cat "$tmp/log"; fail=1
        fi
        for u in cluster-ai cluster-ai-task; do
                grep -q "^$u:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin\$" "$root/etc/passwd" ||
                        { echo "FAIL: user $u not created"; fail=1; }
                grep -q "^$u:x:" "$root/etc/group" || { echo "FAIL: group $u not created"; fail=1; }
        done
        if ! "$tmpfiles" --root="$root" --create "$unitdir/tmpfiles-cluster-ai.conf" >"$tmp/log" 2>&1; then
                echo "FAIL: systemd-tmpfiles:"; cat "$tmp/log"; fail=1
        fi
        uid=$(awk -F: '$1 == "cluster-ai" { print $3 }' "$root/etc/passwd")
        while read -r type path mode user _; do
                [ "$type" = d ] || continue
                st=$(stat -c '%a %u' "$root$path" 2>/dev/null)
                want_uid=0
                [ "$user" = cluster-ai ] && want_uid=$uid
                if [ "$st" != "${mode#0} $want_uid" ]; then
                        echo "FAIL: $path is '$st', expected '${mode#0} $want_uid'"
                        fail=1
                fi
        done < <(grep -v '^#' "$unitdir/tmpfiles-cluster-ai.conf")
        [ $fail -eq 0 ] && echo "ok: users cluster-ai, cluster-ai-task; $(grep -c '^d' "$unitdir/tmpfiles-cluster-ai.conf") directories"
fi

exit $fail
