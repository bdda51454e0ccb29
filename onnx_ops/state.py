"""The naming convention for the state of stateful ONNX nodes (neuron membranes and currents).

A stateful node named ``<node>`` reads state item ``<item>`` from the graph input ``<node>.<item>_in``
and writes its next value to the graph output ``<node>.<item>_out`` (shape ``[batch, *neuron_shape]``).
Items, in state-tuple order: ``v`` (membrane; LIF, IF, LI, Integrator, CubaLIF) then ``i`` (synaptic
current; CubaLIF). So an LIF node ``lif1`` has ``lif1.v_in`` / ``lif1.v_out``. Any model following this
convention, whoever wrote it, runs in :class:`onnx_ops.OrtExecutor` with ``state[node] = (v, ...)``.
"""

from __future__ import annotations

STATE_ITEMS = ("v", "i")  # membrane, synaptic current: the order of a node's state tuple


def state_input_name(node: str, item: str = "v") -> str:
    """Graph input name carrying state item `item` of stateful node `node` into a step."""
    return f"{node}.{item}_in"


def state_output_name(node: str, item: str = "v") -> str:
    """Graph output name carrying state item `item` of stateful node `node` out of a step."""
    return f"{node}.{item}_out"


def _split(name: str, direction: str) -> tuple[str, str] | None:
    for item in STATE_ITEMS:
        suffix = f".{item}_{direction}"
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], item
    return None


def node_of_state_input(name: str) -> tuple[str, str] | None:
    """(node, item) for a state graph input name, or None for a data input."""
    return _split(name, "in")


def node_of_state_output(name: str) -> tuple[str, str] | None:
    """(node, item) for a state graph output name, or None for a data output."""
    return _split(name, "out")


def state_pairs(input_names: list[str], output_names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """{node: [(input name, output name) per state item, in STATE_ITEMS order]} for inputs with a matching output.

    A node's items must be a prefix of STATE_ITEMS (its state tuple); others are treated as data.
    """
    outs = {node_of_state_output(n): n for n in output_names if node_of_state_output(n)}
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for name in input_names:
        key = node_of_state_input(name)
        if key is not None and key in outs:
            found.setdefault(key[0], {})[key[1]] = (name, outs[key])
    pairs = {}
    for node, items in found.items():
        ordered = []
        for item in STATE_ITEMS:
            if item not in items:
                break
            ordered.append(items[item])
        if ordered:
            pairs[node] = ordered
    return pairs
