"""Hardening the consumers (docs/hardening.md): ``fuzz`` builds and runs libFuzzer / cargo
fuzz targets on the plan and npy parsers; ``leaks`` runs the leak-checked consumer under
valgrind memcheck. Their command lines are cli/fuzz.py and cli/leaks.py."""
