"""The rollout model, in one place and free of Pulumi.

- :mod:`rollout.phases`  the phase table (weight, bake, decider, failure action, gate
  profile) and the transition rules;
- :mod:`rollout.config`  the only parser of ``claude-enhancer:rollout``;
- :mod:`rollout.gate`    gate thresholds, PromQL and the pure verdict.

``components/``, ``policies/`` and ``driver/`` import it; it imports none of them.
"""
