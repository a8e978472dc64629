"""The worker's co-partitioning check (issue 13): a source topic raised to
more partitions than the changelog is named with every count and the way out."""

from __future__ import annotations

from riskwatch.topics import copartition_problem, copartitioned_topics


def test_equal_counts_and_topics_not_created_yet_are_no_problem():
    names = copartitioned_topics("riskwatch.")
    assert copartition_problem({name: 4 for name in names}) is None
    assert copartition_problem({names[0]: 6, names[1]: None}) is None


def test_a_source_raised_past_the_changelog_is_named_with_every_count_and_what_to_do():
    names = copartitioned_topics("riskwatch.")
    counts = {name: 4 for name in names}
    counts["riskwatch.orders"] = 6

    problem = copartition_problem(counts)

    assert problem is not None
    assert "riskwatch.orders has 6" in problem
    assert "riskwatch-worker-state-changelog has 4" in problem
    assert "riskwatch.segment-facts has 4" in problem
    assert "Raise the others to 6" in problem and "docs/operations.md" in problem
