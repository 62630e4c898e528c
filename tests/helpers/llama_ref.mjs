// SPDX-License-Identifier: GPL-2.0-or-later
// Reference outputs from llama.cpp (through the npm package node-llama-cpp) for the
// engine's comparison tests. Prints one JSON object on stdout.
//
//   node llama_ref.mjs MODULE_DIR logits FILE.gguf TOKEN...
//       {"n_vocab":V,"logprobs":[[...V...],...]}  log-softmax of every prompt position
//   node llama_ref.mjs MODULE_DIR greedy FILE.gguf N TOKEN...
//       {"tokens":[[id, top2_gap],...]}           N greedy tokens (end of generation ignored)
//   node llama_ref.mjs MODULE_DIR tokenize FILE.gguf TEXT
//       {"tokens":[...]}                          with BOS as the model says, specials parsed
//
// MODULE_DIR is the node_modules directory holding node-llama-cpp. Two threads, CPU only,
// F16 KV cache, no flash attention: the defaults the engine is compared against.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [moduleDir, cmd, file, ...rest] = process.argv.slice(2);
const { getLlama, LlamaLogLevel } = await import(
    pathToFileURL(path.join(moduleDir, "node-llama-cpp", "dist", "index.js")).href);

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error,
                               progressLogs: false });
const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: true });

function out(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

async function evalPositions(tokens, wantNext) {
    const context = await model.createContext({ contextSize: 512, batchSize: 512, threads: 2,
                                                flashAttention: false, sequences: 1 });
    const seq = context.getSequence();
    const items = tokens.map((t, i) => (wantNext(i)
        ? [t, { generateNext: { probabilities: true, token: true, options: { temperature: 0 } } }]
        : t));
    const res = await seq.controlledEvaluate(items);
    return { context, seq, res };
}

function logprobsOf(probs, nVocab) {
    const lp = new Array(nVocab).fill(null);
    for (const [tok, p] of probs)
        lp[tok] = p > 0 ? Math.log(p) : null;
    return lp;
}

function gapOf(probs) {
    let a = 0, b = 0;
    for (const p of probs.values()) {
        if (p > a) { b = a; a = p; } else if (p > b) b = p;
    }
    return b > 0 ? Math.log(a) - Math.log(b) : 1e9;
}

const nVocab = model.tokens.vocabularySize ?? model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length;

if (cmd === "logits") {
    const tokens = rest.map(Number);
    const { res } = await evalPositions(tokens, () => true);
    out({ n_vocab: nVocab, logprobs: res.map((r) => logprobsOf(r.next.probabilities, nVocab)) });
} else if (cmd === "greedy") {
    const n = Number(rest[0]);
    const tokens = rest.slice(1).map(Number);
    const { seq, res } = await evalPositions(tokens, (i) => i === tokens.length - 1);
    let next = res[tokens.length - 1].next;
    const gen = [];
    for (let i = 0; i < n; i++) {
        gen.push([next.token, gapOf(next.probabilities)]);
        if (i === n - 1)
            break;
        const r = await seq.controlledEvaluate([[next.token, { generateNext: {
            probabilities: true, token: true, options: { temperature: 0 } } }]]);
        next = r[0].next;
    }
    out({ tokens: gen });
} else if (cmd === "tokenize") {
    const ids = model.tokenize(rest[0], true);
    const bos = model.tokens.bos;
    const withBos = model.tokens.shouldPrependBosToken && bos != null ? [bos, ...ids] : ids;
    out({ tokens: Array.from(withBos) });
} else {
    console.error("unknown command " + cmd);
    process.exit(2);
}
await model.dispose();
await llama.dispose();
