"""Claude Enhancer CrossGuard policy pack (pulumi-policy, Python).

``policies/__main__.py`` is the pack's entry point (run by the Pulumi CLI);
``policies.rules`` holds one plain rule per module; ``policies.report`` writes
compliance reports. See ``policies/README.md``.
"""
