"""The window's image reading in worker processes: opening files (metadata, thumbnail, the first image's pixels)
and the full pixels of the image chosen, then of the next one (a prefetch).

The lossless JPEG 2000 decoder holds the GIL for about a second per film, so in a thread of the window's own
process it would freeze the event loop as long; in a worker process (`medflip_core.imaging.reader_processes`,
`load_image` there as everywhere) it does not. The workers are shared by the windows of one process; `medflip-studio`
starts them before it imports the window (`shared_reader("open")`), so they import the imaging stack while the
window is built and the first file opened does not wait for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import Future

from PySide6 import QtCore

from medflip_core.imaging import Radiograph
from medflip_core.imaging.reader_processes import OnDemandDecoder, ReaderProcesses, default_processes

_READERS: dict[str, ReaderProcesses] = {}
_STARTED: dict[str, Future] = {}  # "open": done when an opening worker is ready
_QUIT_HOOKED: list[QtCore.QCoreApplication] = []


def shared_reader(kind: str) -> ReaderProcesses:
    """The process's worker processes for `kind`: "open" (files being opened, one per core but one) or "show"
    (the image chosen and its prefetch, one: never queued behind a long load). "open" starts at once, "show"
    once an "open" worker is ready (two workers importing at once would delay the first image on a 2-core
    machine)."""
    reader = _READERS.get(kind)
    if reader is None or reader.closed:
        reader = _READERS[kind] = ReaderProcesses(default_processes() if kind == "open" else 1)
        if kind == "open":
            _STARTED[kind] = reader.start()
        else:
            shared_reader("open")
            _STARTED["open"].add_done_callback(lambda _: None if reader.closed else reader.start())
    return reader


def close_readers() -> None:
    """Stop the shared workers (the application quits): reads not started are dropped."""
    for reader in _READERS.values():
        reader.close()
    _READERS.clear()


class PixelLoader(QtCore.QObject):
    """Full pixels for the window, decoded off its thread; `ready(image, error)` on the window's thread."""

    ready = QtCore.Signal(object, str)  # Radiograph, "" or a sentence for a person

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        app = QtCore.QCoreApplication.instance()
        if app is not None and not _QUIT_HOOKED:  # quitting: no queued read holds the exit up
            app.aboutToQuit.connect(close_readers)
            _QUIT_HOOKED.append(app)
        self.opener = shared_reader("open")
        self.decoder = OnDemandDecoder(shared_reader("show"), self._decoded)

    def _decoded(self, image: Radiograph, error: str) -> None:  # in the decoder's thread
        with contextlib.suppress(RuntimeError):  # the window was closed meanwhile: nobody is left to tell
            self.ready.emit(image, error)

    def request(self, image: Radiograph, following: Sequence[Radiograph] = ()) -> None:
        """Decode `image` (then `following`, silently); `ready` says when it is in its pixel cache."""
        self.decoder.request(image, following)

    def shown(self, following: Sequence[Radiograph]) -> None:
        """An image already decoded is on screen: no earlier request is wanted any more; decode `following`."""
        self.decoder.request(None, following)

    def prefetch(self, images: Sequence[Radiograph]) -> None:
        self.decoder.prefetch(images)

    def pending(self) -> bool:
        return self.decoder.pending()

    def close(self) -> None:
        """The window closes: its requests are dropped (the shared workers stay for other windows)."""
        self.decoder.close()
