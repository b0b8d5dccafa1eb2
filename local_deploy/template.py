"""A synthesized CloudFormation template, read the way CloudFormation reads it.

What a resource depends on (``DependsOn`` and every ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub``
reference), the order resources are created in, the intrinsic functions a CDK template uses, and
how CloudFormation turns property values into what a custom resource's handler receives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

CUSTOM_RESOURCE = "AWS::CloudFormation::CustomResource"
NO_VALUE = "AWS::NoValue"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """The template uses something the local deploy does not do (it says what)."""


class Unresolved(Exception):
    """A value that exists only once ``logical_id`` is created ("known after deploy")."""

    def __init__(self, logical_id: str) -> None:
        super().__init__(logical_id)
        self.logical_id = logical_id


def is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == CUSTOM_RESOURCE


class Template:
    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.resources: dict[str, dict[str, Any]] = dict(body.get("Resources", {}))
        self.parameters: dict[str, dict[str, Any]] = dict(body.get("Parameters", {}))
        conditional = [lid for lid, resource in self.resources.items() if "Condition" in resource]
        if body.get("Conditions") or conditional:
            raise TemplateError(f"conditions are not supported (resources: {', '.join(conditional) or 'none'})")
        self._declared = {logical_id: index for index, logical_id in enumerate(self.resources)}

    def type_of(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["Type"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties", {}))

    def retained(self, logical_id: str) -> bool:
        return self.resources[logical_id].get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")

    def dependencies(self, logical_id: str) -> set[str]:
        """``DependsOn`` and every resource the properties reference: what must exist first."""
        resource = self.resources[logical_id]
        depends_on = resource.get("DependsOn", [])
        found = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        found |= references(resource.get("Properties", {}))
        unknown = found - set(self.resources)
        if unknown - set(self.parameters):
            raise TemplateError(f"{logical_id} references unknown resources: {', '.join(sorted(unknown))}")
        return found & set(self.resources)

    def creation_order(self) -> list[str]:
        return dependency_order(self.resources, self.dependencies, self._declared)


def dependency_order(
    nodes: Iterable[str], dependencies: Callable[[str], set[str]], declared: Mapping[str, int]
) -> list[str]:
    """Every node after what it depends on. CloudFormation starts independent resources at the same
    time, in no promised order; here the one declared *last* goes first, so that a dependency the
    template forgot to state shows up as a failure rather than passing by the luck of file order."""
    pending = {node: set(dependencies(node)) for node in nodes}
    order: list[str] = []
    while pending:
        ready = [node for node, needs in pending.items() if not needs]
        if not ready:
            raise TemplateError(f"circular dependency between {', '.join(sorted(pending))}")
        chosen = max(ready, key=lambda node: declared.get(node, -1))
        order.append(chosen)
        del pending[chosen]
        for needs in pending.values():
            needs.discard(chosen)
    return order


def references(value: Any) -> set[str]:
    """Logical IDs (and parameters) that ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` name inside ``value``."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if len(value) == 1 and "Ref" in value:
            target = value["Ref"]
            return set() if target.startswith("AWS::") else {target}
        if len(value) == 1 and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return {target[0] if isinstance(target, list) else target.split(".", 1)[0]}
        if len(value) == 1 and "Fn::Sub" in value:
            text, variables = _sub_arguments(value["Fn::Sub"])
            names = {name.split(".", 1)[0] for name in _SUB_VARIABLE.findall(text)}
            found |= {name for name in names if not name.startswith("AWS::") and name not in variables}
            return found | references(list(variables.values()))
        for item in value.values():
            found |= references(item)
    return found


def resolve(value: Any, *, ref: Callable[[str], Any], get_att: Callable[[str, str], Any]) -> Any:
    """Evaluate the intrinsic functions in ``value``; ``ref`` and ``get_att`` answer for names."""

    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(element) for element in item if not _is_no_value(element)]
        if not isinstance(item, dict):
            return item
        if len(item) == 1:
            (name, argument), *_ = item.items()
            if name == "Ref":
                return ref(argument)
            if name == "Fn::GetAtt":
                target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return get_att(target, walk(attribute))
            if name == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(part) for part in walk(parts))
            if name == "Fn::Select":
                index, items = argument
                return walk(items)[int(walk(index))]
            if name == "Fn::Sub":
                text, variables = _sub_arguments(argument)
                values = {key: walk(variable) for key, variable in variables.items()}
                return _SUB_VARIABLE.sub(lambda match: str(_sub_value(match.group(1), values, ref, get_att)), text)
            if name.startswith("Fn::") or name == "Condition":
                raise TemplateError(f"{name} is not supported by the local deploy")
        return {key: walk(element) for key, element in item.items() if not _is_no_value(element)}

    return walk(value)


def as_sent(value: Any) -> Any:
    """A property value as CloudFormation hands it to a custom resource: every scalar a string.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requests.html"""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_sent(item) for item in value]
    return value


def _is_no_value(item: Any) -> bool:
    return isinstance(item, dict) and item == {"Ref": NO_VALUE}


def _sub_arguments(argument: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(argument, str):
        return argument, {}
    text, variables = argument
    return str(text), dict(variables)


def _sub_value(
    name: str, values: Mapping[str, Any], ref: Callable[[str], Any], get_att: Callable[[str, str], Any]
) -> Any:
    if name in values:
        return values[name]
    if "." in name:
        target, attribute = name.split(".", 1)
        return get_att(target, attribute)
    return ref(name)
