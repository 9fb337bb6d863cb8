"""Training step cost: TokenWeightedDPOTrainer vs trl.DPOTrainer, same model, data and settings.

    python benchmarks/train_step.py                       # tiny and SmolLM2 (random init), CPU, ~3 min
    python benchmarks/train_step.py --models tiny --steps 20

Both trainers get a random-init copy of the same model with LoRA (r=16, all linear layers), the same
pairs (about 2 × --seq-len tokens per pair, batch --batch-size) and bf16 autocast where the hardware
has bf16. Step = forward + backward + optimizer step. Steps are interleaved (A B B A ...) in one process
so drift in machine load hits both equally; the median is reported. Our trainer runs on pairs that
carry token weights (the case it exists for); TRL's on the same pairs without them.

Memory: on a GPU, the peak allocated bytes during a step; on CPU, a child process per trainer builds it,
resets the kernel's high-water mark, runs the steps, and reports the peak resident memory above what
the built trainer held before the first step (model, data and imports, which both share, left out).
Results are merged into benchmarks/results/train_step.json, keyed by model.
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
WORDS = ("the model follows each constraint of the instruction and writes a clear answer for the reader "
         "while keeping the format length and tone that the user asked for ").split()


def _text(words: int, offset: int) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(words))


def _pairs(count: int, seq_len: int) -> list[dict]:
    words = max(8, seq_len // 3)  # ~1.3 tokens per word: prompt + completion ≈ seq_len tokens
    return [
        {
            "prompt": [{"role": "user", "content": _text(words // 4, i)}],
            "chosen": [{"role": "assistant", "content": _text(words, i + 1)}],
            "rejected": [{"role": "assistant", "content": _text(words, i + 2)}],
        }
        for i in range(count)
    ]


def _random_model(name: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from musc_ecd.models import resolve_model_path

    path = resolve_model_path(name)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(path)


def _build(kind: str, model, tokenizer, rows, workdir: str, batch_size: int):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from musc_ecd.models.precision import native_bf16
    from musc_ecd.training import TokenWeightedDPOConfig, TokenWeightedDPOTrainer, completion_token_ids

    on_gpu = torch.cuda.is_available()
    bf16 = native_bf16("cuda" if on_gpu else "cpu")
    settings = dict(output_dir=workdir, per_device_train_batch_size=batch_size, use_cpu=not on_gpu, bf16=bf16,
                    report_to="none", gradient_checkpointing=False, max_length=4096, learning_rate=1e-5,
                    save_strategy="no", logging_steps=10_000, disable_tqdm=True)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    if kind == "ours":
        weighted = []
        for row in rows:
            row = dict(row)
            for side in ("chosen", "rejected"):
                count = len(completion_token_ids(tokenizer, row["prompt"], row[side]))
                row[f"{side}_weights"] = [0.5 + (i % 4) / 2 for i in range(count)]
            weighted.append(row)
        return TokenWeightedDPOTrainer(model=model, args=TokenWeightedDPOConfig(**settings),
                                       train_dataset=Dataset.from_list(weighted), processing_class=tokenizer,
                                       peft_config=lora)
    return DPOTrainer(model=model, args=DPOConfig(**settings), train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer, peft_config=lora)


class _Stepper:
    def __init__(self, trainer, batch_size: int):
        self.trainer = trainer
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # set by the Trainer's own loop, which we bypass
        dataset = trainer.train_dataset
        self.batch = trainer.data_collator([dataset[i] for i in range(batch_size)])
        self.batch = {k: v.to(trainer.args.device) if hasattr(v, "to") else v for k, v in self.batch.items()}
        trainer.model.to(trainer.args.device)

    def step(self) -> float:
        import torch

        synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
        synchronize()
        started = time.perf_counter()
        self.trainer.training_step(self.trainer.model, dict(self.batch))
        self.trainer.optimizer.step()
        self.trainer.optimizer.zero_grad(set_to_none=True)
        synchronize()
        return time.perf_counter() - started


def measure_time(model_name: str, steps: int, seq_len: int, batch_size: int, workdir: Path) -> dict:
    import torch

    base, tokenizer = _random_model(model_name)
    rows = _pairs(max(8, batch_size), seq_len)
    steppers = {kind: _Stepper(_build(kind, copy.deepcopy(base), tokenizer, rows, str(workdir / kind), batch_size),
                               batch_size) for kind in ("ours", "trl")}
    tokens = int(steppers["trl"].batch["attention_mask"].sum())
    times: dict[str, list[float]] = {"ours": [], "trl": []}
    peaks: dict[str, list[int]] = {"ours": [], "trl": []}
    for kind in ("ours", "trl"):
        steppers[kind].step()  # warm-up: allocator, autocast caches, first optimizer state
    for index in range(steps):
        order = ("ours", "trl") if index % 2 == 0 else ("trl", "ours")
        for kind in order:
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            times[kind].append(steppers[kind].step())
            if torch.cuda.is_available():
                peaks[kind].append(torch.cuda.max_memory_allocated())
    row = {kind: {"median_step_s": round(statistics.median(t), 4), "min_step_s": round(min(t), 4)}
           for kind, t in times.items()}
    for kind in peaks:
        if peaks[kind]:
            row[kind]["peak_gpu_mb"] = round(max(peaks[kind]) / 2**20, 1)
    row["tokens_per_step"] = tokens
    row["step_time_ratio"] = round(row["ours"]["median_step_s"] / row["trl"]["median_step_s"], 3)
    if peaks["trl"]:
        row["memory_ratio"] = round(max(peaks["ours"]) / max(peaks["trl"]), 3)
    return row


def _proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_child(kind: str, model_name: str, steps: int, seq_len: int, batch_size: int, workdir: str) -> None:
    """Peak resident memory of the training steps alone, above what the built trainer already holds."""
    base, tokenizer = _random_model(model_name)
    stepper = _Stepper(_build(kind, base, tokenizer, _pairs(max(8, batch_size), seq_len), workdir, batch_size),
                       batch_size)
    baseline = _proc_status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the high-water mark (VmHWM) to now
    for _ in range(steps):
        stepper.step()
    peak = _proc_status_mb("VmHWM")
    print(json.dumps({"baseline_rss_mb": baseline, "peak_rss_mb": peak, "step_peak_mb": peak - baseline}))


def measure_cpu_memory(model_name: str, steps: int, seq_len: int, batch_size: int, workdir: Path) -> dict:
    reports = {}
    for kind in ("ours", "trl"):
        output = subprocess.run(
            [sys.executable, __file__, "--memory-child", kind, "--models", model_name, "--steps", str(steps),
             "--seq-len", str(seq_len), "--batch-size", str(batch_size), "--workdir", str(workdir / f"mem-{kind}")],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        reports[kind] = {k: round(v, 1) for k, v in json.loads(output).items()}
    return {"cpu_memory": reports,
            "memory_ratio": round(reports["ours"]["step_peak_mb"] / reports["trl"]["step_peak_mb"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m-instruct"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/musc-ecd-train-step")
    parser.add_argument("--memory-child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.models[0], args.steps, args.seq_len, args.batch_size, args.workdir)
        return

    import torch

    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in args.models:
        row = measure_time(name, args.steps, args.seq_len, args.batch_size, Path(args.workdir))
        if not torch.cuda.is_available():
            row.update(measure_cpu_memory(name, args.steps, args.seq_len, args.batch_size, Path(args.workdir)))
        row.update({"model": name, "init": "random", "lora": "r=16 all-linear", "batch_size": args.batch_size,
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                    "measured_at": time.strftime("%Y-%m-%d %H:%M")})
        results[name] = row
        print(json.dumps(row, indent=2), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
