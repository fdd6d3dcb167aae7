import strangler_proxy.forwarding as forwarding


def test_public_surface() -> None:
    assert sorted(forwarding.__all__) == sorted(
        [
            "Breaker", "Handler", "Mirror", "MirrorJob", "Pool", "Timeouts", "Upstream",
            "UpstreamClosed", "UpstreamConnectError", "UpstreamError", "UpstreamProtocolError",
            "UpstreamTimeout",
        ]
    )
    for name in forwarding.__all__:
        assert getattr(forwarding, name) is not None
