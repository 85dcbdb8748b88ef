"""The run explorer (``mclbench view``, harness/view.py): its per-input numbers are the
registry's, hostile text stays text, and the page built from the published default suite is
driven in headless Chromium (Debian's package through Playwright's ``executable_path``: no
browser download). ``MCLBENCH_SCREENSHOTS=docs/img`` writes the committed screenshots."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import sacrebleu

from harness import view
from harness.cli import main
from harness.view import column_group

RESULTS = Path(__file__).parents[1] / "results"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",  # a closed network:
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # no calls out
OPEN_SECONDS = 2.0  # the bound on opening the default suite's page


def test_column_groups():
    assert [column_group(n) for n in ("max/bleu", "top1/chrf", "cider_d")] == ["quality"] * 3
    diversity = ("mbleu_4", "pairwise_bleu", "div_2_ptb", "unique", "sbert_diversity")
    assert [column_group(n) for n in diversity] == ["diversity"] * 5
    assert [column_group(n) for n in ("refs_covered", "mode_recall", "loo_bleu")] == ["coverage"] * 3
    assert [column_group(n) for n in ("oracle_nll", "val_nll")] == ["likelihood"] * 2
    assert column_group("markov_tv") == "quality"  # the distance of the learnt chains to the true ones
    cost = ("train_seconds", "trainable_params", "decode_forward_passes")
    assert [column_group(n) for n in cost] == ["cost"] * 3


def test_per_input_numbers_are_sacrebleus_and_the_matching_of_refs_covered():
    cands = [["the cat sat on the mat", "the cat sat on the mat"], ["a dog runs", "hello there world"]]
    refs = [["the cat sat on the mat", "a cat is sitting"], ["a dog is running", "hello there big world"]]
    scored, metrics = view._per_input(cands, refs, [["du", "Sie"], ["du", "ihr"]], None, "13a")
    for row, rs, shown in zip(cands, refs, scored, strict=True):
        assert [s for s, _ in shown] == [round(sacrebleu.sentence_bleu(c, rs).score, 2) for c in row]
    assert [b for _, b in scored[0]] == [0, 0] and [b for _, b in scored[1]] == [0, 1]
    assert metrics["refs covered"] == [1, 2] and metrics["unique candidates"] == [1, 2]
    assert metrics["modes covered"] == [1, 2] and metrics["max sentence BLEU"][0] == 100.0


def _hostile_copy(tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of the published results whose first translation input of LoRA-MCL (seed 0)
    has a candidate that is an HTML tag and a reference that closes a script."""
    run = tmp_path / "run"
    shutil.copytree(RESULTS, run, ignore=shutil.ignore_patterns("report.html"))
    cell = run / "cells" / "translation" / "lora_mcl" / "seed0" / "candidates.jsonl"
    rows = [json.loads(line) for line in cell.read_text().splitlines()]
    tag, closer = "<img src=x onerror=alert(1)>", "</script><script>alert(2)</script> & \"quoted\""
    rows[0]["candidates"][0] = tag
    rows[0]["references"][0] = closer
    cell.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run, tag, closer


def test_hostile_text_never_leaves_the_data(tmp_path):
    run, tag, closer = _hostile_copy(tmp_path)
    page = view.render(run, published=False)
    assert tag not in page and "</script><script>alert" not in page
    assert page.count("</script>") == 2  # the data's and the code's, nothing else closes a script
    payload = page.split('<script type="application/json" id="data">')[1].split("</script>")[0]
    translation = next(t for t in json.loads(payload)["tasks"] if t["name"] == "translation")
    assert translation["runs"]["0"]["lora_mcl"]["candidates"][0][0] == tag  # intact, as data


def test_view_command_writes_a_self_contained_page(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RESULTS, run, ignore=shutil.ignore_patterns("report.html"))
    assert main(["view", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "<link" not in page and 'src="http' not in page and "url(http" not in page  # offline
    assert main(["table", str(run)]) == 0  # the manifest lists the page: the folder still verifies


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (make setup)")
    if CHROMIUM is None:
        pytest.skip("no Chromium here (make test installs Debian's package)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _shot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("MCLBENCH_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"view-{name}.png"), full_page=False)


def _candidates(task: str, method: str, seed: int, input_id: str) -> list[str]:
    path = RESULTS / "cells" / task / method / f"seed{seed}" / "candidates.jsonl"
    rows = map(json.loads, path.read_text().splitlines())
    return next(r["candidates"] for r in rows if r["id"] == input_id)


@pytest.mark.slow  # a browser
def test_explorer_on_the_default_suite_in_chromium(browser, tmp_path):
    """Open the default suite's page, toggle and sort columns, switch task and seed, open an
    audio input, compare two methods and click a point of the scatter."""
    html = tmp_path / "report.html"
    html.write_text(view.render(RESULTS))
    print(f"report.html of results/: {html.stat().st_size / 1e6:.2f} MB")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    start = time.perf_counter()
    page.goto(html.as_uri())
    page.wait_for_selector("table.leaderboard")
    opened = time.perf_counter() - start
    print(f"opened in {opened:.2f} s")
    assert opened <= OPEN_SECONDS

    names = [o.text_content() for o in page.locator("#task option").all()]
    page.select_option("#task", str(names.index("translation")))
    assert page.locator("main h2").first.text_content() == "translation"
    _shot(page, "overview", tmp_path)
    columns = page.locator("table.leaderboard thead tr:nth-child(2) th").count()
    page.uncheck("input[data-group=diversity]")
    assert 1 < page.locator("table.leaderboard thead tr:nth-child(2) th").count() < columns
    assert page.locator("table.leaderboard td[title^='p = ']").count() > 0  # p-values on hover
    page.click("table.leaderboard th[data-col='max/bleu']")
    first = page.locator("table.leaderboard tbody tr").first.get_attribute("data-method")
    page.click("table.leaderboard th[data-col='max/bleu']")
    assert page.locator("table.leaderboard tbody tr").first.get_attribute("data-method") != first

    page.select_option("#task", str(names.index("audio_captioning")))
    page.click("button.tab[data-view=inputs]")
    page.locator("table.list tr[data-id]").first.click()
    assert page.locator("body").get_attribute("data-view") == "input"
    assert page.locator("audio").get_attribute("src").startswith("data:audio/flac;base64,")
    assert page.evaluate("document.querySelector('audio').canPlayType('audio/flac')") != ""

    page.click("button.tab[data-view=compare]")
    page.select_option("#method-a", "lora_mcl")
    page.select_option("#method-b", "beam")
    page.select_option("#metric", "refs covered")
    _shot(page, "compare", tmp_path)
    point = page.locator("svg circle[data-id]").last  # drawn last: on top of any it overlaps
    input_id = point.get_attribute("data-id")
    point.click()
    assert page.locator("body").get_attribute("data-view") == "input"
    assert page.locator("main h2").text_content().endswith(input_id)
    for method in ("lora_mcl", "beam"):
        shown = page.locator(f".method[data-method={method}] li.cand .text").all_text_contents()
        assert shown == _candidates("audio_captioning", method, 0, input_id)
    page.select_option("#seed", "1")
    shown = page.locator(".method[data-method=lora_mcl] li.cand .text").all_text_contents()
    assert shown == _candidates("audio_captioning", "lora_mcl", 1, input_id)
    _shot(page, "input", tmp_path)
    assert errors == []


@pytest.mark.slow  # a browser
def test_hostile_text_renders_as_text_in_chromium(browser, tmp_path):
    run, tag, closer = _hostile_copy(tmp_path)
    html = tmp_path / "hostile.html"
    html.write_text(view.render(run, published=False))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(html.as_uri())
    names = [o.text_content() for o in page.locator("#task option").all()]
    page.select_option("#task", str(names.index("translation")))
    page.click("button.tab[data-view=inputs]")
    page.locator("table.list tr[data-id]").first.click()
    assert page.locator(".method[data-method=lora_mcl] li.cand .text").first.text_content() == tag
    assert page.locator("ol.refs li").first.text_content().startswith(closer)
    assert page.locator("img[src=x]").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []
