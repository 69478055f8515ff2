"""The public path of the policies (``attribution.policies.load_policy``); they live in
``attribution/rl/policies.py``."""

from attribution.rl.policies import (
                                     Policy,
                                     PolicyError,
                                     PolicyInfo,
                                     load_policy,
                                     load_policy_file,
                                     load_uploaded_policy,
                                     policy_from_model,
                                     shipped_env_ids,
)

__all__ = ["Policy", "PolicyError", "PolicyInfo", "load_policy", "load_policy_file", "load_uploaded_policy",
           "policy_from_model", "shipped_env_ids"]
