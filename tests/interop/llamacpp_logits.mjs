// Dumps what a real llama.cpp (node-llama-cpp 3.22.1, CPU, F32 KV cache) makes of a text: the token ids of
// its tokenizer (BOS first) and the logits at every position, evaluated in non-overlapping windows of
// WINDOW tokens (fresh cache per window, flash attention off), as raw little-endian int32 and float32 files.
//   node llamacpp_logits.mjs MODEL.gguf TEXT_FILE MAX_TOKENS WINDOW TOKENS_OUT LOGITS_OUT
import {getLlama} from "node-llama-cpp";
import {readFileSync, writeFileSync} from "node:fs";

const [modelPath, textPath, maxTokensArg, windowArg, tokensOut, logitsOut] = process.argv.slice(2);
const maxTokens = Number(maxTokensArg), window = Number(windowArg);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
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
console.log(JSON.stringify({model: modelPath, tokens: tokens.length, vocab, window}));
process.exit(0);
