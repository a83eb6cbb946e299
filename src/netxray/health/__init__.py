"""Rules over per-unit statistics that say, in plain words, what is wrong with a network.

``diagnose(model, data)`` collects statistics (:func:`netxray.stats.collect_stats`) and
applies the rules; ``diagnose_stats(stats)`` applies them to statistics you already have
(a training-loop monitor reuses it). Each rule returns :class:`Finding` objects carrying the
numbers behind them (``evidence``) and specific advice.

Three modules, read in this order:

- :mod:`~netxray.health.findings`: what a check reports (``Finding``, ``HealthReport``,
  ``Thresholds``, ``KINDS``, ``render_findings``, the summary text);
- :mod:`~netxray.health.rules`: the rules that make findings (one ``_rule_*`` per problem,
  and ``weight_findings`` over :mod:`netxray.weights`);
- :mod:`~netxray.health.checks`: the entry points (``diagnose``, ``precheck``,
  ``diagnose_stats``, ``default_loss``).
"""

from __future__ import annotations

from netxray.health.checks import default_loss, diagnose, diagnose_stats, precheck
from netxray.health.findings import (
    KINDS,
    SEVERITIES,
    Finding,
    HealthReport,
    Thresholds,
    render_findings,
)
from netxray.health.history_rules import weight_findings

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Finding",
    "HealthReport",
    "Thresholds",
    "default_loss",
    "diagnose",
    "diagnose_stats",
    "precheck",
    "render_findings",
    "weight_findings",
]
