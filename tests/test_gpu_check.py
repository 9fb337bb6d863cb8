"""The GPU check, dry-run on CPU: the same script the GPU machine runs, on the tiny shape in fp32."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO


def test_gpu_check_dry_run_writes_its_json(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", "--workdir",
                           str(tmp_path / "work")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry_run"] and result["device"] == "cpu" and result["parameters"] > 0
    agreement = result["agreement"]
    for kind in ("shared", "ours_trl_layout"):  # fp32: far inside the bf16 tolerance the GPU run states
        assert agreement[kind]["compared_tensors"] > 0 and agreement[kind]["within_tolerance"], agreement
        assert agreement[kind]["loss_rel_diff"] < 1e-4 and agreement[kind]["max_grad_rel_diff"] < 1e-3, agreement
    assert all(result["training"][k]["tokens_per_s"] > 0 for k in ("shared", "ours_trl_layout", "trl"))
    assert result["generation_hf"]["2"]["generated_tokens"] > 0
    assert "missing here: nothing" in done.stderr
