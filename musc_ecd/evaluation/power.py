"""Power of the report's comparison: the smallest difference its paired bootstrap detects, from the base model's
per-prompt results alone (``musc-ecd power``), stated before any trained model is scored.

**Definition.** For one evaluation set and one metric, the *minimum detectable difference* (MDD) is the smallest
net difference d = treated − base such that the report's 95% paired bootstrap interval (``compare``: prompts
resampled jointly, percentile interval) lies wholly on d's side of zero in at least ``power`` (80%) of simulated
treated models. It is found separately for an increase and for a decrease.

**A simulated experiment** draws N prompts with replacement from the base model's scored prompts (the set as a
sample of its population), and makes a treated model of them by flipping the base's verdicts at random:

- The unit is the prompt for prompt-level metrics (its pass/fail) and the instruction for instruction-level ones
  (one verdict); the bootstrap resamples prompts, as the report does, so flips on one prompt move together.
- For an expected net difference d = k/U (U units: prompts or instructions), each failing unit turns passing
  with probability a and each passing unit turns failing with probability b (mirrored for a decrease), so that
  the expected number turned passing is k + h and turned failing h, h = churn·U/2. ``churn`` is the share of
  units that change both ways and cancel: fine-tuning changes many answers, and these discordant units widen
  the interval. churn = 0 is the least discordance any model with that difference can have, so its MDD is a
  lower bound no test on these prompts can beat; the realistic figure is at the churn a trained model shows
  (``observed_churn`` measures it from a base and a trained result).
- The difference observed in a simulated experiment varies around d; the interval is computed on ``resamples``
  bootstrap resamples (the report uses 10,000; 2,000 move the interval's ends by about a tenth of a point).

A known case: at churn 0 a prompt-level interval excludes zero exactly when at least 4 prompts changed
(``(1 − 4/N)^N ≈ e^-4 < 2.5%`` of resamples then miss all of them), and 4 or more changes happen in 80% of
experiments when about 6 are expected (Poisson), so the MDD is 6/N; with churn c the normal approximation gives
d ≈ 2.8·sqrt((c + d)/N).

**Assumptions**: flips are independent of the prompt and of the constraint type (a model that moves whole types
gives clustered flips and wider intervals, so in that respect the MDD is optimistic); the population is the
prompt distribution of the set as scored, every prompt of it; the verdicts are the scorer's, taken as exact.
An MDD of None means no difference up to the largest the base leaves room for reaches that power.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from musc_ecd.errors import DataError
from musc_ecd.evaluation.compare import interval, resample_weights
from musc_ecd.evaluation.ifeval import METRICS, PromptResult
from musc_ecd.layout import RunLayout

POWER = 0.8
CHURNS = (0.0, 0.1, 0.2)
SIMULATIONS = 200
RESAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """One metric's verdicts as units (prompts or instructions) and which prompt each unit belongs to."""

    passed: np.ndarray  # bool per unit
    prompt_of: np.ndarray  # int per unit
    prompts: int
    denominator: np.ndarray  # per prompt: what the metric divides by (1, or the prompt's instructions)


def outcomes(results: list[PromptResult], metric: str) -> Outcomes:
    """The units of ``metric`` (one of IFEval's four) in the base model's per-prompt results."""
    if metric not in METRICS:
        raise DataError(f"unknown metric '{metric}'; expected one of {', '.join(METRICS)}")
    strict = "strict" in metric
    verdicts = [r.strict if strict else r.loose for r in results]
    if metric.startswith("prompt_level"):
        passed = np.array([all(v) for v in verdicts], dtype=bool)
        return Outcomes(passed, np.arange(len(results)), len(results), np.ones(len(results)))
    passed = np.array([ok for v in verdicts for ok in v], dtype=bool)
    prompt_of = np.array([i for i, v in enumerate(verdicts) for _ in v], dtype=int)
    return Outcomes(passed, prompt_of, len(results), np.array([len(v) for v in verdicts], dtype=float))


def detection_rate(units: Outcomes, k: int, churn_half: float, increase: bool, weights: np.ndarray,
                   simulations: int, rng: np.random.Generator) -> float:
    """Share of simulated experiments (module docstring: ``k`` units of net difference expected, ``churn_half``
    each way besides) whose interval lies wholly on the difference's side of zero."""
    passing = np.bincount(units.prompt_of, weights=units.passed.astype(float), minlength=units.prompts)
    failing = units.denominator - passing
    gaining, losing = (failing, passing) if increase else (passing, failing)
    up = (k + churn_half) / gaining.sum()  # probability that a unit on the wrong side turns
    down = churn_half / losing.sum() if losing.sum() else 0.0
    prompts = rng.integers(0, units.prompts, size=(simulations, units.prompts))
    turned = rng.binomial(gaining[prompts].astype(int), up) - rng.binomial(losing[prompts].astype(int), down)
    deltas = turned * (1.0 if increase else -1.0)
    differences = (weights @ deltas.T) / (weights @ units.denominator[prompts].T)  # resamples × simulations
    detected = 0
    for column in differences.T:
        low, high = interval(column)
        detected += low > 0 if increase else high < 0
    return detected / simulations


def minimum_detectable(results: list[PromptResult], metric: str, churn: float = 0.0, *, increase: bool = True,
                       power: float = POWER, simulations: int = SIMULATIONS, resamples: int = RESAMPLES,
                       seed: int = 0) -> float | None:
    """The MDD (module docstring) of ``metric`` on these prompts, as a positive number; None if unreachable."""
    if not results:
        raise DataError("no per-prompt results to compute power from")
    units = outcomes(results, metric)
    total = len(units.passed)
    churn_half = churn * total / 2
    gaining = int((~units.passed).sum() if increase else units.passed.sum())
    losing = total - gaining
    room = int(gaining - churn_half)  # the most units that can turn, less the churn's
    if room < 1 or churn_half > losing:
        return None
    weights = resample_weights(units.prompts, resamples, seed)

    def detected(k: int) -> bool:
        rng = np.random.default_rng([seed, k, int(increase)])
        return detection_rate(units, k, churn_half, increase, weights, simulations, rng) >= power

    if not detected(room):
        return None
    low, high = 0, room  # detected(high) holds; find the smallest such k (detection grows with k)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if detected(middle) else (middle, high)
    return high / total


def observed_churn(base: list[PromptResult], trained: list[PromptResult], metric: str) -> float:
    """The churn of an actual trained model: the share of ``metric``'s units that changed, less the net change
    (the discordant units that cancel), to put into ``minimum_detectable``."""
    by_key = {r.key: r for r in trained}
    if set(by_key) != {r.key for r in base}:
        raise DataError("base and trained results are not on the same prompts")
    a, b = outcomes(base, metric), outcomes([by_key[r.key] for r in base], metric)
    changed = int((a.passed != b.passed).sum())
    net = abs(int(b.passed.sum()) - int(a.passed.sum()))
    return (changed - net) / len(a.passed)


# ----------------------------------------------------------------------------------------------
# Reading base results and stating the power


def _load(path: Path) -> list[PromptResult]:
    try:
        rows = json.loads(path.read_text())["per_prompt"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a results.json with per-prompt verdicts ({type(exc).__name__})") from None
    return [PromptResult.from_json(row) for row in rows]


def _run_sets(run_dir: Path) -> dict[str, Path]:
    """Every set a run has base results for: RUN_DIR/eval/SET/base/results.json."""
    eval_dir = run_dir / "eval"
    names = sorted(p.name for p in eval_dir.iterdir() if p.is_dir()) if eval_dir.is_dir() else []
    layout = RunLayout(run_dir)
    return {name: layout.eval_results(name, "base") for name in names if layout.eval_results(name, "base").is_file()}


def base_results(path: Path) -> dict[str, list[PromptResult]]:
    """The base model's per-prompt results per set, from a results.json (its set named by the folder above
    ``base``, as ``run`` lays them out), a run directory, or a directory of runs (each set from the first run
    that has it, a ``base`` run first)."""
    if path.is_file():
        name = path.parent.parent.name if path.parent.name == "base" else path.parent.name
        return {name: _load(path)}
    if not path.is_dir():
        raise DataError(f"'{path}' is neither a results.json nor a directory")
    runs = [path] if RunLayout(path).config.is_file() else sorted(
        (p for p in path.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))),
        key=lambda p: (p.name != "base", p.name))
    found: dict[str, Path] = {}
    for run in runs:
        for name, results in _run_sets(run).items():
            found.setdefault(name, results)
    if not found:
        raise DataError(f"'{path}' holds no base results (RUN_DIR/eval/SET/base/results.json)")
    return {name: _load(results) for name, results in found.items()}


def power_table(sets: dict[str, list[PromptResult]], churns=CHURNS, metrics=None, **options) -> list[dict]:
    """One row per set, metric (all four by default) and churn: the base value and the MDD up and down."""
    rows = []
    for name, results in sets.items():
        for metric in metrics or METRICS:
            units = outcomes(results, metric)
            base = float(units.passed.sum() / len(units.passed)) if metric.startswith("inst") else float(
                units.passed.mean())
            for churn in churns:
                rows.append({"set": name, "metric": metric, "prompts": len(results), "units": len(units.passed),
                             "base": round(base, 6), "churn": churn,
                             "increase": minimum_detectable(results, metric, churn, increase=True, **options),
                             "decrease": minimum_detectable(results, metric, churn, increase=False, **options)})
    return rows


def format_power(rows: list[dict], power: float = POWER) -> str:
    def mdd(value: float | None, sign: str) -> str:
        return "unreachable" if value is None else f"{sign}{value:.4f}"

    header = (f"{'set':<9}{'metric':<26}{'prompts':>8}{'units':>7}{'base':>8}{'churn':>7}{'increase':>12}"
              f"{'decrease':>12}")
    lines = [header]
    for r in rows:
        lines.append(f"{r['set']:<9}{r['metric']:<26}{r['prompts']:>8}{r['units']:>7}{r['base']:>8.4f}{r['churn']:>7.2f}"
                     f"{mdd(r['increase'], '+'):>12}{mdd(r['decrease'], '-'):>12}")
    lines += ["", f"smallest difference (treated − base) whose 95% paired bootstrap interval excludes 0 in ≥ "
              f"{power:.0%} of simulated models; churn = share of units changing both ways besides the net "
              "difference (0: a lower bound). Definition: musc_ecd/evaluation/power.py"]
    return "\n".join(lines)
