from __future__ import annotations

import json
import logging

import pytest

from strangler_proxy import jsonlog


def test_records_are_one_json_object_per_line_with_extra_fields(
        capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    jsonlog.configure("proxy")
    try:
        logging.getLogger("strangler.test").warning("plan %s rejected", "v2",
                                                    extra={"path": "plan.yaml"})
        logging.getLogger("uvicorn.error").info(
            "Started server process [%d]", 42,
            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"})
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["msg"] == "plan v2 rejected" and first["path"] == "plan.yaml"
    assert first["component"] == "proxy" and first["level"] == "warning"
    assert second["msg"] == "Started server process [42]"
    assert "color_message" not in second
