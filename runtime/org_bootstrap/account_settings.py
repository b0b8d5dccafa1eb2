"""Every account setting the engine serves, and which one an engine key belongs to.

Adding a setting is a new adapter in :mod:`org_bootstrap.settings` and its line here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from org_bootstrap.partitions import partition_here
from org_bootstrap.settings import Setting, alternate_contacts, primary_contact, regions
from org_bootstrap.targeting import SettingSpec
from org_bootstrap.validation import InvalidInputError

SETTINGS: tuple[Setting, ...] = (alternate_contacts.SETTING, primary_contact.SETTING, regions.SETTING)
BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}


def setting_for(spec: SettingSpec[Any]) -> Setting:
    """The setting a spec belongs to."""
    return next(setting for setting in SETTINGS if isinstance(spec, setting.spec_type))


def setting_of(key: str) -> tuple[Setting, str]:
    """The setting an engine key belongs to, and the item within it (``regions/ap-east-1``:
    Regions, ``ap-east-1``); a key without a prefix is an alternate contact type."""
    name, separator, item = key.partition("/")
    if not separator:
        return alternate_contacts.SETTING, key
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
