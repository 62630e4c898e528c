// SPDX-License-Identifier: GPL-2.0-or-later
// Renders chat templates with a real Jinja implementation (@huggingface/jinja, which
// node-llama-cpp depends on), to compare with our renderer.
//
//   node render_jinja.mjs < cases.json > outputs.json
//
// input:  [{"template": "...", "messages": [{"role": ..., "content": ...}],
//           "add_generation_prompt": bool, "bos_token": "...", "eos_token": "..."}, ...]
// output: ["rendered" or {"error": "..."}, ...]
// NODE_LLAMA_CPP_DIR names the directory node-llama-cpp was installed into.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_LLAMA_CPP_DIR, "package.json"));
const { Template } = await import(require.resolve("@huggingface/jinja"));

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = cases.map((c) => {
    try {
        return new Template(c.template).render({
            messages: c.messages,
            add_generation_prompt: c.add_generation_prompt,
            bos_token: c.bos_token,
            eos_token: c.eos_token,
        });
    } catch (e) {
        return { error: String(e) };
    }
});
process.stdout.write(JSON.stringify(out) + "\n");
