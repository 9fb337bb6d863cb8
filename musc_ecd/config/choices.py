"""Every list of choices a config key takes, defined once: the schema's ``Literal`` s, its checks and the
registries that act on a choice (weight schemes, curricula, ECD's taxonomy, losses) all derive from these.

A leaf module (it imports nothing), so data building, training and evaluation can share it.
"""

BACKENDS = ("auto", "hf", "vllm", "ct2", "openvino")
CT2_COMPUTE_TYPES = ("auto", "float32", "int8", "int8_float32")
"""CTranslate2 on CPU: float32, or int8 weights (``auto``: ``models.backend_choice``'s table)."""
OPENVINO_WEIGHT_FORMATS = ("auto", "fp32", "int8")
"""OpenVINO weights: as computed (``auto``: ``models.backend_choice``'s table), or int8-compressed."""
DTYPES = ("auto", "bfloat16", "float32", "float16")
JUDGE_UNTYPED = ("policy", "skip")
"""With ``model.judge=checkers``: who judges the untyped constraints (the policy, or nobody)."""

EVOLUTION_CATEGORIES = ("content", "style", "format", "reasoning", "breadth")
"""ECD's top-level evolution categories (METHODS.md §2); ``constraints.evolve.TAXONOMY`` has one entry each."""
ECD_COMPOSE = ("rewrite", "append")
ECD_ROLES = ("teacher", "policy")
UNPARSABLE_VERDICTS = ("drop", "keep")
"""What a model-judge filter (``musc.unparsable_verdict``, ``ecd.unparsable_verdict``) does with a pair it could not
decide because a verdict was unparsable."""

LOSSES = ("sigmoid", "hinge", "ipo", "sft")
"""TRL loss types the token-weighted trainer supports: DPO, SLiC, IPO, and the SFT term."""
CURRICULA = ("random", "easy_to_hard", "staged")
WEIGHT_SCHEMES = ("uniform", "edit", "kl", "bi_kl", "pmi", "entropy")
"""Token-weight schemes (MuSC §1c); ``train.weights`` also takes ``none``."""
MODEL_WEIGHT_SCHEMES = ("kl", "bi_kl", "pmi", "entropy")
"""The schemes that need a model's distributions (the others are computed from the text alone)."""
PAIRWISE_WEIGHT_SCHEMES = ("kl", "bi_kl")
"""The schemes that compare each answer under the full and the corrupted instruction (which MuSC coarse and ECD
pairs carry; fine pairs do not)."""
WEIGHT_FALLBACKS = ("none", *(s for s in WEIGHT_SCHEMES if s not in PAIRWISE_WEIGHT_SCHEMES))
"""``train.weights_fallback``: for pairs a pairwise scheme cannot weight, a scheme that weights any pair."""
FINETUNING = ("lora", "full")
TRAIN_PRECISION = ("auto", "bf16", "fp32")
AUTO_ON_OFF = ("auto", "on", "off")
"""A speed switch whose default, ``auto``, turns it on where it measured faster; YAML true/false mean on/off."""
PREFIX_SHARING = AUTO_ON_OFF
PRECOMPUTE_REF = AUTO_ON_OFF

EVAL_SETS = ("own", "ifeval", "ifbench")
"""``eval.sets``: the shipped set, IFEval (``eval.ifeval_path``), IFBench (``eval.ifbench_path``)."""
REPORT_TO = ("tensorboard", "wandb")
"""Where the trainer can also report its metrics (``train.report_to``)."""
