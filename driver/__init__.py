"""Rollout controller for the claude-enhancer Pulumi project (``./ce rollout``).

The model (phases, config, gate) lives in the pure top-level package :mod:`rollout`.
Here are the effects around it:
- :mod:`driver.controller` the unattended loop (``run``)
- :mod:`driver.core`       single steps: status / approve / advance / rollback / promote
- :mod:`driver.bake`       pure bake-time logic (audit entries + clock -> verdict)
- :mod:`driver.prom`       thin Prometheus HTTP API client (the gate; the report's ranges)
- :mod:`driver.traffic`    immediate server-side apply of the VirtualService on rollback
- :mod:`driver.approval_store` the one reader/writer of approvals (RolloutApprovals, kubectl)
- :mod:`driver.identities` per-role client certificates + kubeconfigs on the local platform
- :mod:`driver.audit`      JSON-lines audit log (source of truth for bakes; a copy of decisions)
- :mod:`driver.lock`       one controller per stack
- :mod:`driver.metrics`    the controller's /metrics
- :mod:`driver.notify`     a webhook per decision
- :mod:`driver.status_view` ``status`` drawn: the live view (rich) and its plain lines
- :mod:`driver.report`     the rollout report: one self-contained HTML page (plotly)
- :mod:`driver.stack`      the Pulumi side (Automation API runner; injectable)
- :mod:`driver.cli`        argparse front end
"""
