"""The one exception type that means "the user gave us something wrong"."""

import contextlib


class UserError(Exception):
    """Bad params, a missing file, an unknown language: reported as one line, exit 2.

    The message must name the culprit (the params key, the file, the code) and say
    what is allowed. Programming errors are not UserErrors and keep their traceback.
    """


@contextlib.contextmanager
def checkpoint_errors(path, what: str = "checkpoint"):
    """Loading a model from `path`: a file that does not load is a one-line UserError.

    A truncated safetensors file, a damaged config or tokenizer file otherwise surface
    as a library traceback (SafetensorError, OSError, JSON errors) deep inside loading.
    """
    from safetensors import SafetensorError

    try:
        yield
    except UserError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{path}: the {what} does not load ({first}); re-run the stage that "
                        "writes it") from None
