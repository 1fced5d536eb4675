"""The rooms keep their rules: no module cycle, and the layer contracts of pyproject.toml
([tool.importlinter], docs/architecture.md) hold.  `make test` also runs `lint-imports`."""

from __future__ import annotations

import grimp
import pytest


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("emgfeedback")


def _cycles(adj: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(adj[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_cycles() -> None:
    g = _graph()
    adj = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    # A package and its own submodules (``views.gui`` <-> ``views.gui.window``) count too.
    assert _cycles(adj) == []


@pytest.mark.parametrize("low, high", [
    ("emgfeedback.stream", "emgfeedback.dsp"),
    ("emgfeedback.vocabulary", "emgfeedback.clinical"),
    ("emgfeedback.recording", "emgfeedback.io"),
    ("emgfeedback.clinical", "emgfeedback.io"),
    ("emgfeedback.clinical", "emgfeedback.sources"),
    ("emgfeedback.clinical", "emgfeedback.app"),
    ("emgfeedback.sources", "emgfeedback.clinical"),
    ("emgfeedback.io", "emgfeedback.clinical"),
    ("emgfeedback.io", "emgfeedback.dsp"),
    ("emgfeedback.io", "emgfeedback.sources"),
    ("emgfeedback.app", "emgfeedback.views"),
    ("emgfeedback.views", "emgfeedback.cli"),
])
def test_no_import_from_low_to_high(low: str, high: str) -> None:
    g = _graph()
    assert not g.chain_exists(importer=low, imported=high, as_packages=True), (
        f"{low} imports {high}: " + str(g.find_shortest_chain(low, high, as_packages=True)))


def test_lint_imports_contracts_hold() -> None:
    from importlinter.cli import lint_imports

    assert lint_imports(no_cache=True) == 0
