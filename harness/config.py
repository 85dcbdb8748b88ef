"""Run configuration: a YAML file and/or CLI flags, checked against typed dataclasses.

Every plugin declares its parameters as a dataclass (``Task.Config``, ``Method.Config``).
Values from YAML or ``--set scope.key=value`` are parsed with ``yaml.safe_load`` (so
``0.5`` is a float, ``[q_proj, v_proj]`` a list) and then checked against the field's
annotation; an unknown key or a value of the wrong type is rejected by name.

A run file may also give ``per_task:`` overrides of a method's parameters for one task
only (``per_task: {markov: {lora_mcl: {num_hypotheses: 2}}}``), or of every method that
has the key (``per_task: {translation: {method: {steps: 200}}}``): they go on top of the
``methods:`` values, the named method's over ``method``'s, so one file can match each
task's own setting.

Scopes of ``--set``: ``task.<key>`` applies to every selected task that has the key,
``method.<key>`` to every selected method that has it, ``<plugin name>.<key>`` to that one
plugin only; a key that no selected plugin has is an error. ``--set`` wins over the file,
``per_task`` included.

``variants:`` names a registered method with settings of its own, as a row of its own:
``variants: {lora_mle_r4: {method: lora_mle, rank: 4}}``. A variant is selected like a
method (``--methods lora_mle_r4``), takes ``--set lora_mle_r4.KEY=…`` and ``per_task``
entries, and shares cached artifacts with any method or variant of the same settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.errors import MCLBenchError
from harness.files import read_text


class ConfigError(MCLBenchError, ValueError):
    """A configuration that cannot be run, with the reason and the valid choices."""


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` checked (and where lossless, converted) against annotation ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{where}: expected one of {choices}, got {value!r}")
        return value
    if origin in (list, tuple, dict):
        return _coerce_container(value, tp, where)
    if tp in _SCALARS:
        return _SCALARS[tp](value, where)
    raise TypeError(f"{where}: unsupported annotation {tp!r} in a plugin config")


def _coerce_union(value: Any, tp: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:  # Optional[X]: X's own, more precise, message
        return coerce(value, options[0], where)
    for arg in options:
        try:
            return coerce(value, arg, where)
        except ConfigError:
            pass
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _coerce_container(value: Any, tp: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {coerce(k, kt, where): coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list ({_type_name(tp)}), got {value!r}")
    item = args[0] if args else Any
    return [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected an integer, got {value!r}")


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    raise ConfigError(f"{where}: expected a number, got {value!r}")


def _as_str(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected a string, got {value!r}")


_SCALARS = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str}


def build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and bad types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(names)}"
        )
    kwargs = {k: coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    negative = [k for k, v in kwargs.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and v < 0]
    if negative:  # no plugin parameter is a negative count, size, rate or seed
        raise ConfigError(f"{where}.{negative[0]}: must be >= 0, got {kwargs[negative[0]]!r}")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return obj


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_assignment(text: str) -> tuple[str, str, Any]:
    """``"task.num_states=6"`` -> ``("task", "num_states", 6)``."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected SCOPE.KEY=VALUE, e.g. method.rank=8")
    lhs, raw = text.split("=", 1)
    if "." not in lhs:
        raise ConfigError(
            f"--set {text!r}: the key needs a scope: task.KEY, method.KEY or <plugin name>.KEY"
        )
    scope, key = lhs.split(".", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: cannot parse the value: {exc}") from None
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value):  # YAML 1.1 reads 1e-3 as text
        value = float(value)
    return scope.strip(), key.strip(), value


@dataclass
class RunSpec:
    """What ``mclbench run`` executes: tasks × methods × seeds, with per-plugin overrides."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    output: str = "out"
    cache_dir: str = ".mclbench_cache"
    per_task: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # > 0: for the first seed, also decode best_of_n candidates with each method that can
    # return more (Method.with_candidates) and record its oracle quality for N = 1..best_of_n.
    best_of_n: int = 0
    # > 1: each train and decode stage runs under `accelerate launch` on this many processes
    processes: int = 1
    accelerate_config: str | None = None  # `accelerate config` file (DDP/FSDP/DeepSpeed, precision)
    device: str = "auto"  # in-process stages: auto (CUDA when present), cpu, cuda, cuda:N, mps
    variants: dict[str, str] = field(default_factory=dict)  # row name -> registered method
    task_files: list[str] = field(default_factory=list)  # YAML task files to register first
    command_line: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its --set values
    # where a field's value came from ("run.yaml: seeds", "--seeds"), for validate()'s messages
    origins: dict[str, str] = field(default_factory=dict)

    def overlay(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        """Set the fields ``values`` names (the command line's flags over the file), each
        with where it came from."""
        for key, value in values.items():
            setattr(self, key, value)
            self.origins[key] = origins[key]

    def validate(self) -> None:
        """The run's own settings, checked once whatever set them (file or flags); each
        error names where the value came from."""
        def origin(key: str) -> str:
            return self.origins.get(key, key)

        unique(self.seeds, origin("seeds"))
        if self.best_of_n < 0:
            raise ConfigError(f"{origin('best_of_n')} must be >= 0 (0: no best-of-N curves)")
        if self.processes < 1:
            raise ConfigError(f"{origin('processes')} must be >= 1")
        for key in ("output", "cache_dir"):
            if not getattr(self, key).strip():
                raise ConfigError(f"{origin(key)} is empty; name a folder (e.g. {key}: out)")
        if self.accelerate_config is not None and not Path(self.accelerate_config).is_file():
            raise ConfigError(f"{origin('accelerate_config')} {self.accelerate_config!r} does not exist")

    def only(self, task: str, method: str, seed: int) -> RunSpec:
        """This run narrowed to one cell (what a launched process builds)."""
        return dataclasses.replace(self, tasks={task: self.tasks[task]},
                                   methods={method: self.methods[method]}, seeds=[seed])

    def method_of(self, name: str) -> str:
        """The registered method a row of the run runs (a variant's, or the name itself)."""
        return self.variants.get(name, name)

    @property
    def launches(self) -> bool:
        """Whether train and decode stages run under ``accelerate launch`` (harness.distributed)."""
        return self.processes > 1 or self.accelerate_config is not None

    def method_overrides(self, task: str, method: str, keys: set[str]) -> dict[str, Any]:
        """The parameters of ``method`` (which has parameters ``keys``) when it runs on
        ``task``: ``methods``, then ``per_task``'s ``method`` (where the key is one of
        ``keys``), then ``per_task``'s entry for the method itself, then ``--set``."""
        per = self.per_task.get(task, {})
        shared = {k: v for k, v in per.get("method", {}).items() if k in keys}
        return {**self.methods.get(method, {}), **shared, **per.get(method, {}),
                **self.command_line.get(method, {})}

    def apply(self, assignments: list[tuple[str, str, Any]], keys_of) -> None:
        """Apply ``--set`` assignments; ``keys_of(kind, name)`` lists a plugin's parameters.
        A key no selected plugin in scope has is an error that lists the valid ones."""
        def keys(kind: str, name: str):
            return keys_of(kind, self.method_of(name) if kind == "method" else name)

        for scope, key, value in assignments:
            if scope in ("task", "method"):
                selected = self.tasks if scope == "task" else self.methods
                targets = [n for n in selected if key in keys(scope, n)]
                if not targets:
                    valid = sorted({k for n in selected for k in keys(scope, n)})
                    raise ConfigError(
                        f"--set {scope}.{key}: no selected {scope} ({', '.join(selected) or 'none'}) "
                        f"has a parameter {key!r}{suggest(key, valid)}; valid: {', '.join(valid)}"
                    )
            elif scope in self.tasks or scope in self.methods:
                kind = "task" if scope in self.tasks else "method"
                valid = list(keys(kind, scope))
                if key not in valid:
                    raise ConfigError(f"--set {scope}.{key}: {kind} {scope!r} has no parameter {key!r}"
                                      f"{suggest(key, valid)}; valid: {', '.join(valid)}")
                selected, targets = (self.tasks if kind == "task" else self.methods), [scope]
            else:
                raise ConfigError(
                    f"--set {scope}.{key}: unknown scope {scope!r}; use task, method or one of "
                    f"the selected plugins: {', '.join([*self.tasks, *self.methods])}"
                )
            for name in targets:
                selected[name][key] = value
                if selected is self.methods:  # the command line wins over per-task values
                    self.command_line.setdefault(name, {})[key] = value


def suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (PyYAML would keep
    the last silently: ``seeds`` or a method written twice)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_SPEC_KEYS = {f.name for f in dataclasses.fields(RunSpec)} - {"command_line", "origins"}  # not in a file


def unique(values: list, what: str) -> list:
    """``values`` unchanged, or ConfigError on the first repeated one (a seed run twice would
    count twice in mean ± std; a method named twice would be one row)."""
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{what}: {v!r} is given twice; name each once")
        seen.add(v)
    return values


def _named_overrides(value: Any, key: str, where: str) -> dict[str, dict[str, Any]]:
    """YAML ``tasks:`` / ``methods:`` as a list of names or a mapping name -> overrides."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of names, got {value!r}")
        return {v: {} for v in unique(value, f"{where}: {key}")}
    if isinstance(value, dict):
        out = {}
        for name, overrides in value.items():
            if overrides is None:
                overrides = {}
            if not isinstance(overrides, dict):
                raise ConfigError(
                    f"{where}: {key}.{name} must map parameter names to values, got {overrides!r}"
                )
            out[str(name)] = dict(overrides)
        return out
    raise ConfigError(f"{where}: {key} must be a list of names or a mapping, got {value!r}")


def read_yaml_mapping(path: Path, what: str, keys: list[str]) -> dict:
    """The mapping a YAML file holds (empty file: ``{}``), or ConfigError in one line: no
    such file, not YAML (where), a duplicated key, or not a mapping (``keys``: the valid ones)."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        data = yaml.load(read_text(path), Loader=UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {keys}")
    return data


def load_spec(path: str | Path | None) -> RunSpec:
    """Read a run description from YAML (or return the defaults when ``path`` is None)."""
    if path is None:
        return RunSpec()
    path = Path(path)
    data = read_yaml_mapping(path, "config file", sorted(_SPEC_KEYS))
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(sorted(_SPEC_KEYS))}"
        )
    spec = RunSpec()
    where = str(path)
    if "tasks" in data:
        spec.tasks = _named_overrides(data["tasks"], "tasks", where)
    if "methods" in data:
        spec.methods = _named_overrides(data["methods"], "methods", where)
    if "task_files" in data:  # relative to the run file
        files = coerce(data["task_files"], list[str], f"{where}: task_files")
        spec.task_files = [os.path.abspath(path.parent / f) for f in files]  # symlinks kept
    if "variants" in data:
        add_variants(spec, data["variants"], where)
    spec.origins = {key: f"{where}: {key}" for key in data}
    if "per_task" in data:
        spec.per_task = _per_task(data["per_task"], where)
    _read_settings(spec, data, where)
    spec.validate()
    return spec


def _per_task(value: Any, where: str) -> dict[str, dict[str, dict[str, Any]]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: per_task must map task names to method overrides, "
                          f"e.g. per_task: {{<task>: {{<method>: {{<parameter>: <value>}}}}}}")
    return {str(t): _named_overrides(m or {}, f"per_task.{t}", where) for t, m in value.items()}


# the run's own settings in a file, by their types (RunSpec.validate checks their values)
_SETTINGS = {"seeds": list[int], "best_of_n": int, "processes": int, "output": str, "cache_dir": str,
             "device": str}


def _read_settings(spec: RunSpec, data: dict, where: str) -> None:
    for key, tp in _SETTINGS.items():
        if key in data:
            setattr(spec, key, coerce(data[key], tp, f"{where}: {key}"))
    if data.get("accelerate_config") is not None:  # relative to the working folder, as on the command line
        spec.accelerate_config = coerce(data["accelerate_config"], str, f"{where}: accelerate_config")


def add_variants(spec: RunSpec, value: Any, where: str) -> None:
    """``variants:`` -> rows of the run: each variant's settings join ``spec.methods`` under
    its name, and ``spec.variants`` records the registered method it runs."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: variants must map a row name to {{method: <registered method>, "
                          f"<parameter>: <value>, ...}}, got {value!r}")
    from harness.registry import available

    registered = available("method")
    from harness.registry import check_name

    for name, settings in value.items():
        try:
            name = check_name("variant", name)
        except ValueError as exc:
            raise ConfigError(f"{where}: variants: {exc}") from None
        if not isinstance(settings, dict) or not isinstance(settings.get("method"), str):
            raise ConfigError(f"{where}: variants.{name}: needs method: <one of {', '.join(registered)}>, "
                              f"e.g. {{method: lora_mle, rank: 4}}")
        if name in registered:
            raise ConfigError(f"{where}: variants.{name}: {name!r} is a registered method; give the "
                              "variant a name of its own")
        if name in spec.methods:
            raise ConfigError(f"{where}: variants.{name}: also given under methods:; name it once")
        params = dict(settings)
        spec.variants[name] = params.pop("method")
        spec.methods[name] = params
