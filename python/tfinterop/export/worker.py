"""The exporter process of another TensorFlow (``interop --export-tf``, see ``exporters``):
``python -m tfinterop.export.worker`` in that TensorFlow's environment, with the driver's
package on ``PYTHONPATH``.

It reads one JSON request on stdin, ``{"fixtures_dirs", "names", "exports_dir", "results"}``,
exports the named fixtures one by one through the ordinary export cache, and appends one JSON
line per fixture to ``results`` as it goes (``{"fixture", "ok", "directory" | "error"}``), so
a crash keeps what was done. Before each fixture it writes ``MARKER NAME`` to stderr, and on a
failure the traceback, so the driver can show each fixture's own last stderr lines (the C++
logging of a converter included). Exit 0 even when fixtures failed: those are results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MARKER = "tfinterop-export-worker: fixture"


def main() -> int:
    request: dict[str, Any] = json.load(sys.stdin)
    from ..fixtures import BrokenFixture, load_fixtures
    from .cache import export_fixtures

    results = Path(request["results"])
    exports = Path(request["exports_dir"])
    loaded = load_fixtures([Path(d) for d in request["fixtures_dirs"]], request["names"])
    with open(results, "a", encoding="utf-8") as out:
        for item in loaded:
            print(f"{MARKER} {item.name}", file=sys.stderr, flush=True)
            if isinstance(item, BrokenFixture):
                record = {"fixture": item.name, "ok": False, "error": item.error}
            else:
                (outcome,) = export_fixtures([item], exports)
                if outcome.manifest is None:
                    print(outcome.detail or outcome.error, file=sys.stderr, flush=True)
                    record = {"fixture": item.name, "ok": False, "error": outcome.error}
                else:
                    directory = str(outcome.manifest.directory)
                    record = {"fixture": item.name, "ok": True, "directory": directory}
            out.write(json.dumps(record) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
