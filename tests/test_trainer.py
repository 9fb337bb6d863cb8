"""TokenWeightedDPOTrainer: exact parity with trl.DPOTrainer, and the weighted losses by hand."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig
from training_helpers import (
    config_kwargs,
    conversational_rows,
    dataset,
    perturbed_copy,
    score_one_batch,
    sequence_token_logps,
)
from trl import DPOConfig, DPOTrainer

from musc_ecd.models import load_model
from musc_ecd.training import (
    TokenWeightedDPOConfig,
    TokenWeightedDPOTrainer,
    WeightAlignmentError,
    completion_token_ids,
)

METRICS = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
           "logps/rejected"]


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    return model, tokenizer


def _rows_with_weights(tokenizer, make_weights):
    rows = conversational_rows()
    for row in rows:
        for side in ("chosen", "rejected"):
            count = len(completion_token_ids(tokenizer, row["prompt"], row[side]))
            row[f"{side}_weights"] = make_weights(count)
    return rows


def _random_weights(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return lambda count: (torch.rand(count, generator=generator) * 2).tolist()


def _build(cls, config_cls, tiny, tmp_path, rows=None, lora=False, data_collator=None, **config):
    """A trainer whose policy differs from its reference (perturbed weights, or a random LoRA init)."""
    base, tokenizer = tiny
    kwargs = dict(args=config_cls(**config_kwargs(tmp_path, **config)), train_dataset=dataset(rows),
                  processing_class=tokenizer, data_collator=data_collator)
    if lora:
        torch.manual_seed(0)  # same random adapter in every trainer built by a test
        peft = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
        return cls(model=copy.deepcopy(base), peft_config=peft, **kwargs)
    return cls(model=perturbed_copy(base), ref_model=copy.deepcopy(base), **kwargs)


def _assert_same(ours, theirs):
    loss_a, metrics_a, grads_a = ours
    loss_b, metrics_b, grads_b = theirs
    torch.testing.assert_close(loss_a, loss_b, atol=1e-6, rtol=0)
    for key in METRICS:
        assert metrics_a[key] == pytest.approx(metrics_b[key], abs=1e-6), key
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_b:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("precompute", [False, True], ids=["live-ref", "precomputed-ref"])
def test_parity_with_trl_without_weights_and_with_uniform_weights(tiny, tmp_path, lora, precompute):
    """TRL's layout (prefix sharing off): TRL's own code path plus a multiply, equal to 1e-6."""
    reference = score_one_batch(_build(DPOTrainer, DPOConfig, tiny, tmp_path / "trl", lora=lora,
                                       precompute_ref_log_probs=precompute))
    absent = score_one_batch(_build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "a",
                                    lora=lora, precompute_ref_log_probs=precompute, prefix_sharing="off"))
    uniform_rows = _rows_with_weights(tiny[1], lambda count: [1.0] * count)
    uniform = score_one_batch(_build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "u",
                                     rows=uniform_rows, lora=lora, precompute_ref_log_probs=precompute,
                                     prefix_sharing="off"))
    assert reference[0] != pytest.approx(0.6931, abs=1e-3)  # policy ≠ reference: a real test
    _assert_same(absent, reference)
    _assert_same(uniform, reference)
    assert uniform[1]["weights/chosen_mean"] == 1.0


def test_every_trl_metric_is_logged_as_trl_logs_it(tiny, tmp_path):
    """The trainer computes the loss itself (losses.py): TRL's whole metric set must still come out, equal."""
    reference = score_one_batch(_build(DPOTrainer, DPOConfig, tiny, tmp_path / "trl"))[1]
    ours = score_one_batch(_build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "ours",
                                  rows=_rows_with_weights(tiny[1], lambda count: [1.0] * count),
                                  prefix_sharing="off"))[1]
    assert ours.keys() - reference.keys() == {"weights/chosen_mean", "weights/rejected_mean", "tokens/padding_share"}
    for key in reference:
        assert ours[key] == pytest.approx(reference[key], abs=1e-6), key


def test_evaluation_loss_equals_trl(tiny, tmp_path):
    results = {}
    for name, cls, config_cls in (("trl", DPOTrainer, DPOConfig),
                                  ("ours", TokenWeightedDPOTrainer, TokenWeightedDPOConfig)):
        trainer = _build(cls, config_cls, tiny, tmp_path / name, per_device_eval_batch_size=4)
        results[name] = trainer.evaluate(dataset(conversational_rows()[:4]))
    assert results["ours"]["eval_loss"] == pytest.approx(results["trl"]["eval_loss"], abs=1e-6)
    assert results["ours"]["eval_rewards/margins"] == pytest.approx(results["trl"]["eval_rewards/margins"], abs=1e-6)


def _hand_sums(trainer, batch):
    """Σ_t w_t·log π and Σ_t w_t·log π_ref per row, computed from plain logits."""
    weights = batch["completion_weights"][:, 1:]
    args = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    policy = sequence_token_logps(trainer.model, *args)
    reference = sequence_token_logps(trainer.ref_model, *args)
    return (policy * weights).sum(1), (reference * weights).sum(1), policy, weights


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge", "ipo", "sft"])
def test_weighted_losses_against_their_formulas(tiny, tmp_path, loss_type):
    rows = _rows_with_weights(tiny[1], _random_weights())
    trainer = _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path, rows=rows,
                     loss_type=[loss_type])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    policy_sum, ref_sum, policy_tokens, weights = _hand_sums(trainer, batch)
    ratio_chosen, ratio_rejected = (policy_sum - ref_sum).chunk(2)
    beta = trainer.beta
    if loss_type == "sigmoid":
        expected = -F.logsigmoid(beta * (ratio_chosen - ratio_rejected)).mean()
    elif loss_type == "hinge":
        expected = torch.relu(1 - beta * (ratio_chosen - ratio_rejected)).mean()
    elif loss_type == "ipo":  # per-token log-ratios: each divided by its completion's weight mass Σ_t w_t
        mass_chosen, mass_rejected = (weights * batch["completion_mask"][:, 1:]).sum(1).chunk(2)
        delta = ratio_chosen / mass_chosen - ratio_rejected / mass_rejected
        expected = ((delta - 1 / (2 * beta)) ** 2).mean()
    else:  # sft: −Σ_t w_t·log π(y_t) / Σ_t w_t over the chosen completion tokens
        chosen_mask = batch["completion_mask"][:, 1:].chunk(2)[0].bool()
        chosen_weights = weights.chunk(2)[0][chosen_mask]
        expected = -(policy_tokens * weights).chunk(2)[0][chosen_mask].sum() / chosen_weights.sum()
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(batch))
    torch.testing.assert_close(loss.detach(), expected, atol=1e-5, rtol=1e-5)


def test_slic_is_hinge_plus_weighted_sft_regulariser(tiny, tmp_path):
    rows = _rows_with_weights(tiny[1], _random_weights(3))
    losses = {}
    for name, loss_type, weights in (("slic", ["hinge", "sft"], [1.0, 0.5]), ("hinge", ["hinge"], None),
                                     ("sft", ["sft"], None)):
        trainer = _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / name, rows=rows,
                         loss_type=loss_type, loss_weights=weights)
        losses[name] = score_one_batch(trainer)[0]
    torch.testing.assert_close(losses["slic"], losses["hinge"] + 0.5 * losses["sft"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("sharing", ["on", "off"])
def test_zero_weight_token_gets_no_gradient_through_its_log_prob(tiny, tmp_path, sharing):
    rows = _rows_with_weights(tiny[1], _random_weights(1))
    trainer = _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path, rows=rows,
                     prefix_sharing=sharing)
    examples = [trainer.train_dataset[i] for i in range(4)]
    # the last chosen token of pair 0: nothing after it reads it (rejected tokens do not see chosen ones),
    # so only its own log-prob depends on its identity
    original = examples[0]["chosen_ids"][-1]
    other = (original + 7) % 500

    def loss_and_grads(weight_at_last, token):
        trial = copy.deepcopy(examples)
        trial[0]["chosen_weights"][-1] = weight_at_last
        trial[0]["chosen_ids"][-1] = token
        batch = trainer.data_collator(trial)
        trainer.model.zero_grad(set_to_none=True)
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]

    trainer.model.train()
    loss_a, grads_a = loss_and_grads(0.0, original)
    loss_b, grads_b = loss_and_grads(0.0, other)
    torch.testing.assert_close(loss_a, loss_b, atol=1e-7, rtol=0)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=0)
    # control: with weight 1 the same swap does change the loss, so the test can fail
    assert abs(loss_and_grads(1.0, original)[0] - loss_and_grads(1.0, other)[0]) > 1e-6


def test_doubling_every_weight_equals_doubling_beta(tiny, tmp_path):
    rows = _rows_with_weights(tiny[1], _random_weights(2))
    trainer = _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path, rows=rows)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    trainer.model.train()
    doubled = {**batch, "completion_weights": batch["completion_weights"] * 2}
    loss_doubled_weights = trainer.compute_loss(trainer.model, doubled)
    trainer.beta *= 2
    loss_doubled_beta = trainer.compute_loss(trainer.model, dict(batch))
    torch.testing.assert_close(loss_doubled_weights, loss_doubled_beta, atol=1e-6, rtol=0)


def test_precomputed_reference_matches_live_reference_with_weights(tiny, tmp_path):
    rows = _rows_with_weights(tiny[1], _random_weights(4))
    live = score_one_batch(_build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "l", rows=rows))
    cached = score_one_batch(_build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "c", rows=rows,
                                    precompute_ref_log_probs=True))
    _assert_same(cached, live)


def test_precomputed_reference_is_never_stale_after_weights_change(tiny, tmp_path):
    """Two datasets TRL would fingerprint identically (same base fingerprint), different weights."""
    results = {}
    for seed in (5, 6):
        rows = _rows_with_weights(tiny[1], _random_weights(seed))
        for precompute in (True, False):
            base, tokenizer = tiny
            data = dataset(rows)
            data._fingerprint = "same-for-both"  # as when a file is rewritten in place
            trainer = TokenWeightedDPOTrainer(
                model=perturbed_copy(base), ref_model=copy.deepcopy(base),
                args=TokenWeightedDPOConfig(**config_kwargs(tmp_path, precompute_ref_log_probs=precompute)),
                train_dataset=data, processing_class=tokenizer)
            results[seed, precompute] = score_one_batch(trainer)[0].item()
    assert results[5, True] == pytest.approx(results[5, False], abs=1e-6)
    assert results[6, True] == pytest.approx(results[6, False], abs=1e-6)
    assert results[5, False] != pytest.approx(results[6, False], abs=1e-4)


def test_weight_length_mismatch_names_example_and_lengths(tiny, tmp_path):
    rows = _rows_with_weights(tiny[1], lambda count: [1.0] * count)
    rows[2]["rejected_weights"] = rows[2]["rejected_weights"][:-1]
    expected = len(rows[2]["rejected_weights"])
    with pytest.raises(WeightAlignmentError, match=rf"example 2: rejected_weights has {expected} weights but "
                                                   rf"the rejected completion has {expected + 1} tokens"):
        _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path, rows=rows)


def test_unsupported_options_are_refused_up_front(tiny, tmp_path):
    with pytest.raises(ValueError, match="not supported with token weights"):
        _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path, loss_type=["robust"])
    with pytest.raises(ValueError, match="use_liger_kernel"):
        TokenWeightedDPOTrainer._check_supported(TokenWeightedDPOConfig(**config_kwargs(tmp_path),
                                                                        use_liger_kernel=True))
    with pytest.raises(ValueError, match="curriculum"):
        TokenWeightedDPOConfig(**config_kwargs(tmp_path), curriculum="hardest_first")


def test_collator_weights_are_zero_on_prompt_and_padding():
    from musc_ecd.training import DataCollatorForWeightedPreference

    collator = DataCollatorForWeightedPreference(pad_token_id=0)
    batch = collator([
        {"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6], "chosen_weights": [0.5, 2.0],
         "rejected_weights": [1.5]},
        {"prompt_ids": [7], "chosen_ids": [8], "rejected_ids": [9, 10], "chosen_weights": None,
         "rejected_weights": None},
    ])
    expected = torch.tensor([[0, 0, 0, 0.5, 2.0], [0, 1.0, 0, 0, 0], [0, 0, 0, 1.5, 0], [0, 1.0, 1.0, 0, 0]])
    torch.testing.assert_close(batch["completion_weights"], expected)
    assert torch.equal(batch["completion_weights"] > 0, batch["completion_mask"].bool())


def test_completion_token_ids_lives_outside_the_training_package():
    """Data building (the weights stage) tokenizes as the trainer does without importing the trainer."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    from musc_ecd import tokens

    assert completion_token_ids is tokens.completion_token_ids  # musc_ecd.training's public name, from one place
    assert importlib.util.find_spec("musc_ecd.training.tokens") is None  # no module kept only to re-export it
    probe = ("import sys, musc_ecd.tokens, musc_ecd.weighting; "
             "print(sorted(m for m in sys.modules if m.startswith(('musc_ecd.training', 'trl.trainer'))))")
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
                         cwd=repo).stdout
    assert out.strip() == "[]"


def test_one_definition_of_the_prefix_sharing_choices_and_no_dead_exports():
    import musc_ecd.training
    from musc_ecd.config import choices
    from musc_ecd.training import losses, trainer

    assert trainer.PREFIX_SHARING is choices.PREFIX_SHARING
    assert not hasattr(musc_ecd.training, "scale_shifted_log_probs") and not hasattr(losses, "scale_shifted_log_probs")


@pytest.mark.parametrize("conversational", [True, False], ids=["chat", "plain"])
def test_pair_completion_token_ids_are_the_ids_trl_scores(tiny, tmp_path, conversational):
    from musc_ecd.training import pair_completion_token_ids

    rows = conversational_rows() if conversational else [
        {"prompt": p, "chosen": c, "rejected": r} for p, c, r in
        ((row["prompt"][0]["content"], row["chosen"][0]["content"], row["rejected"][0]["content"])
         for row in conversational_rows())]
    trainer = _build(DPOTrainer, DPOConfig, tiny, tmp_path, rows=rows)
    for row, prepared in zip(rows, trainer.train_dataset, strict=True):
        chosen, rejected = pair_completion_token_ids(tiny[1], row["prompt"], row["chosen"], row["rejected"])
        assert (chosen, rejected) == (prepared["chosen_ids"], prepared["rejected_ids"])


def test_weights_over_tokens_that_drift_from_trls_are_refused(tiny, tmp_path, monkeypatch):
    """The ids check is real: a tokenization that keeps the count but moves a token (another TRL or tokenizer
    version) is refused, where a length check alone would let every weight land on another token."""
    from musc_ecd.training import trainer as trainer_module

    rows = _rows_with_weights(tiny[1], lambda count: [1.0] * count)
    _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "ok", rows=rows)  # agrees: accepted
    real = trainer_module.pair_completion_token_ids

    def drifted(tokenizer, prompt, chosen, rejected):
        chosen_ids, rejected_ids = real(tokenizer, prompt, chosen, rejected)
        return chosen_ids[1:] + chosen_ids[:1], rejected_ids  # same length, tokens moved

    monkeypatch.setattr(trainer_module, "pair_completion_token_ids", drifted)
    with pytest.raises(WeightAlignmentError, match="example 0: the chosen tokens the weights are computed over"):
        _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "drift", rows=rows)


@pytest.mark.parametrize("precompute", [False, True], ids=["live-ref", "precomputed-ref"])
def test_weights_apply_when_the_tokenizer_is_left_to_trl(tiny, tmp_path, caplog, precompute):
    """No processing_class: TRL loads the tokenizer from the model; the weighted collator (and prefix sharing,
    which the log announces) must still be what batches the pairs, also in TRL's precompute pass."""
    rows = _rows_with_weights(tiny[1], _random_weights(7))
    given = _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "given", rows=rows,
                   precompute_ref_log_probs=precompute)
    base, _ = tiny
    args = TokenWeightedDPOConfig(**config_kwargs(tmp_path / "left", precompute_ref_log_probs=precompute))
    with caplog.at_level("INFO", logger="musc_ecd.training.trainer"):
        left = TokenWeightedDPOTrainer(model=perturbed_copy(base), ref_model=copy.deepcopy(base), args=args,
                                       train_dataset=dataset(rows))
    assert "prefix sharing on" in caplog.text and left.prefix_sharing
    batch = left.data_collator([left.train_dataset[i] for i in range(4)])
    assert {"completion_weights", "shared_input_ids"} <= batch.keys()
    _assert_same(score_one_batch(left), score_one_batch(given))


def test_a_collator_that_drops_the_weights_is_refused(tiny, tmp_path):
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from musc_ecd.training import DataCollatorForWeightedPreference

    rows = _rows_with_weights(tiny[1], _random_weights(8))
    plain = DataCollatorForPreference(pad_token_id=tiny[1].pad_token_id)
    with pytest.raises(ValueError, match="the train dataset has token weights .* does not carry them"):
        _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "plain", rows=rows,
               data_collator=plain)
    _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "unweighted", data_collator=plain)
    weighted = DataCollatorForWeightedPreference(pad_token_id=tiny[1].pad_token_id)
    trainer = _build(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "weighted", rows=rows,
                     data_collator=weighted)
    assert trainer.data_collator is weighted
