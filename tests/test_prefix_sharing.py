"""Prefix sharing: the layout, mask and unshare worked out by hand; logits equal to the unshared rows;
the trainer's loss, metrics and gradients equal trl.DPOTrainer's with it on."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from peft import LoraConfig
from training_helpers import config_kwargs, conversational_rows, dataset, perturbed_copy, score_one_batch
from trl import DPOConfig, DPOTrainer

from musc_ecd.models import load_model
from musc_ecd.training import TokenWeightedDPOConfig, TokenWeightedDPOTrainer, completion_token_ids
from musc_ecd.training.collator import DataCollatorForWeightedPreference
from musc_ecd.training.prefix_sharing import (
    pack_first_fit,
    padding_share,
    prefix_sharing_mask,
    share_prefixes,
    unshare,
)

METRICS = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
           "logps/rejected", "entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy"]
LOSSES = [(["sigmoid"], None), (["hinge"], None), (["ipo"], None), (["sft"], None), (["hinge", "sft"], [1.0, 0.5])]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", dtype="float32", device="cpu")


# -- pure functions, by hand -----------------------------------------------------------------------

def test_share_prefixes_one_pair_by_hand():
    # prompt [1 2 3], chosen [4 5], rejected [6]: TRL's rows are [1 2 3 4 5] and [1 2 3 6 0], L = 5
    shared = share_prefixes([[1, 2, 3]], [[4, 5]], [[6]], trl_length=5, pad_token_id=0)
    #                                                   stem | chosen branch | rejected branch
    assert shared["shared_input_ids"].tolist() == [[1, 2, 3, 4, 5, 3, 6]]
    assert shared["shared_position_ids"].tolist() == [[0, 1, 2, 3, 4, 2, 3]]
    assert shared["shared_branch"].tolist() == [[0, 0, 1, 1, 1, 2, 2]]
    assert shared["shared_sequence_ids"].tolist() == [[0] * 7]
    assert shared["shared_labels"].tolist() == [[-100, -100, -100, 4, 5, -100, 6]]
    # TRL's shifted log-probs: row 0 scores 4 at column 2 and 5 at column 3; row 1 scores 6 at column 2.
    # Shared shifted log-probs: 4 at 2, 5 at 3, 6 at 5 (token j is scored at j − 1).
    assert shared["shared_index"].tolist() == [[-1, -1, 2, 3], [-1, -1, 5, -1]]


def test_share_prefixes_packs_two_short_pairs_into_the_longest_row():
    # pair 0 is 1+3+2+2 = 8 tokens, pairs 1 and 2 are 1+1+1+1 = 4 each: rows [0] and [1, 2], width 8
    shared = share_prefixes([[1, 2, 3], [7], [8]], [[4, 5], [9], [10]], [[6, 6], [11], [12]],
                            trl_length=5, pad_token_id=0)
    assert shared["shared_input_ids"].tolist() == [[1, 2, 3, 4, 5, 3, 6, 6], [7, 9, 7, 11, 8, 10, 8, 12]]
    assert shared["shared_sequence_ids"].tolist() == [[0] * 8, [1, 1, 1, 1, 2, 2, 2, 2]]
    assert shared["shared_position_ids"].tolist() == [[0, 1, 2, 3, 4, 2, 3, 4], [0, 1, 0, 1, 0, 1, 0, 1]]
    # row 1 starts at flat index 7 (rows of 8 tokens have 7 shifted positions)
    index = shared["shared_index"].tolist()
    assert index[1] == [7, -1, -1, -1] and index[2] == [11, -1, -1, -1]  # chosen of pairs 1, 2
    assert index[4] == [9, -1, -1, -1] and index[5] == [13, -1, -1, -1]  # rejected of pairs 1, 2
    unpacked = share_prefixes([[1, 2, 3], [7], [8]], [[4, 5], [9], [10]], [[6, 6], [11], [12]],
                              trl_length=5, pad_token_id=0, pack=False)
    assert unpacked["shared_input_ids"].shape == (3, 8)
    assert unpacked["shared_input_ids"][1].tolist() == [7, 9, 7, 11, 0, 0, 0, 0]


def test_pack_first_fit_decreasing():
    assert pack_first_fit([3, 8, 5, 2, 4], capacity=8) == [[1], [2, 0], [4, 3]]
    with pytest.raises(ValueError, match="more than the row capacity"):
        pack_first_fit([9], capacity=8)


def test_mask_by_hand():
    shared = share_prefixes([[1, 2, 3]], [[4, 5]], [[6]], trl_length=5, pad_token_id=0, pad_to_multiple_of=8)
    mask = prefix_sharing_mask(shared["shared_sequence_ids"], shared["shared_branch"])[0, 0].int()
    expected = torch.tensor([
        # 1 2 3 4 5 3'6 pad
        [1, 0, 0, 0, 0, 0, 0, 0],  # 1  stem
        [1, 1, 0, 0, 0, 0, 0, 0],  # 2  stem
        [1, 1, 1, 0, 0, 0, 0, 0],  # 3  opens chosen
        [1, 1, 1, 1, 0, 0, 0, 0],  # 4
        [1, 1, 1, 1, 1, 0, 0, 0],  # 5
        [1, 1, 0, 0, 0, 1, 0, 0],  # 3' opens rejected: sees the stem, not the chosen branch
        [1, 1, 0, 0, 0, 1, 1, 0],  # 6
        [0, 0, 0, 0, 0, 0, 0, 1],  # padding sees only itself: no empty row
    ])
    assert torch.equal(mask, expected)


def test_unshare_by_hand_and_its_gradient():
    values = torch.tensor([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]], requires_grad=True)
    index = torch.tensor([[-1, 4], [0, -1]])
    out = unshare(values, index)
    torch.testing.assert_close(out, torch.tensor([[0.0, 50.0], [10.0, 0.0]]))
    out.sum().backward()
    torch.testing.assert_close(values.grad, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert unshare(torch.tensor([[True, False]]), torch.tensor([[1, -1, 0]])).tolist() == [[False, False, True]]


def test_padding_share():
    assert padding_share(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])) == 0.25


def test_collator_shared_layout_follows_keep_start_truncation():
    examples = [{"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5, 6], "rejected_ids": [7]}]
    batch = DataCollatorForWeightedPreference(pad_token_id=0, max_length=5, prefix_sharing=True)(examples)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5], [1, 2, 3, 7, 0]]  # TRL's cut
    assert batch["shared_input_ids"].tolist() == [[1, 2, 3, 4, 5, 3, 7]]  # the same tokens kept
    with pytest.raises(ValueError, match="keep_start"):
        DataCollatorForWeightedPreference(pad_token_id=0, max_length=5, truncation_mode="keep_end",
                                          prefix_sharing=True)(examples)
    empty = DataCollatorForWeightedPreference(pad_token_id=0, prefix_sharing=True)(
        [{"prompt_ids": [], "chosen_ids": [4], "rejected_ids": [7]}])
    assert "shared_input_ids" not in empty  # nothing predicts the first token: TRL's layout for this batch


# -- the model ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("pack", [False, True], ids=["row-per-pair", "packed"])
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_shared_logits_equal_unshared_rows(tiny, pack, implementation):
    """Every completion token's log-prob from the shared rows equals its log-prob from TRL's rows (fp32)."""
    from musc_ecd.training.prefix_sharing import additive_mask

    model = copy.deepcopy(tiny[0]).eval()
    model.config._attn_implementation = implementation
    generator = torch.Generator().manual_seed(0)
    ids = [[torch.randint(5, 400, (n,), generator=generator).tolist() for n in lengths]
           for lengths in ((9, 3, 5, 2), (4, 6, 1, 2), (2, 5, 3, 1))]  # prompts, chosens, rejecteds
    batch = DataCollatorForWeightedPreference(pad_token_id=0)(
        [{"prompt_ids": p, "chosen_ids": c, "rejected_ids": r} for p, c, r in zip(*ids, strict=True)])
    shared = share_prefixes(*ids, trl_length=batch["input_ids"].size(1), pad_token_id=0, pack=pack)
    mask = prefix_sharing_mask(shared["shared_sequence_ids"], shared["shared_branch"])
    if implementation == "eager":
        mask = additive_mask(mask, torch.float32)
    if pack:
        assert shared["shared_input_ids"].size(0) < len(ids[0])  # something was packed

    def token_logps(input_ids, **kwargs):
        with torch.no_grad():
            logits = model(input_ids=input_ids, **kwargs).logits[:, :-1]
        return torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)

    expected = token_logps(batch["input_ids"], attention_mask=batch["attention_mask"]) * batch["completion_mask"][:, 1:]
    got = unshare(token_logps(shared["shared_input_ids"], attention_mask=mask,
                              position_ids=shared["shared_position_ids"]), shared["shared_index"])
    assert torch.equal(shared["shared_index"] >= 0, batch["completion_mask"][:, 1:].bool())
    assert shared["shared_input_ids"].numel() < batch["input_ids"].numel()  # fewer positions computed
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


# -- the trainer: parity with trl.DPOTrainer ----------------------------------------------------------

def _weighted_rows(tokenizer, make_weights):
    rows = conversational_rows()
    for row in rows:
        for side in ("chosen", "rejected"):
            row[f"{side}_weights"] = make_weights(len(completion_token_ids(tokenizer, row["prompt"], row[side])))
    return rows


def _trainer(cls, config_cls, tiny, path, rows=None, lora=False, **config):
    base, tokenizer = tiny
    kwargs = dict(args=config_cls(**config_kwargs(path, **config)), train_dataset=dataset(rows),
                  processing_class=tokenizer)
    if lora:
        torch.manual_seed(0)  # the same random adapter in every trainer of a test
        peft = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
        return cls(model=copy.deepcopy(base), peft_config=peft, **kwargs)
    return cls(model=perturbed_copy(base), ref_model=copy.deepcopy(base), **kwargs)


def _scores(trainer, losses):
    """``score_one_batch`` under each loss (TRL reads ``loss_types`` at scoring time only)."""
    results = []
    for loss_types, loss_weights in losses:
        trainer.loss_types, trainer.loss_weights = loss_types, loss_weights or [1.0] * len(loss_types)
        results.append(score_one_batch(trainer, indices=(0, 1, 2, 3, 4)))
    return results


def _assert_same(ours, theirs, atol=1e-5):
    """Loss, metrics and every gradient to 1e-5 (the summed ``logps/*``, ~100 in size, and the gradients, ~10
    under IPO with random weights, also relatively: float32 sums in another order)."""
    loss_a, metrics_a, grads_a = ours
    loss_b, metrics_b, grads_b = theirs
    torch.testing.assert_close(loss_a, loss_b, atol=atol, rtol=0)
    for key in METRICS:
        relative = atol if key.startswith("logps") else 0
        assert metrics_a[key] == pytest.approx(metrics_b[key], abs=atol, rel=relative), key
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_b:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=atol, rtol=atol, msg=name)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("precompute", [False, True], ids=["live-ref", "precomputed-ref"])
def test_shared_path_equals_trl_for_every_loss_and_weighting(tiny, tmp_path, lora, precompute):
    """With prefix sharing on: without weights and with uniform weights, equal to trl.DPOTrainer; with
    non-uniform weights, equal to TRL's layout carrying the same weights (trl.DPOTrainer has none)."""
    settings = dict(lora=lora, precompute_ref_log_probs=precompute)
    trl = _scores(_trainer(DPOTrainer, DPOConfig, tiny, tmp_path / "trl", **settings), LOSSES)
    ours = {}
    generator = torch.Generator().manual_seed(0)
    weightings = {"absent": None,
                  "uniform": _weighted_rows(tiny[1], lambda n: [1.0] * n),
                  "random": _weighted_rows(tiny[1], lambda n: (torch.rand(n, generator=generator) * 2).tolist())}
    for name, rows in weightings.items():
        for sharing in ("on", "off") if name == "random" else ("on",):
            trainer = _trainer(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / f"{name}-{sharing}",
                               rows=rows, prefix_sharing=sharing, **settings)
            assert trainer.prefix_sharing == (sharing == "on")
            ours[name, sharing] = _scores(trainer, LOSSES)
    for index, (loss_types, _) in enumerate(LOSSES):
        assert abs(trl[index][0] - ours["random", "off"][index][0]) > 1e-4, loss_types  # the weights matter
        _assert_same(ours["absent", "on"][index], trl[index])
        _assert_same(ours["uniform", "on"][index], trl[index])
        _assert_same(ours["random", "on"][index], ours["random", "off"][index])
    assert 0 <= ours["absent", "on"][0][1]["tokens/padding_share"] < 1


def test_auto_falls_back_and_on_refuses_where_unsupported(tiny, tmp_path, caplog):
    model = copy.deepcopy(tiny[0])
    model.config._attn_implementation = "flash_attention_2"  # takes no custom 4-D mask
    args = TokenWeightedDPOConfig(**config_kwargs(tmp_path))
    with caplog.at_level("INFO", logger="musc_ecd.training.trainer"):
        trainer = TokenWeightedDPOTrainer(model=model, ref_model=copy.deepcopy(tiny[0]), args=args,
                                          train_dataset=dataset(), processing_class=tiny[1])
    assert trainer.prefix_sharing is False and "flash_attention_2" in caplog.text
    assert "shared_input_ids" not in trainer.data_collator([trainer.train_dataset[0]])
    with pytest.raises(ValueError, match="prefix_sharing='on' cannot be used: attention implementation"):
        TokenWeightedDPOTrainer(model=model, args=TokenWeightedDPOConfig(**config_kwargs(tmp_path),
                                                                         prefix_sharing="on"),
                                train_dataset=dataset(), processing_class=tiny[1])
    with pytest.raises(ValueError, match="truncation_mode='keep_end'"):
        TokenWeightedDPOTrainer(model=copy.deepcopy(tiny[0]), args=TokenWeightedDPOConfig(
            **config_kwargs(tmp_path, truncation_mode="keep_end"), prefix_sharing="on"),
            train_dataset=dataset(), processing_class=tiny[1])
    with pytest.raises(ValueError, match="prefix_sharing="):
        TokenWeightedDPOConfig(**config_kwargs(tmp_path), prefix_sharing="yes")


def test_truncated_pairs_still_match_trl(tiny, tmp_path):
    """keep_start truncation that cuts completions: the shared path cuts the same tokens as TRL."""
    trl = score_one_batch(_trainer(DPOTrainer, DPOConfig, tiny, tmp_path / "trl", max_length=36))
    ours_trainer = _trainer(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / "ours", max_length=36)
    batch = ours_trainer.data_collator([ours_trainer.train_dataset[i] for i in range(4)])
    assert batch["input_ids"].size(1) == 36 and "shared_input_ids" in batch  # truncation happened, still shared
    _assert_same(score_one_batch(ours_trainer), trl)


def test_group_by_length_sampler_in_the_trainer(tiny, tmp_path):
    trainer = _trainer(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path,
                       train_sampling_strategy="group_by_length", per_device_train_batch_size=2)
    order = list(trainer._get_train_sampler())
    assert sorted(order) == list(range(8))
    data = trainer.train_dataset
    length = {i: len(data[i]["prompt_ids"]) + len(data[i]["chosen_ids"]) + len(data[i]["rejected_ids"])
              for i in range(8)}
    # one window holds all 8 pairs: the batches are the lengths sorted, two by two (in a shuffled order)
    batches = sorted(tuple(sorted(length[i] for i in order[k : k + 2])) for k in range(0, 8, 2))
    ranked = sorted(length.values())
    assert batches == [tuple(ranked[k : k + 2]) for k in range(0, 8, 2)]


# -- bf16 autocast ------------------------------------------------------------------------------------

def _bf16_losses(trainer, batches, bf16):
    trainer.model.eval()
    losses = []
    for indices in batches:
        batch = trainer.data_collator([trainer.train_dataset[i] for i in indices])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses.append(trainer.compute_loss(trainer.model, batch).item())
    return torch.tensor(losses)


def test_under_bf16_autocast_the_shared_layout_is_within_bf16s_own_error(tiny, tmp_path):
    """The stated tolerance: over a set of batches, the shared layout's bf16 loss differs from TRL's layout's
    bf16 loss by less, on average, than TRL's layout's bf16 loss differs from its float32 loss. (Why they differ
    at all: the CPU SDPA kernel's bf16 result depends on the row's length, which the shared layout changes;
    see prefix_sharing.py.)"""
    from musc_ecd.store import read_jsonl

    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")}
            for r in read_jsonl(Path(__file__).resolve().parents[1] / "configs" / "data" / "pairs_sample.jsonl")]
    trainers = {sharing: _trainer(TokenWeightedDPOTrainer, TokenWeightedDPOConfig, tiny, tmp_path / sharing,
                                  rows=rows, lora=True, prefix_sharing=sharing, max_length=1024)
                for sharing in ("on", "off")}
    batches = [range(start, start + 4) for start in range(0, 32, 4)]
    fp32 = _bf16_losses(trainers["off"], batches, bf16=False)
    trl, shared = (_bf16_losses(trainers[sharing], batches, bf16=True) for sharing in ("off", "on"))
    bf16_error = (trl - fp32).abs().mean()
    assert bf16_error > 0  # autocast is on: a real comparison
    assert (shared - trl).abs().mean() <= bf16_error
    assert (shared - fp32).abs().mean() <= 1.5 * bf16_error  # and as accurate as TRL's layout


@pytest.mark.integration
def test_smollm2_bf16_shared_layout_is_trls_row_at_the_shared_length_and_within_bf16s_error():
    """SmolLM2 under bf16 autocast (issue #20, item 9). The cause: a pair's chosen log-probs from the shared
    layout are bit-identical to those of TRL's row padded to the shared row's length; it is the length, through
    the CPU SDPA kernel, that moves the bf16 result, as it moves TRL's own rows when a batch partner is longer.
    The tolerance: per sequence, mean |shared − TRL| ≤ mean |TRL(bf16) − float32|."""
    from musc_ecd.store import read_jsonl
    from musc_ecd.training import pair_completion_token_ids

    model, tokenizer = load_model("smollm2-135m-instruct", dtype="float32", device="cpu")
    examples = []
    for row in read_jsonl(Path(__file__).resolve().parents[1] / "configs" / "data" / "pairs_sample.jsonl")[:8]:
        chosen, rejected = pair_completion_token_ids(tokenizer, row["prompt"], row["chosen"], row["rejected"])
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        examples.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})

    def token_logps(input_ids, **kwargs):
        logits = model(input_ids=input_ids, **kwargs).logits[:, :-1].float()
        return torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)

    def shared_logps(layout):
        mask = prefix_sharing_mask(layout["shared_sequence_ids"], layout["shared_branch"])
        return token_logps(layout["shared_input_ids"], attention_mask=mask, position_ids=layout["shared_position_ids"])

    sums = {"fp32": [], "trl": [], "shared": []}
    collator = DataCollatorForWeightedPreference(pad_token_id=tokenizer.pad_token_id, prefix_sharing=True)
    for start in (0, 4):
        batch = collator(examples[start : start + 4])
        trl_kwargs = dict(attention_mask=batch["attention_mask"])
        completion = batch["completion_mask"][:, 1:]
        with torch.no_grad():
            sums["fp32"].append((token_logps(batch["input_ids"], **trl_kwargs) * completion).sum(1))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                sums["trl"].append((token_logps(batch["input_ids"], **trl_kwargs) * completion).sum(1))
                sums["shared"].append(unshare(shared_logps(batch), batch["shared_index"]).sum(1))
    fp32, trl, shared = (torch.cat(sums[k]) for k in ("fp32", "trl", "shared"))
    assert (shared - trl).abs().mean() <= (trl - fp32).abs().mean()

    one = examples[0]
    trl_length = len(one["prompt_ids"]) + max(len(one["chosen_ids"]), len(one["rejected_ids"]))
    layout = share_prefixes([one["prompt_ids"]], [one["chosen_ids"]], [one["rejected_ids"]], trl_length,
                            pad_token_id=tokenizer.pad_token_id, pack=False)
    row, width = one["prompt_ids"] + one["chosen_ids"], layout["shared_input_ids"].size(1)
    padded = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row))])
    attention = torch.tensor([[1] * len(row) + [0] * (width - len(row))])
    scored = slice(len(one["prompt_ids"]) - 1, len(row) - 1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(shared_logps(layout)[0, scored], token_logps(padded, attention_mask=attention)[0, scored])
