"""The data model of the artifacts: preference pairs with their provenance, and rejects.

A builder makes every pair through ``make_pair`` (after ``pair_problem`` found nothing wrong with it) and
writes it with ``Pair.to_json``; every reader of a pairs artifact goes through ``Pair.from_json``. The JSON
shape is the one users' scripts see, unchanged:

    {"id", ["item_id"], "prompt": [user turn], "chosen": [assistant turn], "rejected": [assistant turn],
     "difficulty", "meta": {"schema", "method", ...provenance...}, ["chosen_weights", "rejected_weights"]}

TRL's conversational columns; ``difficulty`` uses the trainer's convention (larger = harder); ``meta`` is
the provenance of the method that made the pair (``MuscCoarseProvenance``, ``MuscFineProvenance``,
``EcdProvenance``, ``ApcProvenance``), which TRL never reads.

Schema versions (``meta.schema``, per row, so rows of different versions can share a file — a run extended
to more items keeps its earlier rows): ``SCHEMA_VERSION`` is the shape written now. A row without the
field is version 1, the shape written before the version was recorded; a version-1 row may lack fields that
were added over time (typed constraints, the judge-filter record, ...) and reads them as their defaults.
A row of a newer version is refused rather than half-read.

``from_json`` reads any TRL preference row, also one this project did not make: string or conversational
columns (the last user / assistant message is the text), no ``id``, no ``difficulty``, a ``meta`` of its
own (``ForeignProvenance`` keeps it as it is). ``to_json`` writes this project's shape, so the round trip is
exact for this project's rows; a foreign row's extra columns are not kept.

Rejects (``Reject``) go to ``rejects.jsonl``: one record per item (or per ECD round / APC pair) that did
not become a pair, with its stage and reason.

One module per concern: ``pair`` (the pair, its schema version), ``provenance`` (one kind per method),
``parts`` (the pieces provenance is made of), ``fields`` (how a record's fields become JSON and back),
``problems`` (what makes two answers no pair), ``rejects``. The names other modules use are importable from
here.
"""

from musc_ecd.records.pair import SCHEMA_VERSION, Pair, make_pair, message_text, provenances, schema_version
from musc_ecd.records.parts import (
    BySide,
    ChainRound,
    CoarseJudgeFilter,
    EcdRoles,
    JudgedSample,
    JudgeVerdicts,
    TokenWeights,
)
from musc_ecd.records.problems import PAIR_PROBLEMS, is_degenerate, pair_problem
from musc_ecd.records.provenance import (
    PROVENANCES,
    ApcProvenance,
    EcdProvenance,
    ForeignProvenance,
    MuscCoarseProvenance,
    MuscFineProvenance,
)
from musc_ecd.records.rejects import Reject

__all__ = [
    "PAIR_PROBLEMS", "PROVENANCES", "SCHEMA_VERSION", "ApcProvenance", "BySide", "ChainRound",
    "CoarseJudgeFilter", "EcdProvenance", "EcdRoles", "ForeignProvenance", "JudgeVerdicts", "JudgedSample",
    "MuscCoarseProvenance", "MuscFineProvenance", "Pair", "Reject", "TokenWeights", "is_degenerate", "make_pair",
    "message_text", "pair_problem", "provenances", "schema_version",
]
