"""The stage functions on a fake task and method (no model, no grid): what each writes, the
same in process and as one process of a launch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from harness import stages
from harness.method import Method
from harness.task import Example, Task


class FakeTask(Task):
    name = "fake"

    def test_examples(self):
        return [Example(id=f"x{i}", source=f"source {i}", references=[f"ref {i}"]) for i in range(5)]

    def load_backbone(self, directory):
        return torch.nn.Linear(2, 2)


@dataclass
class FakeConfig:
    pass


class FakeMethod(Method):
    name = "fake_method"
    Config = FakeConfig

    def __init__(self):
        super().__init__(FakeConfig())
        self.decoded: list[str] = []

    def train(self, backbone, task, seed, out_dir, work_dir, accelerator=None):
        (out_dir / "state.json").write_text(json.dumps({"seed": seed, "backbone": type(backbone).__name__}))

    def load(self, backbone, train_dir):
        backbone.trained = json.loads((train_dir / "state.json").read_text())
        return backbone

    def decode(self, model, task, examples, seed):
        self.decoded += [e.id for e in examples]
        return [[f"{e.source} by {model.trained['seed']}", "other"] for e in examples]

    def cost(self, model, task):
        return {"trainable_params": 0.0}


def candidates(directory: Path) -> list[list[str]]:
    return [json.loads(line)["candidates"] for line in (directory / "candidates.jsonl").open()]


def test_train_then_decode_in_process(tmp_path):
    task, method = FakeTask(None), FakeMethod()
    (tmp_path / "train").mkdir()
    (tmp_path / "decode").mkdir()
    stages.train_to(tmp_path / "train", method, task, tmp_path, 3, tmp_path / "work", "cpu")
    assert json.loads((tmp_path / "train" / "state.json").read_text()) == {"seed": 3, "backbone": "Linear"}
    stages.decode_to(tmp_path / "decode", method, task, tmp_path, tmp_path / "train", 3, "cpu")
    assert candidates(tmp_path / "decode") == [[f"source {i} by 3", "other"] for i in range(5)]
    measured = stages.read_measured(tmp_path / "decode")
    assert measured.cost == {"trainable_params": 0.0} and measured.probes == {}


class FakeAccelerator:
    """One process of a launch of two: its share is every second input."""

    device = torch.device("cpu")
    num_processes = 2

    def __init__(self, rank: int):
        self.process_index = rank
        self.is_main_process = rank == 0


def test_a_launch_decodes_shares_and_the_main_process_writes_them_in_order(tmp_path, monkeypatch):
    import accelerate.utils

    task = FakeTask(None)
    (tmp_path / "train").mkdir()
    stages.train_to(tmp_path / "train", FakeMethod(), task, tmp_path, 0, tmp_path / "work", "cpu")
    other = FakeMethod()  # rank 1's share, as gather_object would bring it to rank 0
    share = task.test_examples()[1::2]
    model = other.load(torch.nn.Linear(2, 2), tmp_path / "train")
    theirs = [[e.id, c] for e, c in zip(share, other.decode(model, task, share, 0), strict=True)]
    monkeypatch.setattr(accelerate.utils, "gather_object", lambda mine: mine + theirs)
    for rank in (1, 0):
        out = tmp_path / f"decode{rank}"
        out.mkdir()
        method = FakeMethod()
        stages.decode_to(out, method, task, tmp_path, tmp_path / "train", 0, "cpu", FakeAccelerator(rank))
        assert method.decoded == [e.id for e in task.test_examples()[rank::2]]
        assert (out / "candidates.jsonl").is_file() == (rank == 0)  # the main process writes
    assert candidates(tmp_path / "decode0") == [[f"source {i} by 0", "other"] for i in range(5)]
