"""What the GitHub workflows run (.github/workflows only wires these together).

Every module is runnable as ``python -m ci.<name>`` from the repository root and is
tested without GitHub in tests/ci (fake ``pulumi`` runners, a fake GitHub API on
127.0.0.1).
"""
