"""Generated audio-captioning clips whose captions are genuinely ambiguous (Clotho style).

Each clip (1.6 s, stored as 8 kHz FLAC; the task reads it at 16 kHz) holds one or two
events one after the other: a steady tone (low or high), repeated beeps (2–4), a whistle
(rising or falling), a noise burst, or a spoken word (Debian ``espeak-ng``; four voices,
male and female). Tones, beeps, whistles and noise are synthesised with numpy (seeded).
The ≥ 5 reference captions describe different subsets — one event in several wordings,
the order of the two, the count — each tagged with its *mode*, and the events are kept as
ground truth.

``python -m tasks.captioning.audio_scenes --out DIR --num N --seed S`` writes ``audio/<id>.flac``,
``captions.csv`` (Clotho format: ``file_name, caption_1 … caption_5``: the first five of
the clip's shuffled captions) and ``clips.json`` (events and every caption, tagged). The
same seed writes the same bytes; needs ``espeak-ng`` (``apt-get install espeak-ng``) only
to regenerate the set.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

RATE = 8000  # storage rate; the task resamples to 16 kHz
LENGTH = int(1.6 * RATE)
WORDS = ["hello", "stop", "yes", "no", "water", "seven", "go", "thanks"]
VOICES = {"en-us+m3": "man", "en-gb+m1": "man", "en-us+f3": "woman", "en-gb+f2": "woman"}
NUMBERS = {2: "two", 3: "three", 4: "four"}


def tone(rng, pitch: str) -> np.ndarray:
    t = np.arange(int(rng.uniform(0.4, 0.7) * RATE)) / RATE
    return 0.5 * np.sin(2 * np.pi * (220 if pitch == "low" else 1400) * t)


def beeps(rng, count: int) -> np.ndarray:
    beep = 0.5 * np.sin(2 * np.pi * 900 * np.arange(int(0.08 * RATE)) / RATE)
    gap = np.zeros(int(0.08 * RATE))
    return np.concatenate([np.concatenate([beep, gap]) for _ in range(count)])


def whistle(rng, direction: str) -> np.ndarray:
    n = int(rng.uniform(0.4, 0.6) * RATE)
    f = np.linspace(500, 2500, n) if direction == "rising" else np.linspace(2500, 500, n)
    return 0.5 * np.sin(2 * np.pi * np.cumsum(f) / RATE)


def noise(rng) -> np.ndarray:
    return 0.3 * rng.standard_normal(int(rng.uniform(0.3, 0.5) * RATE))


def speech(word: str, voice: str) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    if not shutil.which("espeak-ng"):
        raise RuntimeError("espeak-ng is needed to regenerate the audio set: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), word], check=True)
        x, rate = sf.read(path)
    return 0.9 * resample_poly(x, RATE, rate) / max(1e-9, np.abs(x).max())


def event(rng) -> dict:
    kind = str(rng.choice(["tone", "beeps", "whistle", "noise", "speech"]))
    if kind == "tone":
        return {"kind": kind, "pitch": str(rng.choice(["low", "high"]))}
    if kind == "beeps":
        return {"kind": kind, "count": int(rng.integers(2, 5))}
    if kind == "whistle":
        return {"kind": kind, "direction": str(rng.choice(["rising", "falling"]))}
    if kind == "noise":
        return {"kind": kind}
    voice = str(rng.choice(list(VOICES)))
    return {"kind": kind, "word": str(rng.choice(WORDS)), "voice": voice, "speaker": VOICES[voice]}


def render(e: dict, rng) -> np.ndarray:
    if e["kind"] == "tone":
        return tone(rng, e["pitch"])
    if e["kind"] == "beeps":
        return beeps(rng, e["count"])
    if e["kind"] == "whistle":
        return whistle(rng, e["direction"])
    if e["kind"] == "noise":
        return noise(rng)
    return speech(e["word"], e["voice"])


def phrases(e: dict) -> list[str]:
    """Several wordings of one event: specific first, then more general."""
    if e["kind"] == "tone":
        plain = "a low hum" if e["pitch"] == "low" else "a high pitched tone"
        return [f"a steady {e['pitch']} tone", plain, "an electronic tone"]
    if e["kind"] == "beeps":
        return [f"a beep repeats {NUMBERS[e['count']]} times", f"{NUMBERS[e['count']]} short beeps",
                "some short beeps"]
    if e["kind"] == "whistle":
        way = "up" if e["direction"] == "rising" else "down"
        return [f"a {e['direction']} whistle", f"a whistle that goes {way}", "a whistling sound"]
    if e["kind"] == "noise":
        return ["a burst of static noise", "a short hiss", "a noisy hiss"]
    who, word = e["speaker"], e["word"]
    return [f"a {who} says {word}", f"someone says the word {word}", f"a {who} speaks"]


def noun_phrase(e: dict) -> str:
    """The event as a noun phrase, for 'X followed by Y'."""
    if e["kind"] == "beeps":
        return f"{NUMBERS[e['count']]} short beeps"
    if e["kind"] == "speech":
        return f"a {e['speaker']} saying {e['word']}"
    return phrases(e)[0]


def captions(events: list[dict], rng) -> list[dict]:
    out = []
    for i, e in enumerate(events):
        out += [{"mode": f"event:{i}", "caption": p} for p in phrases(e)]
    if len(events) == 2:
        a, b = (noun_phrase(e) for e in events)
        out.append({"mode": "order", "caption": f"{a} followed by {b}"})
        out.append({"mode": "count", "caption": "two different sounds one after the other"})
    else:
        out.append({"mode": "count", "caption": "a single short sound"})
        out.append({"mode": "silence", "caption": "a brief sound and then silence"})
    return [out[i] for i in rng.permutation(len(out))]


def clip(rng) -> tuple[np.ndarray, list[dict]]:
    events = [event(rng) for _ in range(int(rng.integers(1, 3)))]
    audio = np.zeros(LENGTH)
    start = int(rng.uniform(0.05, 0.2) * RATE)
    for e in events:
        x = render(e, rng)[: LENGTH - start]
        audio[start:start + len(x)] += x
        start = min(LENGTH - 1, start + len(x) + int(rng.uniform(0.05, 0.2) * RATE))
    return np.clip(audio, -1, 1), events


def generate(out: Path, num: int, seed: int = 0) -> None:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows, clips = [], []
    for i in range(num):
        audio, events = clip(rng)
        caps = captions(events, rng)
        name = f"clip_{i:05d}.flac"
        sf.write(out / "audio" / name, (audio * 32767).astype(np.int16), RATE, format="FLAC")
        rows.append([name, *[c["caption"] for c in caps[:5]]])
        clips.append({"file_name": name, "events": events, "captions": caps})
    with open(out / "captions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", *[f"caption_{k}" for k in range(1, 6)]])
        writer.writerows(rows)
    (out / "clips.json").write_text(json.dumps(clips, indent=0))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num", type=int, default=1200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    generate(a.out, a.num, a.seed)


if __name__ == "__main__":
    main()
