"""Typed, verifiable constraints: IFEval's 25 instruction kinds as data that builds, corrupts and checks.

    TypedConstraint(id, kwargs)        describe(rng) -> text; check(response) -> bool; negate(); substitute(rng)
    from_ifeval(ids, kwargs) / to_ifeval(constraints)   IFEval's parallel columns <-> constraints
    corrupt(constraint, "drop" | "substitute" | "negate", rng)
    conflict(a, b) / compatible(constraints)            which constraints can be asked for together
    statement.states(instruction, constraint, sentence)  does an instruction (still) state it

Coverage: every id of IFEval's registry (``TYPE_IDS``, 25) is registered with phrasings, a check, a
negation and — except ``punctuation:no_comma``, ``combination:two_responses`` and
``combination:repeat_prompt``, which have no kwargs to change and no sibling to stand in for them — a
substitute. None is excluded. Kinds whose opposite no checker expresses are negated into a *typed
inverse* (``negated=True``, checked as "the original's checker decides the response fails"), which is
exactly the logical negation; see ``corruption`` for each kind's rule. ``combination:repeat_prompt``
needs the request text as a kwarg, so a seed puts it last (the text before it is what must be repeated).

Untyped, free-text constraints stay plain strings beside these (MuSC decomposes into strings, ECD adds
strings); a record carries its typed ones in ``meta.typed_constraints`` (``label_audit.META_FIELD``).
"""

from musc_ecd.constraints.typed.compatibility import compatible, conflict
from musc_ecd.constraints.typed.constraint import OPERATORS, TypedConstraint, corrupt, from_ifeval, to_ifeval
from musc_ecd.constraints.typed.corruption import CorruptionUnavailable
from musc_ecd.constraints.typed.registry import TYPE_IDS, UnknownConstraintError, group_of, ids_in_group

__all__ = ["OPERATORS", "TYPE_IDS", "CorruptionUnavailable", "TypedConstraint", "UnknownConstraintError",
           "compatible", "conflict", "corrupt", "from_ifeval", "group_of", "ids_in_group", "to_ifeval"]
