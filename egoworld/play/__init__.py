"""`egoworld play`: take the controls of the world model in a browser, beside the simulator.

The most direct test of whether a model understands action is to act in it. This room sits
downstream of ``imagine/``: it reuses the dream environment (``DreamEnv``: the prior, started from a
real recorded frame filtered over the model's context), the simulator seen through the model
(``FilteredSimEnv``, restored to the same start), the planner (``PlannerPolicy`` with the latent
cost) and the synthetic-episode writer, and adds only what playing needs:

* ``keys``: the keyboard → 20-D control map (one definition, sent to the page for its help);
* ``game``: one player's session — the dream and its twin stepped by the same controls, the
  person's or the planner's, recorded as it goes;
* ``record``: a played episode written as a synthetic episode (source ``play``) with lineage;
* ``server``: the FastAPI app (page + WebSocket) and a uvicorn server bound to localhost;
* ``cli``: the ``egoworld play`` command (torch is imported inside it only).
"""
