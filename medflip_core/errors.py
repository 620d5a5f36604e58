"""The error types a user may see. Each carries a message meant to be read by a person."""

import logging
import warnings


class MedflipError(Exception):
    """Base of every error the tool reports to a user instead of a traceback."""


class ImageLoadError(MedflipError):
    """A file or folder could not be turned into a Radiograph; the message says why."""


class ReportParseError(MedflipError):
    """A report corpus could not be read."""


def quiet_decoder_logs() -> None:
    """Keep pydicom's log records (an ERROR with a traceback for every file a decoder rejects) and its warnings
    (e.g. "End of file reached before delimiter") off a command's stderr: the user reads one ImageLoadError
    sentence per bad file instead. A handler filter, not a level, because pydicom resets its logger's level when
    it is imported. For commands (one process each), not for a library user's process."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not record.name.startswith("pydicom"))
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
