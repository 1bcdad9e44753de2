"""The healer's evidence as the user sees it, from a launch against the simulated cloud.

The simulated vLLM's failure reaches provisioning the way a real one does: through
`docker compose logs` over SSH, every line behind the `vllm-1  | ` column and vLLM's process tag
(`(EngineCore_DP0 pid=211) ERROR 01-01 00:00:39 [core.py:708] `). The heal event carries the
failure's own message, not those prefixes.
"""

from __future__ import annotations

import pytest

from maider_tui.ops.events import EventRecorder, HealEvent

from .test_provision import HEALS, env, plan_for, sim  # noqa: F401, F811  (fixtures)


@pytest.mark.parametrize(("kind", "opening"), [
    ("kv_cache", "ValueError: To serve at least one request with the models's max seq len (32768)"),
    ("tensor_parallel", "Value error, Total number of attention heads"),
])
async def test_the_heal_event_quotes_the_message_without_the_logs_prefixes(env, kind, opening):  # noqa: F811
    model, type_id, changes, options, _ = HEALS[kind]
    events = EventRecorder()
    await env.launch(plan_for(model, type_id, compose=options, **changes), emit=events)
    heal = events.of(HealEvent)[0]
    assert heal.kind == kind
    assert heal.evidence.startswith(opening), heal.evidence
    assert "|" not in heal.evidence and "pid=" not in heal.evidence and "ERROR" not in heal.evidence
