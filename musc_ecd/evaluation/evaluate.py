"""The ``evaluate`` stage: a model (base, or base + trained adapter) answers an IFEval-format set (own, IFEval,
IFBench: ``sets``).

    RUN_DIR/eval/NAME/responses.jsonl   answers (IFEval's input_response_data format), resumable
    RUN_DIR/eval/NAME/results.json      the four metrics (and a headline one), per type, per count, per prompt,
                                        prompts left out (checkers that cannot run offline) with the reason
    RUN_DIR/eval/merged-HASH/           a trained LoRA adapter merged into its base, built once, so that
                                        every backend (vLLM included) loads it as a plain model
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from musc_ecd.config import Config
from musc_ecd.errors import DataError
from musc_ecd.evaluation.ifeval import load_inputs, score_files
from musc_ecd.evaluation.sets import own_eval_set, set_source  # noqa: F401 (own_eval_set: re-exported)
from musc_ecd.models.backend_choice import engine_record
from musc_ecd.models.precision import precision_record
from musc_ecd.store import retire, write_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)


def evaluated_set(options) -> str:
    """The set ``evaluate`` answers: the one ``eval.sets`` names, else IFEval with ``eval.ifeval_path``, else own."""
    names = options.set_names()
    if len(names) == 1:
        return names[0]
    return "ifeval" if options.ifeval_path else "own"


def evaluate(cfg: Config, run_dir: Path) -> dict:
    from musc_ecd.respond import respond

    options = cfg.eval
    name = options.name or ("trained" if options.adapter else "base")
    out_dir = run_dir / "eval" / name
    set_name = evaluated_set(options)
    source = set_source(options, set_name)
    inputs = load_inputs(source)[: options.limit]
    model = _merged_model(cfg, run_dir) if options.adapter else cfg.model.policy
    _retire_answers_of_another_model(out_dir, model)
    prompts = out_dir / "prompts.jsonl"  # exactly the prompts evaluated (after eval.limit)
    write_jsonl_atomic(prompts, inputs)
    answer_cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, policy=model),
        data=dataclasses.replace(cfg.data, prompts=str(prompts), prompt_field="prompt", id_field="key", limit=None),
        generation=dataclasses.replace(cfg.generation, n=1, temperature=options.temperature,
                                       max_new_tokens=options.max_new_tokens),
    )
    respond(answer_cfg, out_dir)
    results = score_files(prompts, out_dir / "responses.jsonl")
    results.update({"eval_set": str(source), "set": set_name, "model": cfg.model.policy, "adapter": options.adapter,
                    "name": name,
                    "precision": precision_record(cfg.model.dtype), "engine": engine_record(cfg)})
    write_atomic(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    log.info("%s: %s", name, " ".join(f"{k}={v:.4f}" for k, v in results["metrics"].items()))
    return results


def _retire_answers_of_another_model(out_dir: Path, model: str) -> None:
    """Answers are keyed by the model that wrote them: a retrained adapter (a new merged directory) makes the
    old answers stale, so they are moved aside and the set is answered again."""
    stamp = out_dir / "model.json"
    answered_by = json.loads(stamp.read_text()).get("model") if stamp.is_file() else model
    if answered_by != model:
        retire(out_dir, f"answered by {answered_by}, not {model}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp, json.dumps({"model": model}) + "\n")


def _merged_model(cfg: Config, run_dir: Path) -> str:
    """A plain model directory for ``eval.adapter``: merged once if it is a LoRA adapter."""
    adapter = Path(cfg.eval.adapter)
    if not adapter.is_dir():
        raise DataError(f"eval.adapter '{adapter}' is not a directory; point it at a trained RUN_DIR/model")
    if not (adapter / "adapter_config.json").is_file():
        return str(adapter)  # a fully fine-tuned model: use as is
    # Named by the adapter's content: a retrained adapter gets a new directory, so answers cached for
    # the old one can never be mistaken for the new one's (the respond stage keys on the model path).
    digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()[:12]
    target = run_dir / "eval" / f"merged-{digest}"
    stamp = target / "merged_from.json"
    if stamp.is_file():
        return str(target)
    from musc_ecd.models.adapters import merge_adapter

    # Saved in the precision the answering backend will load: bf16 only where it is native.
    # An adapter trained after an SFT phase sits on the SFT model, which the train stage names beside it.
    base_file = adapter / "base_model.json"
    base_spec = json.loads(base_file.read_text())["base_model"] if base_file.is_file() else cfg.model.policy
    merge_adapter(adapter, base_spec, target, dtype=cfg.model.dtype, trust_remote_code=cfg.model.trust_remote_code)
    write_atomic(stamp, json.dumps({"adapter": str(adapter.resolve()), "sha256_12": digest}) + "\n")
    log.info("merged adapter %s into %s", adapter, target)
    return str(target)
