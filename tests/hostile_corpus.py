"""Hostile graph files and calls, each with what graphc must answer: a typed error, or a result.

Every case builds its input from a small valid graph (so that exactly one thing is wrong)
and names the words its refusal must contain; ``None`` means the input is fine and must
compile, run and pass its gradient check. ``tests/test_hostile.py`` runs each one through
``gc.load`` and through ``graphc check``; ``benchmarks/fuzz_io.py --corpus`` times them.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import graphc as gc


@dataclass(frozen=True)
class Case:
    name: str
    data: Callable[[], dict | str]  # the file's JSON data, or its text
    expect: str | None  # words the error must hold; None: the file is fine
    error: type = gc.GraphcError

    def write(self, folder: Path) -> Path:
        data = self.data()
        path = folder / f"{self.name}.json"
        text = data if isinstance(data, str) else json.dumps(data)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return path


def base() -> dict:
    """x (N, 2), w (2,), b (), loss = mean(exp(x w + b) ** 2): every node kind a case edits."""
    g = gc.Graph("plain")
    x = g.input("x", shape=("N", 2))
    w = g.param("w", shape=(2,))
    b = g.param("b", shape=())
    g.output("loss", gc.mean(gc.exp(gc.sum(x * w, axis=1) + b) ** 2))
    return gc.io.to_data(g)


def node(data: dict, op: str) -> dict:
    return next(n for n in data["nodes"] if n["op"] == op)


def edited(change: Callable[[dict], object]) -> Callable[[], dict]:
    def make() -> dict:
        data = base()
        change(data)
        return data

    return make


def custom(expr: str, kink: str = "", arity: int = 1, **extra) -> Callable[[], dict]:
    """The graph with its exp node replaced by a custom op ``expr`` (named after the case)."""

    def change(data: dict) -> None:
        name = f"custom_{zlib.crc32(repr((expr, kink, arity, extra)).encode('utf-8', 'surrogatepass')):08x}"
        data["custom_ops"] = {name: {"arity": arity, "expr": expr, "kink": kink, **extra}}
        node(data, "exp")["op"] = name

    return edited(change)


def nested(value: object, depth: int, tag: str | None = None) -> object:
    for _ in range(depth):
        value = {tag: [value]} if tag else [value]
    return value


def chain(count: int) -> dict:
    """A graph of ``count`` identity nodes in a row (more nodes than a limit allows)."""
    nodes = [{"id": "x", "op": "input", "shape": [2], "dtype": "float64", "attrs": {}}]
    nodes += [{"id": f"n{k}", "op": "identity", "shape": [2], "dtype": "float64", "attrs": {}} for k in range(count)]
    edges = [{"source": "x" if k == 0 else f"n{k - 1}", "target": f"n{k}", "key": 0, "arg": 0} for k in range(count)]
    return {"graphc": 1, "directed": True, "multigraph": True, "custom_ops": {},
            "graph": {"name": "chain", "inputs": ["x"], "params": [], "outputs": [f"n{count - 1}"]},
            "nodes": nodes, "edges": edges}


def renamed(old: str, new: str) -> Callable[[], dict]:
    """The base graph with node ``old`` called ``new`` everywhere."""

    def make() -> dict:
        text = json.dumps(base())
        return json.loads(text.replace(json.dumps(old), json.dumps(new)))

    return make


def _set(mapping: dict, **values) -> None:
    mapping.update(values)


MAX_SIN = "Max(" + ", ".join(f"sin(x0+{k})" for k in range(12)) + ")"
MAX_SIN_150 = "Max(" + ", ".join(f"sin(x0+{k})" for k in range(150)) + ")"
MIN_POWERS = "Min(" + ", ".join(f"x0**{k}" for k in range(2, 300)) + ")"

CASES: list[Case] = [
    Case("valid", base, None),
    # 1. expressions whose symbolic work explodes: refused by their cost, before sympy sees them
    Case("max_of_12_sines", custom(MAX_SIN), "limit expr_cost=", gc.errors.LimitError),
    Case("max_of_150_sines", custom(MAX_SIN_150), "limit expr_cost=", gc.errors.LimitError),
    Case("min_of_298_powers", custom(MIN_POWERS), "limit expr_cost=", gc.errors.LimitError),
    Case("nested_exp_55", custom("exp(" * 55 + "x0" + ")" * 55), "limit expr_cost=", gc.errors.LimitError),
    Case("a_small_max_is_fine", custom("Max(sin(x0), cos(x0), x0)"), None),
    Case("gelu_is_fine", custom("0.5 * x0 * (1 + tanh(0.7978845608 * (x0 + 0.044715 * x0 ** 3)))"), None),
    # 2. what the compile would cost
    Case("param_of_10_to_12_entries", edited(lambda d: _set(node(d, "param"), shape=[10**6, 10**6])),
         "limit elements=", gc.errors.LimitError),
    Case("params_over_the_total", edited(lambda d: d["nodes"].extend(
        {"id": f"p{k}", "op": "param", "shape": [10**6], "dtype": "float64", "attrs": {}} for k in range(11))),
        "all consts and params", gc.errors.LimitError),
    Case("dim_of_10_to_30", edited(lambda d: _set(node(d, "input"), shape=["N", 10**30])),
         "limit elements=", gc.errors.LimitError),
    Case("10001_nodes", lambda: chain(10_001), "limit nodes=", gc.errors.LimitError),
    Case("65_dims", edited(lambda d: _set(node(d, "param"), shape=[1] * 65)), "limit rank=", gc.errors.LimitError),
    # 6. crashes that were untyped
    Case("attr_nested_900_deep", edited(lambda d: _set(node(d, "sum")["attrs"], axis=nested(1, 900))),
         "nests deeper"),
    Case("tuple_tags_nested_400_deep", edited(lambda d: _set(node(d, "sum")["attrs"], axis=nested(1, 400, "tuple"))),
         "nests deeper"),
    Case("inputs_list_a_node_twice", edited(lambda d: d["graph"].update(inputs=["x", "x"])), "names a node twice"),
    Case("params_list_a_node_twice", edited(lambda d: d["graph"].update(params=["w", "b", "w"])),
         "names a node twice"),
    Case("kink_with_nul", custom("Abs(x0)", kink="a\0b"), "field 'kink'"),
    Case("kink_with_lone_surrogate", custom("Abs(x0)", kink="a\ud800b"), "lone surrogate"),
    Case("kink_with_a_newline_and_code", custom("Abs(x0)", kink="x\nimport os; os.system('touch PWNED')"),
         "field 'kink'"),
    Case("sqrt_of_minus_one", custom("x0 * sqrt(-1)"), "not a real number"),
    Case("log_of_minus_one", custom("x0 * log(-1)"), "not a real number"),
    Case("cube_root_of_minus_8", custom("x0 * (-8) ** (1/3)"), "needs an integer exponent"),
    Case("float_power_overflow", custom("x0 * 2.0 ** 10 ** 15"), "not a finite float64"),
    Case("float_product_overflow", custom("x0 * 1e308 * 10"), "infinity or NaN"),
    # found by benchmarks/fuzz_io.py
    Case("zero_over_zero", custom("x0 * (0.0 / 0.0)"), "cannot be computed"),
    Case("float_power_underflow", custom("x0 * Abs(-2.3288528066809108e+16) ** (-3.23369729081329e+55)"),
         "cannot be computed"),
    Case("max_of_a_non_real_number", custom("-Max(sqrt(-561), Abs(x0))"), "not a real number"),
    Case("exp_of_minus_float_max_then_log1p", custom("log1p(exp(-1.7976931348623155e+308))"), "cannot be computed"),
    Case("negative_base_symbolic_exponent", custom("(-2) ** (-1.3543642386277144e+16 ** x0)"),
         "needs an integer exponent"),
    Case("exact_number_beyond_float64", custom("x0 * log1p(2.006308995441177e+132 * 2.006308995441177e+132)"),
         "beyond what float64"),
    Case("string_const", edited(lambda d: d["nodes"].append(
        {"id": "c", "op": "const", "shape": [], "dtype": "float64", "attrs": {"value": "hello"}})), "attr 'value'"),
    Case("surrogate_in_a_node_id", renamed("w", "w\ud800"), "lone surrogate"),
    Case("surrogate_in_the_graph_name", edited(lambda d: d["graph"].update(name="g\udfff")), "lone surrogate"),
    Case("surrogate_in_a_dim_name", edited(lambda d: _set(node(d, "input"), shape=["N\ud800", 2])), "lone surrogate"),
    Case("transpose_axes_of_floats", edited(lambda d: d["nodes"].append(
        {"id": "t", "op": "transpose", "shape": [2, "N"], "dtype": "float64",
         "attrs": {"axes": {"tuple": [1.0, 0.0]}}}) or d["edges"].append(
        {"source": "x", "target": "t", "key": 0, "arg": 0})), "attr 'axes'"),
    Case("dim_of_zero", edited(lambda d: _set(node(d, "input"), shape=[0, 2])), "positive int"),
    # 9. smaller
    Case("1e999", lambda: json.dumps(base()).replace('"graphc": 1', '"graphc": 1, "note": 1e999'), "beyond float64"),
    Case("keepdims_yes", edited(lambda d: _set(node(d, "sum")["attrs"], keepdims="yes")), "attr 'keepdims'"),
    Case("custom_op_with_an_extra_field", custom("x0", code="print(1)"), "unknown field(s) 'code'"),
    Case("array_with_an_extra_field", edited(lambda d: d["nodes"].append(
        {"id": "c", "op": "const", "shape": [1], "dtype": "float64",
         "attrs": {"value": {"array": {"dtype": "float64", "shape": [1], "data": [1.0], "eval": "x"}}}})),
        "unknown field(s) 'eval'"),
    # 4, 5. names that try paths or the terminal: the file is fine, and harmless
    Case("graph_named_a_path", edited(lambda d: d["graph"].update(name="../../escaped_dir")), None),
    Case("names_with_terminal_sequences", renamed("w", "w\x1b]0;owned\x07\x1b[2J\u202e"), None),
]
