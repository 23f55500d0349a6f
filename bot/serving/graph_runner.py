"""Run Rasa's model graph in plain topological order instead of through dask.

Rasa runs the NLU graph and the policy graph once or more per message through
`dask.get`, rebuilding the minimal sub-graph and a dask task graph every time; for our small
graphs that scheduling was about a third of the prediction time. The nodes (`GraphNode`, with
their hooks) are Rasa's own and are called with exactly the arguments dask would pass.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

Plan = List[Tuple[str, List[str]]]


class SequentialGraphRunner(DaskGraphRunner):
    _plans: Dict[Tuple[str, ...], Plan]

    @classmethod
    def adopt(cls, runner: DaskGraphRunner) -> "SequentialGraphRunner":
        sequential = cls.__new__(cls)
        sequential.__dict__.update(runner.__dict__)
        sequential._plans = {}
        return sequential

    def _plan(self, targets: List[str]) -> Plan:
        key = tuple(targets)
        if key not in self._plans:
            schema = self._graph_schema.minimal_graph_schema(targets)
            order: Plan = []
            seen: set = set()

            def visit(name: str) -> None:
                if name in seen or name not in schema.nodes:
                    return  # inputs (placeholders) are not nodes
                seen.add(name)
                needs = list(schema.nodes[name].needs.values())
                for need in needs:
                    visit(need)
                order.append((name, needs))

            for target in targets:
                visit(target)
            self._plans[key] = order
        return self._plans[key]

    def run(self, inputs: Optional[Dict[str, Any]] = None, targets: Optional[List[str]] = None) -> Dict[str, Any]:
        run_targets = list(targets) if targets else list(self._graph_schema.target_names)
        plan = self._plan(run_targets)
        values: Dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in self._graph_schema.nodes:
                raise GraphRunError(f"Input value '{value}' clashes with a node name.")
            values[name] = (name, value)
        try:
            for name, needs in plan:
                values[name] = self._instantiated_nodes[name](*(values[n] for n in needs))
        except RuntimeError as err:
            raise GraphRunError("Error running runner.") from err
        return dict(values[t] for t in run_targets)
