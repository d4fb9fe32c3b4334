"""Registry policies kept as data: the retention gate (`gate.yaml`) and its pydantic loader.

The policy is YAML so that reviewers change thresholds without touching code; `ifd.lifecycle.gate`
applies it. A workspace's own `registry/gate.yaml` wins over the copy shipped with the package.
"""

from registry.policy import DEFAULT_POLICY_FILE, GatePolicy, load_policy, policy_path

__all__ = ["DEFAULT_POLICY_FILE", "GatePolicy", "load_policy", "policy_path"]
