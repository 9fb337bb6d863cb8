"""Paired bootstrap comparison of two scored runs on the same prompts.

A difference between two models on one evaluation set is only worth reporting with its uncertainty.
Both runs answered the same prompts, so prompts are resampled *jointly* (a paired bootstrap): each
resample draws prompts with replacement and recomputes every metric for both runs on that draw. The
95% interval is the 2.5th–97.5th percentile of the resampled differences (B − A). Instruction-level
metrics are ratios (passes / instructions) recomputed per resample, not means of per-prompt ratios.
"""

from __future__ import annotations

import numpy as np

from musc_ecd.errors import DataError
from musc_ecd.evaluation.ifeval import METRICS, PromptResult


def per_prompt_arrays(results: list[PromptResult]) -> dict[str, np.ndarray]:
    """Per prompt: passed at the prompt level (strict, loose), instructions passed (strict, loose), instructions."""
    return {
        "prompt_strict": np.array([all(r.strict) for r in results], dtype=float),
        "prompt_loose": np.array([all(r.loose) for r in results], dtype=float),
        "inst_strict": np.array([sum(r.strict) for r in results], dtype=float),
        "inst_loose": np.array([sum(r.loose) for r in results], dtype=float),
        "count": np.array([len(r.strict) for r in results], dtype=float),
    }


def metrics_under(arrays: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics for each row of ``weights`` (resamples × prompts: how often each prompt was drawn)."""
    prompts = weights.sum(axis=1)
    instructions = weights @ arrays["count"]
    return {
        "prompt_level_strict_acc": weights @ arrays["prompt_strict"] / prompts,
        "inst_level_strict_acc": weights @ arrays["inst_strict"] / instructions,
        "prompt_level_loose_acc": weights @ arrays["prompt_loose"] / prompts,
        "inst_level_loose_acc": weights @ arrays["inst_loose"] / instructions,
    }


def resample_weights(prompts: int, resamples: int, seed: int) -> np.ndarray:
    """Resamples × prompts: how often each prompt is drawn in each resample (with replacement, seeded)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, prompts, size=(resamples, prompts))
    weights = np.zeros((resamples, prompts))
    np.add.at(weights, (np.repeat(np.arange(resamples), prompts), draws.ravel()), 1.0)
    return weights


def interval(differences: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of resampled differences (the report's interval)."""
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def paired_bootstrap(a: list[PromptResult], b: list[PromptResult], resamples: int = 10_000,
                     seed: int = 0) -> dict[str, dict]:
    """For each metric: A, B, B − A and its 95% paired-bootstrap interval."""
    b_by_key = {r.key: r for r in b}
    if len(a) != len(b) or set(b_by_key) != {r.key for r in a}:
        raise DataError(f"runs are not on the same prompts ({len(a)} vs {len(b)} prompts, or different keys); "
                        "a paired comparison needs the same evaluation set")
    b = [b_by_key[r.key] for r in a]
    arrays_a, arrays_b = per_prompt_arrays(a), per_prompt_arrays(b)
    weights = resample_weights(len(a), resamples, seed)
    point_weights = np.ones((1, len(a)))
    point_a, point_b = metrics_under(arrays_a, point_weights), metrics_under(arrays_b, point_weights)
    boot_a, boot_b = metrics_under(arrays_a, weights), metrics_under(arrays_b, weights)
    report = {}
    for name in METRICS:
        low, high = interval(boot_b[name] - boot_a[name])
        report[name] = {
            "a": round(float(point_a[name][0]), 6),
            "b": round(float(point_b[name][0]), 6),
            "diff": round(float(point_b[name][0] - point_a[name][0]), 6),
            "ci95": [round(float(low), 6), round(float(high), 6)],
            "excludes_zero": bool(low > 0 or high < 0),
        }
    return report


def prompt_flips(a: list[PromptResult], b: list[PromptResult]) -> dict[str, int]:
    """Prompts whose prompt-level strict verdict changed: passing in B only (``up``), in A only (``down``). The
    net difference hides the churn (``up + down``), which sets how large a difference the prompts can resolve
    (``musc-ecd power``)."""
    passed_a = {r.key: all(r.strict) for r in a}
    up = sum(1 for r in b if all(r.strict) and not passed_a[r.key])
    down = sum(1 for r in b if not all(r.strict) and passed_a[r.key])
    return {"up": up, "down": down, "prompts": len(b)}


def identical_answers(responses_a: list[dict], responses_b: list[dict]) -> dict[str, int]:
    """How many prompts (by ``id``) the two runs answered with the very same text, of those both answered."""
    text_a = {str(row["id"]): row["response"] for row in responses_a}
    common = [row for row in responses_b if str(row["id"]) in text_a]
    return {"identical": sum(1 for row in common if row["response"] == text_a[str(row["id"])]),
            "prompts": len(common)}


def format_comparison(report: dict[str, dict], label_a: str, label_b: str, headline: str | None = None,
                      flips: dict[str, int] | None = None, answers: dict[str, int] | None = None) -> str:
    """The comparison as a table; ``headline`` marks the set's headline metric (IFBench: prompt-level loose);
    ``flips`` and ``answers`` (``prompt_flips``, ``identical_answers``) add how many prompts changed."""
    header = f"{'metric':<26}{'A':>9}{'B':>9}{'B - A':>9}   95% paired bootstrap CI"
    rows = [f"{name:<26}{r['a']:>9.4f}{r['b']:>9.4f}{r['diff']:>+9.4f}   [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"
            + ("  *" if r["excludes_zero"] else "") + ("  (headline)" if name == headline else "")
            for name, r in report.items()]
    legend = ["* the interval excludes 0"] if any(r["excludes_zero"] for r in report.values()) else []
    if headline in report:
        legend.append(f"(headline) = the set's headline metric, {headline}")
    changed = []
    if flips is not None:
        churn = (flips["up"] + flips["down"]) / max(flips["prompts"], 1)
        changed.append(f"prompt-level strict verdicts: {flips['up']} prompts pass in B only, {flips['down']} in A "
                       f"only, of {flips['prompts']} (churn {churn:.1%})")
    if answers is not None:
        changed.append(f"answers: {answers['identical']} of {answers['prompts']} identical in A and B")
    return "\n".join([header, *rows, "", *changed, f"A = {label_a}", f"B = {label_b}", *legend])
