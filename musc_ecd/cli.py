"""``musc-ecd``: thin commands. Each parses, loads the config, and calls one stage.

Every command takes ``CONFIG.yaml`` plus ``key=value`` overrides. Errors the user can fix (config,
missing model, missing backend, bad data) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from musc_ecd import __version__
from musc_ecd.errors import ConfigError, DataError, UserError
from musc_ecd.layout import RunLayout


def _run(args: argparse.Namespace) -> int:
    from musc_ecd.evaluation.compare import format_comparison
    from musc_ecd.evaluation.sets import headline_metric
    from musc_ecd.pipeline import run
    from musc_ecd.run_summary import format_run_summary

    cfg, run_dir = _prepare(args)
    report = run(cfg, run_dir)
    labels = report["labels"]
    for set_name, comparison in report.get("comparisons", {}).items():
        text = format_comparison(comparison, labels["base"], labels["trained"], headline=headline_metric(set_name))
        print(f"[{set_name}]\n{text}\n")
    for set_name, metrics in report.get("base_scores", {}).items():  # eval.base_only: nothing to compare
        print(f"[{set_name}] {labels['base']}\n" + "\n".join(f"{k:<26}{v:>9.4f}" for k, v in metrics.items()) + "\n")
    print(format_run_summary(run_dir))
    print(f"report -> {RunLayout(run_dir).report_md}")
    return 0


def _respond(args: argparse.Namespace) -> int:
    from musc_ecd.respond import respond

    cfg, run_dir = _prepare(args)
    summary = respond(cfg, run_dir)
    print(f"{summary['accepted']} answered, {summary['rejected']} rejected -> {run_dir / 'responses.jsonl'}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from musc_ecd.generate import generate

    cfg, run_dir = _prepare(args)
    summary = generate(cfg, run_dir)
    print(f"{summary['accepted']} pairs, {summary['rejected']} rejected -> {RunLayout(run_dir).pairs}")
    return 0


def _weights(args: argparse.Namespace) -> int:
    from musc_ecd.weighting import weights_stage

    cfg, run_dir = _prepare(args)
    summary = weights_stage(cfg, run_dir)
    print(f"{summary['accepted']} pairs weighted ({summary['scheme']}) -> {RunLayout(run_dir).weighted_pairs}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from musc_ecd.training.run import train

    cfg, run_dir = _prepare(args)
    summary = train(cfg, run_dir)
    print(f"trained {summary['global_steps']} steps on {summary['pairs']} pairs -> {RunLayout(run_dir).model}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from musc_ecd.evaluation.evaluate import evaluate
    from musc_ecd.evaluation.ifeval import format_results

    cfg, run_dir = _prepare(args)
    results = evaluate(cfg, run_dir)
    print(format_results(results))
    return 0


def _ifeval_score(args: argparse.Namespace) -> int:
    from musc_ecd.evaluation.ifeval import format_results, score_files
    from musc_ecd.store import write_atomic

    results = score_files(args.input, args.responses)
    write_atomic(Path(args.out), json.dumps(results, indent=2) + "\n")
    print(format_results(results))
    print(f"{results['num_prompts']} prompts, {results['num_instructions']} instructions -> {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from musc_ecd.evaluation.compare import format_comparison, identical_answers, paired_bootstrap, prompt_flips
    from musc_ecd.evaluation.ifeval import PromptResult
    from musc_ecd.store import read_jsonl

    runs, headlines = [], set()
    for path in (args.results_a, args.results_b):
        try:
            results = json.loads(Path(path).read_text())
            runs.append([PromptResult.from_json(row) for row in results["per_prompt"]])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"'{path}' is not a results.json with per-prompt verdicts ({exc})") from None
        headlines.add((results.get("headline") or {}).get("metric"))
    report = paired_bootstrap(*runs, resamples=args.resamples, seed=args.seed)
    headline = headlines.pop() if len(headlines) == 1 else None
    # The answers beside each results.json (as evaluate and publish leave them), when both have them.
    responses = [Path(path).parent / "responses.jsonl" for path in (args.results_a, args.results_b)]
    answers = None
    if all(p.is_file() for p in responses):
        try:
            answers = identical_answers(*map(read_jsonl, responses))
        except KeyError as exc:
            raise DataError(f"{' or '.join(map(str, responses))}: a row without {exc} (a respond/evaluate "
                            "responses.jsonl has id and response on every row)") from None
    print(format_comparison(report, args.results_a, args.results_b, headline=headline,
                            flips=prompt_flips(*runs), answers=answers))
    return 0


def _show_pair(args: argparse.Namespace) -> int:
    from musc_ecd.show_pair import show_pair

    page, text = show_pair(Path(args.run_dir), args.index)
    print(text)
    print(f"\n-> {page}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from musc_ecd.sweep import execute, format_plan, load_sweep

    sweep = load_sweep(Path(args.sweep))
    if args.dry_run:
        print(format_plan(sweep))
        return 0
    return execute(sweep, args.only)


def _report(args: argparse.Namespace) -> int:
    from musc_ecd.evaluation.report import markdown_table, render_report
    from musc_ecd.evaluation.runs import collect_runs, present_sets

    written = render_report(Path(args.runs_dir))
    records = collect_runs(Path(args.runs_dir))
    table = markdown_table(records, present_sets(records))
    print(table + "\n")
    for path in written.values():
        print(f"-> {path}")
    if args.readme:
        from musc_ecd.evaluation.readme_table import write_table

        changed = write_table(Path(args.readme), table)
        print(f"-> {args.readme} (its table {'rewritten' if changed else 'already current'})")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from musc_ecd.sweep.publish import publish

    written = publish(Path(args.runs_dir), Path(args.dest), args.run)
    for path in written:
        print(f"-> {path}")
    if not written:
        print("no finished run to publish")
    return 0


def _power(args: argparse.Namespace) -> int:
    from musc_ecd.evaluation.power import base_results, format_power, power_table

    if not 0 < args.power < 1 or args.simulations < 10 or args.resamples < 100 or any(c < 0 for c in args.churn):
        raise ConfigError("power: need 0 < --power < 1, --simulations >= 10, --resamples >= 100, --churn >= 0")
    sets = base_results(Path(args.results))
    rows = power_table(sets, churns=tuple(args.churn), metrics=tuple(args.metric) if args.metric else None,
                       power=args.power, simulations=args.simulations, resamples=args.resamples, seed=args.seed)
    print(format_power(rows, args.power))
    if args.json:
        Path(args.json).write_text(json.dumps({"power": args.power, "simulations": args.simulations,
                                               "resamples": args.resamples, "rows": rows}, indent=2) + "\n")
        print(f"-> {args.json}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from musc_ecd.label_audit import audit_file, format_audit

    summary = audit_file(args.pairs)
    print(json.dumps(summary, indent=2) if args.json else format_audit(summary))
    return 0


def _show_config(args: argparse.Namespace) -> int:
    from musc_ecd.config import load_config, to_yaml

    print(to_yaml(load_config(args.config, args.overrides)), end="")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "run": (_run, "the whole pipeline: generate -> weights (when train.weights is set) -> train -> evaluate base "
                  "and trained -> compare"),
    "respond": (_respond, "answer a JSONL/CSV of prompts with the configured model (IFEval response format)"),
    "generate": (_generate, "build preference pairs from seed instructions with a method (musc_coarse, ...)"),
    "weights": (_weights, "add per-token weights (train.weights=kl|bi_kl|pmi|entropy|edit|uniform) to the pairs"),
    "train": (_train, "train the policy on a pairs artifact (token-weighted DPO / SLiC / IPO / SFT; LoRA or full); "
                      "with train.weights set, on the weighted pairs that `weights` made first"),
    "evaluate": (_evaluate, "answer one evaluation set (own; IFEval via eval.ifeval_path; IFBench via "
                            "eval.sets=[ifbench] and eval.ifbench_path) and score it"),
    "config": (_show_config, "print the resolved config (YAML + overrides) without running anything"),
}


def _prepare(args: argparse.Namespace):
    """Load and save the config, set up logging into the run directory."""
    from musc_ecd.session import prepare

    return prepare(args.config, args.overrides, args.command)


# Commands that take files rather than a config.
FILE_COMMANDS = {
    "ifeval-score": (_ifeval_score, "score a response file to an IFEval-format set (IFEval, IFBench, own; each "
                                    "instruction's checker chosen by its id; official metrics, offline)"),
    "show-pair": (_show_pair, "render one pair with every token shaded by its weight (HTML + terminal)"),
    "compare": (_compare, "compare two results.json: each metric's difference with a 95%% paired bootstrap CI"),
    "sweep": (_sweep, "run a grid of configs (base + grid/zip axes), locally in turn or on SLURM via submitit"),
    "report": (_report, "one table (Markdown + CSV) and plots for every run under RUNS_DIR"),
    "audit": (_audit, "label accuracy of a pairs JSONL on its typed constraints: chosen better / tied / reversed"),
    "publish": (_publish, "copy the checkable outputs of a sweep's finished runs (pairs, audit, curves, answers "
                          "and verdicts, results) into a folder to commit; `report` reads it like RUNS_DIR"),
    "power": (_power, "from the base model's per-prompt results: the smallest difference the report's paired "
                      "bootstrap detects (95%% interval, 80%% of simulations) per set and metric"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musc-ecd",
        description="Synthetic contrastive preference data (MuSC, ECD, APC) and token-weighted preference training.",
        epilog="Every command: musc-ecd COMMAND CONFIG.yaml [key=value ...]",
    )
    parser.add_argument("--version", action="version", version=f"musc-ecd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("config", help="YAML config file")
        command.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (OmegaConf dotlist)")
    score = sub.add_parser("ifeval-score", help=FILE_COMMANDS["ifeval-score"][1])
    score.add_argument("--input", required=True, help="IFEval-format prompts, instruction ids, kwargs (IFEval's "
                       "input_data.jsonl, IFBench's IFBench_test.jsonl, ...)")
    score.add_argument("--responses", required=True, help="JSONL with prompt and response per line")
    score.add_argument("--out", required=True, help="where to write results.json")
    show = sub.add_parser("show-pair", help=FILE_COMMANDS["show-pair"][1])
    show.add_argument("run_dir")
    show.add_argument("--index", type=int, default=0)
    compare = sub.add_parser("compare", help=FILE_COMMANDS["compare"][1])
    compare.add_argument("results_a")
    compare.add_argument("results_b")
    compare.add_argument("--resamples", type=int, default=10_000)
    compare.add_argument("--seed", type=int, default=0)
    sweep = sub.add_parser("sweep", help=FILE_COMMANDS["sweep"][1], description=FILE_COMMANDS["sweep"][1])
    sweep.add_argument("sweep", help="sweep YAML: base, overrides, grid, zip, runs_dir, executor, slurm")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs (name, directory, overrides, status)")
    sweep.add_argument("--only", action="append", metavar="NAME", help="run only this run (repeatable); the "
                       "status book keeps every run")
    report = sub.add_parser("report", help=FILE_COMMANDS["report"][1], description=FILE_COMMANDS["report"][1])
    report.add_argument("runs_dir", help="a directory of run directories (e.g. a sweep's runs_dir), or one run")
    report.add_argument("--readme", metavar="FILE", help="also put the table into FILE, between its two marker "
                        "lines (`<!-- musc-ecd report: table ... -->` and `<!-- /musc-ecd report: table -->`)")
    audit = sub.add_parser("audit", help=FILE_COMMANDS["audit"][1], description=FILE_COMMANDS["audit"][1])
    audit.add_argument("pairs", help="TRL-format pairs JSONL (conversational or plain) with instruction_id_list/"
                       "kwargs columns or meta.typed_constraints")
    audit.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    publish = sub.add_parser("publish", help=FILE_COMMANDS["publish"][1], description=FILE_COMMANDS["publish"][1])
    publish.add_argument("runs_dir", help="a sweep's runs_dir")
    publish.add_argument("dest", help="the folder to copy into (e.g. experiments/NAME/results)")
    publish.add_argument("--run", action="append", metavar="NAME", help="only this run (repeatable)")
    power = sub.add_parser("power", help=FILE_COMMANDS["power"][1], description=FILE_COMMANDS["power"][1])
    power.add_argument("results", help="a base results.json, a run directory, or a directory of runs (its base "
                       "run first)")
    power.add_argument("--churn", type=float, nargs="+", default=[0.0, 0.1, 0.2],
                       help="shares of units that change both ways besides the net difference (0 = a lower bound)")
    power.add_argument("--metric", action="append", help="only this metric (repeatable; default all four)")
    power.add_argument("--power", type=float, default=0.8)
    power.add_argument("--simulations", type=int, default=200)
    power.add_argument("--resamples", type=int, default=2000)
    power.add_argument("--seed", type=int, default=0)
    power.add_argument("--json", help="also write the rows to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler, _ = {**COMMANDS, **FILE_COMMANDS}[args.command]
    try:
        return handler(args)
    except UserError as exc:
        print(f"musc-ecd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("musc-ecd: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`musc-ecd audit ... | head`): its choice, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
