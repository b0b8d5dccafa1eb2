"""Every account setting the engine serves, and which one an engine key belongs to.

The settings are the modules of :mod:`org_bootstrap.settings` that define ``SETTING``, in the
order of their names: adding a setting is adding its module there, and nothing here.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Mapping
from functools import cache
from typing import Any

from org_bootstrap import settings
from org_bootstrap.aws.partitions import partition_here
from org_bootstrap.engine.quotas import Quota
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.settings import Setting
from org_bootstrap.validation import InvalidInputError


def _discovered() -> tuple[Setting, ...]:
    found: list[Setting] = []
    for module in sorted(pkgutil.iter_modules(settings.__path__), key=lambda module: module.name):
        setting = getattr(importlib.import_module(f"{settings.__name__}.{module.name}"), "SETTING", None)
        # Every module there is a setting: one without its SETTING is a mistake, not a helper.
        if not isinstance(setting, Setting):
            raise TypeError(f"{settings.__name__}.{module.name} defines no SETTING (a Setting instance)")
        found.append(setting)
    names = [setting.name for setting in found]
    assert len(set(names)) == len(names), f"two settings share a name: {names}"
    return tuple(found)


SETTINGS: tuple[Setting, ...] = _discovered()
BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}
# The setting whose keys carry no prefix (see org_bootstrap.settings): the alternate contacts.
_UNPREFIXED = next(setting for setting in SETTINGS if setting.key("x") == "x")


@cache
def account_quotas(partition: str) -> Mapping[str, Quota]:
    """Every setting's operations with their published quotas in ``partition``: the table pacing reads."""
    table: dict[str, Quota] = {}
    for setting in SETTINGS:
        table.update(setting.quotas_in(partition))
    return table


def setting_for(spec: SettingSpec[Any]) -> Setting:
    """The setting a spec belongs to."""
    return next(setting for setting in SETTINGS if isinstance(spec, setting.spec_type))


def setting_of(key: str) -> tuple[Setting, str]:
    """The setting an engine key belongs to, and the item within it (``regions/ap-east-1``:
    Regions, ``ap-east-1``); a key without a prefix is an alternate contact type."""
    name, separator, item = key.partition("/")
    if not separator:
        return _UNPREFIXED, key
    return BY_NAME[name], item


def spec_properties(specs: Mapping[str, SettingSpec[Any]]) -> dict[str, str]:
    """Each setting's spec in its own property (``AlternateContactsSpec``, ``RegionsSpec``...), as
    the deploy-time custom resource and the automation's spec file carry them."""
    return {BY_NAME[name].resource_property: spec.to_json() for name, spec in specs.items()}


def specs_of(props: Mapping[str, Any], *, lenient: bool = False) -> dict[str, SettingSpec[Any]]:
    """The settings ``props`` carry (:func:`spec_properties`), each validated (raises naming every
    bad field); ``lenient`` skips a spec that does not validate (a Delete of a Create that failed
    validation: it changed nothing, so there is nothing to undo)."""
    found: dict[str, SettingSpec[Any]] = {}
    for setting in SETTINGS:
        if setting.resource_property in props:
            try:
                found[setting.name] = setting.spec_type.from_json(
                    props[setting.resource_property], partition=partition_here()
                )
            except InvalidInputError:
                if not lenient:
                    raise
    return found


def specs_to_json(specs: Mapping[str, SettingSpec[Any]]) -> str:
    return json.dumps(spec_properties(specs), sort_keys=True, separators=(",", ":"))


def specs_from_json(text: str) -> dict[str, SettingSpec[Any]]:
    try:
        props = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError([f"Spec: is not valid JSON ({error})"]) from None
    if not isinstance(props, dict):
        raise InvalidInputError(["Spec: must be an object of each setting's spec"])
    found = specs_of(props)
    if not found:
        named = ", ".join(setting.resource_property for setting in SETTINGS)
        raise InvalidInputError([f"Spec: carries no setting's spec (one of {named})"])
    return found
