"""A live reference model against precomputed reference log-probabilities: the same training run, timed twice.

    python benchmarks/precompute_ref.py --pairs PAIRS.jsonl                  # the main command's recipe
    python benchmarks/precompute_ref.py --pairs PAIRS.jsonl --config C.yaml train.epochs=3

With a live reference every step runs the reference's forward pass on its batch, once per epoch; precomputed
(``train.precompute_ref_log_probs=true``), one pass over the pairs before training computes them all, and the
steps skip it. Over E epochs that saves about (E − 1) reference passes of the data at the cost of one pass
without the step's batching. Which is faster is measured here, not assumed: ``musc-ecd train`` runs the same
config on the same pairs (token weights computed once by ``musc-ecd weights`` and shared) in two fresh run
directories, live first, then precomputed, then live and precomputed again for ``--repeats 2`` (the order
alternates so that drift in the machine's load does not favour one). Per run: wall seconds of the command
(start-up, model load and the precompute pass included), the training loss at every logged step; per mode
the median seconds; and the largest loss difference between the modes at any step — a setting is only a
candidate for the default when the loss is the same. Merged into benchmarks/results/precompute_ref.json
under ``MODEL/CPU-CAPABILITY/DTYPE/epochs=E``, with the CPU's model and flags.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "precompute_ref.json"
MODES = {"live": "false", "precomputed": "true"}


def _musc(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "musc_ecd", *args], cwd=REPO, check=True)
    return time.perf_counter() - started


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    from musc_ecd.layout import RunLayout
    from musc_ecd.store import read_jsonl

    return [(row["step"], row["loss"]) for row in read_jsonl(RunLayout(run_dir).metrics)
            if "loss" in row and "step" in row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="a pairs artifact (JSONL) to train on")
    parser.add_argument("--config", default=str(REPO / "configs" / "quickstart.yaml"))
    parser.add_argument("--repeats", type=int, default=1, help="runs per mode (alternating order)")
    parser.add_argument("overrides", nargs="*", help="config overrides for both modes (e.g. train.epochs=3)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from cpu_roofline import cpu_info

    from musc_ecd.config import load_config
    from musc_ecd.models.precision import resolve_dtype
    from musc_ecd.store import read_jsonl

    pairs = str(Path(args.pairs).resolve())
    cfg = load_config(args.config, [f"train.pairs={pairs}", *args.overrides])
    common = [args.config, f"train.pairs={pairs}", *args.overrides]
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="precompute-ref-") as scratch:
        weights_dir = Path(scratch) / "weights-run"
        if cfg.train.weights != "none":
            _musc("weights", *common, f"run_dir={weights_dir}")
        for repeat in range(args.repeats):
            order = list(MODES) if repeat % 2 == 0 else list(reversed(MODES))
            for mode in order:
                run_dir = Path(scratch) / f"{mode}-{repeat}"
                if (weights_dir / "weights").is_dir():
                    shutil.copytree(weights_dir / "weights", run_dir / "weights")
                seconds = _musc("train", *common, f"run_dir={run_dir}",
                                f"train.precompute_ref_log_probs={MODES[mode]}")
                runs[mode].append({"seconds": round(seconds, 1), "losses": _losses(run_dir)})
    live, precomputed = (runs[mode][0]["losses"] for mode in MODES)
    steps = dict(live)
    differences = [abs(loss - steps[step]) for step, loss in precomputed if step in steps]
    medians = {mode: statistics.median(r["seconds"] for r in runs[mode]) for mode in MODES}
    machine = cpu_info()
    result = {
        **machine, "measured_at": time.strftime("%Y-%m-%d %H:%M"), "config": args.config,
        "overrides": args.overrides, "pairs": pairs, "pair_count": len(read_jsonl(pairs)),
        "epochs": cfg.train.epochs, "weights": cfg.train.weights, "runs": runs, "median_seconds": medians,
        "precomputed_vs_live_time": round(medians["precomputed"] / medians["live"], 3),
        "loss_max_abs_difference": round(max(differences), 6) if differences else None,
        "compared_steps": len(differences),
    }
    key = f"{cfg.model.policy}/{machine['cpu_capability']}/{resolve_dtype(cfg.model.dtype)}/epochs={cfg.train.epochs:g}"
    everything = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    everything[key] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(everything, indent=1) + "\n")
    print(json.dumps({key: {k: result[k] for k in ("median_seconds", "precomputed_vs_live_time",
                                                   "loss_max_abs_difference", "compared_steps")}}, indent=1))


if __name__ == "__main__":
    main()
