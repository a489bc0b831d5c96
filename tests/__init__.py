# A package, so that `tests._build` (the guest builder) is importable from bench/ scripts
# with the repo root on sys.path, and from conftest.py as `tests._build`.
