"""The REST fuzz harness runs in the suite on a bounded, seeded budget."""

from __future__ import annotations

from fuzz import fuzz_rest


def test_mutated_answers_to_every_operation_raise_only_library_errors():
    assert fuzz_rest.run(3000, seed=1) == 3000


def test_harness_reaches_success_parsing():
    # The harness must not only see errors: a valid answer goes through every layer.
    body = fuzz_rest.SEEDS[0]
    operation = fuzz_rest.OPERATIONS[4]()
    accounts = operation.parse(200, {}, body)
    assert accounts[0].name == "a"
