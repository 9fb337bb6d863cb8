"""Training throughput: our trainer with prefix sharing, our trainer on TRL's layout, and trl.DPOTrainer.

    python benchmarks/train_step.py --pairs RUN_DIR/pairs.jsonl     # tiny and SmolLM2, CPU, a few minutes
    python benchmarks/train_step.py --models tiny --steps 20         # synthetic pairs

Three trainers on the same model (LoRA r=16 on all linear layers, the model's own weights), the same pairs
and the same settings (batch --batch-size pairs, bf16 autocast where the hardware has bf16, else fp32):

- ``shared``: TokenWeightedDPOTrainer, ``prefix_sharing="on"`` (one packed sequence per pair);
- ``ours_trl_layout``: TokenWeightedDPOTrainer, ``prefix_sharing="off"`` (TRL's rows plus the weights);
- ``trl``: trl.DPOTrainer.

Ours run on pairs carrying token weights (the case they exist for), TRL's on the same pairs without. Step
k uses batch k of the pairs (in file order, cycling) for all three, so every trainer sees the same
lengths; a step = forward + backward + optimizer step; the three are interleaved in a rotating order in one
process, so drift in machine load hits all equally. Trained tokens/s counts tokens as TRL's ``num_tokens``
does (prompt + chosen + prompt + rejected of each pair, no padding) — the same count for all three, so the
ratios are inverse time ratios. Also recorded: the positions each layout computes per step and the share
of them that is padding.

Roofline (CPU): about 3 forward passes of matmul work a trained token (the policy's forward, its backward
through the frozen base to the LoRA weights, the live reference's forward: ~6 x parameters FLOPs), each
linear layer at the best fp32 rate a library installed here reaches on its shape with 512 rows
(``cpu_roofline.py``).
Each row records its share of that.

Memory: on a GPU, the peak allocated bytes during a step; on CPU, a child process per trainer builds it,
resets the kernel's high-water mark, runs the steps, and reports the peak resident memory above what the
built trainer held before the first step (model, data and imports, which all share, left out). Results
are merged into benchmarks/results/train_step.json, keyed by ``MODEL/CPU-CAPABILITY/PRECISION`` (older
rows: by model), with the CPU's model and flags.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "train_step.json"
KINDS = ("shared", "ours_trl_layout", "trl")
WORDS = ("the model follows each constraint of the instruction and writes a clear answer for the reader "
         "while keeping the format length and tone that the user asked for ").split()


def _text(words: int, offset: int) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(words))


def _synthetic_pairs(count: int, seq_len: int) -> list[dict]:
    words = max(8, seq_len // 3)  # ~1.3 tokens per word: prompt + completion ≈ seq_len tokens
    return [
        {
            "prompt": [{"role": "user", "content": _text(words // 2, i)}],
            "chosen": [{"role": "assistant", "content": _text(words - i % 5 * 8, i + 1)}],
            "rejected": [{"role": "assistant", "content": _text(words // 2 + i % 3 * 10, i + 2)}],
        }
        for i in range(count)
    ]


def _pairs(source: str, count: int, seq_len: int) -> list[dict]:
    if source == "synthetic":
        return _synthetic_pairs(count, seq_len)
    from musc_ecd.training.run import load_pairs

    return [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in load_pairs(Path(source))]


def _precision() -> tuple[bool, str]:
    """The trainer's own choice (``precision.resolve_dtype``): bf16 autocast only where bf16 is native."""
    from musc_ecd.models.precision import default_device, resolve_dtype

    bf16 = resolve_dtype("auto", default_device()) == "bfloat16"
    return bf16, "bf16 autocast over fp32 weights" if bf16 else "fp32"


def _build(kind: str, model, tokenizer, rows, workdir: str, batch_size: int, uniform_weights: bool = False):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from musc_ecd.training import TokenWeightedDPOConfig, TokenWeightedDPOTrainer, completion_token_ids

    on_gpu = torch.cuda.is_available()
    settings = dict(output_dir=workdir, per_device_train_batch_size=batch_size, use_cpu=not on_gpu,
                    bf16=_precision()[0], report_to="none", gradient_checkpointing=False, max_length=4096,
                    learning_rate=1e-5, save_strategy="no", logging_steps=10_000, disable_tqdm=True)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    if kind == "trl":
        return DPOTrainer(model=model, args=DPOConfig(**settings), train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer, peft_config=lora)
    weighted = []
    for row in rows:
        row = dict(row)
        for side in ("chosen", "rejected"):
            count = len(completion_token_ids(tokenizer, row["prompt"], row[side]))
            row[f"{side}_weights"] = [1.0 if uniform_weights else 0.5 + (i % 4) / 2 for i in range(count)]
        weighted.append(row)
    sharing = "on" if kind == "shared" else "off"
    return TokenWeightedDPOTrainer(model=model, args=TokenWeightedDPOConfig(**settings, prefix_sharing=sharing),
                                   train_dataset=Dataset.from_list(weighted), processing_class=tokenizer,
                                   peft_config=lora)


class _Stepper:
    def __init__(self, trainer, batch_size: int, batches: int):
        self.trainer = trainer
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # set by the Trainer's own loop, which we bypass
        dataset = trainer.train_dataset
        count = len(dataset) // batch_size
        self.batches = []
        for index in range(min(batches, count)):
            batch = trainer.data_collator([dataset[i] for i in range(index * batch_size, (index + 1) * batch_size)])
            self.batches.append({k: v.to(trainer.args.device) if hasattr(v, "to") else v for k, v in batch.items()})
        trainer.model.to(trainer.args.device)

    def layout(self, step: int) -> dict:
        """Tokens trained (TRL's count) and positions computed by this trainer's layout, for one step."""
        batch = self.batches[step % len(self.batches)]
        tokens = int(batch["attention_mask"].sum())
        if "shared_input_ids" in batch:
            computed, real = batch["shared_input_ids"].numel(), int((batch["shared_sequence_ids"] >= 0).sum())
        else:
            computed, real = batch["input_ids"].numel(), tokens
        return {"tokens": tokens, "computed": computed, "padding": computed - real}

    def step(self, step: int) -> float:
        import torch

        synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
        batch = self.batches[step % len(self.batches)]
        synchronize()
        started = time.perf_counter()
        self.trainer.training_step(self.trainer.model, dict(batch))
        self.trainer.optimizer.step()
        self.trainer.optimizer.zero_grad(set_to_none=True)
        synchronize()
        return time.perf_counter() - started


def _load(model_name: str):
    from musc_ecd.models import load_model

    return load_model(model_name, dtype="float32", device="cpu")


def measure_time(model_name: str, pairs: str, steps: int, seq_len: int, batch_size: int, workdir: Path) -> dict:
    import torch

    base, tokenizer = _load(model_name)
    rows = _pairs(pairs, max(steps, 8) * batch_size, seq_len)
    steppers = {kind: _Stepper(_build(kind, copy.deepcopy(base), tokenizer, rows, str(workdir / kind), batch_size),
                               batch_size, steps) for kind in KINDS}
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    peaks: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        steppers[kind].step(0)  # warm-up: allocator, autocast caches, first optimizer state
    for index in range(steps):
        order = KINDS[index % 3:] + KINDS[: index % 3]  # rotate who goes first
        for kind in order:
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            times[kind].append(steppers[kind].step(index))
            if torch.cuda.is_available():
                peaks[kind].append(torch.cuda.max_memory_allocated())
    row: dict = {}
    for kind in KINDS:
        layouts = [steppers[kind].layout(i) for i in range(steps)]
        tokens, computed = sum(x["tokens"] for x in layouts), sum(x["computed"] for x in layouts)
        row[kind] = {"tokens_per_s": round(tokens / sum(times[kind]), 1),
                     "median_step_s": round(statistics.median(times[kind]), 4),
                     "computed_positions_per_step": round(computed / steps, 1),
                     "padding_share": round(sum(x["padding"] for x in layouts) / computed, 4)}
        if peaks[kind]:
            row[kind]["peak_gpu_mb"] = round(max(peaks[kind]) / 2**20, 1)
    row["trained_tokens_per_step"] = round(sum(steppers["trl"].layout(i)["tokens"] for i in range(steps)) / steps, 1)
    row["tokens_per_s_ratio_shared_vs_trl"] = round(row["shared"]["tokens_per_s"] / row["trl"]["tokens_per_s"], 3)
    row["tokens_per_s_ratio_ours_trl_layout_vs_trl"] = round(
        row["ours_trl_layout"]["tokens_per_s"] / row["trl"]["tokens_per_s"], 3)
    if peaks["trl"]:
        row["memory_ratio_shared_vs_trl"] = round(max(peaks["shared"]) / max(peaks["trl"]), 3)
    return row


def _proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_child(kind: str, model_name: str, pairs: str, steps: int, seq_len: int, batch_size: int,
                 workdir: str) -> None:
    """Peak resident memory of the training steps alone, above what the built trainer already holds."""
    base, tokenizer = _load(model_name)
    rows = _pairs(pairs, max(steps, 8) * batch_size, seq_len)
    stepper = _Stepper(_build(kind, base, tokenizer, rows, workdir, batch_size), batch_size, steps)
    baseline = _proc_status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the high-water mark (VmHWM) to now
    for index in range(steps):
        stepper.step(index)
    peak = _proc_status_mb("VmHWM")
    print(json.dumps({"baseline_rss_mb": baseline, "peak_rss_mb": peak, "step_peak_mb": peak - baseline}))


def measure_cpu_memory(model_name: str, pairs: str, steps: int, seq_len: int, batch_size: int,
                       workdir: Path) -> dict:
    import torch

    reports = {}
    for kind in KINDS:
        output = subprocess.run(
            [sys.executable, __file__, "--memory-child", kind, "--models", model_name, "--pairs", pairs,
             "--steps", str(steps), "--seq-len", str(seq_len), "--batch-size", str(batch_size),
             "--threads", str(torch.get_num_threads()),
             "--workdir", str(workdir / f"mem-{kind}")],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        reports[kind] = {k: round(v, 1) for k, v in json.loads(output).items()}
    return {"cpu_memory": reports,
            "memory_ratio_shared_vs_trl": round(reports["shared"]["step_peak_mb"] / reports["trl"]["step_peak_mb"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m-instruct"])
    parser.add_argument("--pairs", default="synthetic", help="a pairs artifact (JSONL), or 'synthetic'")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--memory-steps", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=512, help="synthetic pairs only: ~tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/musc-ecd-train-step")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 is steadier on a machine "
                                                     "where other work holds a core")
    parser.add_argument("--memory-child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.models[0], args.pairs, args.steps, args.seq_len, args.batch_size,
                     args.workdir)
        return

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cpu_roofline import cpu_info, model_config, training_roofline

    from musc_ecd.models.loading import resolve_model_path

    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in args.models:
        row = measure_time(name, args.pairs, args.steps, args.seq_len, args.batch_size, Path(args.workdir))
        if not torch.cuda.is_available():
            row["training_roofline"] = training_roofline(model_config(resolve_model_path(name)))
            roofline = row["training_roofline"]["tokens_per_s"]
            for kind in KINDS:
                row[kind]["roofline_share"] = round(row[kind]["tokens_per_s"] / roofline, 3)
        if not torch.cuda.is_available():
            row.update(measure_cpu_memory(name, args.pairs, args.memory_steps, args.seq_len, args.batch_size,
                                          Path(args.workdir)))
        row.update({"model": name, "weights": "pretrained (tiny: random)", "lora": "r=16 all-linear",
                    "pairs": args.pairs, "batch_size_pairs": args.batch_size, "steps": args.steps,
                    "precision": _precision()[1],
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                    **cpu_info(), "measured_at": time.strftime("%Y-%m-%d %H:%M")})
        precision = "bf16" if _precision()[0] else "fp32"
        results[f"{name}/{row['cpu_capability']}/{precision}"] = row
        print(json.dumps(row, indent=2), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
