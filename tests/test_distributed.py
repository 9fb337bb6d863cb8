"""`musc-ecd train` across two CPU processes (gloo) on the tiny model, launched as on a machine without GPUs
(``torchrun --standalone --nproc_per_node 2 -m musc_ecd train ...``, and ``accelerate launch`` with the shipped
``configs/accelerate/ddp.yaml``, ``--num_processes 2 --mixed_precision no``; ``accelerate launch --cpu`` starts
one process unless given an MPI host file): the same training as one process with the same global batch, the
curriculum's order across ranks, a non-finite loss on one rank stopping every rank, and a kill mid-epoch
resumed from the last checkpoint.

Tolerances: one process with batch 4 and two with batch 2 each see the same four pairs per step, in the same
order; DDP averages the two halves' gradients, which is the gradient of the mean over the four. The layouts
differ (two packed batches of two pairs against one of four), so float32 sums run in another order: per-step
loss and gradient norm to 1e-5 (relative 1e-4), the trained adapter to 1e-5 (relative 1e-4).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import write_jsonl

from musc_ecd.store import read_jsonl

pytestmark = pytest.mark.distributed

REPO = Path(__file__).resolve().parents[1]
TRAIN_TINY = str(REPO / "configs" / "train_tiny.yaml")
PAIRS = REPO / "configs" / "data" / "pairs_sample.jsonl"
# four pairs per optimizer step in every run; staged curriculum; no dropout, so that the runs are comparable
SETTINGS = ("train.curriculum=staged", "train.gradient_accumulation_steps=1", "train.lora.dropout=0",
            "train.max_steps=6", "train.save_steps=2", "train.lr_scheduler=constant", "train.warmup_ratio=0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment() -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1"}


def _torchrun(run_dir: Path, *overrides: str) -> subprocess.Popen:
    """Two ranks of ``musc-ecd train`` under torchrun."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "musc_ecd", "train", TRAIN_TINY, f"run_dir={run_dir}", f"train.pairs={PAIRS}",
               "train.batch_size=2", *SETTINGS, *overrides]
    return subprocess.Popen(command, env=_environment(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _accelerate_launch(run_dir: Path, *overrides: str) -> subprocess.Popen:
    """Two ranks of ``musc-ecd train`` as users launch them: ``accelerate launch`` with the shipped DDP config,
    its GPU count and bf16 overridden for two CPU processes (accelerate then starts them as torchrun does)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "configs" / "accelerate" / "ddp.yaml"), "--num_processes", "2", "--mixed_precision", "no",
               "--main_process_port", str(_free_port()), "-m", "musc_ecd", "train", TRAIN_TINY, f"run_dir={run_dir}",
               f"train.pairs={PAIRS}", "train.batch_size=2", *SETTINGS, *overrides]
    return subprocess.Popen(command, env=_environment(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (the launcher and its ranks), as a preempted machine would."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    pending, tree = [pid], []
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += children.get(current, [])
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _finish(process: subprocess.Popen, timeout: float = 120) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process.pid)
        output, _ = process.communicate()
        pytest.fail(f"the two-process run did not end within {timeout} s:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    return output


def _losses(run_dir: Path) -> list[dict]:
    return [m for m in read_jsonl(run_dir / "train" / "metrics.jsonl") if "loss" in m]


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "model" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("two")
    _finish(_torchrun(run_dir))
    return run_dir


def test_two_processes_train_as_one_with_the_same_global_batch(two_processes, tmp_path):
    from musc_ecd.config import load_config
    from musc_ecd.training.run import train

    one = train(load_config(TRAIN_TINY, [f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.batch_size=4",
                                         *SETTINGS]), tmp_path)
    two = json.loads((two_processes / "model" / "train_summary.json").read_text())
    assert one["global_steps"] == two["global_steps"] == 6
    single, double = _losses(tmp_path), _losses(two_processes)
    assert [m["step"] for m in single] == [m["step"] for m in double] == list(range(1, 7))
    for a, b in zip(single, double, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5, rel=1e-4), a["step"]
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], abs=1e-5, rel=1e-4), a["step"]
        # the curriculum's order across ranks: each step's pairs are the same four, hence the same difficulty
        assert b["curriculum/difficulty"] == pytest.approx(a["curriculum/difficulty"], abs=1e-9), a["step"]
    assert [m["curriculum/difficulty"] for m in double] == sorted(m["curriculum/difficulty"] for m in double)
    expected = _adapter(tmp_path)
    for name, tensor in _adapter(two_processes).items():
        torch.testing.assert_close(tensor, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_accelerate_launch_with_the_shipped_config_trains_as_torchrun_does(two_processes, tmp_path):
    output = _finish(_accelerate_launch(tmp_path))
    assert output.count("trained 6 steps on 32 pairs") == 2  # one line per rank: two processes, not one
    assert [(m["step"], m["loss"], m["grad_norm"]) for m in _losses(tmp_path)] == \
        [(m["step"], m["loss"], m["grad_norm"]) for m in _losses(two_processes)]  # the same ranks, bit for bit
    expected = _adapter(two_processes)
    for name, tensor in _adapter(tmp_path).items():
        torch.testing.assert_close(tensor, expected[name], atol=0, rtol=0, msg=name)


def test_a_kill_mid_epoch_resumes_from_the_last_checkpoint(two_processes, tmp_path):
    process = _torchrun(tmp_path)
    deadline = time.monotonic() + 120
    checkpoint = tmp_path / "train" / "checkpoint-2" / "trainer_state.json"
    while not checkpoint.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    _kill_tree(process.pid)  # the launcher and both ranks, mid-epoch (32 pairs = 8 steps of 4)
    process.communicate()
    assert checkpoint.is_file() and not (tmp_path / "model").exists()
    _finish(_torchrun(tmp_path))
    summary = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    assert summary["resumed_from"] and summary["global_steps"] == 6
    assert [m["step"] for m in _losses(tmp_path)] == list(range(1, 7))  # steps after the checkpoint redone once
    expected = _adapter(two_processes)
    for name, tensor in _adapter(tmp_path).items():
        torch.testing.assert_close(tensor, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    """Pair 0 alone (the easiest: position 0 of easy_to_hard, so rank 0's first batch) has weights so large that
    its weighted log-probabilities overflow; rank 1's batch is finite. Both ranks must stop with the error, not
    rank 0 alone while rank 1 waits in the gradient all-reduce. Each rank is started on its own here (the
    environment a launcher sets), so that no launcher ends the other rank for it."""
    from musc_ecd.models import load_model
    from musc_ecd.tokens import pair_completion_token_ids

    _, tokenizer = load_model("tiny", device="cpu")
    rows = read_jsonl(PAIRS)
    for index, row in enumerate(rows):
        row["difficulty"] = 0 if index == 0 else 1
        chosen, rejected = pair_completion_token_ids(tokenizer, row["prompt"], row["chosen"], row["rejected"])
        weight = 1e38 if index == 0 else 1.0
        row["chosen_weights"], row["rejected_weights"] = [weight] * len(chosen), [weight] * len(rejected)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    port = _free_port()
    command = [sys.executable, "-m", "musc_ecd", "train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={pairs}",
               "train.batch_size=2", "train.curriculum=easy_to_hard", "train.max_steps=8"]  # one whole epoch
    ranks = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**_environment(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                   "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
                                   "LOCAL_WORLD_SIZE": "2"})
             for rank in (0, 1)]
    outputs = []
    deadline = time.monotonic() + 120
    for process in ranks:
        try:
            outputs.append(process.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
        except subprocess.TimeoutExpired:
            for other in ranks:
                other.kill()
            pytest.fail("a rank did not stop within 120 s (waiting in a collective for the rank that stopped?)")
    for rank, (process, output) in enumerate(zip(ranks, outputs, strict=True)):
        assert process.returncode == 3, f"rank {rank}: {output[-2000:]}"
        assert "the loss became" in output and "Last good checkpoint" in output and "Traceback" not in output
