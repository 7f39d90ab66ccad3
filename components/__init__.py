"""Claude Enhancer 5.1 Pulumi components."""
