// Dumps what a real llama.cpp (node-llama-cpp 3.22.1, CPU, F32 KV cache) makes of a text: the token ids of
// its tokenizer (BOS first) and the logits at every position, evaluated in non-overlapping windows of
// WINDOW tokens (fresh cache per window, flash attention off), as raw little-endian int32 and float32 files.
// With GREEDY_OUT, also the greedy continuation (argmax of the raw logits, GREEDY_STEPS tokens) of the text's
// first PROMPT tokens, as int32: PROMPT, the prompt's ids, then the continuation's.
//   node llamacpp_logits.mjs MODEL.gguf TEXT_FILE MAX_TOKENS WINDOW TOKENS_OUT LOGITS_OUT [GREEDY_OUT [PROMPT [GREEDY_STEPS]]]
// Several models in one process (node and llama.cpp start once), each writing X.tokens, X.logits and X.greedy
// beside X.gguf:
//   node llamacpp_logits.mjs --each TEXT_FILE MAX_TOKENS WINDOW PROMPT GREEDY_STEPS MODEL.gguf...
import {getLlama} from "node-llama-cpp";
import {readFileSync, writeFileSync} from "node:fs";

const args = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});

async function dump(modelPath, textPath, maxTokens, window, tokensOut, logitsOut, greedyOut, promptLength, steps) {
    const model = await llama.loadModel({modelPath});
    const text = readFileSync(textPath, "utf8");
    const tokens = [model.tokens.bos, ...model.tokenize(text, false)].slice(0, maxTokens);
    // The last token of an evaluation comes back through node-llama-cpp's sampling path, whose logits are not
    // the raw ones; every window is therefore evaluated with one extra token whose output is dropped.
    // One thread: llama.cpp's workers spin while they wait, which on a loaded 2-core machine costs more than the
    // second thread gives on a model this small.
    const context = await model.createContext({contextSize: 2 * window, batchSize: 2 * window, threads: 1,
        flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
    const sequence = context.getSequence();
    const maps = [];
    for (let begin = 0; begin < tokens.length; begin += window) {
        await sequence.clearHistory();
        const part = tokens.slice(begin, begin + window);
        const results = await sequence.controlledEvaluate([...part.map((t) => [t, {generateNext: {logits: true}}]), model.tokens.eos]);
        for (const r of results.slice(0, part.length)) maps.push(r.next.logits);
    }
    let vocab = 0;
    for (const m of maps) for (const id of m.keys()) vocab = Math.max(vocab, id + 1);
    writeFileSync(tokensOut, Buffer.from(new Int32Array(tokens).buffer));
    const all = new Float32Array(maps.length * vocab);
    maps.forEach((m, i) => { for (const [id, v] of m) all[i * vocab + id] = v; });
    writeFileSync(logitsOut, Buffer.from(all.buffer));
    const greedy = [];
    if (greedyOut) {
        // Each step evaluates the whole sequence afresh with a dropped extra token after it, for the same
        // reason as above: the raw logits of its last real token, of which we take the first largest.
        const prompt = tokens.slice(0, promptLength);
        for (let step = 0; step < steps; ++step) {
            await sequence.clearHistory();
            const sequenceTokens = [...prompt, ...greedy];
            const last = sequenceTokens.length - 1;
            const items = sequenceTokens.map((t, i) => (i === last ? [t, {generateNext: {logits: true}}] : t));
            const results = await sequence.controlledEvaluate([...items, model.tokens.eos]);
            let best = -1, bestValue = -Infinity;
            for (const [id, v] of [...results[last].next.logits.entries()].sort((a, b) => a[0] - b[0]))
                if (v > bestValue) best = id, bestValue = v;
            greedy.push(best);
        }
        writeFileSync(greedyOut, Buffer.from(new Int32Array([prompt.length, ...prompt, ...greedy]).buffer));
    }
    console.log(JSON.stringify({model: modelPath, tokens: tokens.length, vocab, window, greedy}));
    await context.dispose();
    await model.dispose();
}

if (args[0] === "--each") {
    const [, textPath, maxTokens, window, prompt, steps, ...models] = args;
    for (const m of models) {
        const stem = m.replace(/\.gguf$/, "");
        await dump(m, textPath, Number(maxTokens), Number(window), `${stem}.tokens`, `${stem}.logits`, `${stem}.greedy`, Number(prompt),
            Number(steps));
    }
} else {
    const [modelPath, textPath, maxTokens, window, tokensOut, logitsOut, greedyOut, prompt, steps] = args;
    await dump(modelPath, textPath, Number(maxTokens), Number(window), tokensOut, logitsOut, greedyOut, Number(prompt ?? 8),
        Number(steps ?? 8));
}
process.exit(0);
