"""The one error type a user's mistake raises; the CLI prints it as one line."""


class SynthfaceError(Exception):
    """A problem with the user's input or environment, with what to do about it."""
