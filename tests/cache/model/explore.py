"""A small explicit-state model checker: breadth-first search over every interleaving.

A model is an initial state, a function giving each state's successors as (label, state)
pairs (one per enabled action and outcome), and a check naming what is wrong with a state
(None: nothing). States must be hashable and compare by value (tuples, NamedTuples, frozen
dataclasses): two interleavings that reach the same state are explored once.

Breadth-first, so the first violation found has a shortest trace (fewest steps), which is
the one worth reading. The search is bounded by the model itself (every actor has finitely
many steps, every fault a budget) and, optionally, by ``max_depth``; ``max_states`` is a
guard against a model that is larger than meant, not a bound of the search: reaching it
raises instead of passing quietly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S", bound=Hashable)

Successors = Callable[[S], Iterable[tuple[str, S]]]
Check = Callable[[S], str | None]


class TooManyStates(Exception):
    """The model has more states than the caller allowed: its bounds need tightening."""


@dataclass(frozen=True)
class Outcome(Generic[S]):
    violation: str | None  # what the check said of the first bad state; None: all good
    trace: tuple[str, ...]  # the labels of the steps from the initial state to it
    last: S  # that state (the initial state when there is none)
    states: int  # distinct states reached
    transitions: int  # successors generated, duplicates included
    depth: int  # steps to the farthest state (by its shortest path)

    @property
    def ok(self) -> bool:
        return self.violation is None


def explore(
    initial: S,
    successors: Successors[S],
    check: Check[S],
    *,
    key: Callable[[S], Hashable] | None = None,
    max_depth: int | None = None,
    max_states: int = 5_000_000,
) -> Outcome[S]:
    """Every state reachable from ``initial`` (within ``max_depth`` steps), checked.

    ``key``: states with one key are one state (a symmetry: the model's actors swapped).
    The first state reached of each key is the one explored, so the steps of a trace
    follow each other: each leads from the state the previous one reached.
    """
    keyed: Callable[[S], Hashable] = key or _itself
    # Each key's parent key and the step from it: the visited set and the traces in one.
    parents: dict[Hashable, tuple[Hashable, str] | None] = {keyed(initial): None}
    bad = check(initial)
    if bad is not None:
        return Outcome(bad, (), initial, 1, 0, 0)
    frontier = [(initial, keyed(initial))]
    depth = deepest = transitions = 0
    while frontier and (max_depth is None or depth < max_depth):
        depth += 1
        following: list[tuple[S, Hashable]] = []
        for state, here in frontier:
            for label, after in successors(state):
                transitions += 1
                k = keyed(after)
                if k in parents:
                    continue
                parents[k] = (here, label)
                bad = check(after)
                if bad is not None:
                    trace = _trace(parents, k)
                    return Outcome(bad, trace, after, len(parents), transitions, depth)
                following.append((after, k))
        if len(parents) > max_states:
            raise TooManyStates(f"more than {max_states} states within {depth} steps")
        if following:
            deepest = depth
        frontier = following
    return Outcome(None, (), initial, len(parents), transitions, deepest)


def _itself(state: S) -> Hashable:
    return state


def _trace(parents: dict[Hashable, tuple[Hashable, str] | None], k: Hashable) -> tuple[str, ...]:
    labels: list[str] = []
    step = parents[k]
    while step is not None:
        k, label = step
        labels.append(label)
        step = parents[k]
    return tuple(reversed(labels))
