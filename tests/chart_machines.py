"""Statechart lifecycles the statechart tests drive: compound, parallel and history states."""

from __future__ import annotations

from pydantic import BaseModel

from lifecyclekit import Because, HistoryState, Lifecycle, Registry, State

REGISTRY = Registry(discover=False)


class OrderContext(BaseModel):
    items: int = 1
    packed: int = 0
    entries: list[str] = []


@REGISTRY.register("chart-order")
class Order(Lifecycle[OrderContext]):
    """An order whose fulfilment is compound (with a history state) and whose tracking
    runs two parallel regions."""

    created = State(initial=True)

    class fulfilment(State.Compound):
        picking = State(initial=True)
        packing = State()
        resume = HistoryState()

        pack = picking.to(packing, cond="has_items")
        resume.to(picking)  # what the history state enters when it remembers nothing

    class tracking(State.Parallel):
        class carrier(State.Compound):
            handed_over = State(initial=True)
            in_transit = State()

            depart = handed_over.to(in_transit)

        class billing(State.Compound):
            invoiced = State(initial=True)
            paid = State()

            settle = invoiced.to(paid)

    delivered = State(final=True)

    pay = created.to(fulfilment)
    hold = fulfilment.to(created)
    release = created.to(fulfilment.resume)
    ship = fulfilment.to(tracking)
    deliver = tracking.to(delivered)

    def has_items(self) -> Because:
        return Because(self.context.items > 0, f"{self.context.items} item(s)")

    def on_enter_state(self, target: State) -> None:
        self.context.entries.append(target.id)
