"""The lowest floor: what several floors share. It imports nothing of ours.

- :mod:`contract.configreader`  reads a JSON object of stack config; every error names the
  full key (``claude-enhancer:app.services.api.replicas: must be >= 1, got 0``).

``rollout/`` (floor 2) and ``components/`` (floor 3) import it; see ../docs/ARCHITECTURE.md
once it exists, and ``tests/unit/test_settings_package.py`` for the import checks.
"""
