"""The errors inceptionkit raises when the input is at fault, apart from its own bugs, and its warnings.

Every error the library raises because of what it was given (a value out of range, a file missing or
unreadable, weights that fit no network) is a :class:`UserError`. The command line prints those as
one ``error: ...`` line; any other exception is a bug and is reported as one (with the traceback
under ``--debug`` or ``INCEPTIONKIT_DEBUG=1``). Each subclass is also the built-in exception code
catching it expects (``BadValue`` is a ``ValueError``, ``MissingFile`` a ``FileNotFoundError``).
"""

from __future__ import annotations


class UserError(Exception):
    """The input is at fault: the message names what was given and what would work."""


class BadValue(UserError, ValueError):
    """A value, option, image or file content that cannot be used."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder that is not there."""


class BadPath(UserError, OSError):
    """A path that cannot be written or read as asked (a parent that is a file, a folder where a file
    is wanted, no permission)."""


class BadArgument(UserError, TypeError):
    """An argument of the wrong kind, or a keyword the function or network does not take."""


class InceptionkitWarning(UserWarning):
    """Something the user should know about what was given, that does not stop the work (the command
    line prints it as one ``warning: ...`` line)."""


class RandomWeightsWarning(InceptionkitWarning):
    """A network asked for with ``weights="random"`` (or "none"): initialized, not trained; a baseline."""


class SmallImageWarning(InceptionkitWarning):
    """An image so small that the network's first layers see almost nothing of it."""
