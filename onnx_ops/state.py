"""The naming convention for the state of stateful ONNX nodes (neuron membranes and currents).

A stateful node named ``<node>`` reads state item ``<item>`` from the graph input ``<node>.<item>_in``
and writes its next value to the graph output ``<node>.<item>_out`` (shape ``[batch, *neuron_shape]``).
The items and their order (the node's state tuple) are those its op spec declares (onnx_ops.spec): ``v``
(membrane; LIF, IF, LI, Integrator, CubaLIF) then ``i`` (synaptic current; CubaLIF). So an LIF node ``lif1``
has ``lif1.v_in`` / ``lif1.v_out``. Any model following this convention, whoever wrote it, runs in
:class:`onnx_ops.OrtExecutor` with ``state[node] = (v, ...)``.
"""

from __future__ import annotations

from . import neuron_ops  # noqa: F401  (the built-in neurons declare their state items)
from .spec import state_ops


def known_state_items() -> tuple[str, ...]:
    """Every state item a registered op declares, in first-declared order."""
    return tuple(dict.fromkeys(item for items in state_ops().values() for item in items))


STATE_ITEMS = known_state_items()  # the built-in items ("v", "i"): membrane, synaptic current


def state_input_name(node: str, item: str = "v") -> str:
    """Graph input name carrying state item `item` of stateful node `node` into a step."""
    return f"{node}.{item}_in"


def state_output_name(node: str, item: str = "v") -> str:
    """Graph output name carrying state item `item` of stateful node `node` out of a step."""
    return f"{node}.{item}_out"


def _split(name: str, direction: str) -> tuple[str, str] | None:
    for item in known_state_items():
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


def _state_tuple(items: set[str]) -> tuple[str, ...]:
    """The declared state tuple of a node holding these items: the longest declared tuple they start."""
    best: tuple[str, ...] = ()
    for declared in state_ops().values():
        prefix = []
        for item in declared:
            if item not in items:
                break
            prefix.append(item)
        if len(prefix) > len(best):
            best = tuple(prefix)
    return best


def state_pairs(input_names: list[str], output_names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """{node: [(input name, output name) per state item, in its state-tuple order]} for inputs with a matching
    output.

    A node's items must start a state tuple some op declares (``v``, ``v, i``, ...); others are treated as data.
    """
    outs = {node_of_state_output(n): n for n in output_names if node_of_state_output(n)}
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for name in input_names:
        key = node_of_state_input(name)
        if key is not None and key in outs:
            found.setdefault(key[0], {})[key[1]] = (name, outs[key])
    return {node: [items[i] for i in order] for node, items in found.items() if (order := _state_tuple(set(items)))}
