"""The batch path: cloak a whole archive, resumably, on one machine or a Ray cluster (the ``cluster`` extra).

- :mod:`.sources`: which files a batch takes, and where each one's output goes;
- :mod:`.manifest`: one JSON row per input (what was written, with which figures, or the error), and what a rerun
  may skip;
- :mod:`.worker`: :class:`~.worker.BatchWorker`, the per-actor cloaker (models loaded once), plain Python;
- :mod:`.ray_run`: the Ray Data pipeline that feeds the workers and commits their results.
"""

from .manifest import ManifestRow, read_manifest
from .sources import BatchInput, list_inputs

__all__ = ["BatchInput", "ManifestRow", "list_inputs", "read_manifest"]
