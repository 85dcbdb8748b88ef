"""The architecture, executable: which package may import which (``ast`` over every import,
module level and inside functions).

- ``harness`` (the engine) imports nothing from ``methods`` or ``tasks``;
- ``methods`` and ``tasks`` do not import each other;
- ``mclbench`` (the public Python facade: evaluate modules) is imported by nothing inside;
- ``harness.metrics`` imports no model code (torch, transformers, peft, the plugins) and not
  the runner or its stages;
- the engine's modules import each other without a cycle;
- the runner, the plan, the stages and the cache print nothing (progress goes to a callback);
- no function of ``harness``, ``methods`` or ``tasks`` is longer than 60 lines (their
  complexity is ruff's C901, at most 12);
- the engine does not duck-type the LoRA family: no ``hasattr``/``getattr`` in ``harness`` of
  a name that only LoRA methods or their configs have (it asks ``Method``'s hooks instead, e.g.
  ``Method.footprint``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "methods", "tasks", "mclbench")

FORBIDDEN = [  # (importer prefix, imported prefix, why)
    ("harness", "methods", "the engine names no plugin"),
    ("harness", "tasks", "the engine names no plugin"),
    ("methods", "tasks", "methods and tasks meet only through harness interfaces"),
    ("tasks", "methods", "methods and tasks meet only through harness interfaces"),
    *[(inner, "mclbench", "the facade sits on top: nothing inside imports it")
      for inner in ("harness", "methods", "tasks")],
    *[("harness.metrics", model, "metrics are pure functions of text: no model code")
      for model in ("torch", "transformers", "peft", "harness.runner", "harness.stages",
                    "harness.score_stages", "harness.plan", "harness.method", "harness.probes")],
]
SILENT = ("harness.runner", "harness.plan", "harness.stages", "harness.score_stages", "harness.cache")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` of every import in the file, relative ones resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((base, node.lineno))
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return out


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(path, root)
            for imported, line in imports(path, root):
                for src, dst, why in FORBIDDEN:
                    if _under(importer, src) and _under(imported, dst):
                        where = f"{path.relative_to(root)}:{line}"
                        found.append(f"{where}: {importer} imports {imported} ({why})")
    return sorted(set(found))


def engine_cycles(root: Path) -> list[list[str]]:
    """Cycles among the engine's modules (imports anywhere in a module count)."""
    modules = {module_name(p, root): p for p in (root / "harness").rglob("*.py")}
    graph = {m: {i for i, _ in imports(p, root) if i in modules and i != m} for m, p in modules.items()}
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_forbidden_import():
    assert violations(ROOT) == []


def test_the_engine_has_no_import_cycle():
    assert engine_cycles(ROOT) == []


def test_the_runner_and_its_stages_print_nothing():
    for name in SILENT:
        path = ROOT / (name.replace(".", "/") + ".py")
        calls = [n.lineno for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
        assert calls == [], f"{path}: print() at lines {calls}"


MAX_FUNCTION_LINES = 60


def long_functions(root: Path) -> list[str]:
    found = []
    for package in ("harness", "methods", "tasks"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_no_function_is_longer_than_a_screen(tmp_path):
    assert long_functions(ROOT) == []
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "long.py").write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert long_functions(tmp_path) == ["harness/long.py:1 f: 61 lines"]


def lora_only_names() -> set[str]:
    """Attributes of the LoRA method family (its classes and their config fields) that the
    ``Method`` interface does not have."""
    import dataclasses

    import harness.registry as registry
    from harness.method import Method
    from methods.lora.base import LoRAMethod, LoRATrainConfig

    names = set(dir(LoRAMethod)) | {f.name for f in dataclasses.fields(LoRATrainConfig)}
    for cls in registry.available("method").values():
        if issubclass(cls, LoRAMethod):
            names |= set(dir(cls)) | {f.name for f in dataclasses.fields(cls.Config)}
    return {n for n in names - set(dir(Method)) if not n.startswith("__")}


def duck_typing(root: Path, names: set[str]) -> list[str]:
    """``file:line`` of every ``hasattr(x, "<name>")`` / ``getattr(x, "<name>", …)`` in the
    engine whose name is one of ``names``."""
    found = []
    for path in sorted((root / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("hasattr", "getattr") \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in names:
                call = f"{node.func.id}(…, {node.args[1].value!r})"
                found.append(f"{path.relative_to(root)}:{node.lineno}: {call}")
    return found


def test_the_engine_does_not_duck_type_the_lora_family(tmp_path):
    names = lora_only_names()
    assert {"num_hypotheses", "adapter_config", "decode_rows", "rank", "grad_accum_steps"} <= names
    assert duck_typing(ROOT, names) == []
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "estimate.py").write_text("k = method.num_hypotheses if hasattr(method, "
                                                      "'num_hypotheses') else getattr(m, 'rank', 1)\n")
    assert len(duck_typing(tmp_path, names)) == 2


def test_the_check_catches_a_forbidden_import(tmp_path):
    """The rules bite: an engine module that imports a plugin, a metric that imports torch
    and a cycle are each reported."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "harness" / "metrics").mkdir()
    (tmp_path / "harness" / "metrics" / "__init__.py").write_text("")
    (tmp_path / "harness" / "plots.py").write_text("def f():\n    from methods.lora_mcl import LoRAMCL\n")
    (tmp_path / "harness" / "metrics" / "text.py").write_text("import torch\n")
    (tmp_path / "harness" / "a.py").write_text("from harness import b\n")
    (tmp_path / "harness" / "b.py").write_text("from . import a\n")
    found = violations(tmp_path)
    assert any("harness.plots imports methods.lora_mcl" in v for v in found), found
    assert any("harness.metrics.text imports torch" in v for v in found), found
    assert ["harness.a", "harness.b", "harness.a"] in engine_cycles(tmp_path)


if __name__ == "__main__":
    print("\n".join(violations(ROOT)) or "no forbidden import")
    print(engine_cycles(ROOT) or "no cycle")
