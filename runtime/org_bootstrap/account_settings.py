"""Every account setting the engine serves, and which one an engine key belongs to.

Adding a setting is a new adapter in :mod:`org_bootstrap.settings` and its line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from org_bootstrap.settings import Setting, alternate_contacts, primary_contact, regions
from org_bootstrap.targeting import SettingSpec

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
