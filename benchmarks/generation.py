"""Generation throughput of the backends, in one run: hf one request at a time, hf batched, vLLM.

    python benchmarks/generation.py --model smollm2-135m-instruct   # ~3 min on a 2-core CPU
    python benchmarks/generation.py --model tiny

Throughput = generated (non-pad) tokens / wall seconds of the generate calls; vLLM's engine start is
reported separately, not counted. All rows answer the same prompts greedily with the same token
budget, so their ratios compare like with like. Results are merged into
benchmarks/results/generation.json under ``MODEL/DTYPE``, with the CPU capability and the resolved dtype
(``--dtype float32`` on a CPU with native bf16 measures what a CPU without it gets).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "generation.json"
PROMPTS = Path(__file__).resolve().parents[1] / "configs" / "data" / "prompts_sample.jsonl"


def _timed(generator, requests, params) -> dict:
    started = time.perf_counter()
    outputs = generator.generate(requests, params)
    seconds = time.perf_counter() - started
    tokens = sum(len(c.token_ids) for samples in outputs for c in samples)
    return {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="tiny | smollm2-135m-instruct | a path")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 only where native) | float32 | bfloat16")
    args = parser.parse_args()

    import torch

    from musc_ecd.config import load_config
    from musc_ecd.models import SamplingParams, create_generator, load_model
    from musc_ecd.models.backend_choice import vllm_installed
    from musc_ecd.models.hf_backend import HFGenerator

    lines = PROMPTS.read_text().splitlines()
    texts = [json.loads(line)["prompt"] for line in lines][: args.prompts]
    requests = [[{"role": "user", "content": t}] for t in texts]
    # min_new_tokens is not part of our contract, so EOS may end answers early; every row answers the
    # same prompts greedily, hence generates the same tokens, and tokens/s stays comparable.
    params = SamplingParams(max_new_tokens=args.max_new_tokens)

    from musc_ecd.models.precision import precision_record

    precision = precision_record(args.dtype)  # what `auto` resolves to on this machine, and why
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    rows: dict[str, dict] = {}
    one = HFGenerator(model, tokenizer, args.model, batch_size=1, show_progress=False)
    rows["hf_one_at_a_time"] = {"batch_size": 1, **_timed(one, requests, params)}
    batched = HFGenerator(model, tokenizer, args.model, batch_size=args.batch_size, show_progress=False)
    rows[f"hf_batched_{args.batch_size}"] = {"batch_size": args.batch_size, **_timed(batched, requests, params)}
    del model

    if not args.skip_vllm and vllm_installed():
        cfg = load_config(None, ["generation.backend=vllm", "generation.vllm.max_model_len=2048",
                                 f"model.dtype={args.dtype}"])
        started = time.perf_counter()
        vllm_generator = create_generator(args.model, cfg)
        vllm_generator.show_progress = False
        start_s = round(time.perf_counter() - started, 1)
        rows["vllm"] = {"engine_start_s": start_s, **_timed(vllm_generator, requests, params)}

    hf_batched = rows[f"hf_batched_{args.batch_size}"]["tokens_per_s"]
    ratios = {"hf_batched_vs_one_at_a_time": round(hf_batched / rows["hf_one_at_a_time"]["tokens_per_s"], 2)}
    if "vllm" in rows:
        ratios["vllm_vs_hf_batched"] = round(rows["vllm"]["tokens_per_s"] / hf_batched, 2)
    result = {
        "model": args.model,
        "prompts": len(requests),
        "max_new_tokens": args.max_new_tokens,
        "dtype": precision["dtype"],
        "precision": precision,
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores, {platform.machine()})",
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "ratios": ratios,
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
    }
    everything = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    everything[f"{args.model}/{precision['dtype']}"] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(everything, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":  # guard required: vLLM starts worker processes
    main()
