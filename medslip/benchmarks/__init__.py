"""``medslip bench TARGET``: one module per target (:mod:`.data`, :mod:`.eval`, :mod:`.reports`,
:mod:`.synth`, :mod:`.train`), each writing its CSV under ``results/benchmarks/``. The layer sits
above the stages it times, below the commands."""
