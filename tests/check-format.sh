#!/usr/bin/env bash
# Every C source and header of the project is formatted by the committed .clang-format.
# Usage: check-format.sh SOURCE_ROOT
set -uo pipefail
root=$1
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
cd "$root" || exit 1
bad=0 n=0
while IFS= read -r -d '' f; do
        n=$((n + 1))
        if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
                echo "not formatted: $f (clang-format -i $f)"
                bad=$((bad + 1))
        fi
done < <(find common daemon agent cli engine bpf tests bench -path 'tests/fuzz/corpus' -prune -o \
                \( -name '*.c' -o -name '*.h' \) ! -name 'vmlinux*.h' -print0)
echo "$n files checked, $bad not formatted"
[ "$bad" -eq 0 ]
