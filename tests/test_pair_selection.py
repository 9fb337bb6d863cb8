"""Which pairs a run trains on and which side it prefers: the label-flip control (``train.swap_labels``) and the
pair budget (``train.max_pairs``) on SFT, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.fingerprints import (
    MODEL,
    generate_share_key,
    keyed_tree,
    model_fingerprint,
    pairs_fingerprint,
    weights_fingerprint,
)
from musc_ecd.store import read_jsonl
from musc_ecd.training.run import load_pairs
from musc_ecd.training.selection import swap_labels, within_budget
from musc_ecd.training.sft import sft_selection

REPO = Path(__file__).resolve().parents[1]
TRAIN_TINY = str(REPO / "configs" / "train_tiny.yaml")
PAIRS = REPO / "configs" / "data" / "pairs_sample.jsonl"
CHOSEN_WEIGHT, REJECTED_WEIGHT = 0.5, 1.5


def test_a_swap_exchanges_the_texts_and_their_weights_and_keeps_the_rest():
    row = {"prompt": "p", "chosen": "good", "rejected": "bad", "chosen_weights": [1.0, 0.2],
           "rejected_weights": [2.0, 0.0, 1.0], "difficulty": 0.3}
    (swapped,) = swap_labels([row])
    assert swapped == {"prompt": "p", "chosen": "bad", "rejected": "good", "chosen_weights": [2.0, 0.0, 1.0],
                       "rejected_weights": [1.0, 0.2], "difficulty": 0.3}
    assert row["chosen"] == "good"  # the input is not changed
    assert swap_labels([{"prompt": "p", "chosen": "a", "rejected": "b"}]) == [
        {"prompt": "p", "chosen": "b", "rejected": "a"}]  # no weight columns: none are made up


def test_swapped_weights_stay_on_the_tokens_they_were_computed_for(tiny_path):
    """The collator puts each side's weights on that side's tokens: after a flip, the new chosen row carries
    the old rejected weights over exactly the old rejected tokens (one weight per token, zeros on the prompt)."""
    from transformers import AutoTokenizer

    from musc_ecd.tokens import pair_completion_token_ids
    from musc_ecd.training.collator import DataCollatorForWeightedPreference

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    prompt = [{"role": "user", "content": "Answer in lowercase."}]
    chosen = [{"role": "assistant", "content": "all lowercase here"}]
    rejected = [{"role": "assistant", "content": "NOT Lowercase At All, Sorry"}]
    chosen_ids, rejected_ids = pair_completion_token_ids(tokenizer, prompt, chosen, rejected)
    # the tokens of a side do not depend on which side it is on
    assert pair_completion_token_ids(tokenizer, prompt, rejected, chosen) == (rejected_ids, chosen_ids)
    row = {"prompt": prompt, "chosen": chosen, "rejected": rejected,
           "chosen_weights": [0.1 * (i + 1) for i in range(len(chosen_ids))],
           "rejected_weights": [2.0 - 0.1 * i for i in range(len(rejected_ids))]}
    (flipped,) = swap_labels([row])
    prompt_ids = tokenizer("Answer in lowercase.")["input_ids"]  # any prompt: the collator zeroes its weights
    example = {"prompt_ids": prompt_ids, "chosen_ids": rejected_ids, "rejected_ids": chosen_ids,
               "chosen_weights": flipped["chosen_weights"], "rejected_weights": flipped["rejected_weights"]}
    batch = DataCollatorForWeightedPreference(pad_token_id=tokenizer.pad_token_id or 0)([example])
    weights, mask = batch["completion_weights"], batch["completion_mask"]
    first, second = (weights[i][mask[i].bool()].tolist() for i in (0, 1))
    assert first == pytest.approx(row["rejected_weights"]) and len(first) == len(rejected_ids)
    assert second == pytest.approx(row["chosen_weights"]) and len(second) == len(chosen_ids)
    assert weights[0][: len(prompt_ids)].abs().sum() == 0


def _weighted_pairs(tmp_path: Path, tiny_path: Path) -> Path:
    """The sample pairs with constant token weights per side (0.5 chosen, 1.5 rejected), one per token."""
    from transformers import AutoTokenizer

    from musc_ecd.tokens import pair_completion_token_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    rows = []
    for pair in read_jsonl(PAIRS):
        chosen_ids, rejected_ids = pair_completion_token_ids(tokenizer, pair["prompt"], pair["chosen"],
                                                             pair["rejected"])
        rows.append({**pair, "chosen_weights": [CHOSEN_WEIGHT] * len(chosen_ids),
                     "rejected_weights": [REJECTED_WEIGHT] * len(rejected_ids)})
    return write_jsonl(tmp_path / "weighted.jsonl", rows)


def _first_step(run_dir: Path) -> dict:
    return next(m for m in read_jsonl(run_dir / "train" / "metrics.jsonl") if "loss" in m)


def test_the_label_flip_trains_on_the_same_pairs_with_the_sides_exchanged(tmp_path, tiny_path):
    """At step 1 the LoRA adapter is still zero (policy = reference), so the flipped run scores exactly the other
    side: its chosen log-probs and weight means are the plain run's rejected ones, and the reverse."""
    pairs = _weighted_pairs(tmp_path, tiny_path)
    common = [TRAIN_TINY, f"train.pairs={pairs}", "train.max_steps=1", "train.max_pairs=16"]
    assert main(["train", *common, f"run_dir={tmp_path / 'plain'}"]) == 0
    assert main(["train", *common, "train.swap_labels=true", f"run_dir={tmp_path / 'flipped'}"]) == 0
    plain, flipped = _first_step(tmp_path / "plain"), _first_step(tmp_path / "flipped")
    assert plain["weights/chosen_mean"] == pytest.approx(CHOSEN_WEIGHT)
    assert flipped["weights/chosen_mean"] == pytest.approx(REJECTED_WEIGHT)
    assert flipped["weights/rejected_mean"] == pytest.approx(CHOSEN_WEIGHT)
    assert flipped["logps/chosen"] == pytest.approx(plain["logps/rejected"], rel=1e-4)
    assert flipped["logps/rejected"] == pytest.approx(plain["logps/chosen"], rel=1e-4)
    summary = json.loads((tmp_path / "flipped" / "model" / "train_summary.json").read_text())
    assert summary["swap_labels"] is True and summary["pairs"] == 16 and summary["pairs_available"] == 32
    assert summary["max_pairs"] == 16


def test_the_flip_keys_the_model_only_and_needs_a_preference_loss():
    plain = load_config(TRAIN_TINY)
    flipped = load_config(TRAIN_TINY, ["train.swap_labels=true", "train.weights=edit"])
    weighted = load_config(TRAIN_TINY, ["train.weights=edit"])
    assert model_fingerprint(plain) != model_fingerprint(load_config(TRAIN_TINY, ["train.swap_labels=true"]))
    assert "swap_labels" not in keyed_tree(plain, MODEL)["train"]  # off: models trained before keep their key
    assert pairs_fingerprint(plain) == pairs_fingerprint(flipped)
    assert generate_share_key(plain) == generate_share_key(flipped)
    assert weights_fingerprint(weighted) == weights_fingerprint(flipped)
    for overrides in (["train.loss=[sft]"], ["train.sft_first=true"], ["train.loss=[hinge,sft]"]):
        with pytest.raises(ConfigError, match="train.swap_labels"):
            load_config(TRAIN_TINY, ["train.swap_labels=true", *overrides])


def test_sft_on_pairs_under_a_budget_uses_the_chosen_of_the_same_pairs(tmp_path):
    rows = [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"q{i}"}],
             "chosen": [{"role": "assistant", "content": f"good {i}"}],
             "rejected": [{"role": "assistant", "content": f"bad {i}"}]} for i in range(12)]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    preference = within_budget(load_pairs(path), 5, seed=3)
    chosen = sft_selection(path, 5, seed=3)
    assert [r["completion"][0]["content"] for r in chosen.rows] == [r["chosen"][0]["content"] for r in preference]
    assert (chosen.selected, chosen.available) == (5, 12)
    assert len(sft_selection(path, None, 3).rows) == 12


def test_loss_sft_trains_on_the_budget_and_says_so(tmp_path):
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.loss=[sft]",
                 "train.max_pairs=8", "train.max_steps=1"]) == 0
    summary = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    assert summary["pairs"] == 8 and summary["pairs_available"] == 32 and summary["sft_examples"] <= 8
