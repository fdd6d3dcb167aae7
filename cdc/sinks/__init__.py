"""Sinks: apply Debezium change events to a service's own database.

``mapping`` (declared table -> model), ``planner`` (events -> planned writes, pure),
``sqlalchemy_applier`` (writes + offsets in one transaction), ``consumer`` (the Kafka
loop with a dead-letter topic).
"""
