#!/usr/bin/env bash
# Runs the whole test suite of cluster-ai on a Debian 12 machine:
# installs the build and test packages, builds twice (optimized, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), runs every meson test suite in both
# builds and ends with one summary line. Suites that need root skip without it.
#
#   scripts/test.sh              both builds
#   scripts/test.sh release      one build (release or sanitize)
#   MESON_TEST_ARGS="--suite unit" scripts/test.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh || { echo "installing packages failed" >&2; exit 1; }

# As root, the units are also tested under a real systemd in a container (suite root,
# units-nspawn): it needs a Debian root file system, made once with debootstrap from
# the configured apt mirror (~40 s) and kept in /var/tmp.
if [ "$(id -u)" = 0 ] && [ -z "${CLUSTER_AI_TEST_ROOTFS:-}" ] && command -v debootstrap >/dev/null; then
        rootfs=/var/tmp/cluster-ai-test-rootfs
        if [ ! -x "$rootfs/lib/systemd/systemd" ]; then
                echo "=== making a container root file system for the systemd tests in $rootfs"
                rm -rf "$rootfs.tmp"
                if debootstrap --variant=minbase \
                        --include=systemd,systemd-sysv,dbus,procps,liburing2,libgnutls30,libyaml-0-2,libprotobuf-c1,libsqlite3-0,libjansson4,libbpf1,libelf1 \
                        bookworm "$rootfs.tmp" >"$top/debootstrap.log" 2>&1; then
                        mv "$rootfs.tmp" "$rootfs"
                else
                        echo "debootstrap failed (see debootstrap.log): units-nspawn will skip"
                fi
        fi
        [ -x "$rootfs/lib/systemd/systemd" ] && export CLUSTER_AI_TEST_ROOTFS=$rootfs
fi

configs=("${@:-release}")
[ $# -eq 0 ] && configs=(release sanitize)

total_ok=0 total_fail=0 total_skip=0 status=0
for cfg in "${configs[@]}"; do
        dir="$top/build-$cfg"
        case "$cfg" in
        release)  opts=(-Dbuildtype=release -Dwerror=true) ;;
        sanitize) opts=(-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true) ;;
        *) echo "unknown build '$cfg' (release, sanitize)" >&2; exit 2 ;;
        esac
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" "${opts[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
        fi
        echo "=== build: $cfg"
        ninja -C "$dir" || exit 1
        echo "=== test: $cfg"
        # halt_on_error: a sanitizer report fails the test instead of scrolling by.
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                meson test -C "$dir" --print-errorlogs --num-processes 2 ${MESON_TEST_ARGS:-} || status=1
        # Count results from meson's machine-readable log.
        read -r ok fail skip < <(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = fail = skip = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): ok += 1
    elif r == "SKIP": skip += 1
    else: fail += 1
print(ok, fail, skip)
PY
)
        echo "=== $cfg: $ok passed, $fail failed, $skip skipped"
        total_ok=$((total_ok + ok)) total_fail=$((total_fail + fail)) total_skip=$((total_skip + skip))
done

echo
echo "tests: $total_ok passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ] && [ "$status" -eq 0 ]
