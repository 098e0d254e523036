"""The one exception type that means "the user gave us something wrong"."""


class UserError(Exception):
    """Bad params, a missing file, an unknown language: reported as one line, exit 2.

    The message must name the culprit (the params key, the file, the code) and say
    what is allowed. Programming errors are not UserErrors and keep their traceback.
    """
