"""Generated audio-captioning clips whose captions are genuinely ambiguous (Clotho style).

Each clip (2 s, stored as 8 kHz FLAC; the task reads it at 16 kHz) holds one to three
events, loud or quiet, one after the other or overlapping: a steady tone (low or high),
repeated beeps or knocks (2–4), a whistle (rising or falling), a noise burst, or a spoken
word (Debian ``espeak-ng``; four voices, male and female), over a background hiss, hum or
rumble in 60 % of the clips. Everything but the words is synthesised with numpy (seeded).
The ≥ 5 reference captions describe different subsets — one event in several wordings,
the order or overlap of the events, their count, the background — each tagged with its
*mode*, and the events are kept as ground truth.

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
LENGTH = 2 * RATE  # 2 s: the base's feature window
WORDS = ["hello", "stop", "yes", "no", "water", "seven", "go", "thanks"]
VOICES = {"en-us+m3": "man", "en-gb+m1": "man", "en-us+f3": "woman", "en-gb+f2": "woman"}
NUMBERS = {2: "two", 3: "three", 4: "four"}
BACKGROUNDS = {"hiss": ["a soft hiss", "a faint static hiss", "hissing"],
               "hum": ["a low electrical hum", "a mains hum", "humming"],
               "rumble": ["a deep rumble", "a distant rumbling", "rumbling"]}


def tone(rng, pitch: str) -> np.ndarray:
    t = np.arange(int(rng.uniform(0.4, 0.7) * RATE)) / RATE
    return np.sin(2 * np.pi * (220 if pitch == "low" else 1400) * t)


def beeps(rng, count: int) -> np.ndarray:
    beep = np.sin(2 * np.pi * 900 * np.arange(int(0.08 * RATE)) / RATE)
    gap = np.zeros(int(0.08 * RATE))
    return np.concatenate([np.concatenate([beep, gap]) for _ in range(count)])


def knocks(rng, count: int) -> np.ndarray:
    click = rng.standard_normal(int(0.03 * RATE)) * np.exp(-np.arange(int(0.03 * RATE)) / 40)
    gap = np.zeros(int(0.12 * RATE))
    return np.concatenate([np.concatenate([click / np.abs(click).max(), gap]) for _ in range(count)])


def whistle(rng, direction: str) -> np.ndarray:
    n = int(rng.uniform(0.4, 0.6) * RATE)
    f = np.linspace(500, 2500, n) if direction == "rising" else np.linspace(2500, 500, n)
    return np.sin(2 * np.pi * np.cumsum(f) / RATE)


def noise(rng) -> np.ndarray:
    return 0.6 * rng.standard_normal(int(rng.uniform(0.3, 0.5) * RATE))


def background(rng, kind: str) -> np.ndarray:
    """A bed under the whole clip: white, 50 Hz with harmonics, or brown (integrated) noise."""
    t = np.arange(LENGTH) / RATE
    if kind == "hiss":
        x = rng.standard_normal(LENGTH)
    elif kind == "hum":
        x = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
    else:
        x = np.cumsum(rng.standard_normal(LENGTH))
        x -= np.convolve(x, np.ones(400) / 400, mode="same")  # keep it below ~20 Hz-ish drift
    return x / np.abs(x).max()


def speech(word: str, voice: str) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    if not shutil.which("espeak-ng"):
        raise RuntimeError("espeak-ng is needed to regenerate the audio set: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), word], check=True)
        x, rate = sf.read(path)
    return resample_poly(x, RATE, rate) / max(1e-9, np.abs(x).max())


def event(rng) -> dict:
    kind = str(rng.choice(["tone", "beeps", "knocks", "whistle", "noise", "speech"]))
    e: dict = {"kind": kind, "loud": bool(rng.random() < 0.5)}
    if kind == "tone":
        e["pitch"] = str(rng.choice(["low", "high"]))
    elif kind in ("beeps", "knocks"):
        e["count"] = int(rng.integers(2, 5))
    elif kind == "whistle":
        e["direction"] = str(rng.choice(["rising", "falling"]))
    elif kind == "speech":
        voice = str(rng.choice(list(VOICES)))
        e.update(word=str(rng.choice(WORDS)), voice=voice, speaker=VOICES[voice])
    return e


def render(e: dict, rng) -> np.ndarray:
    if e["kind"] == "tone":
        x = tone(rng, e["pitch"])
    elif e["kind"] == "beeps":
        x = beeps(rng, e["count"])
    elif e["kind"] == "knocks":
        x = knocks(rng, e["count"])
    elif e["kind"] == "whistle":
        x = whistle(rng, e["direction"])
    elif e["kind"] == "noise":
        x = noise(rng)
    else:
        x = speech(e["word"], e["voice"])
    return (0.8 if e["loud"] else 0.25) * x


def phrases(e: dict) -> list[str]:
    """Several wordings of one event: specific first, then more general; the loudness is
    said in some of them only."""
    level = "loud" if e["loud"] else "quiet"
    if e["kind"] == "tone":
        plain = "a low droning tone" if e["pitch"] == "low" else "a high pitched tone"
        return [f"a {level} steady {e['pitch']} tone", plain, "an electronic tone"]
    if e["kind"] in ("beeps", "knocks"):
        n = NUMBERS[e["count"]]
        if e["kind"] == "beeps":
            return [f"a beep repeats {n} times", f"{n} {level} short beeps", "some short beeps"]
        return [f"someone knocks {n} times", f"{n} {level} knocks on wood", "knocking"]
    if e["kind"] == "whistle":
        way = "up" if e["direction"] == "rising" else "down"
        return [f"a {level} {e['direction']} whistle", f"a whistle that goes {way}", "a whistling sound"]
    if e["kind"] == "noise":
        return [f"a {level} burst of static noise", "a short hiss", "a noisy hiss"]
    who, word = e["speaker"], e["word"]
    return [f"a {who} says {word}", f"someone {'loudly' if e['loud'] else 'quietly'} says the word {word}",
            f"a {who} speaks"]


def noun_phrase(e: dict) -> str:
    """The event as a noun phrase, for 'X followed by Y'."""
    if e["kind"] == "beeps":
        return f"{NUMBERS[e['count']]} short beeps"
    if e["kind"] == "knocks":
        return f"{NUMBERS[e['count']]} knocks"
    if e["kind"] == "speech":
        return f"a {e['speaker']} saying {e['word']}"
    return phrases(e)[0]


def captions(events: list[dict], overlaps: bool, bed: str | None, rng) -> list[dict]:
    """Every caption of a clip, tagged with the subset it describes, shuffled."""
    out = []
    for i, e in enumerate(events):
        out += [{"mode": f"event:{i}", "caption": p} for p in phrases(e)]
    nouns = [noun_phrase(e) for e in events]
    if len(events) > 1:
        joined = " and ".join(nouns) if overlaps else " followed by ".join(nouns)
        out.append({"mode": "order", "caption": f"{joined} at the same time" if overlaps else joined})
        many = NUMBERS[len(events)]
        out.append({"mode": "count", "caption": f"{many} sounds overlap" if overlaps
                    else f"{many} different sounds one after the other"})
    else:
        out.append({"mode": "count", "caption": "a single short sound"})
    if bed:
        words = BACKGROUNDS[bed]
        out.append({"mode": "background", "caption": f"{words[0]} in the background"})
        out.append({"mode": "background", "caption": f"{words[2]} throughout the recording"})
        out.append({"mode": "event:0+background", "caption": f"{phrases(events[0])[1]} over {words[1]}"})
    elif len(events) == 1:
        out.append({"mode": "silence", "caption": "a brief sound and then silence"})
    return [out[i] for i in rng.permutation(len(out))]


def clip(rng) -> tuple[np.ndarray, list[dict], bool, str | None]:
    """1–3 events, which overlap in half of the many-event clips, over a background bed
    (hiss, hum or rumble) in 60 % of clips."""
    events = [event(rng) for _ in range(int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3])))]
    overlaps = len(events) > 1 and bool(rng.random() < 0.5)
    audio = np.zeros(LENGTH)
    start = int(rng.uniform(0.05, 0.2) * RATE)
    for e in events:
        x = render(e, rng)[: LENGTH - start]
        audio[start:start + len(x)] += x
        step = len(x) * rng.uniform(0.3, 0.6) if overlaps else len(x) + rng.uniform(0.05, 0.15) * RATE
        start = min(LENGTH - 1, start + int(step))
    bed = str(rng.choice(list(BACKGROUNDS))) if rng.random() < 0.6 else None
    if bed:
        audio += rng.uniform(0.05, 0.15) * background(rng, bed)
    return np.clip(audio, -1, 1), events, overlaps, bed


def generate(out: Path, num: int, seed: int = 0) -> None:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows, clips = [], []
    for i in range(num):
        audio, events, overlaps, bed = clip(rng)
        caps = captions(events, overlaps, bed, rng)
        name = f"clip_{i:05d}.flac"
        sf.write(out / "audio" / name, (audio * 32767).astype(np.int16), RATE, format="FLAC")
        rows.append([name, *[c["caption"] for c in caps[:5]]])
        clips.append({"file_name": name, "events": events, "overlap": overlaps, "background": bed,
                      "captions": caps})
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
