"""Choosing the demo's epoch length (``run_demo --epoch-seconds``)."""

import pytest

from apps.core import epochs, parameters
from apps.demo import seed

from ..factories import make_node


def test_a_new_network_takes_the_chosen_epoch_length(genesis):
    seed.set_epoch_length(20)
    assert parameters.get("epoch_seconds") == 20 and epochs.length().total_seconds() == 20
    seed.set_epoch_length(20)  # the same length again: nothing to do


def test_the_epoch_length_is_fixed_once_the_network_has_nodes(genesis):
    make_node()
    with pytest.raises(seed.SeedError, match="cannot change once it has history"):
        seed.set_epoch_length(20)
    seed.set_epoch_length(parameters.get("epoch_seconds"))  # unchanged: fine


def test_the_epoch_length_stays_within_the_protocol_bounds(genesis):
    with pytest.raises(seed.SeedError, match="between"):
        seed.set_epoch_length(5)
