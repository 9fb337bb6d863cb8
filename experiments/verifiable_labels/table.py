"""The label-accuracy table of the five runs, from results/*.audit.json and *.summary.json (Markdown).

    python experiments/verifiable_labels/table.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ORDER = ("musc_coarse", "musc_fine_policy_judge", "musc_fine_checkers", "ecd_self", "ecd_self_checkers", "apc")


def main() -> None:
    print("| run | seeds | pairs (yield) | with typed constraints | chosen better | tied | reversed "
          "| mean passed chosen / rejected |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ORDER:
        audit_path, summary_path = RESULTS / f"{name}.audit.json", RESULTS / f"{name}.summary.json"
        if not audit_path.is_file():
            print(f"| {name} | – | not run | | | | | |")
            continue
        audit, summary = json.loads(audit_path.read_text()), json.loads(summary_path.read_text())
        shares = [f"{audit[key]:.0%}" if audit.get(key) is not None else "–"
                  for key in ("chosen_better", "tied", "reversed")]
        means = f"{audit.get('chosen_mean_passed') or 0:.2f} / {audit.get('rejected_mean_passed') or 0:.2f}"
        print(f"| {name} | {summary['items']} | {audit['pairs']} ({audit['pairs'] / summary['items']:.2f}/seed) "
              f"| {audit['with_constraints']} | {' | '.join(shares)} | {means} |")


if __name__ == "__main__":
    main()
