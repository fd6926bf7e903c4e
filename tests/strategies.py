"""Hypothesis strategies for driving sample lifecycles with random event sequences."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

finish_data = st.fixed_dictionaries(
    {"outcome": st.sampled_from(["success", "failure", "maybe"])},
    optional={"exit_code": st.integers(min_value=-5, max_value=300)},
)

ticket_calls: st.SearchStrategy[tuple[str, dict[str, Any]]] = st.one_of(
    st.tuples(st.sampled_from(["start", "retry", "cancel", "launch"]), st.just({})),
    st.tuples(st.just("finish"), finish_data),
    st.tuples(st.just("fail"), st.fixed_dictionaries({"reason": st.text(max_size=3)})),
    st.tuples(st.just("start"), st.just({"unexpected": 1})),
)
"""Valid and invalid calls alike: unknown events, bad payloads, undeclared data."""

ticket_sequences = st.lists(ticket_calls, max_size=25)
