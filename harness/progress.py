"""Progress bars for long work (training steps, decoding batches).

``MCLBENCH_PROGRESS=0`` turns them off. When stderr is not a terminal (CI logs, files)
a bar redraws at most every 30 s instead of ten times a second.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress(iterable=None, **kwargs) -> tqdm:
    interactive = sys.stderr.isatty()
    kwargs.setdefault("leave", False)
    kwargs.setdefault("mininterval", 0.1 if interactive else 30.0)
    kwargs.setdefault("disable", os.environ.get("MCLBENCH_PROGRESS", "1") == "0")
    return tqdm(iterable, **kwargs)
