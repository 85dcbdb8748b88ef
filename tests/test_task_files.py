"""Tasks declared in YAML files (tasks/task_files.py): the example through the CLI, the
task path, and bad task files as one-line errors that name the file and the key."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "yaml-task" / "tatoeba_you.yaml"


@pytest.mark.slow
def test_the_example_task_file_runs_through_the_cli(run_dirs):
    out, cache = run_dirs
    assert main(["run", "--task-file", str(EXAMPLE), "--methods", "lora_mcl,lora_mle",
                 "--set", "method.steps=4", "--set", "task.num_test=6", "--output", str(out),
                 "--cache-dir", str(cache), "--no-tracking", "--no-plots"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["task"]) == {"tatoeba_you"} and set(scores["method"]) == {"lora_mcl", "lora_mle"}
    metrics = set(scores["metric"])
    assert {"top1/bleu", "oracle_corpus/bleu", "loo_bleu_2refs", "refs_covered", "mbleu_4"} <= metrics
    assert not any(m.endswith("chrf") for m in metrics)  # not among the file's metrics
    mcl = scores[(scores.method == "lora_mcl") & (scores.metric == "unique")]["value"].item()
    assert 0 < mcl <= 1
    # the file's per-reference mode labels (you_form) give modes_covered and mode_recall
    assert {"modes_covered", "mode_recall", "share_du"} <= metrics
    recall = scores[scores.metric == "mode_recall"]["value"]
    assert recall.between(0, 1).all()


def test_task_file_mode_labels_and_tokenisation(tmp_path):
    import json

    from harness import score_stages
    from harness.metrics.modes import mode_coverage
    from harness.metrics.text import quality_flavours
    from tasks.task_files import task_class

    task = task_class(EXAMPLE)(task_class(EXAMPLE).Config())
    examples = task.test_examples()
    labelled = [e for e in examples if any(e.modes)]
    assert len(labelled) == 41 and all(len(e.modes) == len(e.references) for e in examples)
    columns = score_stages.reported_metrics(task)
    assert columns["mode_recall"].description.startswith("modes_covered / the distinct modes")
    cands = [[e.source, e.references[0]] for e in examples]  # the English source, a reference
    values = score_stages.evaluate(task, examples, cands, {}).values
    refs = [e.references for e in examples]
    assert values["mode_recall"] == mode_coverage(cands, refs, [e.modes for e in examples])["mode_recall"]
    # another tokenisation: BLEU and the diversity metrics follow it, the catalogue says so
    other = tmp_path / "char_task.yaml"
    text = EXAMPLE.read_text().replace("name: tatoeba_you", "name: tatoeba_you_char")
    other.write_text(text.replace("tokenize: 13a", "tokenize: char")
                     .replace("data/", str(EXAMPLE.parent / "data") + "/"))
    char = task_class(other)(task_class(other).Config())
    assert char.tokenize == "char"
    assert score_stages.reported_metrics(char)["mbleu_4"].tokenisation == "sacreBLEU char"
    char_values = score_stages.evaluate(char, examples, cands, {}).values
    assert char_values["top1/bleu"] == quality_flavours(cands, refs, ["bleu"], "char")["top1/bleu"]
    assert char_values["top1/bleu"] != values["top1/bleu"]
    assert "tok:char" in " ".join(score_stages.notes(char))
    bad = tmp_path / "bad_modes.jsonl"
    bad.write_text(json.dumps({"id": "0", "english": "Run!", "german": ["Lauf!", "Lauft!"],
                               "you_form": ["du"]}) + "\n")
    with pytest.raises(ValueError, match=r"'you_form' must hold one mode label \(or null\) per reference: 2"):
        task_class(EXAMPLE)(task_class(EXAMPLE).Config(test_file=str(bad))).test_examples()


def test_a_folder_on_the_task_path_registers_its_tasks_by_name():
    env = {**os.environ, "MCLBENCH_TASK_PATH": str(EXAMPLE.parent)}
    listed = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True,
                            text=True, env=env, cwd=ROOT, check=True).stdout
    assert "tatoeba_you" in listed and "English→German Tatoeba" in listed


GOOD = """name: my_task
data: {train: train.jsonl, test: test.jsonl}
"""


@pytest.mark.parametrize("text, key, message", [
    ("data: {test: test.jsonl}\n", "name", "required"),
    ("name: t\ndata: {train: train.jsonl}\n", "data.test", "required"),
    ("name: t\ndata: {test: nowhere.jsonl}\n", "data.test", "nowhere.jsonl does not exist"),
    (GOOD + "metrics: [bleu, blue]\n", "metrics", "unknown metric 'blue'"),
    (GOOD + "input: video\n", "input", "expected one of text, image, audio"),
    (GOOD + "fields: {source: en, target: de}\n", "fields.target", "unknown key"),
    (GOOD + "promt: x\n", "promt", "unknown key"),
    ("name: t\ninput: image\ndata: {test: test.jsonl}\n", "data.media", "required"),
    (GOOD + "tokenize: klingon\n", "tokenize", "expected one of 13a, intl, zh, char, none"),
    ("name: t\ninput: image\ndata: {test: test.jsonl, media: .}\ntokenize: char\n", "tokenize",
     "only text tasks take a tokenisation"),
])
def test_bad_task_files_are_one_line_errors_naming_file_and_key(tmp_path, capsys, text, key, message):
    for name in ("train.jsonl", "test.jsonl"):
        (tmp_path / name).write_text('{"id": "0", "source": "a", "references": ["b"]}\n')
    task = tmp_path / "task.yaml"
    task.write_text(text)
    code = main(["run", "--task-file", str(task), "--methods", "lora_mle", "--output", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path / "c"), "--no-tracking"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, err
    assert f"{task}: {key}: " in err and message in err, err


@pytest.mark.slow
@pytest.mark.parametrize("kind, data", [
    ("image", {"test": "tasks/data/photos/flickr8k/captions.txt",
               "media": "tasks/data/photos/flickr8k/images", "format": "flickr"}),
    ("audio", {"test": "tasks/data/audio_clips/captions.csv", "media": "tasks/data/audio_clips/audio",
               "format": "clotho"}),
])
def test_image_and_audio_task_files_run_on_the_committed_bases(run_dirs, kind, data):
    out, cache = run_dirs
    task = out.parent / f"{kind}.yaml"
    paths = {k: str(ROOT / v) if k != "format" else v for k, v in data.items()}
    task.write_text(f"name: my_{kind}\ninput: {kind}\ndata: {paths}\nnum_test: 3\nnum_train: 24\n"
                    "metrics: [cider_d]\n".replace("'", '"'))
    assert main(["run", "--task-file", str(task), "--methods", "lora_mle", "--set", "method.steps=2",
                 "--set", "task.skip_missing=true", "--output", str(out), "--cache-dir", str(cache),
                 "--no-tracking", "--no-plots"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["task"]) == {f"my_{kind}"}
    flavoured = {m for m in scores["metric"] if "/" in m}
    assert flavoured and all(m.endswith("cider_d") or m.endswith("nll") for m in flavoured), flavoured


def test_a_symlinked_data_file_is_read_by_the_links_name(tmp_path):
    """DVC and git-annex keep data as links to files named by their hash (no extension)."""
    from tasks.task_files import task_class

    objects = tmp_path / "objects"
    objects.mkdir()
    blob = objects / "3f2a9c0d5e"
    blob.write_text('{"id": "a", "source": "a dog", "references": ["ein Hund"]}\n'
                    '{"id": "b", "source": "a cat", "references": ["eine Katze"]}\n')
    (tmp_path / "test.jsonl").symlink_to(blob)
    (tmp_path / "linked.yaml").write_text("name: linked_data\ninput: text\ndata: {test: test.jsonl}\n")
    task = task_class(tmp_path / "linked.yaml")(task_class(tmp_path / "linked.yaml").Config())
    assert [e.id for e in task.test_examples()] == ["a", "b"]
