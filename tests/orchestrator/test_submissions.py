"""Submissions to the pools are made once per Prefect API and idempotency key in a process (``workers._Flights``)."""

from __future__ import annotations

import threading

import pytest

from mediamesh.orchestrator.execution.workers import PoolError, _Flights


def test_the_same_key_at_once_is_asked_for_once_and_waits_for_that_answer() -> None:
    flights = _Flights()
    mine, first = flights.join("http://a/api", ["k1", "k2"])
    theirs, second = flights.join("http://a/api", ["k2", "k3"])
    assert set(mine) == {"k1", "k2"} and set(theirs) == {"k3"}
    assert second["k2"] is first["k2"]
    waited: list[str] = []
    waiter = threading.Thread(target=lambda: waited.append(second["k2"].result(timeout=10)))
    waiter.start()
    mine["k2"].set_result("run-2")
    waiter.join(timeout=10)
    assert waited == ["run-2"]
    again, answers = flights.join("http://a/api", ["k2"])
    assert again == {} and answers["k2"].result() == "run-2"  # answered from here, as Prefect would
    elsewhere, _ = flights.join("http://b/api", ["k2"])  # another server's key is its own
    assert set(elsewhere) == {"k2"}


def test_a_failed_submission_fails_its_waiters_and_is_asked_again() -> None:
    flights = _Flights()
    mine, _ = flights.join("api", ["k"])
    _, waiting = flights.join("api", ["k"])
    flights.fail("api", mine, PoolError("the API is down"))
    with pytest.raises(PoolError, match="the API is down"):
        waiting["k"].result(timeout=1)
    retry, _ = flights.join("api", ["k"])
    assert set(retry) == {"k"}


def test_only_answered_keys_are_forgotten_when_too_many_are_kept() -> None:
    flights = _Flights()
    flights.KEEP = 2
    pending, _ = flights.join("api", ["a", "b", "c"])  # one call wanting more than are kept
    assert set(pending) == {"a", "b", "c"}
    pending["a"].set_result("run-a")
    more, _ = flights.join("api", ["d"])
    _, kept = flights.join("api", ["b", "c"])
    assert kept["b"] is pending["b"] and kept["c"] is pending["c"]  # still in flight: never dropped
    again, _ = flights.join("api", ["a"])
    assert set(again) == {"a"} and set(more) == {"d"}  # "a" was answered, so it could go
