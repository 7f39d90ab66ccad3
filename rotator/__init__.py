"""Credential rotation that Vault's own engines cannot do safely (see :mod:`rotator.redis_acl`).

- :mod:`rotator.redis_acl`   the pure model: state machine, durable ACL text, invariants;
- :mod:`rotator.redis_io`    its effects: Redis nodes (redis-py), Vault KV v2 (hvac), ACL sinks;
- ``python -m rotator``      one step, or until idle (the CronJob);
- :mod:`rotator.local`       ``./ce redis-rotate``: the same on the local platform.

The model, its effects and the CLI import nothing from ``components/`` or ``driver/``; only
:mod:`rotator.local`, an edge, reads the stack's settings.
"""
