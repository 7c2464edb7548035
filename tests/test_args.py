"""kmm._args: the one argument checker every Python module uses."""

from __future__ import annotations

import numpy as np
import pytest
from kmm import _args
from kmm.errors import BenchmarkError, ConfigError, NicError, OrderError


@pytest.mark.parametrize("v", [0, 5, 10, np.int64(7), np.uint8(3)])
def test_int_arg_takes_ints_in_range(v):
    got = _args.int_arg("x", v, 0, 10)
    assert got == v and type(got) is int


@pytest.mark.parametrize("v", [-1, 11, True, 1.0, "3", None, np.float64(2.0)])
def test_int_arg_refuses_the_rest_with_the_callers_error(v):
    with pytest.raises(NicError, match=r"^x must be an integer in 0\.\.10, got "):
        _args.int_arg("x", v, 0, 10, error=NicError)


def test_int_arg_without_upper_bound():
    assert _args.int_arg("seed", 2**80, 0, None) == 2**80
    with pytest.raises(ConfigError, match=r"seed must be an integer >= 0, got -1"):
        _args.int_arg("seed", -1, 0, None)


def test_float_arg():
    assert _args.float_arg("f", np.float32(0.5), 0.0, 1.0) == 0.5
    for bad, msg in ((True, "a number"), ("1", "a number"), (float("nan"), "in 0"), (2, "in 0")):
        with pytest.raises(BenchmarkError, match=msg):
            _args.float_arg("f", bad, 0.0, 1.0, error=BenchmarkError)


def test_order_arg():
    assert _args.order_arg(10) == 10
    assert _args.order_arg(np.int8(3), nr_orders=4) == 3
    with pytest.raises(OrderError, match=r"out of range 0\.\.10"):
        _args.order_arg(11)
    with pytest.raises(OrderError, match="must be an integer, not bool"):
        _args.order_arg(False)


def test_node_arg():
    assert _args.node_arg(None, 1) is None
    assert _args.node_arg(1, 2) == 1
    for bad in (2, -1, True, 0.0):
        with pytest.raises(ConfigError, match="does not exist"):
            _args.node_arg(bad, 2)


def test_int_list_arg():
    assert _args.int_list_arg("pid", None) is None
    assert _args.int_list_arg("pid", "1, 2,,3") == [1, 2, 3]
    with pytest.raises(ConfigError, match="--pid takes a comma separated list of integers"):
        _args.int_list_arg("pid", "1,x")
