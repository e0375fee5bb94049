"""The printed training step: forward, backward and an optimizer's update in one function.

``train_step(<sources>, <state>, t, <settings>)`` runs the program's generated
``train_forward`` and ``backward_pass`` (seeded with 1: the loss is a scalar), then the
rule's statements for every param, in place in the param and its state arrays, which are
arguments with names of their own (``m_W1``, ``v_W1``: the rule's state name and the
param's), and returns the loss of that forward pass. The module also holds ``update``
(the same statements over gradients given as arguments), for gradients computed elsewhere.

>>> import graphc as gc
>>> from graphc.optim import Adam
>>> printed = print_step(Adam(lr=0.1).rule, ["x", "w"], ["w"], loss=0, dtype="float64")
>>> print(printed.source.split("\\n):")[0].split("\\n\\n\\n")[1])
def train_step(
    x, w,
    m_w, v_w,
    t, lr, beta1, beta2, eps,
>>> printed.state
(('m_w', 'w', 'm'), ('v_w', 'w', 'v'))
"""

from __future__ import annotations

from dataclasses import dataclass

from .update_rule import Rule

__all__ = ["StepSource", "print_step", "LINKED"]

# the program's generated functions the step calls: put into the step module's namespace
LINKED = ("train_forward", "backward_pass", "forward_pass")


@dataclass(frozen=True)
class StepSource:
    source: str  # the module: train_step, then update
    state: tuple[tuple[str, str, str], ...]  # (identifier, param, state name), in argument order


def print_step(rule: Rule, sources: list[str], params: list[str], loss: int, dtype: str) -> StepSource:
    """The step module for a program whose ``train_forward`` takes ``sources`` (inputs and
    params, in order) and whose ``backward_pass`` returns the gradients of ``params`` (in
    order; none: the program learns nothing, and the step runs ``forward_pass``), of the
    scalar output at index ``loss`` of the outputs, of dtype ``dtype``."""
    names = rule.namespace(frozenset({"train_step", *LINKED}))
    learned = set(params)
    arguments = [names.name(("param" if s in learned else "input", s), hint=s) for s in sources]
    state, groups = [], []
    for param in params:
        identifiers = rule.identifiers(names, param)[2:]  # the param and its gradient come first
        state += [(ident, param, role) for ident, role in zip(identifiers, rule.state)]
        if identifiers:
            groups.append(", ".join(identifiers))
    signature = "".join(f"    {group},\n" for group in [", ".join(arguments), *groups, ", ".join(["t", *rule.hyper])]
                        if group)
    fed = ", ".join(arguments)
    if params:
        grads = [rule.identifiers(names, param)[1] for param in params]
        body = [f"outputs, saved = train_forward({fed})",
                f"{', '.join(grads)}{',' if len(grads) == 1 else ''} = backward_pass(saved, numpy.{dtype}(1.0))",
                "del saved  # emptied by backward_pass"]
        body += rule.scalar_statements()
        for param in params:
            body += rule.param_statements(names, param)
    else:  # nothing to learn: the forward pass alone
        body = [f"outputs = forward_pass({fed})"]
    body.append(f"return outputs[{loss}]")
    doc = f"Forward, backward, then {rule.name} of every param and its state in place; the loss."
    step = [f"def train_step(\n{signature}):", f'    """{doc}"""'] + [f"    {line}" for line in body]
    update, _ = rule.source_for(params, f"One step of {rule.name} for every param, in place, from given gradients.",
                                names=names)
    # update's own text after its module header (import numpy), which the step's module opens with
    source = "import numpy\n\n\n" + "\n".join(step) + "\n\n\n" + update.split("\n\n\n", 1)[1]
    return StepSource(source, tuple(state))
