"""MLflow tracking of every cell: params, metrics, training curves and artifacts.

Default store: a local sqlite database ``./mlruns/mlflow.db`` with artifacts under
``./mlruns/artifacts``; ``MLFLOW_TRACKING_URI`` (e.g. a tracking server,
``http://host:5000``) overrides it. A cell is logged once per store: re-running a cached
cell does not duplicate its run, on this machine (a local ledger) or on any other that logs
to the same server (the run's ``mclbench.score_key`` tag is looked up first). MLflow takes no
``@`` in a metric name: ``max@n/bleu`` is logged as ``max_at_n/bleu``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from harness.config import as_dict
from harness.files import write_json_atomic
from harness.hashing import stable_hash

EXPERIMENT = "mclbench"
LOCAL_DIR = Path("mlruns")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(LOCAL_DIR / 'mlflow.db').resolve()}"


def _flatten(prefix: str, d: dict) -> dict[str, str]:
    return {f"{prefix}.{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            for k, v in d.items()}


def _ledger(uri: str) -> Path:
    """Which cells this store already holds (kept beside the default store, or per URI)."""
    LOCAL_DIR.mkdir(exist_ok=True)
    return LOCAL_DIR / f"logged-{stable_hash(uri)[:12]}.json"


def training_metrics(history: dict[str, list]) -> list:
    """MLflow metrics of a training log ``{"step": [...], <series>: [...]}``: a number per
    step as ``train/<series>``; a list of counts per step (a series named ``<x>_counts``)
    as its shares ``train/<x>_share_<k>``; other lists as ``train/<series>_<k>``. The
    ``val_*`` series have their own steps (``val_step``)."""
    from mlflow.entities import Metric

    out = []
    for name, values in history.items():
        steps = history["val_step"] if name.startswith("val_") else history["step"]
        if name in ("step", "val_step") or len(values) != len(steps):
            continue
        for step, value in zip(steps, values, strict=True):
            if isinstance(value, list):
                total = (sum(value) or 1) if name.endswith("_counts") else 1
                stem = name.removesuffix("_counts") + "_share" if name.endswith("_counts") else name
                out += [Metric(f"train/{stem}_{k}", v / total, 0, step) for k, v in enumerate(value)]
            elif isinstance(value, int | float):
                out.append(Metric(f"train/{name}", float(value), 0, step))
    return out


def mlflow_name(metric: str) -> str:
    """A metric's name as MLflow takes it (no ``@``: ``max@2/bleu`` -> ``max_at_2/bleu``)."""
    return metric.replace("@", "_at_")


def log_cell(cell, score_key: str, scores: dict[str, float], decode_dir: Path, score_dir: Path) -> str:
    """Log one cell as an MLflow run (once per store) and return its run id."""
    uri = tracking_uri()
    ledger_path = _ledger(uri)
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
    if score_key in ledger:
        return ledger[score_key]

    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    for name in ("mlflow", "alembic"):  # store creation logs at INFO on first use
        logging.getLogger(name).setLevel(logging.WARNING)

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        location = (LOCAL_DIR / "artifacts").resolve().as_uri() if uri.startswith("sqlite") else None
        try:
            exp_id = client.create_experiment(EXPERIMENT, artifact_location=location)
        except mlflow.exceptions.MlflowException:  # another worker created it just now
            exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    else:
        exp_id = exp.experiment_id
    # A shared store (a tracking server) may already hold this cell, logged by another
    # worker or machine whose ledger this one cannot see: ask it.
    found = client.search_runs([exp_id], f"tags.`mclbench.score_key` = '{score_key}'", max_results=1)
    if found:
        ledger[score_key] = found[0].info.run_id
        write_json_atomic(ledger_path, ledger)
        return found[0].info.run_id
    run = client.create_run(exp_id, run_name=cell.label, tags={
        "task": cell.task.name, "method": cell.method.name, "seed": str(cell.seed),
        "mclbench.score_key": score_key})
    params = {"seed": str(cell.seed), **_flatten("task", as_dict(cell.task.config)),
              **_flatten("method", as_dict(cell.method.config))}
    metrics = [Metric(mlflow_name(k), float(v), 0, 0) for k, v in scores.items()]
    train_log = decode_dir / "train_log.json"  # kept with the candidates it led to
    if train_log.exists():
        metrics += training_metrics(json.loads(train_log.read_text()))
    client.log_batch(run.info.run_id, metrics=metrics[:1000],
                     params=[Param(k, v[:6000]) for k, v in params.items()],
                     tags=[RunTag("mlflow.note.content", f"mclbench cell {cell.label}")])
    for i in range(1000, len(metrics), 1000):
        client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
    for path in (decode_dir / "candidates.jsonl", score_dir / "scores.json",
                 score_dir / "details.json"):
        client.log_artifact(run.info.run_id, str(path))
    if train_log.exists():
        client.log_artifact(run.info.run_id, str(train_log), artifact_path="train")
    client.set_terminated(run.info.run_id)
    ledger[score_key] = run.info.run_id
    write_json_atomic(ledger_path, ledger)
    return run.info.run_id
