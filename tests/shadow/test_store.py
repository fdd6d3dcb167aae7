import json
from pathlib import Path

import pytest

from strangler_proxy.shadow.records import Endpoint, Sample, TallyKey
from strangler_proxy.shadow.store import ShadowStore, StoreError, resolve_url

EP = Endpoint("svc", "/a", "GET")


def key(bucket: int = 0, sig: tuple[str, ...] = ("value_changed $.x",)) -> TallyKey:
    return TallyKey(EP, bucket, "candidate", "mismatched", sig, ("value_changed $.id",))


def sample(ts: float, field: str = "value_changed $.x") -> Sample:
    return Sample(EP, field, "candidate", ts, f"r{ts}", {"ts": ts})


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ShadowStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/sub/shadow.db"
    else:
        url = request.getfixturevalue("pg_database")
    s = ShadowStore(url)
    yield s  # type: ignore[misc]
    s.close()


def test_tallies_add_up_across_writes(store: ShadowStore) -> None:
    store.write({key(): 3, key(60): 1})
    store.write({key(): 2})
    got = {t.key: t.count for t in store.tallies("svc")}
    assert got == {key(): 5, key(60): 1}
    assert next(t.key.ignored for t in store.tallies("svc")) == ("value_changed $.id",)
    assert store.tallies("other") == []
    assert {t.key.bucket for t in store.tallies("svc", since=60)} == {60}
    assert store.services() == ["svc"]


def test_samples_newest_first_bounded_per_field(store: ShadowStore) -> None:
    store.write({}, [sample(float(i)) for i in range(5)] + [sample(9.0, "missing $.y")])
    got = store.samples("svc", limit=2)
    assert [(s.field, s.ts) for s in got] == [
        ("missing $.y", 9.0),
        ("value_changed $.x", 4.0),
        ("value_changed $.x", 3.0),
    ]
    assert got[1].payload == {"ts": 4.0}
    only = store.samples("svc", [(EP, "missing $.y")], limit=5)
    assert [s.field for s in only] == ["missing $.y"]
    assert store.sample_counts()[(EP, "value_changed $.x", "candidate")] == 5


def test_retention_by_age_and_count(store: ShadowStore) -> None:
    store.write({key(0): 1, key(6000): 1}, [sample(float(t)) for t in (10, 6000, 6001, 6002)])
    removed = store.prune(now=6100, max_age_s=3000, max_samples=2)
    assert removed == {"tallies": 1, "samples": 2}
    assert [t.key.bucket for t in store.tallies("svc")] == [6000]
    assert [s.ts for s in store.samples("svc", limit=10)] == [6002.0, 6001.0]


def test_store_errors_are_translated() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        ShadowStore("nonsense")
    with pytest.raises(StoreError, match="use sqlite or postgresql"):
        ShadowStore("mysql://u@h/db")
    bad = ShadowStore("postgresql://nobody:pw@127.0.0.1:1/none")
    with pytest.raises(StoreError, match=r"cannot create tables") as info:
        bad.tallies("svc")
    assert "pw" not in str(info.value)


def test_relative_sqlite_paths_resolve_against_the_plan_directory(tmp_path: Path) -> None:
    assert resolve_url("sqlite:///var/shadow.db", tmp_path) == f"sqlite:///{tmp_path}/var/shadow.db"
    assert resolve_url(None, tmp_path) == f"sqlite:///{tmp_path}/var/shadow.db"
    assert resolve_url("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_url("postgresql://u@h/db", tmp_path) == "postgresql://u@h/db"


def test_payload_round_trips_as_json(tmp_path: Path) -> None:
    s = ShadowStore(f"sqlite:///{tmp_path}/s.db")
    s.write({}, [Sample(EP, "f", "candidate", 1.0, "r", {"body": {"text": "é"}, "n": [1]})])
    assert s.samples("svc")[0].payload == json.loads(json.dumps({"body": {"text": "é"}, "n": [1]}))
    s.close()
