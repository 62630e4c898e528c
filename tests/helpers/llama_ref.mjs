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
//   node llama_ref.mjs MODULE_DIR jobs - < JOBS.json
//       JOBS is [{"file":F,"logits":[TOKENS]?,"greedy":{"n":N,"tokens":[TOKENS]}?},...];
//       prints one line per job: {"logprobs":...,"greedy":...}. Loading the library once
//       for many models keeps the tests fast.
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
let model = null;
let nVocab = 0;

async function open(f) {
    model = await llama.loadModel({ modelPath: f, gpuLayers: 0, useMmap: true });
    nVocab = model.tokens.vocabularySize ?? model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length;
}

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

async function logits(tokens) {
    const { context, res } = await evalPositions(tokens, () => true);
    const lp = res.map((r) => logprobsOf(r.next.probabilities, nVocab));
    await context.dispose();
    return { n_vocab: nVocab, logprobs: lp };
}

async function greedy(n, tokens) {
    const { context, seq, res } = await evalPositions(tokens, (i) => i === tokens.length - 1);
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
    await context.dispose();
    return { tokens: gen };
}

if (cmd === "jobs") {
    let input = "";
    for await (const chunk of process.stdin)
        input += chunk;
    for (const job of JSON.parse(input)) {
        await open(job.file);
        const r = {};
        if (job.logits)
            r.logprobs = (await logits(job.logits)).logprobs;
        if (job.greedy)
            r.greedy = (await greedy(job.greedy.n, job.greedy.tokens)).tokens;
        if (job.tokenize)
            r.tokenize = job.tokenize.map((t) => Array.from(model.tokenize(t, true)));
        out(r);
        await model.dispose();
    }
} else {
    await open(file);
    if (cmd === "logits") {
        out(await logits(rest.map(Number)));
    } else if (cmd === "greedy") {
        out(await greedy(Number(rest[0]), rest.slice(1).map(Number)));
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
}
await llama.dispose();
