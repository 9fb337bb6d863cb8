"""Write verifiable seeds: base tasks + 1–4 typed constraints each (see musc_ecd.constraints.typed.seeds).

    python scripts/make_verifiable_seeds.py                      # configs/data/verifiable_seeds.jsonl
    python scripts/make_verifiable_seeds.py --tasks my_tasks.jsonl --rows 2000 --seed 7 --out my_seeds.jsonl

Same tasks, seed and row count -> a byte-identical file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TASKS = ROOT / "configs" / "data" / "base_tasks.jsonl"
DEFAULT_OUT = ROOT / "configs" / "data" / "verifiable_seeds.jsonl"
DEFAULT_SEED = 14
DEFAULT_ROWS = 1536


def main(argv: list[str] | None = None) -> int:
    from musc_ecd.constraints.typed.seeds import build_seeds
    from musc_ecd.errors import UserError
    from musc_ecd.store import read_jsonl, write_jsonl_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=Path, default=DEFAULT_TASKS, help="base tasks JSONL (id, domain, task, "
                        "requirements, keywords)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    args = parser.parse_args(argv)
    try:
        seeds = build_seeds(read_jsonl(args.tasks), args.seed, args.rows)
    except UserError as exc:
        print(f"make_verifiable_seeds: error: {exc}", file=sys.stderr)
        return 2
    write_jsonl_atomic(args.out, seeds)
    kinds = {i for row in seeds for i in row["instruction_id_list"]}
    print(json.dumps({"rows": len(seeds), "tasks": len({r["task_id"] for r in seeds}), "kinds": len(kinds),
                      "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
