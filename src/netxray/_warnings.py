"""netxray's own warning class, so tests can turn exactly our warnings into errors."""


class NetxrayWarning(UserWarning):
    """A problem netxray noticed that does not stop the computation."""
