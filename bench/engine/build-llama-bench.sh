#!/usr/bin/env bash
# Builds llama-bench from the llama.cpp source that the npm package node-llama-cpp ships
# (llama/gitRelease.bundle), in a cache outside the source tree. Nothing is downloaded
# beyond the npm package itself (installed with its binary download skipped).
#
#   bench/engine/build-llama-bench.sh        prints the path of llama-bench
set -euo pipefail

NLC_VERSION=3.21.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cluster-ai"
prefix="$cache/node-llama-cpp"
bundle="$prefix/node_modules/node-llama-cpp/llama/gitRelease.bundle"
src="$cache/llama.cpp/src"
bin="$src/build/bin/llama-bench"

if [ ! -f "$bundle" ]; then
        mkdir -p "$prefix"
        NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --prefix "$prefix" \
                "node-llama-cpp@$NLC_VERSION" >&2
fi
if [ ! -x "$bin" ]; then
        rm -rf "$src"
        git clone -q "$bundle" "$src"
        cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
                -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
        cmake --build "$src/build" --target llama-bench -j"$(nproc)" >&2
fi
echo "$bin"
