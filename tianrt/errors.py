"""Exception types of tianrt; every message names the node, input or file concerned."""


class TianrtError(Exception):
    """Base class of all tianrt errors."""


class GraphError(TianrtError, ValueError):
    """A graph that cannot be built: wrong shapes, mismatched domains, dangling edges."""


class DomainError(GraphError):
    """A spike/current edge feeds a tensor input (or the reverse) without a bridge."""


class ShapeError(GraphError):
    """A node's input shape does not fit what the node expects."""


class InputError(TianrtError, ValueError):
    """A value given to a runtime does not fit the graph's input (name, shape, NaN...)."""


class ModelFileError(TianrtError, ValueError):
    """A model file that cannot be read: truncated, corrupt, tampered or of another version."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BackendError(TianrtError, RuntimeError):
    """A backend that cannot run the graph it was given (and says what it cannot do)."""


class UsageError(TianrtError, ValueError):
    """A command-line option that cannot work (a value out of range, an output folder that
    does not exist); the ``tianrt`` command exits with status 2, as for argparse's errors."""
