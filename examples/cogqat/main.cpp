// cogqat: the command-line face of the library. A thin layer: every step is a library call.
//
//   cogqat                                          the default job (import, convert, quantize, report)
//   cogqat convert llama2c MODEL.bin TOKENIZER.bin OUT.gguf [--type f32|f16|bf16]
//   cogqat convert synthetic OUT.gguf [--seed S]
//   cogqat quantize IN.gguf OUT.gguf [--preset NAME|TYPE] [--tensor-type REGEX=TYPE]... [--threads N] [--json FILE]
//   cogqat quantize IN.gguf OUT.gguf --auto [--target-bpw X | --memory-reduction R | --target-bytes N] [--calib self|random|stats] ...
//   cogqat qat IN.gguf OUT.gguf [--preset NAME|TYPE | --auto --target-bpw X] [--steps N] [--batch B] [--lr X] ...
//   cogqat inspect FILE.gguf [--json]
//   cogqat eval MODEL.gguf --text FILE [--ctx N] [--kl-against REF.gguf] [--json]
//   cogqat generate MODEL.gguf [--prompt TEXT] [-n N] [--temp T] [--seed S]
//   cogqat raw quantize|dequantize|survey ...      raw float32 arrays

#include <CLI/CLI.hpp>

#include <iostream>

#include "auto_commands.hpp"
#include "eval_commands.hpp"
#include "model_commands.hpp"
#include "qat_commands.hpp"
#include "raw_commands.hpp"

int main(int argc, char** argv) {
    using namespace cogqat::cli;
    CLI::App app{"cogqat: data-free quantization of language models into GGUF\n"
                 "With no command: imports stories260K (or generates a small model), converts and quantizes it."};
    app.require_subcommand(0, 1);
    std::string out_dir = "cogqat-out";
    unsigned threads = 0;
    app.add_option("--out-dir", out_dir, "Where the default job writes its files");
    app.add_option("--threads,-j", threads, "Threads for the default job (0: all)");

    // raw
    auto* raw = app.add_subcommand("raw", "Quantize and dequantize raw little-endian float32 arrays");
    raw->require_subcommand(1);
    std::string type_name, input, output, reference;
    bool as_json = false;
    auto* raw_q = raw->add_subcommand("quantize", "Quantize IN.f32 into OUT.bin (blocks as GGUF stores them)");
    raw_q->add_option("--type,-t", type_name, "Target type as ggml spells it, e.g. q4_K (case-insensitive)")->required();
    raw_q->add_option("input", input, "Raw little-endian float32 input")->required();
    raw_q->add_option("output", output, "Where to write the blocks")->required();
    raw_q->add_flag("--json", as_json, "Print one machine-readable JSON line");
    auto* raw_d = raw->add_subcommand("dequantize", "Dequantize IN.bin (blocks of TYPE) into OUT.f32");
    raw_d->add_option("--type,-t", type_name, "Type of the blocks, e.g. q4_K (case-insensitive)")->required();
    raw_d->add_option("input", input, "Blocks as GGUF stores them")->required();
    raw_d->add_option("output", output, "Where to write raw little-endian float32 values")->required();
    raw_d->add_option("--reference", reference, "Original float32 values: also report RMSE and max error against them");
    raw_d->add_flag("--json", as_json, "Print one machine-readable JSON line");
    auto* raw_s = raw->add_subcommand("survey", "Quantize one float32 array into every block format and compare the errors");
    raw_s->add_option("input", input, "Raw little-endian float32 input (default: the stories260K weights, or a generated sample)");
    raw_s->add_flag("--json", as_json, "Print one JSON line per format");

    // convert
    auto* convert = app.add_subcommand("convert", "Convert a model into a GGUF");
    convert->require_subcommand(1);
    auto* llama2c = convert->add_subcommand("llama2c", "A llama2.c checkpoint (version 0) and its tokenizer into a llama GGUF");
    std::string model, tokenizer, float_type = "f32";
    llama2c->add_option("model", model, "llama2.c checkpoint, e.g. stories260K.bin")->required();
    llama2c->add_option("tokenizer", tokenizer, "llama2.c tokenizer, e.g. tok512.bin")->required();
    llama2c->add_option("output", output, "GGUF to write")->required();
    llama2c->add_option("--type", float_type, "f32 (default), f16 or bf16");

    auto* synthetic = convert->add_subcommand("synthetic", "Generate a small llama-shaped model with random weights (a test fixture)");
    std::uint64_t seed = 1;
    synthetic->add_option("output", output, "GGUF to write")->required();
    synthetic->add_option("--seed", seed, "Random seed");
    synthetic->add_option("--type", float_type, "f32 (default), f16 or bf16");

    // quantize
    auto* quantize = app.add_subcommand("quantize", "Quantize a GGUF with a mixed-precision policy");
    quantize_arguments qa;
    quantize->add_option("input", qa.input, "GGUF to read (f32, f16, bf16 or already quantized tensors)")->required();
    quantize->add_option("output", qa.output, "GGUF to write")->required();
    quantize->add_option("--preset", qa.preset, "default, q2_k, q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m, or a type (q4_0, q6_K, f16, ...)");
    quantize->add_option("--tensor-type", qa.tensor_types, "REGEX=TYPE for the tensors whose name matches; first matching rule wins")->take_all();
    quantize->add_option("--threads,-j", qa.threads, "Threads (0: all)");
    quantize->add_option("--json", qa.json_file, "Also write the report as JSON to this file");
    quantize->add_flag("--quiet,-q", qa.quiet, "No progress output");
    bool automatic = false;
    auto_arguments aa;
    auto* auto_flag = quantize->add_flag("--auto", automatic, "Data-free: choose a type per tensor from measured sensitivity under a size target");
    auto* bpw = quantize->add_option("--target-bpw", aa.target_bpw, "--auto: average bits per weight of the tensors")->needs(auto_flag);
    auto* reduction = quantize->add_option("--memory-reduction", aa.memory_reduction, "--auto: fraction saved against F16, e.g. 0.75 (the default target)")
                          ->needs(auto_flag);
    auto* bytes = quantize->add_option("--target-bytes", aa.target_bytes, "--auto: the written file's size at most, in bytes")->needs(auto_flag);
    bpw->excludes(reduction)->excludes(bytes);
    reduction->excludes(bytes);
    quantize->add_option("--calib", aa.calib, "--auto: calibration inputs: self (text the model writes itself), random (tokens) or stats (hidden states)")
        ->needs(auto_flag);
    quantize->add_option("--calib-tokens", aa.calib_tokens, "--auto: calibration positions")->needs(auto_flag);
    quantize->add_option("--candidates", aa.candidates, "--auto: the types to consider besides f16 (default: every 32- and 256-value weight type)")
        ->delimiter(',')
        ->needs(auto_flag);
    quantize->add_option("--seed", aa.seed, "--auto: calibration seed")->needs(auto_flag);
    quantize->add_option("--max-kl", aa.max_kl, "--auto: undo a progressive step whose KL exceeds this")->needs(auto_flag);
    quantize->add_option("--accuracy-threshold", aa.accuracy_threshold, "--auto: undo a step whose retention exp(-dNLL) falls below this (default 0.98)")
        ->needs(auto_flag);
    quantize->add_flag("--no-pad", aa.no_pad, "--auto: do not pad the feed-forward width to whole blocks")->needs(auto_flag);
    quantize->add_flag("--no-tie", aa.no_tie, "--auto: keep an output.weight equal to token_embd.weight")->needs(auto_flag);
    quantize->add_flag("--no-gptq", aa.no_gptq, "--auto: ggml's reference rounding instead of the Hessian-aware one")->needs(auto_flag);
    quantize->add_option("--html", aa.html_file, "--auto: also write the report as a self-contained HTML page with charts")->needs(auto_flag);

    // qat
    auto* qat = app.add_subcommand("qat", "Data-free quantization-aware training: distil the model into its quantized self on text it writes itself");
    qat_arguments qt;
    qat->add_option("input", qt.input, "Full-precision llama GGUF (the teacher)")->required();
    qat->add_option("output", qt.output, "GGUF to write")->required();
    qat->add_option("--preset", qt.preset, "Types: a preset (q4_k_m, ...) or one type for every matrix (default q4_0)");
    qat->add_option("--tensor-type", qt.tensor_types, "REGEX=TYPE for the tensors whose name matches; first matching rule wins")->take_all();
    auto* qat_auto = qat->add_flag("--auto", qt.automatic, "Choose the types by measured sensitivity under a size target, then train");
    auto* qbpw = qat->add_option("--target-bpw", qt.target_bpw, "--auto: average bits per weight")->needs(qat_auto);
    auto* qred = qat->add_option("--memory-reduction", qt.memory_reduction, "--auto: fraction saved against F16 (default 0.75)")->needs(qat_auto);
    auto* qbytes = qat->add_option("--target-bytes", qt.target_bytes, "--auto: the file's size at most")->needs(qat_auto);
    qbpw->excludes(qred)->excludes(qbytes);
    qred->excludes(qbytes);
    qat_auto->excludes(qat->get_option("--preset"))->excludes(qat->get_option("--tensor-type"));
    qat->add_option("--steps", qt.config.steps, "Global fine-tuning steps (phase 4)");
    qat->add_option("--steps-per-unit", qt.config.steps_per_unit, "Training steps after each unit (embedding, layer) is quantized (phase 3)");
    qat->add_option("--seq-len", qt.config.sequence_length, "Positions per training sequence");
    qat->add_option("--batch", qt.config.batch, "Sequences per step");
    qat->add_option("--samples", qt.config.samples, "Self-generated training sequences");
    qat->add_option("--lr", qt.config.optimizer.learning_rate, "Peak learning rate of the latent weights, in quantization steps per update");
    qat->add_option("--scale-lr", qt.config.optimizer.scale_learning_rate, "Peak learning rate of the block scales, relative");
    qat->add_option("--warmup", qt.config.optimizer.warmup_steps, "Warm-up steps");
    qat->add_option("--clip", qt.config.optimizer.gradient_clip, "Global gradient-norm clip (0: none)");
    qat->add_option("--temperature", qt.config.temperature, "Distillation temperature T");
    qat->add_option("--kl-weight", qt.config.kl_weight, "Share of the KL term (the rest is cross-entropy on the teacher's tokens)");
    qat->add_option("--accuracy-threshold", qt.config.accuracy_threshold, "Retention exp(-dNLL) the result is judged against");
    qat->add_option("--init", qt.init, "Initial rounding: gptq (Hessian-aware, default) or reference (ggml's)");
    qat->add_option("--seed", qt.config.seed, "Seed of the self-generated data and of the batches");
    qat->add_option("--threads,-j", qt.config.threads, "Threads (0: all)");
    qat->add_option("--checkpoint", qt.checkpoint, "Checkpoint file (default OUT.ckpt); a rerun with the same settings resumes from it");
    qat->add_option("--checkpoint-every", qt.config.checkpoint_every, "Steps between checkpoints");
    qat->add_option("--stop-after", qt.stop_after, "Stop this invocation after N steps, keeping the checkpoint (to split a long run)");
    qat->add_flag("--keep-checkpoint", qt.keep_checkpoint, "Keep the checkpoint after the run completes");
    qat->add_option("--json", qt.json_file, "Also write the report, with the loss curve, as JSON to this file");
    qat->add_option("--html", qt.html_file, "Also write the report as a self-contained HTML page with the loss curve");
    qat->add_flag("--quiet,-q", qt.quiet, "No progress output");

    // inspect
    auto* inspect = app.add_subcommand("inspect", "Show a GGUF's metadata and tensors");
    inspect->add_option("file", input, "GGUF to read")->required();
    inspect->add_flag("--json", as_json, "Print one JSON document");

    // eval
    auto* eval = app.add_subcommand("eval", "Perplexity of a GGUF on a text (and KL / top-1 against a reference)");
    eval_arguments ea;
    eval->add_option("model", ea.model, "GGUF (llama architecture)")->required();
    eval->add_option("--text", ea.text, "UTF-8 text file")->required();
    eval->add_option("--ctx", ea.context, "Window length in tokens (non-overlapping windows, BOS once at the start)");
    eval->add_option("--max-tokens", ea.max_tokens, "Score only the first N tokens of the text (0: all)");
    eval->add_option("--kl-against", ea.kl_against, "Reference GGUF: also report mean KL(reference || model) and top-1 agreement");
    eval->add_option("--threads,-j", ea.threads, "Threads (0: all)");
    eval->add_flag("--float-activations", ea.float_activations, "Decode weights to float instead of quantizing activations as llama.cpp does");
    eval->add_flag("--json", ea.as_json, "One JSON line: ppl, nll, tokens, tokens_per_second (kl, top1)");

    // generate
    auto* gen = app.add_subcommand("generate", "Continue a prompt with a GGUF model");
    generate_arguments ga;
    gen->add_option("model", ga.model, "GGUF (llama architecture)")->required();
    gen->add_option("--prompt,-p", ga.prompt, "Text to continue (default: nothing, start from BOS)");
    gen->add_option("-n", ga.count, "Tokens to generate");
    gen->add_option("--temp", ga.temperature, "Sampling temperature (0: greedy)");
    gen->add_option("--seed", ga.seed, "Sampling seed");
    gen->add_option("--threads,-j", ga.threads, "Threads (0: all)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        if (raw_q->parsed()) return raw_quantize(type_name, input, output, as_json);
        if (raw_d->parsed()) return raw_dequantize(type_name, input, output, reference, as_json);
        if (raw_s->parsed()) return raw_survey(input, as_json);
        if (llama2c->parsed()) return convert_llama2c_command(model, tokenizer, output, float_type);
        if (synthetic->parsed()) return convert_synthetic_command(seed, output, float_type);
        if (quantize->parsed() && automatic) {
            if (!qa.tensor_types.empty() || quantize->count("--preset")) throw cogqat::invalid_argument_error("--auto chooses the types: drop --preset and --tensor-type");
            return auto_quantize_command(qa.input, qa.output, qa.threads, qa.quiet, qa.json_file, aa);
        }
        if (quantize->parsed()) return quantize_command(qa);
        if (qat->parsed()) return qat_command(qt);
        if (inspect->parsed()) return inspect_command(input, as_json);
        if (eval->parsed()) return eval_command(ea);
        if (gen->parsed()) return generate_command(ga);
        return default_job(out_dir, threads);
    } catch (const cogqat::error& e) {
        std::cerr << "cogqat: error: " << e.what() << '\n';
        return 1;
    }
}
