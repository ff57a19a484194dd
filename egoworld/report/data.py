"""The report's data section: what was captured, how it covers places × tasks, and the audit's verdicts."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from egoworld.audit.report import (
    capture_html,
    coverage_html,
    middle_frame,
    rights_table,
    session_video,
)
from egoworld.html import cards, esc, img, measured_on


def frame_grid(store_root: Path, sessions: list[dict], width: int = 128) -> str:
    """A table of sample frames: a row per place, a column per task, the middle frame of each session there."""
    places = sorted({s["place"] for s in sessions})
    tasks = sorted({s["task"] for s in sessions})
    cells: dict[tuple[str, str], list[dict]] = {}
    for s in sorted(sessions, key=lambda s: s["session_id"]):
        cells.setdefault((s["place"], s["task"]), []).append(s)
    head = "".join(f"<th>{esc(t)}</th>" for t in tasks)
    rows = []
    for p in places:
        tds = []
        for t in tasks:
            figs = []
            for s in cells.get((p, t), [])[:2]:
                path = session_video(store_root, s)
                src = middle_frame(path, width) if path else None
                if src:
                    figs.append(f"<figure>{img(src, s['session_id'], width)}<figcaption>{esc(s['person'])}</figcaption></figure>")
            tds.append(f"<td>{''.join(figs) or '—'}</td>")
        rows.append(f"<tr><th>{esc(p)}</th>{''.join(tds)}</tr>")
    return f"<table class='grid'><tr><th>place \\ task</th>{head}</tr>{''.join(rows)}</table>"


def data_section(store_root: Path, sessions: list[dict], audit: dict, fps: float,
                 scripted: dict[str, Any] | None = None) -> tuple[str, dict]:
    """HTML of the data section and its numbers (for report.json)."""
    sm, cov = audit["summary"], audit["coverage"]
    n_ok = sum(c["verdict"] == "pass" for c in audit["capture"])
    people = sorted({s["person"] for s in sessions})
    places = sorted({s["place"] for s in sessions})
    tasks = Counter(s["task"] for s in sessions)
    items: list = [("sessions", sm["sessions"]), ("places", len(places)), ("people", len(people)), ("tasks", len(tasks)),
                   ("minutes", f"{cov['hours'] * 60:.1f}"), ("frames", cov["frames"]),
                   ("capture standard", f"{n_ok}/{len(audit['capture'])} pass"),
                   ("usable: research", sm["usable_research"]), ("usable: commercial", sm["usable_commercial"])]
    succ = None
    if scripted:
        flat = [x for v in scripted.values() for x in v]
        succ = {"succeeded": sum(flat), "sessions": len(flat), "by_task": {t: [sum(v), len(v)] for t, v in scripted.items() if v}}
        items.append(("scripted task success", f"{succ['succeeded']}/{succ['sessions']}"))
    parts = ["<h2 id='data'>Data</h2>",
             "<p>Simulated first-person sessions: a scripted person does a task in a randomised room; the head camera, "
             "head tracker, hand tracker and IMU each record on their own drifting clock.</p>",
             cards(items),
             measured_on(f"the {sm['sessions']} sessions this run captured and the episode store built from them "
                         f"({store_root}); task success from the simulator's true state (truth/task.json)"),
             "<h3>Sample frames per place and task</h3>", frame_grid(store_root, sessions),
             measured_on("the middle frame of each session's episode video (at most two sessions a cell; caption: the person)"),
             "<h3>Coverage</h3>",
             coverage_html(audit, fps, maps=(("place_x_task", "place × task"), ("person_x_task", "person × task")), motion=False),
             measured_on(f"{cov['episodes']} episodes of the store; minutes of video per cell"),
             "<h3>Capture standard</h3>", capture_html(audit),
             measured_on(f"each session's video and rig metadata against the spec {audit['spec'].get('name', '')} "
                         f"({Path(audit['spec_file']).name})"),
             "<h3>Rights</h3>", rights_table(audit),
             measured_on(f"each session's consent.json as of {audit['as_of']}")]
    numbers = {"sessions": sm["sessions"], "episodes": sm["episodes"], "frames": cov["frames"], "places": places, "people": people,
               "tasks": dict(tasks), "capture_pass": n_ok, "usable_research": sm["usable_research"],
               "usable_commercial": sm["usable_commercial"], "flagged": len(audit["flagged"]), "scripted_success": succ}
    return "\n".join(parts), numbers
