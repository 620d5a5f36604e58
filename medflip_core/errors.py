"""The error types a user may see. Each carries a message meant to be read by a person."""


class MedflipError(Exception):
    """Base of every error the tool reports to a user instead of a traceback."""


class ImageLoadError(MedflipError):
    """A file or folder could not be turned into a Radiograph; the message says why."""


class ReportParseError(MedflipError):
    """A report corpus could not be read."""
