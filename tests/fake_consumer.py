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

    if mode.startswith("perturb_node="):
        # A consumer that computes one named node differently (output + 1e-3): the frozen
        # graphs of the plan are rewritten, so everything downstream carries the difference.
        argv = perturbed_plan(argv, mode.partition("=")[2], results.parent)
        mode = "as_is"
    status = real_main(argv)
    if mode == "as_is":
        return status
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


def perturbed_plan(argv: list[str], node_name: str, work: Path) -> list[str]:
    """``argv`` with its plan's frozen models replaced by copies in which ``node_name``'s
    output 0 is the original plus 1e-3 (the original renamed, an AddV2 in its place)."""
    import numpy as np
    import tensorflow as tf

    from tfinterop.contract import plan as plan_format

    plan_path = Path(argv[argv.index("--plan") + 1])
    plan = plan_format.parse(plan_path.read_text(encoding="utf-8"))
    rewritten: dict[str, str] = {}
    for job in plan.jobs:
        if job.format != "frozen":
            continue
        if job.model not in rewritten:
            graph_def = tf.compat.v1.GraphDef()
            graph_def.ParseFromString(Path(job.model).read_bytes())
            node = next(n for n in graph_def.node if n.name == node_name)
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            dtype = graph.get_operation_by_name(node_name).outputs[0].dtype
            node.name = f"{node_name}__orig"
            eps = graph_def.node.add(name=f"{node_name}__eps", op="Const")
            eps.attr["dtype"].type = dtype.as_datatype_enum
            eps.attr["value"].tensor.CopyFrom(
                tf.make_tensor_proto(np.array(1e-3, dtype=dtype.as_numpy_dtype))
            )
            add = graph_def.node.add(
                name=node_name, op="AddV2", input=[f"{node_name}__orig", f"{node_name}__eps"]
            )
            add.attr["T"].type = dtype.as_datatype_enum
            target = work / f"perturbed-{len(rewritten)}.pb"
            target.write_bytes(graph_def.SerializeToString())
            rewritten[job.model] = str(target)
        job.model = rewritten[job.model]
    new_plan = work / "perturbed-plan.tsv"
    plan_format.write(plan, new_plan)
    argv = list(argv)
    argv[argv.index("--plan") + 1] = str(new_plan)
    return argv


if __name__ == "__main__":
    raise SystemExit(main())
