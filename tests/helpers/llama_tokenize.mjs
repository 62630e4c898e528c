// SPDX-License-Identifier: GPL-2.0-or-later
// Tokenizes strings with llama.cpp (through the node-llama-cpp package) for comparison.
//
//   node llama_tokenize.mjs VOCAB.gguf < input.json > output.json
//
// input:  {"strings": ["...", ...], "special": true|false, "pieces": N}
// output: {"ids": [[...], ...], "pieces": ["...", ...]}
//   ids    llama_tokenize(text, add_special = false, parse_special = special)
//   pieces for ids 0..N-1 (N optional), llama_detokenize([id], remove_special = false,
//          unparse_special = true) in base64
// NODE_LLAMA_CPP_DIR names the directory node-llama-cpp was installed into (npm --prefix).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const dir = process.env.NODE_LLAMA_CPP_DIR;
if (!dir) {
    console.error("NODE_LLAMA_CPP_DIR is not set");
    process.exit(2);
}
const require = createRequire(path.join(dir, "package.json"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const input = JSON.parse(readFileSync(0, "utf8"));
const llama = await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath: process.argv[2], vocabOnly: true });
const ids = [];
const pieces = [];
for (const s of input.strings ?? [])
    ids.push(Array.from(model.tokenize(s, !!input.special)));
for (let id = 0; id < (input.pieces ?? 0); id++)
    pieces.push(Buffer.from(model.detokenize([id], true)).toString("base64"));
process.stdout.write(JSON.stringify({ ids, pieces }) + "\n");
await model.dispose();
await llama.dispose();
