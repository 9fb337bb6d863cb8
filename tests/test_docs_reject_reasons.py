"""Every reject reason the code can emit is in docs/methods.md's table, and the table names no other.

The reasons are read from the source, not from a run: the reason argument of every ``Reject(...)``,
``self._reject(...)`` and ``self._end(...)`` call; what a reason variable is assigned (``reason = ...``,
``reason, detail = ...``); the strings the parsers and checks that name a reason return; and the reasons a
builder maps pair problems to (a ``reasons`` dict). A new reason in any of these places fails here until the
table names it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "musc_ecd"
METHODS_DOC = REPO / "docs" / "methods.md"

REASON_ARGUMENT = {"Reject": 2, "_reject": 2, "_end": 3}
"""Call name → the position of its reason argument (``self._reject(w, stage, reason, …)``)."""
REASON_FUNCTIONS = {"parse_recombined", "parse_revision", "parse_evolution", "check_evolution", "pair_problem"}
"""Functions whose returned string (or a returned tuple's last string) is a reject reason."""
REASON = re.compile(r"^[a-z]+(?:_[a-z]+)+$")
ROW = re.compile(r"^\| `([a-z_]+)` \|", re.M)


def _constants(node: ast.AST, names: dict[str, str]) -> set[str]:
    """The reason-like strings an expression can be: constants, module constants by name, tuples' elements,
    both sides of a conditional expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and REASON.match(node.value):
        return {node.value}
    if isinstance(node, ast.Name) and node.id in names:
        return {names[node.id]}
    if isinstance(node, ast.IfExp):
        return _constants(node.body, names) | _constants(node.orelse, names)
    if isinstance(node, ast.Tuple) and node.elts:
        return _constants(node.elts[-1], names) if len(node.elts) == 2 else set()
    return set()


def _module_constants() -> dict[str, str]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                    isinstance(node.value.value, str) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name) and node.targets[0].id.isupper():
                names[node.targets[0].id] = node.value.value
    return names


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def emitted_reasons() -> set[str]:
    names = _module_constants()
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in REASON_ARGUMENT:
                position = REASON_ARGUMENT[_call_name(node)]
                if len(node.args) > position and not isinstance(node.args[position], ast.Starred):
                    found |= _constants(node.args[position], names)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "reason":
                        found |= _constants(node.value, names)
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for element, value in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(element, ast.Name) and element.id == "reason":
                                found |= _constants(value, names)
                    if isinstance(target, ast.Name) and target.id == "reasons" and isinstance(node.value, ast.Dict):
                        found |= {value.elts[0].value for value in node.value.values
                                  if isinstance(value, ast.Tuple) and isinstance(value.elts[0], ast.Constant)}
            elif isinstance(node, ast.FunctionDef) and node.name in REASON_FUNCTIONS:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and inner.value is not None:
                        found |= _constants(inner.value, names)
    return found


def documented_reasons() -> list[str]:
    section = METHODS_DOC.read_text().split("## Reject reasons", 1)[1].split("\n## ", 1)[0]
    return ROW.findall(section)


def test_every_reject_reason_the_code_emits_is_documented_and_no_other():
    emitted, documented = emitted_reasons(), documented_reasons()
    assert len(documented) == len(set(documented)), "a reason listed twice"
    assert emitted - set(documented) == set(), "reasons the code emits that docs/methods.md does not list"
    assert set(documented) - emitted == set(), "reasons docs/methods.md lists that the code does not emit"


def test_the_harvest_finds_the_reasons_of_every_kind_of_source():
    """The reader of the source is itself checked on one reason from each place it looks."""
    emitted = emitted_reasons()
    assert {"duplicate_id",  # Reject(...)
            "repeated_constraints",  # self._reject(...)
            "no_compatible_typed_requirement",  # self._end(...)
            "typed_constraint_dropped",  # reason, detail = ...
            "unparsable_verdict",  # a module constant
            "recombine_degenerate", "evolve_drift", "revision_leak", "identical_responses",  # parsers and checks
            "degenerate_response",  # a reasons dict
            } <= emitted
