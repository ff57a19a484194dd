"""Rebuild a demo folder's report: ``python -m egoworld.report DIR`` (reads DIR/summary.json and friends)."""
import sys
from pathlib import Path

from egoworld.report.build import write_demo_report

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m egoworld.report DEMO_DIR")
    print(write_demo_report(Path(sys.argv[1])))
