"""The one exception type users see: a message that names the bad value and the fix."""


class L2AError(ValueError):
    """Bad input or a missing/unsuitable file, reported before any heavy work."""
