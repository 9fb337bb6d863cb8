"""Checks across sections: every rule that relates two sections (a method and its models, a weight scheme and
the pairs a method makes) and depends on the config alone runs here, at load, before any model loads, so a
mistake fails in the first second rather than after the ``generate`` stage has run.

Single-section rules live in each section's ``__post_init__``; what depends on data (a ``train.pairs`` file's
pairs, a seed's typed constraints) is checked where the data is read.
"""

from __future__ import annotations

from musc_ecd.config.choices import PAIRWISE_WEIGHT_SCHEMES
from musc_ecd.config.schema import Config
from musc_ecd.errors import ConfigError
from musc_ecd.registry import Method, check_roles, get_method


def check_across_sections(cfg: Config) -> None:
    """Raise a one-line ``ConfigError`` for the first rule ``cfg`` breaks."""
    method = get_method(cfg.method)  # an unknown method fails here, with a suggestion
    if method.check is not None:
        method.check(cfg)  # the method's own rules (APC's responders, ECD with code judges)
    check_roles(cfg)  # a named role the method never calls: no result may claim it
    check_weights_fit_the_pairs(cfg, method)


def check_weights_fit_the_pairs(cfg: Config, method: Method) -> None:
    """A pairwise scheme (kl, bi_kl) compares each answer under the full and the corrupted instruction: the
    method must make every pair with one, or ``train.weights_fallback`` must weight the others. Pairs from
    a file (``train.pairs``) are checked when the weights stage reads them."""
    scheme = cfg.train.weights
    if scheme not in PAIRWISE_WEIGHT_SCHEMES or cfg.train.weights_fallback != "none" or cfg.train.pairs:
        return
    if not method.negative_instructions(cfg):
        raise ConfigError(f"config error: train.weights={scheme} compares each answer under the full and the "
                          f"corrupted instruction, but method={cfg.method} makes pairs without one (only MuSC "
                          "coarse and ECD pairs carry it); set train.weights_fallback (e.g. edit) for those pairs, "
                          "or another train.weights")
