"""The base of every error whose message is meant for the user."""


class ChurnclvError(Exception):
    """An error whose message is meant for the user, shown without a traceback."""
