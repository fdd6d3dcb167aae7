from typing import Any

import httptools
import pytest

from strangler_proxy.shadow.compare import same_raw
from strangler_proxy.shadow.observation import HeaderBlock, raw_values
from strangler_proxy.shadow.rules import rules_from_mapping

BLOCK = (b"Content-Type:  application/json\r\nSet-Cookie: a=1\r\nX-Empty:\r\n"
         b"set-cookie:\tb=2 \r\nContent-Length: 9\r\n")


def parsed(block: bytes) -> list[tuple[bytes, bytes]]:
    """What httptools makes of these header lines (names lower-cased)."""
    pairs: list[tuple[bytes, bytes]] = []

    class Collect:
        def on_header(self, name: bytes, value: bytes) -> None:
            pairs.append((name.lower(), value))

    httptools.HttpResponseParser(Collect()).feed_data(b"HTTP/1.1 200 OK\r\n" + block + b"\r\n")
    return pairs


def test_a_header_block_reads_as_the_pairs_a_parser_would_give() -> None:
    block = HeaderBlock(BLOCK)
    assert list(block) == parsed(BLOCK) == [
        (b"content-type", b"application/json"), (b"set-cookie", b"a=1"), (b"x-empty", b""),
        (b"set-cookie", b"b=2 "), (b"content-length", b"9"),
    ]
    assert len(block) == 5 and block[1] == (b"set-cookie", b"a=1")
    assert block[-1:] == [(b"content-length", b"9")]
    assert block == HeaderBlock(BLOCK) and block == parsed(BLOCK)
    assert block != HeaderBlock(b"x: 1\r\n")
    assert list(HeaderBlock(b"")) == []


@pytest.mark.parametrize("split_first", [False, True])
def test_header_values_by_name_without_splitting_the_block(split_first: bool) -> None:
    block = HeaderBlock(BLOCK)
    if split_first:
        list(block)
    assert block.values(b"set-cookie") == [b"a=1", b"b=2 "]
    assert block.values(b"content-type") == [b"application/json"]
    assert block.values(b"x-empty") == [b""]
    assert block.values(b"type") == [] and block.values(b"missing") == []
    assert raw_values(block, b"set-cookie") == raw_values(parsed(BLOCK), b"set-cookie")


def raw(headers: Any, body: bytes = b'{"id": 1}') -> tuple[int, Any, bytes]:
    return 200, headers, body


def test_same_raw_with_header_blocks() -> None:
    rules = rules_from_mapping({}).default  # compares content-type
    ours = HeaderBlock(b"content-type: application/json\r\ndate: 1\r\n")
    assert same_raw(rules, raw(ours), raw(HeaderBlock(ours.block)))
    assert same_raw(rules, raw(ours), raw(HeaderBlock(b"Content-Type: application/json\r\n")))
    assert same_raw(rules, raw(ours), raw([(b"content-type", b"application/json")]))
    assert not same_raw(rules, raw(ours), raw(HeaderBlock(b"content-type: text/plain\r\n")))
    assert not same_raw(rules, raw(ours), raw(HeaderBlock(b"date: 1\r\n")))
    assert not same_raw(rules, raw(ours), raw(HeaderBlock(ours.block), b'{"id": 2}'))
