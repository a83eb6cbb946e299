"""The HTML report: chart specs (:mod:`.charts`) in sections of a payload, drawn by one web
front-end that works offline from a single file and, fed over HTTP, as the live dashboard.

    from netxray.report import charts, write_report
    payload = {"title": "moons", "sections": [{"id": "training", "title": "Training",
               "charts": [charts.lines("loss", x=[1, 2, 3], series={"train": [0.7, 0.5, 0.4]})]}]}
    write_report(payload, "report.html")

The report draws results only and never runs a model: ``write_analysis`` draws a bundle made
by :func:`netxray.analysis.analyze`, fresh or loaded from a file::

    from netxray.analysis import Analysis
    from netxray.report import write_analysis
    write_analysis(Analysis.load("netxray-out/results.npz"), "report.html")
"""

from __future__ import annotations

from netxray.report import charts
from netxray.report.build import analysis_payload, write_analysis
from netxray.report.charts import KINDS
from netxray.report.html import payload_json, render_html, validate_payload, write_report
from netxray.report.text import text_payload, text_section, write_text_analysis

__all__ = [
    "KINDS",
    "analysis_payload",
    "charts",
    "payload_json",
    "render_html",
    "text_payload",
    "text_section",
    "validate_payload",
    "write_analysis",
    "write_report",
    "write_text_analysis",
]
