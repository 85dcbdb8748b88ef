"""The documentation: README's limits, the generated pages current, the site's strict build,
the tutorial's runnable blocks and README's code, and the site in headless Chromium."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
RUNNABLE = re.compile(r"<!-- runnable -->\n```bash\n(.*?)```", re.S)


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 250
    assert re.findall(r"\b[0-9a-f]{7}\b", README) == []  # provenance lives in the tables, not prose
    assert "make run" in README and "make test" in README


def test_readme_links_resolve():
    """README is read on the forge, not through the site: every relative link names a file
    (or folder) of the repository, and an anchor into a page names one of its headings."""
    for link in re.findall(r"\]\(([^)\s]+)\)", README):
        if "://" in link:
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), link
        if anchor and target.suffix == ".md":
            slugs = {re.sub(r" ", "-", re.sub(r"[^\w\- ]", "", h.strip().lower()))
                     for h in re.findall(r"^#+ (.*)$", target.read_text(), re.M)}
            assert anchor in slugs, link


def test_generated_pages_and_quoted_tables_are_current():
    """``python -m tools.docs --check``: the CLI, configuration, plugin and metric references
    and every table quoted from results/ are what the code and the published runs give now
    (in a process of its own: other tests register plugins of their own in this one)."""
    done = subprocess.run([sys.executable, "-m", "tools.docs", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_published_task_is_quoted_and_summarised():
    from tools.blocks import BLOCK

    text = (ROOT / "docs" / "findings.md").read_text()
    quoted = {m[3] for m in BLOCK.finditer(text) if m[2] == "results"}
    assert quoted == set(pd.read_csv(ROOT / "results" / "scores.csv")["task"])
    summary = README.split("<!-- summary:")[1].split("<!-- /summary -->")[0]
    for task in quoted:
        assert f"[{task}](results/{task}/leaderboard.md)" in summary


def quoted_rows():
    """The hand-written Markov tables of findings.md (``<!-- results:markov -->``): per row its
    setting (a folder of results/markov), method and values."""
    text = (ROOT / "docs" / "findings.md").read_text()
    for task, table in re.findall(r"<!-- results:(\w+).*?-->\n(.*?)<!-- /results:\1 -->", text, re.S):
        lines = [ln for ln in table.strip().splitlines() if ln.startswith("|")]
        header = [c.strip().split(" ")[0] for c in lines[0].strip("|").split("|")]
        for line in lines[2:]:
            yield task, dict(zip(header, [c.strip() for c in line.strip("|").split("|")], strict=True))


ROWS = list(quoted_rows())


@pytest.mark.parametrize("task,row", ROWS, ids=[f"{t}-{r['setting']}-{r['method']}" for t, r in ROWS])
def test_hand_quoted_numbers_equal_results(task, row):
    from harness.tables import format_value

    scores = pd.read_csv(ROOT / "results" / task / row["setting"] / "scores.csv")
    scores = scores[scores["method"] == row["method"]].groupby("metric")["value"].mean()
    for metric, shown in row.items():
        if metric in ("setting", "method"):
            continue
        assert (metric not in scores.index) if shown == "–" else format_value(scores[metric], 0.0) == shown


def test_a_changed_number_makes_a_block_stale(tmp_path):
    from tools.blocks import sync

    page = tmp_path / "page.md"
    text = (ROOT / "docs" / "findings.md").read_text()
    m = re.search(r"(<!-- table: results task=translation.*?-->\n(?:.*\n)*?)(\| \w+ \| )(\d+\.\d{4})", text)
    assert m, "no translation table block"
    page.write_text(text[:m.start(3)] + "99.9999" + text[m.end(3):])
    assert sync(page, check=True, root=ROOT) == ["results task=translation"]
    assert sync(page, root=ROOT) == ["results task=translation"] and sync(page, check=True, root=ROOT) == []


def test_the_configuration_reference_names_every_key_and_task_default():
    from harness import registry
    from harness.config import RunSpec

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    assert "| `seeds` | `list[int]` | `[0]` |" in page
    assert "`best_of_n`" in page and "`origins`" not in page
    for name in registry.available("method"):
        assert f"### `{name}`" in page
    assert "None: the task's default (" in page and "markov `" in page
    keys = set(re.findall(r"\| `(\w+)` \|", page))
    assert set(RunSpec.__dataclass_fields__) - {"origins", "command_line"} <= keys


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("mkdocs", path=str(BIN)) is None:
        pytest.skip("mkdocs not installed (make setup installs the docs extra)")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_site_builds_strictly(site):
    """No broken link or anchor, no missing page (strict), and the API reference rendered."""
    api = (site / "api.html").read_text()
    assert "FastMultiLoRAModel" in api and "evaluate_module_path" in api and "register_method" in api
    assert (site / "results" / "markov" / "leaderboard.html").is_file()  # a linked repository page
    assert "oracle_corpus" in (site / "changelog.html").read_text()  # CHANGELOG.md, shown on the site


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path):
    """Every block of getting-started.md marked runnable, in order, in an empty folder."""
    blocks = RUNNABLE.findall((ROOT / "docs" / "getting-started.md").read_text())
    assert len(blocks) >= 4
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MCLBENCH_PROGRESS": "0"}
    for block in blocks:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (block, done.stderr[-2000:])
    assert (tmp_path / "first-run" / "report.html").is_file()
    assert "refs_covered" in done.stdout


def test_readme_python_runs_on_a_tiny_model(tmp_path, monkeypatch):
    """The README's LoRA-MCL snippet, as written, on a tiny random Llama."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    code = README.split("```python\n", 1)[1].split("```", 1)[0]
    torch.manual_seed(0)
    base_model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                              num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2))
    ids = torch.randint(3, 64, (2, 6))
    mask = torch.ones_like(ids)
    labels = torch.cat([torch.full((2, 3), -100), ids[:, 3:]], dim=1)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    scope = {"base_model": base_model, "batch": batch, "step": 0, "ids": ids, "mask": mask}
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "hypothesis-0" / "adapter_config.json").is_file()
    assert scope["nll"].shape == (3, 2) and scope["loss"].ndim == 0
    assert scope["seqs"].shape[:2] == (3, 2)


@pytest.mark.slow
def test_a_docs_page_renders_in_chromium(site, tmp_path):
    """The results page: the navigation and a leaderboard table drawn (the explorer's
    screenshot test is the model)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.test_view import CHROMIUM, FLAGS

    if CHROMIUM is None:
        pytest.skip("no Chromium here (make test installs Debian's package)")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((site / "findings.html").as_uri())
        assert page.locator("nav.md-nav a", has_text="Getting started").count() >= 1
        table = page.locator("article table").first
        assert table.is_visible() and table.locator("tr").count() > 5
        shot = Path(os.environ.get("MCLBENCH_SCREENSHOTS", tmp_path)) / "docs-results.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        browser.close()
    from PIL import Image

    lo, hi = Image.open(shot).convert("L").getextrema()
    assert hi - lo > 100  # text drawn, not a blank page


def test_a_changed_candidate_makes_the_examples_block_stale(tmp_path):
    from tools.blocks import sync

    page = tmp_path / "page.md"
    text = (ROOT / "docs" / "findings.md").read_text()
    m = re.search(r"<!-- examples: results task=photo_captioning.*?-->\n(?:.*\n)*?\| lora_mcl \| ", text)
    assert m, "no photo examples block with LoRA-MCL's candidates"
    page.write_text(text[:m.end()] + "made up · " + text[m.end():])
    assert sync(page, check=True, root=ROOT) == ["results task=photo_captioning examples"]


def test_every_config_opens_with_the_command_that_runs_it():
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text().splitlines()
        assert lines[0] == f"# mclbench run --config {rel}", rel
        assert lines[1].startswith("#   -> "), rel  # what it writes, and roughly how long it takes
