#!/usr/bin/env python3
"""How cogqat's time and memory grow with model size, beside llama.cpp's own quantizer (issue 19).

    python3 bench/scale.py --sizes 15M,58M,250M,1.1B --out docs/scale-table.md

For each size it generates a llama-shaped F16 model with random weights (`cogqat convert synthetic`, cached in
the scratch folder, never in the repository) and runs, each under /usr/bin/time -v:

    preset    cogqat quantize M.gguf OUT.gguf --preset q4_k_m
    llamacpp  cogqat_llamacpp_quantize M.gguf OUT.gguf q4_k_m   (llama_model_quantize from node-llama-cpp)
    auto      cogqat quantize M.gguf OUT.gguf --auto --target-bpw 4.8
    eval      cogqat eval (the preset's output, else M.gguf) on --eval-tokens tokens of a text
    qat       the --qat-command template ({cogqat}, {model}, {out}, {threads}, {scratch} are filled in)

and reports wall time, user+system CPU time, peak RSS ("Maximum resident set size") and peak anonymous RSS
(RssAnon of /proc/PID/status sampled every 0.2 s: the memory the command allocated, without the mapped input
file), the preset's ratios to llama.cpp, and per command the exponent b of time ~ parameters^b fitted by least
squares on log-log over the sizes that ran. It writes the markdown table (--out, else standard output) and the
same figures as JSON (--json, default: --out with .json). A command that fails gives a row "failed: <its
first error line>", one that runs out of --timeout-min a row "timed out", and the script goes on.

`--self-test` checks the parsing, the fit and the shapes' parameter counts without running anything.
Standard library only; Linux (/proc, /usr/bin/time).
"""

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

COMMANDS = ["preset", "llamacpp", "auto", "eval", "qat"]
DEFAULT_COMMANDS = "preset,llamacpp,auto,eval"
DEFAULT_QAT = "{cogqat} qat {model} {out} --preset q4_0 --blockwise --threads {threads} --quiet"
VOCAB = 32000
CONTEXT = 2048

# Llama-shaped models named by their size: dim, ffn, layers, heads, kv heads (vocabulary 32000, output.weight
# untied, as `convert synthetic` writes them). 58M and 1.1B are the shapes issue 19 names (1.1B is TinyLlama's,
# 1,100,048,384 parameters); 15M and 250M keep llama's proportions (ffn about 2.7 x dim, head size 32 to 64,
# grouped-query attention at 250M as at 1.1B).
SHAPES = {
    "15M": dict(dim=192, ffn=512, layers=6, heads=6, kv_heads=6),
    "58M": dict(dim=512, ffn=1408, layers=8, heads=8, kv_heads=8),
    "250M": dict(dim=1024, ffn=2816, layers=16, heads=16, kv_heads=4),
    "1.1B": dict(dim=2048, ffn=5632, layers=22, heads=32, kv_heads=4),
}


def parameter_count(shape, vocab=VOCAB):
    """Weights of the llama model `convert synthetic` writes: embeddings, output, norms, attention, SwiGLU."""
    d, f, n = shape["dim"], shape["ffn"], shape["layers"]
    kv_dim = d // shape["heads"] * shape["kv_heads"]
    per_layer = 2 * d + 2 * d * d + 2 * d * kv_dim + 3 * d * f
    return 2 * vocab * d + d + n * per_layer


def parse_sizes(text):
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SHAPES]
    if unknown or not sizes:
        raise ValueError("unknown size(s) %s: choose from %s" % (", ".join(unknown) or "(none)", ",".join(SHAPES)))
    return sizes


def parse_commands(text):
    commands = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown or not commands:
        raise ValueError("unknown command(s) %s: choose from %s" % (", ".join(unknown) or "(none)", ",".join(COMMANDS)))
    return commands


def parse_clock(text):
    """/usr/bin/time's elapsed time, h:mm:ss or m:ss.ss, in seconds."""
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_time_v(text):
    """Wall seconds, CPU seconds (user + system), peak RSS in kB and the exit status from `time -v`'s report."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key.startswith("Elapsed (wall clock) time"):
            found["wall_s"] = parse_clock(value)
        elif key == "User time (seconds)":
            found["user_s"] = float(value)
        elif key == "System time (seconds)":
            found["sys_s"] = float(value)
        elif key == "Maximum resident set size (kbytes)":
            found["max_rss_kb"] = int(value)
        elif key == "Exit status":
            found["exit_status"] = int(value)
    if not {"wall_s", "user_s", "sys_s", "max_rss_kb"} <= found.keys():
        raise ValueError("not a /usr/bin/time -v report: " + (text.strip().splitlines() or ["(empty)"])[-1])
    found["cpu_s"] = found.pop("user_s") + found.pop("sys_s")
    return found


def rss_anon_kb(status_text):
    """RssAnon of a /proc/PID/status text, in kB (None when the kernel does not report it)."""
    for line in status_text.splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return None


def fit_exponent(points):
    """b of y = a * x^b by least squares on log-log over (x, y) pairs with x, y > 0; None under two sizes."""
    logs = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len({lx for lx, _ in logs}) < 2:
        return None
    mx = sum(lx for lx, _ in logs) / len(logs)
    my = sum(ly for _, ly in logs) / len(logs)
    sxx = sum((lx - mx) ** 2 for lx, _ in logs)
    sxy = sum((lx - mx) * (ly - my) for lx, ly in logs)
    return sxy / sxx


def first_error_line(stderr_text, program):
    """The line that says why a command failed: its own error line if there is one, else the first line."""
    lines = [l.strip() for l in stderr_text.splitlines() if l.strip()]
    for line in lines:
        lowered = line.lower()
        if lowered.startswith(program.lower() + ":") or lowered.startswith("error") or "error:" in lowered:
            return line
    return lines[0] if lines else "(no message)"


def children_of(pid):
    """The processes whose parent is `pid` (the command /usr/bin/time started)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    # The name in parentheses may hold spaces: the fields after its last ')' are fixed.
                    fields = f.read().rpartition(")")[2].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def sample_anon(pids):
    """Sum of RssAnon over `pids` in kB; None when none could be read."""
    total = None
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                kb = rss_anon_kb(f.read())
        except OSError:
            continue
        if kb is not None:
            total = (total or 0) + kb
    return total


def run_measured(argv, log_path, timeout_s):
    """Runs argv under /usr/bin/time -v, sampling RssAnon every 0.2 s. Returns a dict: status (ok, failed,
    timed out), the time figures, peak_anon_kb and, on failure, the error line."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as report_file:
        report_path = report_file.name
    try:
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(shlex.quote(a) for a in argv) + "\n")
            log.flush()
            process = subprocess.Popen(["/usr/bin/time", "-v", "-o", report_path] + argv, stdout=log, stderr=log,
                                       start_new_session=True)
            peak_anon = None
            start = time.monotonic()
            timed_out = False
            while process.poll() is None:
                kb = sample_anon(children_of(process.pid))
                if kb is not None:
                    peak_anon = max(peak_anon or 0, kb)
                if time.monotonic() - start > timeout_s:
                    timed_out = True
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    break
                try:
                    process.wait(timeout=0.2)  # the next sample, or at once when the command ends
                except subprocess.TimeoutExpired:
                    pass
        result = {"command": " ".join(shlex.quote(a) for a in argv), "peak_anon_kb": peak_anon, "log": log_path}
        if timed_out:
            result.update(status="timed out", message="timed out after %.0f min" % (timeout_s / 60))
            return result
        with open(report_path) as f:
            report = f.read()
        with open(log_path) as f:
            output = f.read()
        try:
            result.update(parse_time_v(report))
        except ValueError as e:
            result.update(status="failed", message="failed: %s" % e)
            return result
        # time's own status is the command's (128 + N when signal N ended it); its report says "Exit status: 0"
        # for a command a signal ended (the kernel's out-of-memory killer's SIGKILL among them).
        signalled = [l.strip() for l in report.splitlines() if l.startswith("Command terminated by signal")]
        if signalled:
            hint = " (out of memory?)" if signalled[0].endswith("signal 9") else ""
            result.update(status="failed", message="failed: %s%s" % (signalled[0].lower(), hint))
        elif process.returncode == 0:
            result["status"] = "ok"
        else:
            status = process.returncode
            program = os.path.basename(argv[0])
            result["status"] = "skipped" if status == 77 else "failed"
            result["message"] = "%s: %s" % (result["status"], first_error_line(output.split("\n", 1)[-1], program))
        return result
    finally:
        os.unlink(report_path)


def write_text(path, tokens):
    """A plain English-like text for eval when none is given: seeded words, about 1.2 bytes per token of the
    byte-level synthetic vocabulary, so `tokens` tokens need at least `tokens` bytes."""
    words = ("the little cat saw a big red ball in the garden and ran to play with her friend who was happy "
             "because the sun was warm and the sky was blue").split()
    state = 12345
    out, size = [], 0
    while size < 2 * tokens:
        state = (state * 1103515245 + 12345) % (1 << 31)
        word = words[state % len(words)]
        out.append(word)
        size += len(word) + 1
    with open(path, "w") as f:
        f.write(" ".join(out) + ".\n")


def merge_results(earlier, latest):
    """Rows of earlier runs, those this run measured again (same size and command) replaced by the new ones."""
    measured = {(r["size"], r["command_name"]) for r in latest}
    return [r for r in earlier if (r["size"], r["command_name"]) not in measured] + latest


def ratio(ours, theirs, key):
    """ours[key] / theirs[key]; None where either is missing or the divisor is 0."""
    a, b = ours.get(key), theirs.get(key)
    return a / b if a is not None and b else None


def mb(kb):
    return None if kb is None else kb / 1024.0


def cell(value, digits=1):
    return "–" if value is None else ("%.*f" % (digits, value))


def markdown(results, sizes, commands, meta):
    lines = ["| model | parameters | command | wall s | CPU s | peak RSS MB | peak anon RSS MB | time / llama.cpp | RSS / llama.cpp "
             "| anon RSS / llama.cpp |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        row_of = {r["command_name"]: r for r in results if r["size"] == size}
        for name in commands:
            r = row_of.get(name)
            if r is None:
                continue
            params = "{:,}".format(r["parameters"])
            if r["status"] != "ok":
                lines.append("| %s | %s | %s | %s | | | | | | |" % (size, params, name, r["message"].replace("|", "\\|")))
                continue
            ratios = [None, None, None]
            peer = row_of.get("llamacpp")
            if name == "preset" and peer and peer["status"] == "ok":
                ratios = [ratio(r, peer, key) for key in ("wall_s", "max_rss_kb", "peak_anon_kb")]
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                size, params, name, cell(r["wall_s"], 2), cell(r["cpu_s"], 2), cell(mb(r["max_rss_kb"]), 0),
                cell(mb(r["peak_anon_kb"]), 0), cell(ratios[0], 2), cell(ratios[1], 2), cell(ratios[2], 2)))
    lines.append("")
    lines.append("Fitted exponent b of wall time ~ parameters^b (least squares on log-log over the sizes that ran):")
    lines.append("")
    lines.append("| command | sizes | b (wall time) | b (peak anon RSS) |")
    lines.append("|---|---|---:|---:|")
    for name in commands:
        ok = [r for r in results if r["command_name"] == name and r["status"] == "ok"]
        b_time = fit_exponent([(r["parameters"], r["wall_s"]) for r in ok])
        b_anon = fit_exponent([(r["parameters"], r["peak_anon_kb"]) for r in ok if r["peak_anon_kb"]])
        meta.setdefault("exponents", {})[name] = {"time": b_time, "anon_rss": b_anon, "sizes": [r["size"] for r in ok]}
        lines.append("| %s | %s | %s | %s |" % (name, ", ".join(r["size"] for r in ok) or "–", cell(b_time, 2), cell(b_anon, 2)))
    return "\n".join(lines) + "\n"


def check_peer(peer, scratch):
    """cogqat_llamacpp_quantize's answers to bad input that need no libllama: usage 2, unreadable input 1,
    no library 77 (a skip), and no output file left behind by any of them."""
    out = os.path.join(scratch, "out.gguf")
    model = os.path.join(scratch, "model.gguf")
    with open(model, "wb") as f:
        f.write(b"GGUF")
    empty = os.path.join(scratch, "no-library")
    os.makedirs(empty)
    environment = dict(os.environ, COGQAT_GGML_DIR=empty)
    cases = [([], 2, "expected IN.gguf OUT.gguf"), ([model, out, "q5_k"], 2, "unknown type 'q5_k'"),
             ([model, out, "--threads", "0"], 2, "--threads '0'"), ([model, out, "--threads"], 2, "--threads needs a value"),
             ([os.path.join(scratch, "absent.gguf"), out], 1, "cannot read"), ([model, model], 1, "is IN.gguf"),
             ([model, out, "q8_0", "--threads", "2"], 77, "skipped: no libllama")]
    for arguments, status, words in cases:
        p = subprocess.run([peer] + arguments, env=environment, capture_output=True, text=True, timeout=30)
        assert p.returncode == status and words in p.stderr, (arguments, p.returncode, p.stderr)
        assert not os.path.exists(out), arguments


def self_test(peer=None):
    report = """\tCommand being timed: "true"
\tUser time (seconds): 1.50
\tSystem time (seconds): 0.25
\tPercent of CPU this job got: 99%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.50
\tMaximum resident set size (kbytes): 204800
\tExit status: 3
"""
    t = parse_time_v(report)
    assert abs(t["wall_s"] - 3723.5) < 1e-9 and abs(t["cpu_s"] - 1.75) < 1e-9, t
    assert t["max_rss_kb"] == 204800 and t["exit_status"] == 3, t
    assert parse_clock("0:07.25") == 7.25
    try:
        parse_time_v("Command terminated by signal 9\n")
        raise AssertionError("a report without figures was accepted")
    except ValueError:
        pass
    assert rss_anon_kb("Name:\tx\nRssAnon:\t   12345 kB\nRssFile:\t 9 kB\n") == 12345
    assert rss_anon_kb("Name:\tx\n") is None
    b = fit_exponent([(1e6, 3.0 * 1e6 ** 1.5), (1e7, 3.0 * 1e7 ** 1.5), (1e8, 3.0 * 1e8 ** 1.5)])
    assert abs(b - 1.5) < 1e-9, b
    assert fit_exponent([(1e6, 2.0)]) is None and fit_exponent([(1e6, 2.0), (1e6, 3.0)]) is None
    # TinyLlama-1.1B's published count, and the sizes the others are named for.
    assert parameter_count(SHAPES["1.1B"]) == 1_100_048_384
    for name, target in (("15M", 15e6), ("58M", 58e6), ("250M", 250e6)):
        assert abs(parameter_count(SHAPES[name]) / target - 1) < 0.05, (name, parameter_count(SHAPES[name]))
    assert parse_sizes("15M, 1.1B") == ["15M", "1.1B"]
    assert parse_commands("preset,qat") == ["preset", "qat"]
    for bad, parse in (("15M,3B", parse_sizes), ("preset,nope", parse_commands), ("", parse_sizes)):
        try:
            parse(bad)
            raise AssertionError("accepted " + repr(bad))
        except ValueError:
            pass
    assert first_error_line("progress 1/3\nError: cannot read 'x'\n", "cogqat") == "Error: cannot read 'x'"
    assert first_error_line("tool: bad thing\n", "tool") == "tool: bad thing"
    assert first_error_line("only line\n", "tool") == "only line"
    rows = [dict(size="15M", parameters=10, command_name="preset", status="ok", wall_s=2.0, cpu_s=3.0, max_rss_kb=2048,
                 peak_anon_kb=1024),
            dict(size="15M", parameters=10, command_name="llamacpp", status="ok", wall_s=1.0, cpu_s=1.0, max_rss_kb=1024,
                 peak_anon_kb=512),
            dict(size="15M", parameters=10, command_name="qat", status="failed", message="failed: no --blockwise")]
    table = markdown(rows, ["15M"], ["preset", "llamacpp", "qat"], {})
    assert "| 15M | 10 | preset | 2.00 | 3.00 | 2 | 1 | 2.00 | 2.00 | 2.00 |" in table, table
    assert "| 15M | 10 | qat | failed: no --blockwise | | | | | | |" in table, table
    merged = merge_results(rows, [dict(rows[0], wall_s=5.0), dict(rows[0], size="58M")])
    assert len(merged) == 4 and [r["wall_s"] for r in merged if r["size"] == "15M" and r["command_name"] == "preset"] == [5.0]
    # A real process under the sampler: this interpreter's own anonymous memory is seen.
    with tempfile.TemporaryDirectory() as scratch:
        r = run_measured([sys.executable, "-c", "x = bytearray(64 << 20); import time; time.sleep(0.3)"],
                         os.path.join(scratch, "log"), 30)
        assert r["status"] == "ok" and r["max_rss_kb"] > 60 * 1024 and (r["peak_anon_kb"] or 0) > 60 * 1024, r
        r = run_measured([sys.executable, "-c", "import sys; sys.exit('boom: bad input')"], os.path.join(scratch, "log"), 30)
        assert r["status"] == "failed" and "boom: bad input" in r["message"], r
        r = run_measured([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], os.path.join(scratch, "log"), 30)
        assert r["status"] == "failed" and "signal 9" in r["message"], r
        r = run_measured([sys.executable, "-c", "import time; time.sleep(30)"], os.path.join(scratch, "log"), 0.2)
        assert r["status"] == "timed out", r
        if peer:
            check_peer(peer, scratch)
    print("scale.py self-test passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="15M,58M,250M", help="comma-separated, of " + ",".join(SHAPES) + " (default 15M,58M,250M)")
    parser.add_argument("--commands", default=DEFAULT_COMMANDS, help="comma-separated, of " + ",".join(COMMANDS) + " (default %(default)s)")
    parser.add_argument("--out", help="markdown table to write (default: standard output)")
    parser.add_argument("--json", help="JSON of every figure (default: --out with .json)")
    parser.add_argument("--build", default="build", help="build folder with bin/cogqat and bench/cogqat_llamacpp_quantize")
    parser.add_argument("--scratch", default="/tmp/cogqat-scale", help="models and outputs (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="--threads of every command (default 2)")
    parser.add_argument("--timeout-min", type=float, default=60.0, help="per command (default 60)")
    parser.add_argument("--eval-tokens", type=int, default=4096, help="tokens eval scores (default 4096)")
    parser.add_argument("--text", help="eval's text (default: ../shared TinyStories if present, else a generated one)")
    parser.add_argument("--auto-args", default="--target-bpw 4.8", help="the auto row's options after --auto (default: %(default)s)")
    parser.add_argument("--merge", nargs="*", default=[], metavar="JSON",
                        help="earlier runs' JSON: their rows join the table unless this run (or a later JSON) measures the same size and command")
    parser.add_argument("--report-only", action="store_true", help="run nothing: the table of the --merge reports alone")
    parser.add_argument("--qat-command", default=DEFAULT_QAT, help="the qat row's command template (default: %(default)s)")
    parser.add_argument("--self-test", action="store_true", help="check the parsing and the fit, run no model")
    parser.add_argument("--peer", help="--self-test: also check this cogqat_llamacpp_quantize's answers to bad input")
    args = parser.parse_args()
    if args.self_test:
        self_test(args.peer)
        return 0
    try:
        sizes = parse_sizes(args.sizes)
        commands = parse_commands(args.commands)
    except ValueError as e:
        parser.error(str(e))
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.abspath(args.scratch).startswith(repo + os.sep):
        parser.error("--scratch %s is inside the repository; the models belong outside it" % args.scratch)
    cogqat = os.path.join(args.build, "bin", "cogqat")
    peer = os.path.join(args.build, "bench", "cogqat_llamacpp_quantize")
    for program, needed in ((cogqat, not args.report_only), (peer, "llamacpp" in commands and not args.report_only)):
        if needed and not os.access(program, os.X_OK):
            parser.error("%s not built (cmake --build %s --target %s)" % (
                program, args.build, "cogqat_cli" if program == cogqat else "cogqat_llamacpp_quantize"))
    earlier, earlier_meta = [], []
    for path in args.merge:
        try:
            with open(path) as f:
                report = json.load(f)
            earlier = merge_results(earlier, report["results"])  # a later report's rows replace an earlier one's
            earlier_meta.append(report.get("meta", {}))
        except (OSError, ValueError, KeyError, TypeError) as e:
            parser.error("--merge %s: not a JSON report of this script (%s)" % (path, e))
    if args.report_only:
        sizes, commands = [], []
    os.makedirs(args.scratch, exist_ok=True)
    timeout_s = args.timeout_min * 60
    threads = str(args.threads)

    text = args.text
    if "eval" in commands and not text and not args.report_only:
        shared = os.path.join(repo, "..", "shared", "models", "tinystories-valid", "tinystories_val_part.txt")
        text = shared if os.path.isfile(shared) else os.path.join(args.scratch, "eval-text.txt")
        if text != shared:
            write_text(text, args.eval_tokens)

    results, conversions = [], {}
    for size in sizes:
        shape = SHAPES[size]
        params = parameter_count(shape)
        print("%s: dim %d, ffn %d, %d layers, %d heads (%d kv), vocab %d: %s parameters" % (
            size, shape["dim"], shape["ffn"], shape["layers"], shape["heads"], shape["kv_heads"], VOCAB, "{:,}".format(params)),
            flush=True)
        stem = os.path.join(args.scratch, "synthetic-%s-d%d-f%d-l%d-h%d-k%d" % (
            size, shape["dim"], shape["ffn"], shape["layers"], shape["heads"], shape["kv_heads"]))
        model = stem + ".f16.gguf"
        convert_record = stem + ".convert.json"
        if not (os.path.isfile(model) and os.path.isfile(convert_record)):
            argv = [cogqat, "convert", "synthetic", model, "--type", "f16", "--dim", str(shape["dim"]), "--ffn", str(shape["ffn"]),
                    "--layers", str(shape["layers"]), "--heads", str(shape["heads"]), "--kv-heads", str(shape["kv_heads"]),
                    "--vocab", str(VOCAB), "--context", str(CONTEXT)]
            r = run_measured(argv, stem + ".convert.log", timeout_s)
            if r["status"] != "ok":
                print("  convert: %s (log %s)" % (r["message"], r["log"]), flush=True)
                for name in commands:
                    results.append(dict(size=size, parameters=params, command_name=name, status="failed",
                                        message="no model: convert " + r["message"]))
                continue
            with open(convert_record, "w") as f:
                json.dump(r, f)
        with open(convert_record) as f:
            conversions[size] = json.load(f)
        print("  convert (cached or now): %.1f s, peak RSS %.0f MB" % (conversions[size]["wall_s"], mb(conversions[size]["max_rss_kb"])),
              flush=True)

        preset_out = stem + ".preset-q4_k_m.gguf"
        preset_ok = False  # eval scores the preset's file when this run wrote it, else the F16 model
        for name in commands:
            out = "%s.%s.gguf" % (stem, name)
            if name == "preset":
                argv = [cogqat, "quantize", model, preset_out, "--preset", "q4_k_m", "--threads", threads, "--quiet"]
            elif name == "llamacpp":
                argv = [peer, model, out, "q4_k_m", "--threads", threads]
            elif name == "auto":
                argv = [cogqat, "quantize", model, out, "--auto"] + shlex.split(args.auto_args) + ["--threads", threads, "--quiet"]
            elif name == "eval":
                evaluated = preset_out if preset_ok else model
                argv = [cogqat, "eval", evaluated, "--text", text, "--max-tokens", str(args.eval_tokens), "--ctx", "512",
                        "--threads", threads, "--quiet"]
            else:
                filled = args.qat_command.format(cogqat=shlex.quote(cogqat), model=shlex.quote(model), out=shlex.quote(out),
                                                 threads=threads, scratch=shlex.quote(args.scratch))
                argv = shlex.split(filled)
            r = run_measured(argv, "%s.%s.log" % (stem, name), timeout_s)
            r.update(size=size, parameters=params, command_name=name, shape=shape)
            results.append(r)
            preset_ok = preset_ok or (name == "preset" and r["status"] == "ok")
            if r["status"] == "ok":
                print("  %-8s %8.2f s wall %8.2f s CPU  peak RSS %7.0f MB  anon %s MB" % (
                    name, r["wall_s"], r["cpu_s"], mb(r["max_rss_kb"]), cell(mb(r["peak_anon_kb"]), 0)), flush=True)
            else:
                print("  %-8s %s (log %s)" % (name, r["message"], r["log"]), flush=True)
            if name not in ("preset",) and os.path.isfile(out):
                os.unlink(out)  # outputs are not reused; the preset's stays for eval

    meta = {"sizes": sizes, "commands": commands, "threads": args.threads, "eval_tokens": args.eval_tokens, "text": text,
            "auto_args": args.auto_args, "machine": machine(), "conversions": conversions, "merged": args.merge,
            "merged_meta": earlier_meta}
    results = merge_results(earlier, results)
    table = markdown(results, [s for s in SHAPES if any(r["size"] == s for r in results)],
                     [c for c in COMMANDS if any(r["command_name"] == c for r in results)], meta)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    else:
        sys.stdout.write(table)
    json_path = args.json or (os.path.splitext(args.out)[0] + ".json" if args.out else None)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0


def machine():
    """The CPU model and core count, for the record."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores visible" % (name, os.cpu_count() or 0)


if __name__ == "__main__":
    sys.exit(main())
