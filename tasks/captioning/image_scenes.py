"""Generated image-captioning scenes whose captions are genuinely ambiguous.

Each scene is a 64×64 Pillow drawing of 1–3 shapes (circle, square or triangle; one of
six colours; small or large; in one of five places) on one of four backgrounds. Its
reference captions describe *different subsets* of the scene in different wordings, as
people do (ShapeWorld / CLEVR style): one object alone, a pair, the count, the colours, the
background. Every caption is tagged with the subset (the *mode*) it describes, and the
scene's objects are kept as ground truth, so a metric can tell which modes a method's
candidates cover.

Seeded and reproducible: ``python -m tasks.captioning.image_scenes --out DIR --num N --seed S``
writes ``images/<id>.png``, ``captions.json`` (COCO caption format) and ``scenes.json``
(objects and tagged captions); the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SIZE = 64
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 220),
           "yellow": (235, 205, 40), "purple": (140, 60, 180), "orange": (240, 140, 30)}
BACKGROUNDS = {"white": (245, 245, 245), "black": (20, 20, 20), "grey": (128, 128, 128),
               "beige": (225, 210, 180)}
SHAPES = ("circle", "square", "triangle")
PLACES = {"left": (16, 32), "right": (48, 32), "top": (32, 14), "bottom": (32, 50), "centre": (32, 32)}
PLACE_PHRASES = {"left": ["on the left", "at the left"], "right": ["on the right", "at the right"],
                 "top": ["at the top", "near the top"], "bottom": ["at the bottom", "near the bottom"],
                 "centre": ["in the middle", "in the centre"]}
NUMBERS = {1: "one", 2: "two", 3: "three"}


@dataclass
class Shape:
    shape: str
    colour: str
    size: str  # small | large
    place: str


def draw(objects: list[Shape], background: str):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[background])
    pen = ImageDraw.Draw(img)
    for o in objects:
        x, y = PLACES[o.place]
        r = 10 if o.size == "large" else 6
        box = [x - r, y - r, x + r, y + r]
        fill = COLOURS[o.colour]
        if o.shape == "circle":
            pen.ellipse(box, fill=fill)
        elif o.shape == "square":
            pen.rectangle(box, fill=fill)
        else:
            pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    return img


def _noun(o: Shape, with_size: bool) -> str:
    """'a small red circle' / 'an orange square'."""
    words = " ".join(([o.size] if with_size else []) + [o.colour, o.shape])
    return ("an " if words[0] in "aeiou" else "a ") + words


def _listing(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def captions(objects: list[Shape], background: str, rng: np.random.Generator) -> list[dict]:
    """At least five captions, each describing one subset of the scene (its ``mode``)."""
    out = []
    for i, o in enumerate(objects):  # one object alone, in two wordings
        place = PLACE_PHRASES[o.place][int(rng.integers(2))]
        out.append({"mode": f"object:{i}", "caption": f"{_noun(o, True)} {place}"})
        out.append({"mode": f"object:{i}", "caption": f"there is {_noun(o, False)} {place}"})
    if len(objects) >= 2:
        a, b = objects[0], objects[1]
        out.append({"mode": "pair:0,1", "caption": f"{_noun(a, False)} and {_noun(b, False)}"})
    n = len(objects)
    plural = "shape" if n == 1 else "shapes"
    out.append({"mode": "count", "caption": f"{NUMBERS[n]} {plural} on a {background} background"})
    colours = sorted({o.colour for o in objects})
    out.append({"mode": "colours", "caption": f"a picture with {_listing(colours)} {plural}"})
    out.append({"mode": "background", "caption": f"a {background} background with {NUMBERS[n]} {plural}"})
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def scene(rng: np.random.Generator) -> tuple[list[Shape], str]:
    n = int(rng.integers(1, 4))
    places = rng.choice(list(PLACES), size=n, replace=False)
    objects = [Shape(shape=str(rng.choice(SHAPES)), colour=str(rng.choice(list(COLOURS))),
                     size=str(rng.choice(["small", "large"])), place=str(p)) for p in places]
    return objects, str(rng.choice(list(BACKGROUNDS)))


def generate(out: Path, num: int, seed: int = 0) -> None:
    """``num`` scenes into ``out``: images, COCO-format captions and tagged ground truth."""
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, scenes = [], [], []
    for i in range(num):
        objects, background = scene(rng)
        caps = captions(objects, background, rng)
        name = f"scene_{i:05d}.png"
        draw(objects, background).save(out / "images" / name, optimize=False, compress_level=9)
        images.append({"id": i, "file_name": name, "width": SIZE, "height": SIZE})
        annotations += [{"id": len(annotations) + j, "image_id": i, "caption": c["caption"]}
                        for j, c in enumerate(caps)]
        scenes.append({"image_id": i, "background": background, "objects": [asdict(o) for o in objects],
                       "captions": caps})
    (out / "captions.json").write_text(json.dumps({"images": images, "annotations": annotations}, indent=0))
    (out / "scenes.json").write_text(json.dumps(scenes, indent=0))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    generate(a.out, a.num, a.seed)


if __name__ == "__main__":
    main()
