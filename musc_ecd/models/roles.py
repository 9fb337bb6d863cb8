"""Generators by role: ``policy``, ``teacher``, ``judge`` and APC's ``responders``.

A config names a model per role; unset roles fall back to the policy, so "self-based" is one override
away (``model.teacher=null``). Generators are created lazily and once per distinct model spec: a
self-based run loads one model however many roles it fills, and a role a method never asks for loads
nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from musc_ecd.models.generator import Generator

ROLES = ("policy", "teacher", "judge")


class ModelRoles:
    def __init__(self, specs: dict[str, str], responders: list[str], factory: Callable[[str], Generator]):
        self._specs = dict(specs)
        self._responders = list(responders)
        self._factory = factory
        self._by_spec: dict[str, Generator] = {}

    @classmethod
    def from_config(cls, cfg) -> ModelRoles:
        from musc_ecd.models.generator import create_generator

        specs = {role: cfg.model.role(role) for role in ROLES}
        responders = list(cfg.model.responders) or [cfg.model.policy]
        return cls(specs, responders, lambda spec: create_generator(spec, cfg))

    @classmethod
    def of(cls, policy: Generator, responders: list[Generator] | None = None, **others: Generator) -> ModelRoles:
        """Fixed generators (tests, benchmarks): unnamed roles are the policy."""
        by_name = {g.name: g for g in [policy, *others.values(), *(responders or [])]}
        specs = {role: others.get(role, policy).name for role in ROLES}
        return cls(specs, [g.name for g in responders or [policy]], by_name.__getitem__)

    def spec(self, role: str) -> str:
        """The model spec behind ``role``."""
        if role not in self._specs:
            raise KeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        return self._specs[role]

    def __getitem__(self, role: str) -> Generator:
        return self._load(self.spec(role))

    @property
    def responder_specs(self) -> list[str]:
        return list(self._responders)

    def responder(self, index: int) -> Generator:
        return self._load(self._responders[index])

    def is_self(self, role: str) -> bool:
        return self.spec(role) == self.spec("policy")

    def _load(self, spec: str) -> Generator:
        if spec not in self._by_spec:
            self._by_spec[spec] = self._factory(spec)
        return self._by_spec[spec]
