"""IFEval scoring time: the 541 released GPT-4 responses, imports and scoring timed separately.

    python benchmarks/ifeval_score.py          # goal: scoring under 2 s on CPU

Results go to benchmarks/results/ifeval_score.json.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "ifeval_score.json"
IFEVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ifeval"


def main() -> None:
    started = time.perf_counter()
    from musc_ecd.evaluation import ifeval

    inputs = ifeval.load_inputs(IFEVAL / "input_data.jsonl")  # imports the checker library, prepares NLTK's data
    imports = time.perf_counter() - started
    responses = ifeval.match_responses(inputs, ifeval._read_jsonl(
        IFEVAL / "input_response_data_gpt4_20231107.jsonl", "responses"))
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        metrics = ifeval.aggregate(ifeval.score(inputs, responses))["metrics"]
        runs.append(time.perf_counter() - started)
    result = {"responses": len(responses), "import_and_setup_s": round(imports, 3),
              "score_s_median_of_5": round(statistics.median(runs), 3), "score_s_min": round(min(runs), 3),
              "goal_s": 2.0, "metrics": metrics, "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
