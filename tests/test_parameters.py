"""Notebook parameters are plain, typed literals before papermill writes them into a notebook: what
papermill renders reads back, with ``ast.literal_eval``, as the very values given; anything else is
refused by name (a parameters file is data, it never runs code)."""

from __future__ import annotations

import ast
import datetime

import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from restyle_lab.facts.errors import UsageError
from restyle_lab.facts.literals import MAX_DEPTH, Type, check_literal
from restyle_lab.run.notebook_params import NOTEBOOKS, PARAMS, check_parameters
from restyle_lab.run.papermill_runs import notebook_dir

# text that breaks naive quoting: quotes of both kinds, backslashes, a line end, a tab, a control character,
# non-ASCII, and what the injection looked like
AWKWARD = 'a"b\'c\\d\ne\tf\x01 ü 日本 "+str(__import__("os").system("true"))+" \\"'


def test_every_parameter_has_a_declared_type_its_default_fits():
    for name, param in PARAMS.items():
        assert isinstance(param.type, Type) and param.type.accepts(param.default), name


def _awkward_values(name: str, defaults: dict) -> dict:
    values = dict(defaults)
    for key in ("data_root", "out_dir", "interfacegan_dir"):
        if key in values:
            values[key] = AWKWARD
    values["checkpoints"] = {"restyle_psp": AWKWARD, "generator": "/x/stylegan2.pt"}
    if "strengths" in values:
        values["strengths"] = [-2.5, 0, 1e-3, 4]
    if "optim_images" in values:
        values["optim_images"] = None
    return values


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_papermill_renders_what_literal_eval_reads_back(name):
    path = notebook_dir() / f"{name}.ipynb"
    values = _awkward_values(name, {key: NOTEBOOKS[name].default(key) for key in NOTEBOOKS[name].params})
    checked = check_parameters(name, values)
    nb = parameterize_notebook(load_notebook_node(str(path)), checked)  # as papermill.execute_notebook does
    cell = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    rendered = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}
    assert all(isinstance(node, ast.Assign) for node in tree.body), cell.source
    assert rendered == checked
    assert set(rendered) <= set(NOTEBOOKS[name].params)


@pytest.mark.parametrize("value, found", [
    (b"\"+str(__import__('os').system('touch x'))+\"", "a bytes value"),
    (datetime.date(2024, 1, 1), "a datetime.date value"),
    ({"a", "b"}, "a set value"),
    (("a", "b"), "a tuple value"),
    (float("nan"), "nan is not a finite number"),
    (float("inf"), "inf is not a finite number"),
    ("a\0b", "NUL character"),
    (5, "must be a path or a mapping of text to a path or null. Got: int 5"),
    ({"restyle_psp": 3}, "Got: dict"),
])
def test_values_of_another_type_are_refused_by_name(value, found):
    with pytest.raises(UsageError, match="quality_time: checkpoints") as err:
        check_parameters("quality_time", {"checkpoints": value})
    assert found in str(err.value)


def test_declared_types_of_counts_flags_and_numbers():
    with pytest.raises(UsageError, match="n_images must be a whole number. Got: str '4'"):
        check_parameters("latent_change", {"n_images": "4"})
    with pytest.raises(UsageError, match="smoke must be true or false. Got: int 1"):
        check_parameters("latent_change", {"smoke": 1})
    with pytest.raises(UsageError, match="truncation must be a number. Got: str"):
        check_parameters("generator_alignment", {"truncation": "0.5"})
    assert check_parameters("generator_alignment", {"truncation": 1})["truncation"] == 1


def test_nesting_is_limited_without_recursion():
    value = []
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(UsageError, match=f"nested more than {MAX_DEPTH} deep"):
        check_literal(value, "--params x.yml")
    with pytest.raises(UsageError, match="key 1 is a int; keys must be text"):
        check_literal({1: "a"}, "--params x.yml")
