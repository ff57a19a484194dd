"""The demo's combined report: one self-contained HTML page (data, sync, world model, planning).

``write_demo_report(DIR)`` reads what ``egoworld demo`` left in DIR and writes DIR/report.html
and DIR/report.json (every number the page shows). Sections are separate modules so that each
can be reused or rendered on its own: ``data``, ``sync``, ``model``, ``planning``.
"""
from egoworld.report.build import render_report, write_demo_report

__all__ = ["render_report", "write_demo_report"]
