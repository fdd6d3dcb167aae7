"""Concurrent orders for scarce stock, through real connections to a real server."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import psycopg2
import pytest

from tests.monolith.conftest import make_customer, make_product, place_order, stock_of
from tests.support.monolith_server import MonolithServer


def order_one(url: str, customer_id: int, product_id: int) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as client:
        return place_order(client, customer_id, (product_id, 1))


def waiting_on_locks(conn: psycopg2.extensions.connection, dbname: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock'", (dbname,))
        row = cur.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
def test_two_orders_for_the_last_unit_exactly_one_wins(pg_monolith: MonolithServer) -> None:
    monolith = pg_monolith
    api = httpx.Client(base_url=monolith.url, timeout=30)
    customers = [make_customer(api), make_customer(api)]
    product = make_product(api, stock=1)
    parts = urlsplit(monolith.database_url)
    dbname = parts.path.lstrip("/")
    holder = psycopg2.connect(host=parts.hostname, port=parts.port, user=parts.username,
                              dbname=dbname)
    observer = psycopg2.connect(host=parts.hostname, port=parts.port, user=parts.username,
                                dbname=dbname)
    observer.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT stock FROM catalog_product WHERE id = %s FOR UPDATE",
                        (product["id"],))
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(order_one, monolith.url, c["id"], product["id"])
                       for c in customers]
            # Both requests are inside their transactions, queued on the product row lock.
            deadline = time.monotonic() + 30
            while waiting_on_locks(observer, dbname) < 2:
                assert time.monotonic() < deadline, "orders did not wait on the row lock"
                assert not any(f.done() for f in futures), [f.result().text for f in futures]
                time.sleep(0.05)
            holder.commit()
            responses = [f.result() for f in futures]
    finally:
        holder.close()
        observer.close()
    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"]["code"] == "insufficient_stock"
    assert stock_of(api, product["id"]) == 0
    placed = [api.get("/api/orders", params={"customer_id": c["id"]}).json()["count"]
              for c in customers]
    assert sorted(placed) == [0, 1]
    api.close()


def test_burst_of_orders_never_oversells(monolith: MonolithServer, api: httpx.Client) -> None:
    customer = make_customer(api)
    product = make_product(api, stock=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: order_one(monolith.url, customer["id"],
                                                      product["id"]), range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [409] * 5, [r.text for r in responses if r.status_code >= 500]
    assert stock_of(api, product["id"]) == 0
    assert api.get("/api/orders", params={"customer_id": customer["id"]}).json()["count"] == 3
