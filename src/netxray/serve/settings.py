"""The bounds every request to ``netxray serve`` is checked against.

One frozen object, so the playground, the run viewer and the tests agree on the limits and
a test can shrink them (e.g. ``Limits(max_sessions=1)``) without patching module globals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one client may ask the server for."""

    #: hidden layers of a playground network
    max_layers: int = 6
    #: units per hidden layer
    max_units: int = 16
    #: samples in a generated or uploaded playground data set
    max_samples: int = 2000
    #: bytes of an uploaded CSV
    max_upload_bytes: int = 1_000_000
    #: frames per second the server pushes to one playground
    max_fps: float = 30.0
    #: playgrounds training at the same time (one per open tab)
    max_sessions: int = 4
    #: side of the decision-surface grid sent in a frame
    max_resolution: int = 100
    #: runs listed by the viewer (newest first)
    max_runs: int = 500

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"Limits.{name} must be > 0, got {value!r}")
