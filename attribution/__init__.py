"""Why did the agent do that? Integrated Gradients for reinforcement-learning policies.

    from attribution import integrated_gradients
    result = integrated_gradients(model, states)   # result.attributions, result.delta, ...
"""

from attribution.ig import IGResult, integrated_gradients
from attribution.quadrature import METHODS, quadrature_rule

__all__ = ["IGResult", "METHODS", "integrated_gradients", "quadrature_rule"]
