"""MedFLIP core: everything that is not GUI. No Qt is imported anywhere in this package.

Research use only; not for diagnosis.
"""

__version__ = "0.1.0"
