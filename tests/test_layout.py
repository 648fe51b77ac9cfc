"""The package's shape: imports run one way (no cycle among gdlab's modules, lazy imports inside
functions included, the façade ``gdlab/__init__`` counted as importing every name it serves)."""

import ast
from pathlib import Path

import gdlab

PACKAGE = Path(gdlab.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    graph["gdlab"] |= {f"gdlab.{m}" for m in gdlab._MODULES} | set(gdlab._NAMES.values())
    return graph


def cycles(graph) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(imports()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_engine_is_below_the_science_and_the_science_below_the_studies():
    graph = imports()
    engine = {m for m in graph if m.startswith("gdlab.engine")}
    assert not {d for m in engine for d in graph[m]} - engine - {
        "gdlab.progress", "gdlab.errors", "gdlab.interfaces", "gdlab._cores"}, (
        "the engine imports only itself, progress, errors, the problem interfaces and the CPU "
        "device set-up")


def test_every_bundled_problem_declares_its_interfaces():
    from gdlab import interfaces as i
    from gdlab import problems
    expected = {"scalar_regression": {i.Linear}, "quadratic": {i.Modal},
                "linear_regression": {i.Modal}, "double_well": {i.WithOptimum, i.WithHessian}}
    for name, kinds in expected.items():
        problem = problems.get(name).make()
        assert all(isinstance(problem, k) for k in kinds), name
    assert not isinstance(problems.double_well(), i.Linear)   # studied through its orbits


def test_a_value_without_an_optimum_is_judged_by_its_loss():
    from typing import NamedTuple

    import pytest

    from gdlab.errors import ArgumentError

    class LossOnly(NamedTuple):
        a: float
        param_shape = ()

        def loss(self, w):
            return self.a * w * w

        def grad(self, w):
            return 2 * self.a * w

    # Declares Problem but not WithOptimum: judged by L_t/L_0 (w_t = (1 − 2α)^t w0).
    res = gdlab.sweep(LossOnly(1.0), [0.1, 1.1], w0=1.0, steps=30)
    assert res.regime.tolist() == [gdlab.Regime.CONVERGED, gdlab.Regime.DIVERGED]   # |1 − 2.2| > 1
    assert res.curvature is None and res.score is not None
    with pytest.raises(ArgumentError) as err:     # L(0) = 0: no ratio to judge by
        gdlab.sweep(LossOnly(1.0), [0.1])
    assert err.value.argument == "w0"
