"""User-facing errors. Each one prints as a single line that names the bad value."""


class QuantbenchError(Exception):
    """An error caused by input (a suite, an option, a file): shown as one line, no traceback."""


class SuiteError(QuantbenchError):
    """A suite file that does not validate."""


class UnknownNameError(QuantbenchError):
    """A name that is not registered (model source, method, backend, device, metric)."""


class MissingDependencyError(QuantbenchError):
    """An optional dependency a cell needs is not installed."""
