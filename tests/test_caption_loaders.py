"""Captioning loaders on small fixtures in every format, bad files named; the scene
generator is reproducible byte for byte and its captions describe different subsets."""

import hashlib
import json

import numpy as np
import pytest

from harness.files import DataFormatError
from tasks.captioning import image_scenes
from tasks.captioning import loaders as cl

pytest.importorskip("PIL")
CAPTIONS = {"a.png": ["a red circle on the left", "one shape on a white background"],
            "b.png": ["a blue square and a green triangle", "two shapes on a black background"]}


@pytest.fixture
def images(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for name in CAPTIONS:
        Image.new("RGB", (8, 8), (255, 0, 0)).save(folder / name)
    return folder


def check(examples, folder):
    assert {e.id: e.references for e in examples} == {k.split(".")[0]: v for k, v in CAPTIONS.items()}
    assert all(e.source.parent == folder and e.source.is_file() for e in examples)


def test_coco_json(tmp_path, images):
    names = list(CAPTIONS)
    data = {"images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
            "annotations": [{"id": k, "image_id": names.index(n), "caption": c}
                            for k, (n, c) in enumerate((n, c) for n in names for c in CAPTIONS[n])]}
    (tmp_path / "captions.json").write_text(json.dumps(data))
    check(cl.read_coco_captions(tmp_path / "captions.json", images), images)


def test_flickr_results_csv_and_token_file(tmp_path, images):
    rows = ["image_name| comment_number| comment"]
    rows += [f"{n}| {k}| {c}" for n, caps in CAPTIONS.items() for k, c in enumerate(caps)]
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    check(cl.read_flickr(tmp_path / "results.csv", images), images)
    tokens = [f"{n}#{k}\t{c}" for n, caps in CAPTIONS.items() for k, c in enumerate(caps)]
    (tmp_path / "Flickr8k.token.txt").write_text("\n".join(tokens) + "\n")
    check(cl.read_flickr(tmp_path / "Flickr8k.token.txt", images), images)


def test_textcaps_json(tmp_path, images):
    rows = [{"image_id": n.split(".")[0], "image_path": f"train/{n}", "caption_str": caps[0],
             "reference_strs": caps} for n, caps in CAPTIONS.items()]
    (tmp_path / "TextCaps.json").write_text(json.dumps({"data": rows}))
    check(cl.read_textcaps(tmp_path / "TextCaps.json", images), images)


def test_clotho_and_audiocaps(tmp_path):
    import soundfile as sf

    folder = tmp_path / "audio"
    folder.mkdir()
    tone = np.sin(np.linspace(0, 100, 1600)).astype("float32")
    for name in ("x.wav", "yt1_30.wav"):
        sf.write(folder / name, tone, 16000)
    (tmp_path / "clotho.csv").write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\nx.wav,a,b,c,d,e\n")
    [ex] = cl.read_clotho(tmp_path / "clotho.csv", folder)
    assert ex.references == ["a", "b", "c", "d", "e"] and ex.source == folder / "x.wav"
    (tmp_path / "audiocaps.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n1,yt1,30,a dog barks\n2,yt1,30,barking\n")
    [ex] = cl.read_audiocaps(tmp_path / "audiocaps.csv", folder)
    assert ex.references == ["a dog barks", "barking"] and ex.source.name == "yt1_30.wav"


def test_bad_files_are_named(tmp_path, images):
    (images / "b.png").unlink()
    rows = ["image_name| comment_number| comment", "a.png| 0| x", "b.png| 0| y"]
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=r"results\.csv: file 'b\.png' not found"):
        cl.read_flickr(tmp_path / "results.csv", images)
    (tmp_path / "clotho.csv").write_text("file_name,text\nx.wav,a dog\n")
    with pytest.raises(DataFormatError, match=r"clotho\.csv: missing column\(s\) caption_1"):
        cl.read_clotho(tmp_path / "clotho.csv", tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataFormatError, match=r"bad\.json: not valid JSON"):
        cl.read_coco_captions(tmp_path / "bad.json", images)


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_scene_generator_reproduces_the_committed_set(tmp_path):
    image_scenes.generate(tmp_path / "a", num=12, seed=0)  # the committed set's first 12 scenes
    committed = image_scenes_dir()
    for k in range(12):
        name = f"images/scene_{k:05d}.png"
        assert (tmp_path / "a" / name).read_bytes() == (committed / name).read_bytes(), name
    ours = json.loads((tmp_path / "a" / "scenes.json").read_text())
    assert ours == json.loads((committed / "scenes.json").read_text())[:12]
    image_scenes.generate(tmp_path / "c", num=12, seed=4)
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def image_scenes_dir():
    from tasks.captioning.image_base import SCENES

    return SCENES


def test_scene_captions_describe_different_subsets():
    scenes = json.loads((image_scenes_dir() / "scenes.json").read_text())
    for s in scenes:
        modes = {c["mode"] for c in s["captions"]}
        assert len(s["captions"]) >= 5 and len(modes) >= 4  # different subsets, not paraphrases
        for c in s["captions"]:
            if c["mode"].startswith("object:"):
                obj = s["objects"][int(c["mode"].split(":")[1])]
                assert obj["colour"] in c["caption"] and obj["shape"] in c["caption"]
    examples = cl.read_coco_captions(image_scenes_dir() / "captions.json", image_scenes_dir() / "images")
    assert len(examples) == 3000 and all(len(e.references) >= 5 for e in examples)


def test_hf_imagefolder_and_audiofolder_layouts(tmp_path, images):
    import soundfile as sf

    (images / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": n, "captions": caps}) + "\n" for n, caps in CAPTIONS.items()))
    check(cl.read_hf_folder(images), images)
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "x.flac", np.zeros(800, dtype="float32"), 8000)
    (audio / "metadata.csv").write_text("file_name,caption_1,caption_2\nx.flac,a hiss,static\n")
    [ex] = cl.read_hf_folder(audio)
    assert ex.references == ["a hiss", "static"] and ex.source == audio / "x.flac"
    (audio / "metadata.csv").write_text("file_name,label\nx.flac,3\n")
    with pytest.raises(DataFormatError, match=r"metadata\.csv: no caption column"):
        cl.read_hf_folder(audio)


def test_unreadable_image_is_named(tmp_path, images):
    from tasks.captioning.image import ImageCaptioningConfig, ImageCaptioningTask

    (images / "a.png").write_bytes(b"not a png")
    task = ImageCaptioningTask(ImageCaptioningConfig())
    with pytest.raises(DataFormatError, match=r"a\.png: not a readable image"):
        task.inputs([images / "a.png"])
