"""Label accuracy of a preference artifact, measured by code on the prompt's verifiable constraints.

For every pair whose prompt carries typed constraints, count the constraints ``chosen`` passes and the
ones ``rejected`` passes — strict, per instruction, as IFEval scores them, through the one checker
(``checkers.check_instruction``) — and call the label *better* (chosen passes strictly more),
*tied* or *reversed* (DESIGN.md, "Labels you can check"). Pure: no model is loaded.

A pair's constraints come from, in this order:
- top-level ``instruction_id_list`` / ``kwargs`` columns (IFEval's format: artifacts made elsewhere);
- ``meta.typed_constraints`` (``META_FIELD``): a list of ``{"id", "kwargs"}`` objects, the typed
  constraints *of the pair's prompt* — what this project's builders write.
A pair with neither counts in ``pairs`` only. Columns follow TRL: ``prompt`` / ``chosen`` / ``rejected``,
each a string or a conversation (a list of ``{"role", "content"}``); the prompt checked against is the
last user message, a response is the last assistant message.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from musc_ecd.constraints.typed import TypedConstraint, from_ifeval
from musc_ecd.errors import DataError, UserError
from musc_ecd.records import Pair

META_FIELD = "typed_constraints"
SHARES = ("chosen_better", "tied", "reversed")


@dataclass(frozen=True)
class PairVerdict:
    """One pair's strict verdicts, constraint by constraint."""

    constraints: tuple[TypedConstraint, ...]
    chosen: tuple[bool, ...]
    rejected: tuple[bool, ...]

    @property
    def outcome(self) -> str:
        """``chosen_better`` / ``tied`` / ``reversed`` by the number of constraints passed."""
        difference = sum(self.chosen) - sum(self.rejected)
        return "chosen_better" if difference > 0 else "reversed" if difference < 0 else "tied"


def typed_constraints(record: dict, pair: Pair | None = None) -> list[TypedConstraint]:
    """The prompt's typed constraints (see the module docstring for where they are looked for); ``pair`` is
    the record already read, when it is."""
    if "instruction_id_list" in record:
        return from_ifeval(record["instruction_id_list"], record.get("kwargs"))
    pair = pair if pair is not None else Pair.from_json(record)
    return list(pair.typed_constraints or ())


def judge_pair(record: dict) -> PairVerdict | None:
    """Strict verdicts of chosen and rejected on the pair's constraints; None when it has none."""
    pair = Pair.from_json(record)  # the columns first: a malformed pair is an error whether or not it has constraints
    constraints = typed_constraints(record, pair)
    if not constraints:
        return None
    return PairVerdict(tuple(constraints), tuple(c.check(pair.chosen, pair.prompt) for c in constraints),
                       tuple(c.check(pair.rejected, pair.prompt) for c in constraints))


def _shares(outcomes: list[str]) -> dict:
    n = len(outcomes)
    return {name: (round(outcomes.count(name) / n, 6) if n else None) for name in SHARES}


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _method(record: dict) -> str | None:
    """The builder that made a pair (``meta.method``: ``musc_fine``, ``musc_coarse``, ``ecd``, …), if it says."""
    meta = record.get("meta")
    method = meta.get("method") if isinstance(meta, dict) else None
    return method if isinstance(method, str) else None


def aggregate(verdicts: list[PairVerdict | None], methods: list[str | None] | None = None) -> dict:
    """Shares and means over the pairs with constraints, overall, per constraint id and, when ``methods`` (one
    per verdict) names the builders, per builder: full MuSC's coarse pairs are labelled by construction where
    no typed constraint was corrupted, its fine ones by code, and one share over both would hide which is which."""
    judged = [v for v in verdicts if v is not None]
    summary = {**_pair_stats(verdicts), "mean_constraints": _mean([len(v.constraints) for v in judged])}
    per_id: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for v in judged:
        for constraint, c_ok, r_ok in zip(v.constraints, v.chosen, v.rejected, strict=True):
            per_id[constraint.id].append((c_ok, r_ok))
    summary["by_constraint"] = {
        i: {"pairs": len(rows),
            **_shares(["chosen_better" if c > r else "reversed" if r > c else "tied" for c, r in rows]),
            "chosen_mean_passed": _mean([int(c) for c, _ in rows]),
            "rejected_mean_passed": _mean([int(r) for _, r in rows])}
        for i, rows in sorted(per_id.items())}
    if methods is not None and any(methods):
        by_method: dict[str, list[PairVerdict | None]] = defaultdict(list)
        for verdict, method in zip(verdicts, methods, strict=True):
            by_method[method or "unnamed"].append(verdict)
        summary["by_method"] = {method: _pair_stats(group) for method, group in sorted(by_method.items())}
    return summary


def _pair_stats(verdicts: list[PairVerdict | None]) -> dict:
    """Counts, label shares and mean constraints passed per side, over the pairs that have constraints."""
    judged = [v for v in verdicts if v is not None]
    return {"pairs": len(verdicts), "with_constraints": len(judged), **_shares([v.outcome for v in judged]),
            "chosen_mean_passed": _mean([sum(v.chosen) for v in judged]),
            "rejected_mean_passed": _mean([sum(v.rejected) for v in judged])}


def label_accuracy(records: list[dict]) -> dict:
    """The audit of in-memory pair records, for a stage summary (a malformed record is a ``DataError``)."""
    verdicts = []
    for index, record in enumerate(records):
        try:
            verdicts.append(judge_pair(record))
        except (KeyError, ValueError, TypeError, UserError) as exc:
            raise DataError(f"pair {record.get('id', index)}: {_reason(exc)}") from None
    return aggregate(verdicts, [_method(record) for record in records])


def audit_file(path: str | Path) -> dict:
    """``label_accuracy`` of a JSONL artifact; a bad line is a ``DataError`` naming its number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pairs file '{path}' does not exist")
    verdicts, methods = [], []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{line_no}: not UTF-8 text") from None
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError(f"a JSON {type(record).__name__}, not an object")
                verdicts.append(judge_pair(record))
                methods.append(_method(record))
            except (KeyError, ValueError, TypeError, UserError) as exc:  # UserError: an unknown constraint id
                raise DataError(f"{path}:{line_no}: {_reason(exc)}") from None
    return {**aggregate(verdicts, methods), "artifact": str(path)}


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, KeyError):
        return f"no '{exc.args[0]}' field (a pair needs prompt, chosen and rejected)"
    return str(exc)


def format_audit(summary: dict) -> str:
    """A short table: the overall label accuracy, then one row per constraint id."""
    head = f"{summary['pairs']} pairs, {summary['with_constraints']} with typed constraints"
    if not summary["with_constraints"]:
        return head + ": nothing to audit (no instruction_id_list/kwargs columns, no meta.typed_constraints)"

    def row(name: str, count: int, stats: dict) -> str:
        cells = [f"{stats[k]:.1%}" for k in SHARES]
        cells += [f"{stats['chosen_mean_passed']:.2f}", f"{stats['rejected_mean_passed']:.2f}"]
        return f"{name:<46}{count:>6}  " + "".join(f"{c:>9}" for c in cells)

    titles = ("better", "tied", "reversed", "chosen", "rejected")
    lines = [head + f" (mean {summary['mean_constraints']:.2f} constraints each; chosen/rejected = mean passed)",
             f"{'':<46}{'pairs':>6}  " + "".join(f"{t:>9}" for t in titles),
             row("all constraints of the prompt", summary["with_constraints"], summary)]
    by_method = {m: stats for m, stats in summary.get("by_method", {}).items() if stats["with_constraints"]}
    if len(by_method) > 1:
        lines += [row(f"made by {method}", stats["with_constraints"], stats) for method, stats in by_method.items()]
    lines += [row(i, stats["pairs"], stats) for i, stats in summary["by_constraint"].items()]
    return "\n".join(lines)
