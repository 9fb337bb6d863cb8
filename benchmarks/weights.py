"""Token-weight throughput per scheme on SmolLM2 (CPU), and the cost of ``kl`` over one forward pass.

    python benchmarks/weights.py                 # ~2 min on 2 cores
    python benchmarks/weights.py --pairs 16 --model tiny

Pairs are the shipped sample pairs with a corrupted instruction added (so ``kl``/``bi_kl`` apply).
``kl_vs_forward`` = seconds per pair for ``kl`` / seconds per pair for ``entropy``, i.e. one conditioned
forward pass over each of chosen and rejected plus its per-token signal (goal ≤ 2.2: kl needs two
conditioned passes, and nothing else should cost).
Results go to benchmarks/results/weights.json, keyed by model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "weights.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8, help="responses per forward batch")
    args = parser.parse_args()

    from musc_ecd.config import load_config
    from musc_ecd.models import load_model
    from musc_ecd.store import read_jsonl
    from musc_ecd.weighting import weigh_pairs

    pairs = read_jsonl(REPO / "configs" / "data" / "pairs_sample.jsonl")[: args.pairs]
    for pair in pairs:  # a corrupted instruction: the prompt without its constraint clause
        pair["meta"]["negative_instruction"] = pair["prompt"][0]["content"].split(",")[0].split(".")[0]
    model, tokenizer = load_model(args.model, dtype="float32", device="cpu")
    cfg = load_config(None, [f"model.policy={args.model}"])
    weigh_pairs(pairs[:2], "entropy", model, tokenizer, cfg)  # warm-up
    rows = {}
    for scheme in ("uniform", "edit", "entropy", "pmi", "kl", "bi_kl"):
        timings = []
        for _ in range(3):  # the fastest of three: allocator and cache warm-up hit the first run
            started = time.perf_counter()
            weigh_pairs(pairs, scheme, model, tokenizer, cfg, batch_size=args.batch_size)
            timings.append((time.perf_counter() - started) / len(pairs))
        seconds = min(timings)
        rows[scheme] = {"seconds_per_pair": round(seconds, 4), "pairs_per_second": round(1 / seconds, 2)}
    forward = rows["entropy"]["seconds_per_pair"]  # one conditioned pass over each response
    result = {"model": args.model, "pairs": len(pairs), "batch_size": args.batch_size,
              "one_pass_seconds_per_pair": forward,
              "schemes": rows, "kl_vs_forward": round(rows["kl"]["seconds_per_pair"] / forward, 3),
              "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    everything = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    everything[args.model] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(everything, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
