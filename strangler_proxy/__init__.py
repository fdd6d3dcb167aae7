"""strangler: plan-driven routing proxy, shadow comparison and cutover tooling."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("strangler")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
