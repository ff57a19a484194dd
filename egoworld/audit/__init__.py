"""The data specification: capture standard, sync quality, coverage, rights; the HTML report and
the rights-gated export. See docs/audit.md.
"""
