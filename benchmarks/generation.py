"""Generation engines side by side on this CPU: transformers, the vLLM CPU build, CTranslate2 and OpenVINO.

    python benchmarks/generation.py                                  # every engine and precision installed
    python benchmarks/generation.py --engines ct2,hf --precisions fp32 --batches 16,64

The same prompts for every row: IFEval's first 64 (the first 256 for batch 256), with the model's chat
template, greedy, ``--max-new-tokens`` (256) new tokens. Each engine and precision runs in its own process,
so its peak RSS is its own (``os.wait4``). Per row: generated tokens/s (generated tokens / wall seconds of
the generate calls), prompt tokens/s (the same prompts with one new token: prefill), engine start (load of an
already converted model), conversion time (once per model; cached afterwards by the backend), peak RSS, and
the share of the decode roofline at that batch (``cpu_roofline.py``: every linear layer at the best fp32 rate
torch or OpenVINO reaches on its shape with that many rows, or the weights read once a step at the measured
memory bandwidth, whichever is slower).
Faithfulness: per fp32 engine, the share of the first 64 prompts whose first 128 answer tokens equal
transformers' fp32 ones; per int8 row, the same against that engine's fp32.

int8 per engine: transformers = torch dynamic int8 quantization of every Linear; CTranslate2 = ``int8``;
OpenVINO = ``--weight-format int8``; the vLLM CPU build has no int8 for an unquantized checkpoint (skipped).
CTranslate2 and OpenVINO run through the project's backends (``generation.backend=ct2|openvino``), so a row is
what a run gets, conversion into a fresh cache included; OpenVINO's exporter is the environment that
``scripts/env.sh`` builds. Results are merged into benchmarks/results/generation.json under
``engines/MODEL/CPU-CAPABILITY``, with the CPU's model and flags: an engine re-measured at some batches keeps
its rows at the others, every row stamped with the run that measured it, and each ratio to transformers says
whether both rows come from one run (``batch16_same_run_as_hf``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "generation.json"
IFEVAL = HERE.parents[1] / "shared" / "data" / "ifeval" / "input_data.jsonl"
ENGINES = ("hf", "ct2", "vllm", "openvino")
PRECISIONS = ("fp32", "int8")
FAITHFUL_PROMPTS, FAITHFUL_TOKENS = 64, 128
BATCH_KEY = {"ct2": "max_batch_size", "openvino": "max_num_seqs"}
"""The converted engines, and the ``generation.<engine>`` key that sets how many rows decode together."""


# ------------------------------------------------------------------------------------------------------------
# Workers: one engine at one precision, in its own process.


def _timed_rows(generate, prompts: list, batches: list[int], counts: dict, max_new_tokens: int) -> dict:
    """For each batch size: decode throughput, prefill throughput, and the answers of the first 64 prompts."""
    rows = {}
    for batch in batches:
        chosen = prompts[: counts[str(batch)]]
        started = time.perf_counter()
        answers = generate(chosen, batch, max_new_tokens)
        seconds = time.perf_counter() - started
        generated = sum(len(a) for a in answers)
        started = time.perf_counter()
        generate(chosen, batch, 1)
        prefill_s = time.perf_counter() - started
        rows[str(batch)] = {
            "prompts": len(chosen), "generated_tokens": generated, "seconds": round(seconds, 2),
            "generated_tokens_per_s": round(generated / seconds, 1),
            "prompt_tokens_per_s": round(sum(counts["prompt_lengths"][: len(chosen)]) / prefill_s, 1),
            "answers": [a[:FAITHFUL_TOKENS] for a in answers[:FAITHFUL_PROMPTS]],
        }
    return rows


def _project_worker(engine: str, precision: str, spec: dict) -> dict:
    from musc_ecd.config import load_config
    from musc_ecd.models import SamplingParams, create_generator

    overrides = ["model.dtype=float32", f"generation.backend={engine}", "generation.vllm.max_model_len=2048"]
    if engine == "ct2":
        overrides.append(f"generation.ct2.compute_type={'float32' if precision == 'fp32' else 'int8'}")
    if engine == "openvino":
        overrides.append(f"generation.openvino.weight_format={precision}")
    timings = {}
    if engine == "hf":
        import torch

        from musc_ecd.models.hf_backend import HFGenerator
        from musc_ecd.models.loading import load_model

        started = time.perf_counter()
        model, tokenizer = load_model(spec["model"], dtype="float32", device="cpu")
        timings["engine_start_s"] = round(time.perf_counter() - started, 2)
        if precision == "int8":
            started = time.perf_counter()
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            timings["conversion_s"] = round(time.perf_counter() - started, 2)

        def build(batch):
            return HFGenerator(model, tokenizer, spec["model"], batch_size=batch, show_progress=False)
    elif engine in BATCH_KEY:  # a converted engine: the first build converts into a fresh cache, the second loads
        os.environ["MUSC_ECD_CACHE"] = tempfile.mkdtemp(prefix=f"bench-{engine}-")
        for name in ("models",):  # the source model itself is not reconverted: link the project's cache
            (Path(os.environ["MUSC_ECD_CACHE"]) / name).symlink_to(Path(spec["cache"]) / name)
        cfg = load_config(None, overrides)
        started = time.perf_counter()
        create_generator(spec["model"], cfg).close()
        first = time.perf_counter() - started
        generators = {}

        def build(batch):
            from musc_ecd.config import from_dict, to_dict

            if batch not in generators:
                for old in generators.values():
                    old.close()
                generators.clear()
                tree = to_dict(cfg)
                tree["generation"][engine][BATCH_KEY[engine]] = batch
                started = time.perf_counter()
                generators[batch] = create_generator(spec["model"], from_dict(tree))
                timings.setdefault("engine_start_s", round(time.perf_counter() - started, 2))
                timings.setdefault("conversion_s", round(first - timings["engine_start_s"], 2))
                generators[batch].show_progress = False
            return generators[batch]
    else:  # vllm: one engine per batch size (its max_num_seqs); the first start is the one reported
        generators = {}

        def build(batch):
            if batch not in generators:
                for old in generators.values():
                    old.close()
                generators.clear()
                started = time.perf_counter()
                generators[batch] = create_generator(spec["model"],
                                                     load_config(None, [*overrides,
                                                                        f"generation.vllm.max_num_seqs={batch}"]))
                timings.setdefault("engine_start_s", round(time.perf_counter() - started, 2))
                generators[batch].show_progress = False
            return generators[batch]

    def generate(prompts, batch, max_new_tokens):
        outputs = build(batch).generate([[{"role": "user", "content": p}] for p in prompts],
                                        SamplingParams(max_new_tokens=max_new_tokens))
        return [list(samples[0].token_ids) for samples in outputs]

    rows = _timed_rows(generate, spec["prompts"], spec["batches"], spec["counts"], spec["max_new_tokens"])
    return {**timings, "rows": rows}


# ------------------------------------------------------------------------------------------------------------
# The parent: prompts, roofline, one child per engine and precision, the comparison.


def _run_child(python: str, engine: str, precision: str, spec_file: Path) -> dict:
    out = spec_file.with_name(f"{engine}-{precision}.json")
    process = subprocess.Popen([python, __file__, "--worker", engine, "--precision", precision,
                                "--spec", str(spec_file), "--out", str(out)])
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0 or not out.is_file():
        return {"error": f"worker exited with status {status}"}
    return {**json.loads(out.read_text()), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def _agreement(answers: list, reference: list) -> float:
    return round(sum(a == r for a, r in zip(answers, reference, strict=True)) / len(reference), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--batches", default="16,64,256")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--prompts", type=int, default=64, help="prompts per row (batches above it use as many)")
    for internal in ("--worker", "--precision", "--spec", "--out"):  # how the parent calls a child
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        result = _project_worker(args.worker, args.precision, spec)
        Path(args.out).write_text(json.dumps(result))
        return

    from cpu_roofline import cpu_info, decode_roofline, machine_rates, model_config

    from musc_ecd.models.backend_choice import ct2_installed, openvino_usable, vllm_installed
    from musc_ecd.models.generator import encode_chat
    from musc_ecd.models.loading import cache_dir, resolve_model_path

    batches = [int(b) for b in args.batches.split(",")]
    texts = [json.loads(line)["prompt"] for line in IFEVAL.read_text().splitlines()][: max(args.prompts, *batches)]
    model_dir = resolve_model_path(args.model)
    from transformers import AutoTokenizer

    from musc_ecd.models.conversion import eos_ids_of

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt_ids = [encode_chat(tokenizer, [{"role": "user", "content": t}]) for t in texts]
    counts = {str(b): max(args.prompts, b) for b in batches}
    counts["prompt_lengths"] = [len(ids) for ids in prompt_ids]
    spec = {"model": args.model, "model_dir": str(model_dir), "cache": str(cache_dir()), "prompts": texts,
            "prompt_ids": prompt_ids, "batches": batches, "counts": counts, "max_new_tokens": args.max_new_tokens,
            "eos_ids": eos_ids_of(model_dir, tokenizer)}
    machine = cpu_info()
    config = model_config(model_dir)
    rates = machine_rates()
    # every batch a row may hold, so rows merged from earlier runs are divided by today's roofline too
    roofline = {str(b): decode_roofline(config, b, rates) for b in sorted({16, 64, 256, *batches})}
    available = {"hf": True, "ct2": ct2_installed(), "vllm": vllm_installed(), "openvino": openvino_usable()}

    key = f"engines/{args.model}/{machine['cpu_capability']}"
    everything = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    result = everything.get(key, {})
    measured_at = time.strftime("%Y-%m-%d %H:%M")
    result.update({"model": args.model, "max_new_tokens": args.max_new_tokens, "prompts": "IFEval's first "
                   f"{args.prompts} (first {max(batches)} for batch {max(batches)}), chat template, greedy",
                   **machine, "machine_rates": rates, "roofline": roofline, "measured_at": measured_at})
    engines = result.setdefault("engines", {})
    with tempfile.TemporaryDirectory() as scratch:
        spec_file = Path(scratch) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        for engine in args.engines.split(","):
            for precision in args.precisions.split(","):
                name = f"{engine}/{precision}"
                if not available[engine]:
                    engines[name] = {"skipped": f"{engine} is not installed here"}
                elif engine == "vllm" and precision == "int8":
                    engines[name] = {"skipped": "the vLLM CPU build has no int8 for an unquantized checkpoint"}
                else:
                    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                    measured = _run_child(sys.executable, engine, precision, spec_file)
                    measured["load_average_1m_after"] = round(os.getloadavg()[0], 2)
                    engines[name] = _merged(engines.get(name, {}), measured, measured_at)
    _compare(result)
    everything[key] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(everything, indent=1) + "\n")
    print(json.dumps(_summary(result), indent=1))


def _merged(earlier: dict, measured: dict, measured_at: str) -> dict:
    """This run's rows, each stamped with the run, over the earlier rows of batches this run did not measure.

    A row keeps the time of the run that measured it (rows from before stamping read "unrecorded"), so a merge
    of several runs shows which ratios come from one run and which cross runs, whose load may have differed.
    """
    if "rows" not in measured:
        return measured
    rows = {batch: {**row, "measured_at": measured_at} for batch, row in measured["rows"].items()}
    kept = {batch: {"measured_at": "unrecorded", **row} for batch, row in earlier.get("rows", {}).items()
            if batch not in rows}
    return {**measured, "rows": dict(sorted({**kept, **rows}.items(), key=lambda item: int(item[0])))}


def _compare(result: dict) -> None:
    """Roofline shares, faithfulness, and each engine's best batch against transformers' fp32 at batch 16."""
    engines, roofline = result["engines"], result["roofline"]
    reference = engines.get("hf/fp32", {}).get("rows", {})
    first = next(iter(reference.values()), None)
    for name, entry in engines.items():
        for batch, row in entry.get("rows", {}).items():
            row["roofline_share"] = round(row["generated_tokens_per_s"] / roofline[batch]["tokens_per_s"], 3) \
                if batch in roofline else None
        rows = entry.get("rows", {})
        if not rows:
            continue
        engine, precision = name.split("/")
        own_fp32 = engines.get(f"{engine}/fp32", {}).get("rows", {})
        base = first if precision == "fp32" else next(iter(own_fp32.values()), None)
        if base is not None:
            entry["faithful_share"] = _agreement(next(iter(rows.values()))["answers"], base["answers"])
            entry["faithful_to"] = "hf/fp32" if precision == "fp32" else f"{engine}/fp32"
        best = max(rows, key=lambda b: rows[b]["generated_tokens_per_s"])
        entry["best_batch"] = int(best)
        if reference.get("16"):
            entry["best_vs_hf_fp32_batch16"] = round(rows[best]["generated_tokens_per_s"]
                                                     / reference["16"]["generated_tokens_per_s"], 2)
        if "16" in rows and reference.get("16"):
            entry["batch16_vs_hf_fp32_batch16"] = round(rows["16"]["generated_tokens_per_s"]
                                                        / reference["16"]["generated_tokens_per_s"], 2)
            # a ratio within one run is the one to quote; across runs, the machine's load may have differed
            when = rows["16"].get("measured_at", "unrecorded")
            entry["batch16_same_run_as_hf"] = when != "unrecorded" and when == reference["16"].get("measured_at")


def _summary(result: dict) -> dict:
    table = {}
    for name, entry in result["engines"].items():
        if "rows" not in entry:
            table[name] = entry.get("skipped") or entry.get("error")
            continue
        table[name] = {b: (row["generated_tokens_per_s"], row["roofline_share"], row.get("measured_at", "unrecorded"))
                       for b, row in entry["rows"].items()}
        table[name].update({k: entry.get(k) for k in ("faithful_share", "engine_start_s", "conversion_s",
                                                       "peak_rss_mb", "best_vs_hf_fp32_batch16")})
    return {"cpu": result["cpu_model"], "capability": result["cpu_capability"],
            "tokens/s, roofline share, measured at": table}


if __name__ == "__main__":  # guard required: vLLM starts worker processes
    sys.path.insert(0, str(HERE))
    main()
