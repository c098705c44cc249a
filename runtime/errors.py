"""Runtime errors: each carries one user-facing line."""


class RuntimeGadgetError(Exception):
    """A gadget could not be loaded, attached or run; str() is the message for the user."""


class ParamError(RuntimeGadgetError):
    """A parameter value does not fit the gadget's parameter."""


class FilterError(RuntimeGadgetError):
    """A --filter expression is malformed or names an unknown field."""
