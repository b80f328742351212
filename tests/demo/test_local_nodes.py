"""The demo's nodes on this machine: registered by the seed when an engine
answers (online from the start, like the rest), never taken over by the
simulator, left free by the simulated renters; and how the demo finds an
engine (never installing one)."""

from apps.core.models import GpuNode, NodeStatus
from apps.demo import local_nodes, seed
from apps.demo import simulated_network as network
from apps.marketplace.models import Rental

from ..monitoring.container_engine import engine_url


def test_the_nodes_on_this_machine_are_seeded_online_and_left_to_people(genesis):
    seed.set_epoch_length(60)
    seed.seed(nodes=24, n_checkers=6, n_delegators=30, history_epochs=3, on_this_machine=2)
    mine = list(local_nodes.nodes())
    assert [n.name for n in mine] == ["this-machine-1", "this-machine-2"]
    assert all(n.provider.username == "provider" and n.status == NodeStatus.ONLINE for n in mine)
    assert GpuNode.objects.count() == 26
    ids = {n.pk for n in mine}
    assert not Rental.objects.filter(node_id__in=ids).exists()  # the simulated renters leave them free
    assert ids.isdisjoint(n.node_id for n in network.adopt_nodes())  # the simulator never runs them
    seed.nodes_on_this_machine(2)  # idempotent
    assert local_nodes.ids() == ids
    assert len(seed.nodes_on_this_machine(3)) == 3  # one more, when asked for


def test_the_demo_finds_an_engine_only_where_one_answers(tmp_path, monkeypatch):
    real = engine_url()  # the tests' engine (started first, where the tests' settings point)
    for name in ("CONTAINER_ENGINE_URL", "DOCKER_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONTAINER_ENGINE_DIR", str(tmp_path))
    assert local_nodes.candidates() == [f"unix://{tmp_path}/engine.sock"]
    assert local_nodes.find_engine() is None
    (tmp_path / "engine.sock").write_text("")  # a socket file nothing listens on
    assert local_nodes.find_engine() is None
    monkeypatch.setenv("DOCKER_HOST", real)
    assert local_nodes.find_engine() == real
    assert local_nodes.find_engine(f"unix://{tmp_path}/engine.sock") is None  # the one named, or none
    assert local_nodes.has_image(real)
