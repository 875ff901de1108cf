"""Heroku's crash restart policy, on a fake clock: at once first, then doubling cool-offs."""
from __future__ import annotations

from dynokernel.manifold.formation import RestartPolicy, Slot


def test_first_crash_restarts_at_once_then_cool_offs_double_up_to_the_cap():
    policy = RestartPolicy(backoff=60, cap=1200, stable=600)
    slot, now, delays = Slot(launched_at=0.0), 0.0, []
    for _ in range(8):
        now += 5  # crashes 5 s after each start
        delays.append(policy.after_crash(slot, now))
        now += delays[-1]
        slot.launched_at = now
    assert delays == [0, 60, 120, 240, 480, 960, 1200, 1200]


def test_a_dyno_that_stayed_up_starts_afresh():
    policy = RestartPolicy(backoff=10, stable=600)
    slot = Slot(crashes=5, launched_at=1000.0)
    assert policy.after_crash(slot, 1601.0) == 0      # up for 601 s: the first crash again
    slot.launched_at = 1601.0
    assert policy.after_crash(slot, 1602.0) == 10     # a quick second crash
    slot.launched_at = 1612.0
    assert policy.after_crash(slot, 1613.0) == 20
