"""How a database error is shown to a person: its first line, nothing else."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (PostgreSQL adds DETAIL/CONTEXT lines below it),
    or the error's class name when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
