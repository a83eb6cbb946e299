"""matplotlib Displays, one module per kind of picture (scikit-learn style).

Each ``XDisplay`` holds computed arrays only, is built with ``from_result``/``from_model``,
and draws with ``plot(ax=None) -> self`` (setting ``ax_`` and ``figure_``). matplotlib is
imported inside ``plot``, never at import time.
"""
