#!/usr/bin/env bash
# The shipped units under a real systemd: boots a Debian container with
# systemd-nspawn, installs the generated units, sysusers.d and tmpfiles.d files and a
# probe daemon (sd-probe) under the daemons' names, then checks through the probe's
# report that socket activation passes the five named sockets, that the watchdog,
# users, capabilities, cgroup delegation and sandbox are what the units promise, and
# that reload and stop behave. When the real daemons are given too, it then runs them
# under the same units: the scheduler by socket activation, an agent joining it, and a
# task whose user and capabilities must be those of run_as, with none of the agent's.
#
# Needs root, systemd-nspawn (package systemd-container) and a container root file
# system in $CLUSTER_AI_TEST_ROOTFS (it is never modified: the container runs on a
# volatile overlay). Make one once with
#   debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,\
#       liburing2,libgnutls30,libyaml-0-2,libprotobuf-c1,libsqlite3-0,libjansson4 bookworm DIR
# Skips (77) when any of these is missing.
#
# Arguments: UNITDIR CONFIGDIR BINDIR PKGSYSCONFDIR PROBE [SCHEDULER AGENT CLI]
set -uo pipefail

unitdir=$1 configdir=$2 bindir=$3 pkgsysconfdir=$4 probe=$5
scheduler=${6:-} agent=${7:-} cli=${8:-}
rootfs=${CLUSTER_AI_TEST_ROOTFS:-}

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is not installed (systemd-container)"
command -v nsenter >/dev/null || skip "nsenter is not installed (util-linux)"
[ -n "$rootfs" ] || skip "CLUSTER_AI_TEST_ROOTFS is not set (see the head of this script)"
[ -x "$rootfs/lib/systemd/systemd" ] || skip "$rootfs has no systemd"

fail=0
tmp=$(mktemp -d)
nspawn_pid=
leader=

cleanup() {
        if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
                # An early SIGTERM is ignored by the container's systemd; this halts it.
                kill -s RTMIN+4 "$leader" 2>/dev/null
                for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        fi
        [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid"
        rm -rf "$tmp"
}
trap cleanup EXIT

check() { # check WHAT EXPECTED ACTUAL
        if [ "$2" = "$3" ]; then
                echo "ok: $1 = $3"
        else
                echo "FAIL: $1 = '$3', expected '$2'"
                fail=1
        fi
}

# CAP_BPF and CAP_PERFMON must be in the container's bounding set (or the agent's
# ambient set silently becomes empty), and nspawn's own seccomp filter must let bpf()
# through for the agent's probes.
systemd-nspawn -D "$rootfs" --register=no --keep-unit --private-network --volatile=overlay \
        --capability=CAP_BPF,CAP_PERFMON --system-call-filter=bpf -b >"$tmp/console" 2>&1 &
nspawn_pid=$!
for _ in $(seq 100); do
        leader=$(pgrep -P "$nspawn_pid" | head -n 1)
        [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] && break
        leader=
        sleep 0.1
done
[ -n "$leader" ] || { echo "FAIL: the container did not boot"; cat "$tmp/console"; exit 1; }

ct() { nsenter -t "$leader" -a "$@"; }
for _ in $(seq 100); do
        state=$(ct systemctl is-system-running 2>/dev/null)
        case "$state" in running | degraded) break ;; esac
        sleep 0.1
done
echo "container: $state"

# Install, as a package would: files, users, directories, daemon-reload.
croot="/proc/$leader/root"
mkdir -p "$croot$bindir" "$croot/etc/systemd/system" "$croot/usr/lib/sysusers.d" "$croot/usr/lib/tmpfiles.d"
cp "$unitdir"/*.service "$unitdir"/*.socket "$croot/etc/systemd/system/"
cp "$unitdir/sysusers-cluster-ai.conf" "$croot/usr/lib/sysusers.d/cluster-ai.conf"
cp "$unitdir/tmpfiles-cluster-ai.conf" "$croot/usr/lib/tmpfiles.d/cluster-ai.conf"
cp "$probe" "$croot$bindir/cluster-scheduler"
cp "$probe" "$croot$bindir/cluster-agent"
ct systemd-sysusers >/dev/null 2>&1
ct systemd-tmpfiles --create /usr/lib/tmpfiles.d/cluster-ai.conf
ct systemctl daemon-reload

uid=$(ct id -u cluster-ai)
# StateDirectory= is always below /var/lib, whatever the build's localstatedir.
statedir=/var/lib/cluster-ai

echo "== scheduler: socket activation"
ct systemctl enable --now cluster-scheduler.socket >/dev/null 2>&1
for s in cluster-scheduler cluster-scheduler-control cluster-scheduler-http cluster-scheduler-ollama cluster-scheduler-chat; do
        check "$s.socket" active "$(ct systemctl is-active $s.socket)"
done
check "scheduler before a connection" inactive "$(ct systemctl is-active cluster-scheduler.service)"
# A connection to any of them starts the scheduler (here: the dashboard port).
ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/8787' 2>/dev/null
for _ in $(seq 50); do
        [ "$(ct systemctl is-active cluster-scheduler.service)" = active ] && break
        sleep 0.1
done
check "scheduler after a connection" active "$(ct systemctl is-active cluster-scheduler.service)"

report() { # report UNIT-DIR KEY
        ct sh -c "grep '^$2 ' $statedir/$1/report" | cut -d' ' -f2-
}
for _ in $(seq 50); do ct test -s "$statedir/scheduler/report" && ct grep -q '^end' "$statedir/scheduler/report" && break; sleep 0.1; done
check "fds passed" 5 "$(report scheduler fds)"
check "LISTEN_FDS after collecting" unset "$(report scheduler listen_fds_env)"
check "fd cluster" ":::8786" "$(report scheduler fd.cluster)"
check "fd control" "/run/cluster-ai/scheduler.sock" "$(report scheduler fd.control)"
check "fd http" "127.0.0.1:8787" "$(report scheduler fd.http)"
check "fd ollama" "127.0.0.1:11434" "$(report scheduler fd.ollama)"
check "fd chat" "127.0.0.1:3000" "$(report scheduler fd.chat)"
check "fd cluster close-on-exec" 1 "$(report scheduler cloexec.cluster)"
check "watchdog" 30000000 "$(report scheduler watchdog)"
check "scheduler uid" "$uid" "$(report scheduler uid)"
check "scheduler CapEff" 0000000000000000 "$(report scheduler CapEff)"
check "scheduler CapBnd" 0000000000000000 "$(report scheduler CapBnd)"
check "scheduler NoNewPrivs" 1 "$(report scheduler NoNewPrivs)"
check "status" "probe up with 5 sockets" "$(ct systemctl show -P StatusText cluster-scheduler.service)"
check "control socket" "660 root cluster-ai" "$(ct stat -c '%a %U %G' /run/cluster-ai/scheduler.sock)"
check "scheduler state dir" "700 cluster-ai" "$(ct stat -c '%a %U' $statedir/scheduler)"

echo "== scheduler: reload and stop"
# The probe does not handle SIGHUP and dies of it: the point is that ExecReload= runs.
ct systemctl reload cluster-scheduler.service
check "reload" 0 "$?"
# Sockets first: a connection still queued on one would start the service again.
ct systemctl stop cluster-scheduler.socket cluster-scheduler-control.socket \
        cluster-scheduler-http.socket cluster-scheduler-ollama.socket cluster-scheduler-chat.socket
ct systemctl stop cluster-scheduler.service 2>/dev/null
check "scheduler stopped" inactive "$(ct systemctl is-active cluster-scheduler.service)"

echo "== agent"
ct systemctl enable --now cluster-agent.service >/dev/null 2>&1
check "agent" active "$(ct systemctl is-active cluster-agent.service)"
for _ in $(seq 50); do ct grep -q '^end' "$statedir/agent/report" 2>/dev/null && break; sleep 0.1; done
check "agent uid" "$uid" "$(report agent uid)"
# CAP_CHOWN 0, CAP_FOWNER 3, CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7, CAP_PERFMON 38, CAP_BPF 39
check "agent CapAmb" 000000c0000000e9 "$(report agent CapAmb)"
check "agent CapBnd" 000000c0000000e9 "$(report agent CapBnd)"
check "agent NoNewPrivs" 1 "$(report agent NoNewPrivs)"
check "agent fds" 0 "$(report agent fds)"
check "agent watchdog" 30000000 "$(report agent watchdog)"
check "agent bpf map with CAP_BPF" ok "$(report agent bpf)"
check "agent delegated cgroup" ok "$(report agent cgroup.mkdir)"
check "agent chown to task user" ok "$(report agent chown)"
check "agent writes /etc" "Read-only file system" "$(report agent write.etc)"
check "agent state dir" "711 cluster-ai" "$(ct stat -c '%a %U' $statedir/agent)"
ct systemctl stop cluster-agent.service
check "agent stopped" inactive "$(ct systemctl is-active cluster-agent.service)"

if [ -n "$scheduler" ] && [ -n "$agent" ] && [ -n "$cli" ]; then
        echo "== the real daemons"
        ct systemctl disable --now cluster-agent.service >/dev/null 2>&1
        ct sh -c "rm -rf $statedir/scheduler/* $statedir/agent/*"
        cp "$scheduler" "$croot$bindir/cluster-scheduler"
        cp "$agent" "$croot$bindir/cluster-agent"
        cp "$cli" "$croot$bindir/cluster-ai"
        mkdir -p "$croot$pkgsysconfdir"
        # The shipped files, with the two settings a LAN without mDNS or tokens needs.
        sed 's/^#auto_approve: false$/auto_approve: true/' "$configdir/scheduler.yaml" \
                >"$croot$pkgsysconfdir/scheduler.yaml"
        sed 's/^#scheduler: ""$/scheduler: "127.0.0.1:8786"/' "$configdir/agent.yaml" \
                >"$croot$pkgsysconfdir/agent.yaml"
        ct systemctl start cluster-scheduler.socket
        out=$(ct "$bindir/cluster-ai" status 2>&1)
        check "cluster-ai status through the activated scheduler" 0 "$?"
        check "scheduler" active "$(ct systemctl is-active cluster-scheduler.service)"
        ct systemctl start cluster-agent.service
        for _ in $(seq 100); do
                ct "$bindir/cluster-ai" workers 2>/dev/null | grep -q ' ready ' && break
                sleep 0.1
        done
        check "agent joined" 1 "$(ct "$bindir/cluster-ai" workers 2>/dev/null | grep -c ' ready ')"
        out=$(ct timeout 30 "$bindir/cluster-ai" run -- sh -c \
                'id -un; grep -E "^Cap(Eff|Prm|Amb):" /proc/self/status' 2>&1)
        check "task ran" 0 "$?"
        check "task user" cluster-ai-task "$(sed -n 1p <<<"$out")"
        for cap in CapPrm CapEff CapAmb; do
                check "task $cap" 0000000000000000 "$(awk -v k="$cap:" '$1 == k { print $2 }' <<<"$out")"
        done
        ct systemctl stop cluster-agent.service cluster-scheduler.socket \
                cluster-scheduler-control.socket cluster-scheduler-http.socket \
                cluster-scheduler-ollama.socket cluster-scheduler-chat.socket
        ct systemctl stop cluster-scheduler.service
fi

if [ $fail -ne 0 ]; then
        echo "--- journal"
        ct journalctl --no-pager -u 'cluster-*' | tail -n 40
fi
exit $fail
