"""MkDocs hooks: the repository files the pages link to (results/, configs/, benchmarks/,
CHANGELOG.md, the photos of an examples block) become part of the site, at their repository
paths, so that a page links ``results/markov/leaderboard.md`` exactly as README.md does and
``mkdocs build --strict`` still checks that every such link resolves."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r'\]\(([^)#\s]+)[^)]*\)|<img src="([^"]+)"')


def _targets(text: str, folder: PurePosixPath) -> list[str]:
    """Repository-relative paths of the local files a Markdown text links to."""
    out = []
    for m in LINK.finditer(text):
        link = m[1] or m[2]
        if "://" in link or link.startswith(("mailto:", "/")):
            continue
        path = (ROOT / folder / link).resolve()
        if path.is_file() and path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / "docs"):
            out.append(path.relative_to(ROOT).as_posix())
    return out


def on_files(files, config):
    docs = Path(config["docs_dir"])
    queue = [(p.read_text(), PurePosixPath()) for p in docs.rglob("*.md")]  # pages sit at the root's place
    seen = set()
    while queue:
        text, folder = queue.pop()
        for rel in _targets(text, folder):
            if rel in seen or files.get_file_from_path(rel) is not None:
                continue
            seen.add(rel)
            files.append(File(rel, src_dir=str(ROOT), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
            if rel.endswith(".md"):
                queue.append(((ROOT / rel).read_text(), PurePosixPath(rel).parent))
    return files


def on_page_markdown(markdown, page, config, files):
    """``changelog.md`` is CHANGELOG.md (one copy, kept at the repository's root, whose links
    name the docs as ``docs/x.md``: on the site they sit at the root)."""
    if page.file.src_uri == "changelog.md":
        return (ROOT / "CHANGELOG.md").read_text().replace("](docs/", "](")
    return markdown
