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


def _commands(cmd, path=()):
    """(path, click command) of every leaf command under ``cmd``."""
    if hasattr(cmd, "list_commands"):
        ctx = type(cmd).context_class(cmd)
        for name in cmd.list_commands(ctx):
            yield from _commands(cmd.get_command(ctx, name), (*path, name))
    else:
        yield path, cmd


def test_one_cli_style_every_command_a_plain_function_in_a_cli_module():
    """egoworld/cli.py's convention: ``<name>_command`` at module level of a ``cli.py`` (no closures, no cli_*.py)."""
    from pathlib import Path

    import typer

    import egoworld

    found = {" ".join(p): c.callback for p, c in _commands(typer.main.get_command(app))}
    assert {"capture sim", "import camera", "inspect", "sync", "episodes", "query", "audit", "export", "consent revoke",
            "train", "eval", "plan", "dream", "imagine", "improve", "play", "view", "demo"} <= set(found)
    for name, fn in found.items():
        assert fn.__module__ == "egoworld.cli" or fn.__module__.endswith(".cli"), (name, fn.__module__)
        assert fn.__qualname__ == f"{name.split()[-1]}_command", (name, fn.__qualname__)  # module level, no <locals>
    assert not list(Path(egoworld.__file__).parent.rglob("cli_*.py"))


def test_the_cli_starts_without_the_heavy_libraries():
    """Commands import their work inside the body: `egoworld --help` loads none of torch, MuJoCo, OpenCV, SciPy, PyAV."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom egoworld.cli import app\n"
            "print(sorted(m for m in ('torch', 'mujoco', 'cv2', 'scipy', 'av', 'duckdb', 'pyarrow') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
