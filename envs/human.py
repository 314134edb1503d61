"""A window for ``render_mode="human"``: shows rgb frames with matplotlib."""

from __future__ import annotations

import os
import sys

import numpy as np

NO_DISPLAY = "no display: use render_mode='rgb_array' or 'ansi'"
# Used when matplotlib is older than 3.9, which has no backend registry.
_NON_INTERACTIVE = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def _has_display() -> bool:
    """Whether a window could open: always on macOS and Windows, else an X or Wayland display."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _is_interactive(backend: str) -> bool:
    try:
        from matplotlib.backends import BackendFilter, backend_registry
    except ImportError:
        return backend.lower() not in _NON_INTERACTIVE
    return backend.lower() not in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)


class HumanWindow:
    """One matplotlib window that shows a world's frames as they come.

    Raises :class:`RuntimeError` on construction when there is no display, or
    when matplotlib can only draw off screen (a non-interactive backend such as
    Agg), naming the render modes that work without one.
    """

    def __init__(self, title: str = "offswitch") -> None:
        if not _has_display():
            raise RuntimeError(f"{NO_DISPLAY} (neither DISPLAY nor WAYLAND_DISPLAY is set)")
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:  # e.g. MPLBACKEND names a toolkit that is not installed
            raise RuntimeError(f"{NO_DISPLAY} (matplotlib cannot open a window: {err})") from err
        backend = plt.get_backend()
        if not _is_interactive(backend):
            raise RuntimeError(
                f"{NO_DISPLAY} (matplotlib's backend {backend!r} draws off screen only: the "
                "display may be unreachable, or set MPLBACKEND to an interactive backend such "
                "as tkagg or qtagg)"
            )
        self._plt = plt
        self.title = title
        self._figure = None
        self._axes = None
        self._image = None

    def show(self, frame: np.ndarray, caption: str = "") -> None:
        """Draw ``frame`` (uint8, height x width x 3) with ``caption`` above it."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 frame of shape (height, width, 3), got {frame.dtype} "
                f"{frame.shape}: pass what render_rgb returns"
            )
        plt = self._plt
        # The person may have closed the window; open a fresh one rather than draw nowhere.
        if self._figure is None or not plt.fignum_exists(self._figure.number):
            self._figure, self._axes = plt.subplots(num=self.title)
            self._axes.set_axis_off()
            self._image = None
        if self._image is None or self._image.get_array().shape != frame.shape:
            self._axes.clear()
            self._axes.set_axis_off()
            self._image = self._axes.imshow(frame, interpolation="nearest")
        else:
            self._image.set_data(frame)
        self._axes.set_title(caption, family="monospace", fontsize=9, loc="left")
        self._figure.canvas.draw_idle()
        # Runs the GUI event loop briefly, so the window repaints and stays responsive.
        plt.pause(0.001)

    def close(self) -> None:
        """Close the window; safe to call more than once."""
        if self._figure is not None:
            self._plt.close(self._figure)
            self._figure = self._axes = self._image = None
