"""The GPU check: our token-weighted trainer against trl.DPOTrainer on a ~0.5B Qwen2-shaped model, and the hf
backend's generation speed, in one short run (``benchmarks/gpu_check.sh`` prepares the environment and calls it).

    python benchmarks/gpu_check.py --out gpu_check.json              # on the GPU machine (bf16)
    python benchmarks/gpu_check.py --dry-run --out /tmp/check.json   # CPU, the tiny shape, fp32: the test's run

Randomly initialised weights (the GPU machine cannot receive a real checkpoint of this size), so the
numbers are about speed and agreement, not quality. Measured, all in one process:

- agreement: on the same batch, with the same LoRA initialisation and uniform token weights, our trainer
  (prefix sharing on, then off) and ``trl.DPOTrainer`` give the loss and every LoRA gradient; the largest
  relative difference is reported against a stated bf16 tolerance (bf16 keeps 8 significant bits, and two
  layouts sum in different orders: 2e-2 relative on the loss, 5e-2 on a gradient's norm of differences);
- speed: trained tokens/s (TRL's count: prompt + chosen + prompt + rejected, no padding), model FLOPs
  utilisation = tokens/s x 6 x parameters / the GPU's dense bf16 peak (6N: forward, backward through the
  frozen base for LoRA, and the live reference's forward), peak memory per trainer;
- generation: the hf backend, greedy, 256 new tokens, batches 16 and 64.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

QWEN2_0_5B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=4096, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            max_position_embeddings=2048, tie_word_embeddings=True)
DENSE_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
"""Vendor dense (no sparsity) bf16 tensor-core peaks, by a name the device name contains."""
LOSS_TOLERANCE, GRAD_TOLERANCE = 2e-2, 5e-2
KINDS = ("shared", "ours_trl_layout", "trl")


def build_model(shape: dict, vocab: int, dtype, device: str):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(**{"vocab_size": vocab, **shape})
    return Qwen2ForCausalLM(config).to(dtype=dtype, device=device)


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def lora_grads(trainer) -> dict:
    return {n: p.grad.detach().float().clone() for n, p in trainer.model.named_parameters()
            if p.requires_grad and p.grad is not None}


def agreement(model, tokenizer, rows: list[dict], workdir: Path, batch_size: int) -> dict:
    """Loss and LoRA gradients of one batch, ours (sharing on and off) against trl.DPOTrainer's."""
    import torch
    from train_step import _build

    found = {}
    for kind in KINDS:
        torch.manual_seed(1)  # the same LoRA initialisation in every trainer
        trainer = _build(kind, copy.deepcopy(model), tokenizer, rows, str(workdir / f"agree-{kind}"), batch_size,
                         uniform_weights=True)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(batch_size)])
        batch = {k: v.to(trainer.args.device) if hasattr(v, "to") else v for k, v in batch.items()}
        trainer.model.to(trainer.args.device)
        trainer.current_gradient_accumulation_steps = 1
        loss = float(trainer.training_step(trainer.model, batch))
        found[kind] = (loss, lora_grads(trainer))
        del trainer
    reference_loss, reference_grads = found["trl"]
    report = {"trl_loss": round(reference_loss, 6), "loss_tolerance_rel": LOSS_TOLERANCE,
              "grad_tolerance_rel": GRAD_TOLERANCE}
    for kind in ("shared", "ours_trl_layout"):
        loss, grads = found[kind]
        loss_rel = abs(loss - reference_loss) / max(abs(reference_loss), 1e-8)
        worst = 0.0
        for name, grad in reference_grads.items():
            mine = grads.get(name)
            if mine is None:
                worst = float("inf")
                break
            worst = max(worst, float((mine - grad).norm() / grad.norm().clamp_min(1e-12)))
        report[kind] = {"loss": round(loss, 6), "loss_rel_diff": round(loss_rel, 6),
                        "max_grad_rel_diff": round(worst, 6), "compared_tensors": len(reference_grads),
                        "within_tolerance": loss_rel <= LOSS_TOLERANCE and worst <= GRAD_TOLERANCE}
    return report


def speed(model, tokenizer, rows: list[dict], workdir: Path, batch_size: int, steps: int, peak_tflops) -> dict:
    import torch
    from train_step import _build, _Stepper

    on_gpu = torch.cuda.is_available()
    count = parameters(model)
    report = {}
    for kind in KINDS:
        torch.manual_seed(1)
        stepper = _Stepper(_build(kind, copy.deepcopy(model), tokenizer, rows, str(workdir / f"speed-{kind}"),
                                  batch_size), batch_size, steps)
        stepper.step(0)  # warm-up
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        seconds = [stepper.step(i) for i in range(steps)]
        tokens = sum(stepper.layout(i)["tokens"] for i in range(steps))
        per_s = tokens / sum(seconds)
        report[kind] = {"tokens_per_s": round(per_s, 1), "median_step_s": round(sorted(seconds)[len(seconds) // 2], 4)}
        if peak_tflops:
            report[kind]["mfu"] = round(per_s * 6 * count / (peak_tflops * 1e12), 4)
        if on_gpu:
            report[kind]["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        del stepper
        if on_gpu:
            torch.cuda.empty_cache()
    report["shared_vs_trl_tokens_per_s"] = round(report["shared"]["tokens_per_s"] / report["trl"]["tokens_per_s"], 3)
    return report


def generation(model, tokenizer, batches: list[int], max_new_tokens: int) -> dict:
    from train_step import _text

    from musc_ecd.models import SamplingParams
    from musc_ecd.models.hf_backend import HFGenerator

    report = {}
    for batch in batches:
        generator = HFGenerator(model, tokenizer, "random-qwen2", batch_size=batch, show_progress=False)
        requests = [[{"role": "user", "content": _text(40 + i % 7 * 10, i)}] for i in range(batch)]
        generator.generate(requests[:2], SamplingParams(max_new_tokens=4))  # warm-up
        started = time.perf_counter()
        outputs = generator.generate(requests, SamplingParams(max_new_tokens=max_new_tokens))
        seconds = time.perf_counter() - started
        tokens = sum(len(samples[0].token_ids) for samples in outputs)
        report[str(batch)] = {"generated_tokens": tokens, "seconds": round(seconds, 2),
                              "tokens_per_s": round(tokens / seconds, 1)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--dry-run", action="store_true", help="CPU, the tiny shape, fp32, two steps")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--workdir", default="/tmp/musc-ecd-gpu-check")
    args = parser.parse_args()

    import torch
    from train_step import _synthetic_pairs

    from musc_ecd.models.loading import resolve_model_path

    on_gpu = torch.cuda.is_available() and not args.dry_run
    shape, dtype = (QWEN2_0_5B, torch.bfloat16) if on_gpu else (TINY, torch.float32)
    steps, seq_len, batches = (args.steps, args.seq_len, [16, 64]) if not args.dry_run else (2, 96, [2])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("tiny"))  # offline; ids fit any vocabulary
    device = "cuda" if on_gpu else "cpu"
    model = build_model(shape, max(len(tokenizer), shape.get("vocab_size", 0)), dtype, device)
    name = torch.cuda.get_device_name() if on_gpu else "cpu"
    peak = next((v for k, v in DENSE_BF16_TFLOPS.items() if k in name), None) if on_gpu else None
    rows = _synthetic_pairs(max(steps + 1, 4) * args.batch_size, seq_len)
    workdir = Path(args.workdir)
    started = time.perf_counter()
    result = {
        "device": name, "dtype": str(dtype).removeprefix("torch."), "shape": shape, "parameters": parameters(model),
        "dense_bf16_peak_tflops": peak, "torch": torch.__version__, "batch_size_pairs": args.batch_size,
        "seq_len": seq_len, "steps": steps, "dry_run": args.dry_run,
        "agreement": agreement(model, tokenizer, rows, workdir, args.batch_size),
        "training": speed(model, tokenizer, rows, workdir, args.batch_size, steps, peak),
        "generation_hf": generation(model, tokenizer, batches, 256 if not args.dry_run else 8),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
