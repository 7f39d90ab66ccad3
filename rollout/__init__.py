"""The rollout model, in one place and free of Pulumi.

- :mod:`rollout.phases`  the phase table (weight, bake, decider, failure action, gate
  profile) and the transition rules;
- :mod:`rollout.config`  the only parser of ``claude-enhancer:rollout``;
- :mod:`rollout.gate`    gate thresholds, PromQL and the pure verdict;
- :mod:`rollout.analysis` the canary judge's settings per phase (``rollout.analysis``);
- :mod:`rollout.judge`   the canary judge: canary against the SLO and against stable,
  pass / fail / inconclusive, and the bake decision.

``components/``, ``policies/`` and ``driver/`` import it; it imports none of them.
"""
