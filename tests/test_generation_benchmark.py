"""benchmarks/generation.py's bookkeeping: rows merged across runs keep who measured them, ratios say so."""

from __future__ import annotations

import importlib.util

from conftest import REPO


def _benchmark():
    spec = importlib.util.spec_from_file_location("generation_benchmark", REPO / "benchmarks" / "generation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(tokens_per_s: float, answers: list) -> dict:
    return {"generated_tokens_per_s": tokens_per_s, "answers": answers}


def test_a_rerun_at_some_batches_keeps_the_others_and_stamps_its_own():
    bench = _benchmark()
    earlier = {"rows": {"16": _row(80.0, [[1]]), "64": _row(65.0, [[1]]), "256": _row(55.0, [[1]])}}
    measured = {"rows": {"16": _row(90.0, [[1]])}, "engine_start_s": 1.0}
    merged = bench._merged(earlier, measured, "2026-12-05 02:00")
    assert list(merged["rows"]) == ["16", "64", "256"]
    assert merged["rows"]["16"]["generated_tokens_per_s"] == 90.0
    assert merged["rows"]["16"]["measured_at"] == "2026-12-05 02:00"
    assert merged["rows"]["64"]["measured_at"] == "unrecorded" and merged["engine_start_s"] == 1.0
    again = bench._merged(merged, {"rows": {"64": _row(70.0, [[1]])}}, "2026-12-05 03:00")
    assert again["rows"]["16"]["measured_at"] == "2026-12-05 02:00"  # an earlier stamp survives a later merge
    assert again["rows"]["64"]["measured_at"] == "2026-12-05 03:00"
    failed = {"error": "worker exited with status 1"}
    assert bench._merged(earlier, failed, "2026-12-05 04:00") == failed  # a failure is reported, not hidden


def test_ratios_to_transformers_say_whether_both_rows_come_from_one_run():
    bench = _benchmark()
    same, other = "2026-12-05 02:00", "2026-12-04 23:00"
    result = {"roofline": {"16": {"tokens_per_s": 400.0}}, "engines": {
        "hf/fp32": {"rows": {"16": {**_row(50.0, [[1, 2], [3]]), "measured_at": same}}},
        "openvino/fp32": {"rows": {"16": {**_row(250.0, [[1, 2], [4]]), "measured_at": same}}},
        "ct2/fp32": {"rows": {"16": {**_row(100.0, [[1, 2], [3]]), "measured_at": other}}},
    }}
    bench._compare(result)
    engines = result["engines"]
    assert engines["openvino/fp32"]["batch16_vs_hf_fp32_batch16"] == 5.0
    assert engines["openvino/fp32"]["batch16_same_run_as_hf"] is True
    assert engines["ct2/fp32"]["batch16_same_run_as_hf"] is False
    assert engines["openvino/fp32"]["faithful_share"] == 0.5 and engines["ct2/fp32"]["faithful_share"] == 1.0
    assert engines["openvino/fp32"]["rows"]["16"]["roofline_share"] == 0.625
