"""``netxray serve``: a live playground and a viewer for recorded runs, in the browser.

Needs the ``[web]`` extra (FastAPI, uvicorn); importing :mod:`netxray` never imports this
package, and this package imports FastAPI only where an app is built.
"""

from __future__ import annotations

from netxray.serve.settings import Limits

__all__ = ["Limits"]
