"""The Labelling tab's films, read off the window's thread: the film to show and the likely next one (read ahead
while the user looks at the film before), a few held once read.

Decoded in the window's reader process (`app.viewer.pixel_loader.shared_reader("show")`), from a worker thread that
waits without the GIL: a lossless JPEG 2000 decode holds the GIL for about a second
(`medflip_core.imaging.reader_processes`), so read ahead in a thread of the window's own process it froze the window
for as long while the user looked at the film before (measured: a 1.06 s stall of the event loop).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from app.viewer.pixel_loader import shared_reader
from app.workers import Task, TaskRunner
from medflip_core.errors import ImageLoadError
from medflip_core.imaging import Radiograph
from medflip_core.imaging.reader_processes import ReaderProcesses

KEEP = 4  # films held once read: the one shown, the likely next, and the last few (Back, Undo)


def load_film(reader: ReaderProcesses, path: Path) -> Radiograph:
    """The film with its pixels, decoded in `reader`'s worker process (`load_image` there, as everywhere)."""
    for _path, image in reader.load_images([path], depth=1):
        if isinstance(image, Exception):
            raise image
        return image
    raise ImageLoadError(f"{path.name}: not read")


class FilmReader:
    """`get(path)`: the film if it was read; `read(path)`: read it (once: a read in flight is not started again);
    `read_ahead(path)`: the same for the film likely next. `arrived(path, radiograph)` and `failed(path, message)`
    are called on the window's thread."""

    def __init__(self, tasks: TaskRunner, arrived: Callable[[Path, Radiograph], None],
                 failed: Callable[[Path, str], None]) -> None:
        self.tasks, self.arrived, self.failed = tasks, arrived, failed
        self.images: OrderedDict[Path, Radiograph] = OrderedDict()  # by path, the least recently wanted first
        self.reading: set[Path] = set()
        self.wanted: Path | None = None  # the film to show
        self.ahead: Path | None = None  # the film read ahead

    def clear(self) -> None:
        self.images.clear()
        self.reading.clear()
        self.wanted = self.ahead = None

    def get(self, path: Path) -> Radiograph | None:
        self.wanted = path
        image = self.images.get(path)
        if image is not None:
            self.images.move_to_end(path)
        return image

    def read(self, path: Path) -> None:
        if path in self.images or path in self.reading:
            return  # read, or in flight: its arrival is reported
        self.reading.add(path)
        self.tasks.run(Task(load_film, shared_reader("show"), path), lambda rg, p=path: self._arrived(p, rg),
                       lambda message, p=path: self._failed(p, message))

    def read_ahead(self, path: Path | None) -> None:
        self.ahead = path
        if path is not None:
            self.read(path)

    def _arrived(self, path: Path, image: Radiograph) -> None:
        self.reading.discard(path)
        self.images[path] = image
        keep = {self.wanted, self.ahead}
        for old in [p for p in self.images if p not in keep][:max(len(self.images) - KEEP, 0)]:
            del self.images[old]  # the least recently wanted first; the film shown and the one ahead stay
        self.arrived(path, image)

    def _failed(self, path: Path, message: str) -> None:
        self.reading.discard(path)
        self.failed(path, message)
