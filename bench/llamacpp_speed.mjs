// llama.cpp's CPU speed on one GGUF, through node-llama-cpp 3.22.1: prompt processing (P tokens decoded as one
// batch into an empty cache) and generation (G tokens one at a time, greedy, after a Q-token prompt), in
// tokens per second, model load excluded, each the median of R repeats after a warm-up. Prints one JSON
// line; on failure one JSON line with "error", and exit status 1.
//   node llamacpp_speed.mjs --model FILE --threads T --prompt P --gen G [--gen-prompt Q=8] [--repeats R=3]
//                           [--vocab V] [--modules DIR] [--serve]
// With --serve it loads and warms up, prints {"ready": true, ...}, then answers each line of its input: "pp"
// with {"pp_seconds": S}, "tg" with {"tg_seconds": S}, until "quit" or the end of its input.
// Prompts are BOS followed by ids 3 + (131 i mod (V - 3)): the same ids bench_runtime.cpp feeds our runtime,
// and none of them a control token of a llama2.c-style vocabulary. node-llama-cpp is looked up in --modules,
// then $COGQAT_NODE_MODULES, then tests/interop/node_modules of this repository, then the usual resolution from
// the current directory, so the script runs from any working directory.
import {createRequire} from "node:module";
import {existsSync} from "node:fs";
import {dirname, join, resolve} from "node:path";
import {createInterface} from "node:readline";
import {fileURLToPath, pathToFileURL} from "node:url";

function fail(message) {
    console.log(JSON.stringify({error: message}));
    process.exit(1);
}

function parseArgs(argv) {
    const options = {repeats: 3, vocab: 0, modules: "", genPrompt: 8, serve: false};
    const numeric = new Set(["threads", "prompt", "gen", "genPrompt", "repeats", "vocab"]);
    for (let i = 0; i < argv.length; i += 2) {
        if (argv[i] === "--serve") {
            options.serve = true;
            --i;
            continue;
        }
        const key = argv[i]?.replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
        const value = argv[i + 1];
        if (!key || value === undefined) fail(`expected --option value pairs, got '${argv.slice(i).join(" ")}'`);
        if (!["model", "modules", ...numeric].includes(key)) fail(`unknown option ${argv[i]}`);
        options[key] = numeric.has(key) ? Number(value) : value;
        if (numeric.has(key) && !(Number.isInteger(options[key]) && options[key] >= 0)) fail(`${argv[i]} must be a non-negative integer`);
    }
    if (!options.model) fail("--model is required");
    if (!(options.threads >= 1)) fail("--threads must be at least 1");
    if (!(options.prompt >= 1) || !(options.gen >= 1) || !(options.genPrompt >= 1)) fail("--prompt, --gen and --gen-prompt must be at least 1");
    if (!(options.repeats >= 1)) fail("--repeats must be at least 1");
    return options;
}

async function loadNodeLlamaCpp(explicit) {
    const here = dirname(fileURLToPath(import.meta.url));
    const candidates = [explicit, process.env.COGQAT_NODE_MODULES, join(here, "..", "tests", "interop", "node_modules")].filter(Boolean);
    for (const dir of candidates) {
        const manifest = join(resolve(dir), "node-llama-cpp", "package.json");
        if (!existsSync(manifest)) continue;
        // Resolving from inside the package honours its "exports" map, whatever file its entry point is.
        const entry = createRequire(manifest).resolve("node-llama-cpp");
        return import(pathToFileURL(entry).href);
    }
    try {
        return await import("node-llama-cpp");
    } catch {
        fail(`node-llama-cpp not found (looked in ${candidates.join(", ")} and from ${process.cwd()}); ` +
             "install it with `npm ci` in tests/interop or set COGQAT_NODE_MODULES");
    }
}

function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const options = parseArgs(process.argv.slice(2));
if (!existsSync(options.model)) fail(`no such file: ${options.model}`);
const {getLlama} = await loadNodeLlamaCpp(options.modules);

try {
    // maxThreads 0: the context's thread count is then used as given rather than capped by a shared pool.
    const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});
    const loadStart = performance.now();
    const model = await llama.loadModel({modelPath: options.model, gpuLayers: 0});
    const loadSeconds = (performance.now() - loadStart) / 1000;
    const vocab = options.vocab || model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length || 0;
    if (vocab <= 3) fail("vocabulary size unknown; pass --vocab");
    const bos = model.tokens.bos ?? 1;

    // F32 keys and values and no flash attention: what our runtime does, so both sides do the same work.
    // One batch holds the whole prompt, so prompt processing is a single decode as in llama-bench's pp test.
    const contextSize = Math.max(64, options.prompt, options.genPrompt + options.gen) + 16;
    const context = await model.createContext({contextSize, batchSize: Math.max(options.prompt, 8), threads: options.threads, sequences: 1,
        flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
    const sequence = context.getSequence();

    function promptOf(length) {
        const ids = [bos];
        for (let i = 1; i < length; ++i) ids.push(3 + ((131 * i) % (vocab - 3)));
        return ids;
    }
    const greedy = {generateNext: {token: true, options: {temperature: 0}}};
    // Decodes `ids` into an empty cache as one batch, only the last token's logits requested; returns the
    // seconds it took and the greedy next token.
    async function decodePrompt(ids) {
        await sequence.clearHistory();
        const items = ids.map((t, i) => (i === ids.length - 1 ? [t, greedy] : t));
        const t0 = performance.now();
        const out = await sequence.controlledEvaluate(items);
        const seconds = (performance.now() - t0) / 1000;
        const next = out[ids.length - 1]?.next?.token;
        if (next === undefined) throw new Error("llama.cpp returned no token after the prompt");
        return {seconds, next};
    }
    // G greedy tokens after a short prompt, each fed back: G decodes of one token. evaluate() keeps one
    // sampler for the whole generation, the cheapest per-token path node-llama-cpp has.
    async function generate(ids, gen) {
        const {next} = await decodePrompt(ids);
        const tokens = [next];
        const t0 = performance.now();
        for await (const token of sequence.evaluate([next], {temperature: 0})) {
            tokens.push(token);
            if (tokens.length > gen) break;
        }
        const seconds = (performance.now() - t0) / 1000;
        if (tokens.length !== gen + 1) throw new Error(`llama.cpp stopped after ${tokens.length - 1} of ${gen} generated tokens`);
        return {seconds, tokens};
    }

    const ppPrompt = promptOf(options.prompt), tgPrompt = promptOf(options.genPrompt);
    // The warm-up faults the mapped weights in and lets ggml size its buffers; it is not reported.
    await decodePrompt(ppPrompt);
    await generate(tgPrompt, Math.min(options.gen, 4));
    const release = llama.llamaCppRelease ?? {};
    const about = {model: options.model, threads: options.threads, prompt_tokens: options.prompt, gen_prompt_tokens: options.genPrompt,
        gen_tokens: options.gen, load_seconds: loadSeconds, llama_cpp_release: release.release ?? null, build: llama.buildType};

    if (options.serve) {
        // The caller alternates its own runs with ours, one command per line, so that load from elsewhere
        // on the machine falls on both sides of every pair.
        console.log(JSON.stringify({ready: true, ...about}));
        const lines = createInterface({input: process.stdin, terminal: false});
        for await (const line of lines) {
            const command = line.trim();
            if (command === "pp") console.log(JSON.stringify({pp_seconds: (await decodePrompt(ppPrompt)).seconds}));
            else if (command === "tg") console.log(JSON.stringify({tg_seconds: (await generate(tgPrompt, options.gen)).seconds}));
            else if (command === "quit") break;
            else if (command) console.log(JSON.stringify({error: `unknown command '${command}' (pp, tg, quit)`}));
        }
    } else {
        const pp = [], tg = [];
        let generated = [];
        for (let r = 0; r < options.repeats; ++r) {
            pp.push((await decodePrompt(ppPrompt)).seconds);
            const g = await generate(tgPrompt, options.gen);
            tg.push(g.seconds);
            generated = g.tokens;
        }
        console.log(JSON.stringify({...about, repeats: options.repeats, pp_tokens_per_second: options.prompt / median(pp),
            tg_tokens_per_second: options.gen / median(tg), pp_seconds: pp, tg_seconds: tg, generated: generated.slice(0, 16)}));
    }
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.exit(0);
} catch (e) {
    fail(String(e?.stack ?? e));
}
