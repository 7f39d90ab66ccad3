"""Rollout driver for the claude-enhancer Pulumi project (``python -m driver``).

Layout:
- :mod:`driver.gate`   pure gate evaluation (query results + thresholds -> verdict)
- :mod:`driver.bake`   pure bake-time / approval logic (audit entries + clock -> verdict)
- :mod:`driver.prom`   thin Prometheus HTTP API client that feeds the gate
- :mod:`driver.audit`  JSON-lines audit log kept next to the stack state
- :mod:`driver.stack`  the Pulumi side (Automation API runner; injectable)
- :mod:`driver.core`   status / advance / rollback orchestration
- :mod:`driver.cli`    argparse front end
"""
