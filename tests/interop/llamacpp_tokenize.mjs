// What a real llama.cpp's tokenizer (node-llama-cpp 3.22.1, each model's vocabulary alone loaded) makes of each
// string of a JSON array: for each, two lines of space-separated ids, without and with special-token parsing
// (llama_tokenize with add_special false), then two JSON strings: the latter ids detokenized (llama_detokenize),
// without and with special tokens' text. One process for all the models: starting node-llama-cpp is the cost.
//   node llamacpp_tokenize.mjs CORPUS.json MODEL.gguf:OUT.txt...
import {getLlama} from "node-llama-cpp";
import {readFileSync, writeFileSync} from "node:fs";

const [corpusPath, ...jobs] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
for (const job of jobs) {
    const split = job.lastIndexOf(":");
    const [modelPath, outPath] = [job.slice(0, split), job.slice(split + 1)];
    const model = await llama.loadModel({modelPath, vocabOnly: true});
    const lines = [];
    for (const text of corpus) {
        const special = Array.from(model.tokenize(text, true));
        lines.push(Array.from(model.tokenize(text, false)).join(" "));
        lines.push(special.join(" "));
        lines.push(JSON.stringify(model.detokenize(special, false)));
        lines.push(JSON.stringify(model.detokenize(special, true)));
    }
    writeFileSync(outPath, lines.join("\n") + "\n");
    console.log(JSON.stringify({model: modelPath, entries: corpus.length}));
    await model.dispose();
}
process.exit(0);
