"""The command line as a user runs it."""
import json

from typer.testing import CliRunner

from egoworld.cli import app
from egoworld.session import find_sessions

runner = CliRunner()


def test_capture_and_inspect(tmp_path):
    out = tmp_path / "d"
    r = runner.invoke(app, ["capture", "sim", "--out", str(out), "--tasks", "push,stack", "--places", "2", "--people", "2",
                            "--sessions", "2", "--seconds", "2", "--width", "64", "--height", "64", "--seed", "1"])
    assert r.exit_code == 0, r.output
    sessions = find_sessions(out)
    assert len(sessions) == 2
    r = runner.invoke(app, ["inspect", str(sessions[0])])
    assert r.exit_code == 0, r.output
    for word in ("head_pose", "imu", "hands", "tracker", "consent", "cleared"):
        assert word in r.output
    r = runner.invoke(app, ["inspect", str(sessions[0]), "--json"])
    info = json.loads(r.output)
    assert {s["name"] for s in info["streams"]} == {"head_pose", "imu", "hands"}
    assert info["video"]["frames"] == 60


def test_bad_inputs_are_reported(tmp_path):
    r = runner.invoke(app, ["capture", "sim", "--out", str(tmp_path), "--tasks", "juggle"])
    assert r.exit_code != 0 and "juggle" in r.output
    r = runner.invoke(app, ["inspect", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "not a session folder" in r.output
