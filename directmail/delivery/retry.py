"""Retries with exponential backoff, for transient failures only (a refused password is not retried)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from directmail.errors import DeliveryError, DirectMailError
from directmail.secrets import scrub

T = TypeVar("T")
log = logging.getLogger("directmail.delivery")


def describe_exception(exc: BaseException) -> str:
    """A one-line reason from any library's exception, with every known secret value removed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return scrub(f"{name}: {text}" if text else name)


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    attempts: int,
    is_transient: Callable[[BaseException], bool],
    on_failure: Callable[[], None] = lambda: None,
    base_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`; on a transient failure call `on_failure` (drop the connection) and try again.

    Our own errors (DirectMailError) and anything `is_transient` rejects fail at once. The final error
    names what was attempted, how many times, and the last reason.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except DirectMailError:
            on_failure()
            raise
        except Exception as exc:
            reason = describe_exception(exc)
            if not is_transient(exc):  # the connection still works: the caller may clean up with it
                raise DeliveryError(f"{what}: {reason}") from None
            on_failure()
            if attempt == attempts:
                raise DeliveryError(
                    f"{what}: {reason} (gave up after {attempts} attempts)", transient=True
                ) from None
            delay = base_delay * 2 ** (attempt - 1)
            log.warning(
                "%s: %s; retrying in %.0f s (attempt %d of %d)", what, reason, delay, attempt + 1, attempts
            )
            sleep(delay)
    raise AssertionError("unreachable")
