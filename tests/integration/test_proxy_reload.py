"""Hot reload under load: editing the plan moves traffic within a second, no failures."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from tests.support.proxy_env import proxy_env, wait_until

PLAN = """
version: 1
monolith: {url: "{monolith}"}
services:
  notifications:
    url: "{svc}"
    routes: [{path: /api/notifications, methods: [GET]}]
    stage: STAGE
"""


def test_plan_edit_under_load_moves_traffic_within_a_second(tmp_path: Path) -> None:
    with proxy_env(tmp_path, PLAN.replace("STAGE", "service"), {"monolith": {}, "svc": {}}) as env:
        results: list[tuple[float, int, str]] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def client() -> None:
            c = env.conn()
            try:
                while not stop.is_set():
                    c.request("GET", "/api/notifications")
                    r = c.getresponse()
                    r.read()
                    results.append((time.monotonic(), r.status, r.getheader("x-upstream") or ""))
            except BaseException as exc:
                errors.append(exc)
            finally:
                c.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            assert wait_until(lambda: len(results) > 50)
            edited_at = time.monotonic()
            env.write_plan(PLAN.replace("STAGE", "monolith"))
            assert wait_until(lambda: any(u == "monolith" for _, _, u in results), timeout=5)
            switched_at = next(t for t, _, u in results if u == "monolith")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert not errors, errors
        assert all(status == 200 for _, status, _ in results)
        assert switched_at - edited_at < 1.0, f"switched after {switched_at - edited_at:.2f}s"
        settled = [u for t, _, u in results if t > switched_at + 0.3]
        assert settled and set(settled) == {"monolith"}
        assert env.metric("strangler_plan_reloads_total", result="ok") == 1


def test_invalid_plan_is_rejected_and_the_old_plan_keeps_serving(tmp_path: Path) -> None:
    with proxy_env(tmp_path, PLAN.replace("STAGE", "service"), {"monolith": {}, "svc": {}}) as env:
        env.write_plan(PLAN.replace("STAGE", "sideways"))
        assert wait_until(
            lambda: env.metric("strangler_plan_reloads_total", result="rejected") == 1, timeout=15
        )
        status, headers, _ = env.request("GET", "/api/notifications")
        assert status == 200 and dict(headers)["x-upstream"] == "svc"
        _, body = env.admin("status")
        assert "services.notifications.stage" in json.loads(body)["plan"]["last_rejected_edit"]
        env.proxy.stop()
        assert "plan rejected" in env.proxy.output()
        assert "services.notifications.stage" in env.proxy.output()
