"""The simulator as a Gymnasium environment (same 20-D control as the planners and the person)."""
import numpy as np
from gymnasium.utils.env_checker import check_env

from egoworld.capture.sim.env import SimEnv


def test_check_env_passes():
    env = SimEnv("pick_place", width=48, height=48, max_steps=10)
    check_env(env, skip_render_check=True)
    env.close()


def test_control_moves_the_body_and_reward_tracks_progress():
    env = SimEnv("push", width=48, height=48, max_steps=5)
    obs, info = env.reset(seed=3)
    a = np.zeros(20, np.float32)
    a[2] = 0.03  # head forward 3 cm in the camera frame
    obs2, r, term, trunc, info2 = env.step(a)
    assert np.linalg.norm(obs2["state"][:3] - obs["state"][:3]) > 0.029
    assert abs(r - (info2["progress"] - info["progress"])) < 1e-9
    for _ in range(4):
        *_, trunc, _ = env.step(np.zeros(20, np.float32))
    assert trunc
    env.close()


def test_restores_a_recorded_frame(sim_data):
    from egoworld.capture.sim.replay import recorded_states
    from egoworld.session import find_sessions

    p = find_sessions(sim_data)[0]
    env = SimEnv("push", width=48, height=48)
    env.reset(seed=0, options={"session": p, "frame": 40})
    np.testing.assert_allclose(env.sim.get_state(), recorded_states(p)[40], atol=1e-9)
    env.close()
