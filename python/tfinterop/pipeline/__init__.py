"""The pipeline: export -> build -> run -> compare, one module per stage.

- ``settings``: what a run is asked to do (typed; the CLI builds these, the core never sees
  argparse).
- ``cases``: fixtures -> exported cases (``export_cases``), and which consumer x case pairs
  are cells at all.
- ``build``: the consumers that need building, failures as outcomes.
- ``plan``: cases -> one consumer's plan file.
- ``run``: one process per consumer (``run_consumer``), several in parallel
  (``run_consumers``), records read as ``contract.records``.
- ``compare``: a job's record and output files -> a ``Cell`` (``cells``).
- ``interop``: ``run_interop(settings) -> RunResult``, the whole pipeline.
- ``environment``: what the report records about the machine and toolchain.
- ``events``: how stages report progress to whoever listens.

Reports are rendered from cells by ``tfinterop.report``.
"""
