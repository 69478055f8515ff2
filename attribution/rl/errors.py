"""The error every policy loader raises."""


class PolicyError(ValueError):
    """A policy file or environment that cannot be used; the message says what was expected and received."""
