"""Task data from a Hugging Face dataset: a hub id (``wmt/wmt14``), or a local dataset folder
that stands in for one, read with ``datasets.load_dataset`` (cached by ``datasets`` under
``HF_HOME``). Tasks name the columns; :func:`column` reads nested ones (``translation.en``).

Without a network a hub id loads only from the ``datasets`` cache (set ``HF_HUB_OFFLINE=1``
to skip the retries); otherwise the error names the id, the split and what to do.
"""

from __future__ import annotations

from typing import Any

from harness.files import DataFormatError


def load_split(dataset: str, split: str, config: str | None = None, revision: str | None = None):
    """``datasets.load_dataset(dataset, config, split=split, revision=revision)``; a split
    may be sliced (``train[:20000]``). Errors: one line naming the dataset."""
    from datasets import load_dataset

    where = f"HF dataset {dataset!r}" + (f" (config {config!r})" if config else "")
    try:
        return load_dataset(dataset, config, split=split, revision=revision)
    except ConnectionError as exc:  # no network and not in the cache (or the hub is down)
        raise DataFormatError(
            f"{where}, split {split!r}: cannot be read ({_first_line(exc)}); without a network it must "
            "already be in the datasets cache (load it once where there is one; HF_HUB_OFFLINE=1 skips the "
            "retries), or pass a local dataset folder instead of the id") from None
    except FileNotFoundError as exc:  # a hub id that does not exist, a local folder that does not
        raise DataFormatError(f"{where}: not found ({_first_line(exc)}); check the id or the folder") \
            from None
    except ValueError as exc:  # an unknown split or config names the ones there are
        raise DataFormatError(f"{where}: {_first_line(exc)}") from None


def column(row: dict[str, Any], name: str, where: str) -> Any:
    """``row[name]``; a dotted name reads nested fields (``translation.en`` of WMT)."""
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            have = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise DataFormatError(f"{where}: no column {name!r}; the rows have {have}")
        value = value[part]
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
