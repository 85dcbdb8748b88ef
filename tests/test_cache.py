"""The artifact cache: computed once, reused, corruption detected and recomputed."""

import json

import pytest

from harness.cache import MANIFEST, Cache
from harness.hashing import stable_hash


def writer(calls, text="hello"):
    def compute(d):
        calls.append(1)
        (d / "a.txt").write_text(text)
        (d / "sub").mkdir()
        (d / "sub" / "b.json").write_text(json.dumps({"x": 1}))
    return compute


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_compute_once_then_reuse(tmp_path):
    cache, calls = Cache(tmp_path), []
    d1, reused1 = cache.get_or_compute("s", "k", writer(calls))
    d2, reused2 = cache.get_or_compute("s", "k", writer(calls))
    assert (reused1, reused2) == (False, True) and len(calls) == 1 and d1 == d2
    assert (d1 / "a.txt").read_text() == "hello"
    assert set(json.loads((d1 / MANIFEST).read_text())["files"]) == {"a.txt", "sub/b.json"}


@pytest.mark.parametrize("damage", ["edit", "truncate", "delete", "extra", "manifest"])
def test_corrupted_artifact_is_recomputed(tmp_path, damage):
    cache, calls = Cache(tmp_path), []
    d, _ = cache.get_or_compute("s", "k", writer(calls))
    if damage == "edit":
        (d / "a.txt").write_text("hellO")
    elif damage == "truncate":
        (d / "sub" / "b.json").write_text("")
    elif damage == "delete":
        (d / "a.txt").unlink()
    elif damage == "extra":
        (d / "stray.bin").write_bytes(b"x")
    else:
        (d / MANIFEST).write_text("{not json")
    assert not cache.verify("s", "k")
    d2, reused = cache.get_or_compute("s", "k", writer(calls))
    assert not reused and len(calls) == 2 and (d2 / "a.txt").read_text() == "hello"
    assert cache.verify("s", "k")


def test_failed_compute_leaves_nothing_behind(tmp_path):
    cache = Cache(tmp_path)

    def boom(d):
        (d / "half.txt").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("s", "k", boom)
    assert not cache.path("s", "k").exists()
    assert list((tmp_path / "s").iterdir()) == []


def test_partial_dir_survives_failure_and_goes_on_success(tmp_path):
    cache = Cache(tmp_path)
    work = cache.partial_dir("s", "k")
    (work / "checkpoint").write_text("step 100")

    def boom(d):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("s", "k", boom)
    assert (work / "checkpoint").exists()
    cache.get_or_compute("s", "k", writer([]))
    assert not work.exists()


def test_remote_root_shares_artifacts_between_mirrors(tmp_path, monkeypatch):
    """An fsspec URI as the root: one machine's artifacts are another's, verified on arrival."""
    remote = (tmp_path / "bucket").as_uri()  # file:// through fsspec, as s3:// would be
    calls = []

    def compute(d):
        calls.append(1)
        (d / "weights.bin").write_bytes(b"trained")
        (d / "sub").mkdir()
        (d / "sub" / "log.json").write_text("{}")

    monkeypatch.setenv("MCLBENCH_CACHE_MIRROR", str(tmp_path / "machine_a"))
    first, reused = Cache(remote).get_or_compute("train", "k1", compute)
    assert not reused and calls == [1]
    uploaded = tmp_path / "bucket" / "train" / "k1"
    assert (uploaded / MANIFEST).is_file() and (uploaded / "sub" / "log.json").is_file()

    monkeypatch.setenv("MCLBENCH_CACHE_MIRROR", str(tmp_path / "machine_b"))
    second, reused = Cache(remote).get_or_compute("train", "k1", compute)
    assert reused and calls == [1]  # downloaded, not recomputed
    assert second != first and (second / "weights.bin").read_bytes() == b"trained"

    (uploaded / "weights.bin").write_bytes(b"tampered")  # a remote copy that lies
    monkeypatch.setenv("MCLBENCH_CACHE_MIRROR", str(tmp_path / "machine_c"))
    cache = Cache(remote)
    assert cache.get("train", "k1") is None
    third, reused = cache.get_or_compute("train", "k1", compute)
    assert not reused and calls == [1, 1] and (uploaded / "weights.bin").read_bytes() == b"trained"


@pytest.mark.slow
def test_a_run_on_another_machine_reads_the_remote_cache(tmp_path, monkeypatch):
    from harness.cli import main
    from tests.conftest import TINY_SETS

    monkeypatch.chdir(tmp_path)
    remote = (tmp_path / "bucket").as_uri()
    args = ["run", "--tasks", "markov", "--methods", "lora_mcl,beam", "--seeds", "0",
            "--cache-dir", remote, "--no-tracking", "--no-plots"]
    for s in TINY_SETS:
        args += ["--set", s]
    monkeypatch.setenv("MCLBENCH_CACHE_MIRROR", str(tmp_path / "machine_a"))
    assert main([*args, "--output", "a"]) == 0
    stored = sorted(p.relative_to(tmp_path / "bucket") for p in (tmp_path / "bucket").rglob("*"))
    assert any(p.name == MANIFEST and p.parts[0] == "train" for p in stored)
    monkeypatch.setenv("MCLBENCH_CACHE_MIRROR", str(tmp_path / "machine_b"))
    assert main([*args, "--output", "b"]) == 0
    assert sorted(p.relative_to(tmp_path / "bucket") for p in (tmp_path / "bucket").rglob("*")) == stored
    assert (tmp_path / "a" / "scores.csv").read_text() == (tmp_path / "b" / "scores.csv").read_text()
    assert not list((tmp_path / "machine_b").rglob("*.partial"))  # nothing trained on machine b
