"""The consumer contract (docs/consumer-contract.md): the plan file the harness writes
(``plan``) and the result records a consumer writes back (``records``)."""
