"""Plan texts shared by the plan tests."""

from __future__ import annotations

from pathlib import Path

REPO_PLAN = Path(__file__).resolve().parents[2] / "migration_plan.yaml"

# Line numbers matter: tests point at them.
VALID = """\
version: 1
monolith:
  url: http://127.0.0.1:8000
services:
  notifications:
    url: http://127.0.0.1:8101
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
      - {path: "/api/notifications/{id}", methods: [GET, PATCH]}
    stage: shadow
    canary: {steps: [1, 10, 50], percent: 10, cohort: "header:X-Customer-Id"}
    shadow: {sample: 0.5, writes: dry-run, ignore: ["$.id"]}
    fallback: {to: monolith, on: [connect_error, timeout, 5xx]}
  catalog:
    url: http://127.0.0.1:8102
    routes:
      - {path: "/api/catalog/products/{id}", methods: [GET]}
    stage: monolith
  orders:
    url: http://127.0.0.1:8103
    routes:
      - /api/orders
    requires: [catalog]
"""
