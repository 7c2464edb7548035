"""kmm.gfp spells out every flag of the core, with the core's values."""

from __future__ import annotations

import ast
from pathlib import Path

import kmm
import pytest
from kmm import _kmm, gfp

MODIFIER = "__GFP_"


def _assigned(path: Path) -> set[str]:
    """Names a module binds at its top level by assignment or import (what a stub generator,
    an IDE or mypy sees without running it)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def test_every_core_flag_is_spelled_out_in_kmm_gfp():
    spelled = _assigned(Path(gfp.__file__))
    missing = sorted(set(_kmm.GFP_FLAGS) - spelled)
    assert not missing, f"kmm/gfp.py does not spell out {missing}"
    plain = {name[len(MODIFIER) :] for name in _kmm.GFP_FLAGS if name.startswith(MODIFIER)}
    assert not sorted(plain - spelled), "a modifier lacks its name without underscores"


@pytest.mark.parametrize("name", sorted(_kmm.GFP_FLAGS))
def test_spelled_out_value_is_the_cores(name):
    assert getattr(gfp, name) == _kmm.GFP_FLAGS[name]
    assert gfp.GFP_FLAGS[name] == _kmm.GFP_FLAGS[name]
    if name.startswith(MODIFIER):
        assert getattr(gfp, name[len(MODIFIER) :]) == _kmm.GFP_FLAGS[name]


def test_no_flag_beyond_the_cores():
    extra = sorted(
        n
        for n in _assigned(Path(gfp.__file__))
        if (n.startswith(("GFP_", MODIFIER)) and n != "GFP_FLAGS") and n not in _kmm.GFP_FLAGS
    )
    assert not extra


def test_kmm_reexports_the_modifiers_by_name():
    spelled = _assigned(Path(kmm.__file__))
    for name, value in _kmm.GFP_FLAGS.items():
        if name.startswith(MODIFIER):
            assert name in spelled and name in kmm.__all__
            assert getattr(kmm, name) == value
