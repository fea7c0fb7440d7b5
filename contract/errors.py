"""The base of every error whose message is meant for the user, and the one way to report an error in one line."""


class ChurnclvError(Exception):
    """An error whose message is meant for the user, shown without a traceback."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message, or its type's name when the message is blank.

    For one-line reports of errors raised by other libraries: ``str(exc)`` may be empty
    (``ValueError()``), start with a blank line, or run over many lines (pandas, MLflow, SQLAlchemy).
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    return next((line for line in lines if line), type(exc).__name__)
