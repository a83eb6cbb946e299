"""Decision surfaces and per-unit response maps over a 2-D plane of input space.

For 2-D inputs the plane is the input space itself. For n-D inputs it is a plane through the
data (the top-2 PCA plane, or the plane through three samples); each grid point ``(u, v)`` is
the input ``origin + u * basis[0] + v * basis[1]``. Grids are evaluated in chunks of
``batch_size`` points under ``torch.no_grad()``, so a 500 x 500 grid needs bounded memory,
and the model is never changed (checkpoints are loaded into a deep copy).

One concept per module:

- :mod:`~netxray.boundary._plane`: ``make_plane``, grids, chunks, probabilities;
- :mod:`~netxray.boundary._surface`: ``BoundaryGrid``, ``decision_boundary``;
- :mod:`~netxray.boundary._units`: ``UnitMaps``, ``unit_maps``;
- :mod:`~netxray.boundary._warp`: ``GridWarp``, ``grid_warp``;
- :mod:`~netxray.boundary._evolution`: ``BoundaryEvolution``, ``boundary_evolution``.
"""

from __future__ import annotations

from netxray.boundary._evolution import BoundaryEvolution, boundary_evolution
from netxray.boundary._plane import make_plane
from netxray.boundary._surface import BoundaryGrid, decision_boundary
from netxray.boundary._units import UnitMaps, unit_maps
from netxray.boundary._warp import GridWarp, grid_warp

__all__ = [
    "BoundaryEvolution",
    "BoundaryGrid",
    "GridWarp",
    "UnitMaps",
    "boundary_evolution",
    "decision_boundary",
    "grid_warp",
    "make_plane",
    "unit_maps",
]
