"""MuSC coarse pair building: pairs per hour on SmolLM2 (CPU), hf and vLLM, and where the time goes.

    python benchmarks/musc_coarse.py                      # 20 seeds per backend, ~10 min on 2 cores
    python benchmarks/musc_coarse.py --seeds 40 --backends hf

The method runs exactly as in ``musc-ecd generate`` (same config defaults, configs/musc_coarse.yaml),
with the generator wrapped in a timer. ``generation_share`` = time inside ``Generator.generate`` / wall
time of the method: the goal is ≥ 0.9 (the method's own Python — parsing, corruption, bookkeeping — must
not be the bottleneck). vLLM's engine start is reported, not counted. Results are merged into
benchmarks/results/musc_coarse.json under the backend's name.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "musc_coarse.json"


class TimedGenerator:
    """Delegates to a Generator and adds up the seconds spent inside ``generate``."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self.calls = 0

    def generate(self, requests, params):
        started = time.perf_counter()
        try:
            return self.inner.generate(requests, params)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def run(backend: str, seeds: int, model: str) -> dict:
    from musc_ecd.config import load_config
    from musc_ecd.items import Item, load_items
    from musc_ecd.methods import musc_coarse
    from musc_ecd.models import create_generator
    from musc_ecd.models.roles import ModelRoles

    cfg = load_config(REPO / "configs" / "musc_coarse.yaml",
                      [f"generation.backend={backend}", f"model.policy={model}", f"data.limit={seeds}",
                       f"data.seeds={REPO / 'configs' / 'data' / 'seeds.jsonl'}"])
    items = [e for e in load_items(cfg.data.seeds, cfg.data.prompt_field, cfg.data.id_field, cfg.data.limit)
             if isinstance(e, Item)]
    started = time.perf_counter()
    generator = TimedGenerator(create_generator(cfg.model.policy, cfg))
    generator.inner.show_progress = False
    engine_start = time.perf_counter() - started
    builder = musc_coarse.build(ModelRoles.of(generator), cfg)
    started = time.perf_counter()
    pairs, rejects = [], []
    for start in range(0, len(items), cfg.store.commit_every):  # chunks as the generate stage makes them
        accepted, rejected = builder(items[start : start + cfg.store.commit_every])
        pairs += accepted
        rejects += rejected
    wall = time.perf_counter() - started
    summary = musc_coarse.summarize(pairs, rejects, cfg)
    return {
        "backend": backend,
        "model": model,
        "seeds": len(items),
        "pairs": len(pairs),
        "wall_s": round(wall, 1),
        "pairs_per_hour": round(len(pairs) / wall * 3600, 1),
        "seeds_per_hour": round(len(items) / wall * 3600, 1),
        "generation_s": round(generator.seconds, 1),
        "generation_share": round(generator.seconds / wall, 4),
        "generate_calls": generator.calls,
        "engine_start_s": round(engine_start, 1),
        "yield_per_stage": summary["yield_per_stage"],
        "operators": summary["operators"],
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--backends", nargs="+", default=["hf", "vllm"])
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for backend in args.backends:
        row = run(backend, args.seeds, args.model)
        results[backend] = row
        print(json.dumps(row, indent=2), flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":  # guard required: vLLM starts worker processes
    main()
