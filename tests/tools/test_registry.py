import pytest

from segloop.errors import InvalidArgumentError
from segloop.tools import TOOL_NAMES, get_tool
from segloop.tools.registry import TOOL_MODULES


def test_every_tool_name_has_a_spec_with_that_name():
    assert set(TOOL_MODULES) == set(TOOL_NAMES)
    for name in TOOL_NAMES:
        spec = get_tool(name)
        assert spec.name == name
        assert spec.summary and callable(spec.apply)
        assert set(spec.ndims) <= {2, 3} and spec.ndims
        assert set(spec.required) <= set(spec.params)


def test_unknown_tool_and_parameters_are_named():
    with pytest.raises(InvalidArgumentError, match="unknown tool 'scissors'; one of livewire"):
        get_tool("scissors")
    spec = get_tool("threshold")
    with pytest.raises(InvalidArgumentError, match="has no parameter 'bogus'"):
        spec.check_params({"bogus": 1})
