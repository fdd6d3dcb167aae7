from strangler_proxy.shadow.redact import REDACTED, redact_headers


def test_credentials_are_redacted_and_the_rest_kept() -> None:
    headers = [
        ("authorization", "Bearer s3cret"),
        ("Cookie", "sessionid=abc"),
        ("set-cookie", "csrftoken=x"),
        ("proxy-authorization", "Basic Zm9v"),
        ("content-type", "application/json"),
    ]
    out = redact_headers(headers)
    assert [v for _, v in out[:4]] == [REDACTED] * 4
    assert out[4] == ("content-type", "application/json")
    assert "s3cret" not in repr(out)
