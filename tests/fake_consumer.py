"""A misbehaving consumer for error-path tests: wraps the real Python consumer, then misbehaves.

Usage: python fake_consumer.py MODE --plan PLAN --results RESULTS
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    mode, argv = sys.argv[1], sys.argv[2:]
    results = Path(argv[argv.index("--results") + 1])
    if mode == "exit3":
        print("fake consumer: refusing to work", file=sys.stderr)
        return 3
    if mode == "crash":
        print("fake consumer: about to crash", file=sys.stderr)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "hang":
        print("fake consumer: hanging", file=sys.stderr, flush=True)
        time.sleep(3600)
    if mode == "garbage":
        results.write_text("this is not json\n")
        return 0
    # Imported only here: the early modes must speak within the hang test's 2 s timeout.
    import numpy as np

    from tfinterop.consumers.runners.python_runner import main as real_main

    status = real_main(argv)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for record in records:
        for output in record.get("outputs", []):
            array = np.load(output["file"])
            if mode == "perturb":
                array.reshape(-1)[3] += np.float32(1e-3)  # y[3] is small, so 1e-3 survives float32
            elif mode == "wrong_dtype":
                array = array.astype(np.float64)
                output["dtype"] = "float64"
            elif mode == "wrong_shape":
                array = array[:-1]
                output["shape"] = list(array.shape)
            np.save(output["file"], array)
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
