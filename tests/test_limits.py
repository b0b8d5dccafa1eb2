"""A big config against CloudFormation's, Lambda's and Step Functions' limits (``stacks/limits.py``,
``docs/limits.md``): large custom-resource properties leave the template for the bootstrap bucket,
the handlers read them back, and what a deploy would still refuse is refused at synth, naming the
limit and the size.

The 10,000-override deploy is a realistic organization at a test's speed: 10,000 accounts (the
example's and a Registry OU of 9,994), a config that carries every account's own BILLING contact
(a central register of cost owners) and rolls it out to the Workloads OU first. The preflight
checks all 10,000 IDs against the organization; the job applies the overrides of the six targeted
accounts. The registry's accounts are added to the simulated backend directly (through the API
they take minutes); ``benchmarks/config_size.py`` measures every size at 2,000 to 10,000.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App

import constructs.org_provider as org_provider
from benchmarks.config_size import override_accounts, overrides_config
from local_deploy.assets import assembly_reader, file_assets, publish
from local_deploy.cloudformation import LocalCloudFormation
from local_deploy.organization_file import load_organization_file
from local_deploy.plan import build_plan
from local_deploy.stack import StackState
from local_deploy.synth import SynthError, synthesize
from local_deploy.template import Template
from org_bootstrap.aws import clients
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import specs_of
from org_bootstrap.handlers.resource import (
    PROPERTIES_OBJECT,
    PROPERTIES_OBJECT_EXTENSION,
    PropertiesObjectError,
    expanded,
)
from simulation.organization import Organization, _org_backend, strict_aws
from stacks.app_builder import build_app, feature_flags
from stacks.config import BootstrapConfig
from stacks.limits import (
    STATE_PAYLOAD,
    TEMPLATE_BODY_S3,
    check_assembly,
    provider_update_event_bytes,
    template_problems,
)
from tests.conftest import ROOT, at_simulation_speed

SEED = ROOT / "config" / "example-organization.toml"
EXAMPLE_CONFIG = ROOT / "config" / "example.toml"
STACK = "OrgBootstrapManagement"
MANAGEMENT = "111111111111"
WORKLOADS = "ou-ex01-workload"
WORKLOAD_ACCOUNTS = ("444444444444", "555555555555", "666666666666", "777777777777", "888888888888", "999999999999")
REGISTRY = "ou-ex01-registry"
OVERRIDES = 10_000
SETTINGS_TYPE = "Custom::AlternateContacts"


def register_config(count: int = OVERRIDES) -> dict[str, Any]:
    """Every account's own BILLING contact (the example's accounts first), rolled out to Workloads."""
    registry = override_accounts(count - len(WORKLOAD_ACCOUNTS))
    data = overrides_config(count, accounts=[*WORKLOAD_ACCOUNTS, *registry])
    data["alternate_contacts"]["targets"] = {"organizational_units": [WORKLOADS]}
    for section in ("primary_contact", "regions"):  # this rollout is the contacts'
        data.pop(section, None)
    return data


def synthesized(data: dict[str, Any], outdir: Path) -> tuple[Any, dict[str, Any], BootstrapConfig]:
    config = BootstrapConfig.from_mapping(data)
    app, stack = build_app(config, App(context=feature_flags(), outdir=str(outdir)))
    assembly = app.synth()
    return assembly, dict(assembly.get_stack_by_name(stack.stack_name).template), config


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], BootstrapConfig]:
    return synthesized(register_config(), tmp_path_factory.mktemp("big"))


def custom(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(r for r in template["Resources"].values() if r["Type"] == resource_type)


# -- the limits, named with the sizes -----------------------------------------------------------


def test_a_template_over_a_limit_is_refused_naming_the_limit_and_the_size() -> None:
    big_properties = {"Spec": "x" * 200_000}
    template: dict[str, Any] = {
        "Resources": {
            "Settings": {"Type": SETTINGS_TYPE, "Properties": big_properties},
            "Small": {"Type": SETTINGS_TYPE, "Properties": {"Spec": "x" * 1_000}},
        }
    }
    problems = template_problems(STACK, template, 1_234_567)
    assert problems == [
        f"{STACK}: the template is 1,234,567 bytes, over CloudFormation's limit of 1,000,000 bytes (1 MB) "
        "for a template in S3",
        f"{STACK}/Settings: an Update of this custom resource is an event of about "
        f"{provider_update_event_bytes(big_properties):,} bytes (its properties "
        "twice), over Step Functions' limit of 262,144 bytes (256 KB) for the input of the Provider framework's waiter",
    ]
    assert template_problems(STACK, template | {"Resources": {}}, TEMPLATE_BODY_S3) == []


def overrides_toml(count: int) -> str:
    """``count`` account overrides as a config file writes them (for the example config's text)."""
    tables = []
    for override in overrides_config(count)["alternate_contacts"]["overrides"]:
        billing = override["contacts"]["BILLING"]
        fields = "\n".join(f'{key} = "{value}"' for key, value in billing.items())
        tables.append(
            f'[[alternate_contacts.overrides]]\naccount = "{override["account"]}"\n'
            f"[alternate_contacts.overrides.contacts.BILLING]\n{fields}\n"
        )
    return "\n".join(tables)


def test_specs_kept_inline_are_refused_at_synth_past_the_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the app did before large properties left the template, 4,000 overrides inline, is
    refused by the synth (the local deploy's, as app.py's), naming each limit and the size."""
    monkeypatch.setattr(org_provider, "INLINE_PROPERTIES_LIMIT", 10**9)
    config = tmp_path / "register.toml"
    config.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8") + "\n" + overrides_toml(4_000), encoding="utf-8")
    with pytest.raises(SynthError) as refused:
        synthesize(config)
    message = str(refused.value)
    found = re.search(
        r"the template is ([\d,]+) bytes, over CloudFormation's limit of 1,000,000 bytes \(1 MB\)", message
    )
    assert found is not None, message
    assert int(found.group(1).replace(",", "")) > TEMPLATE_BODY_S3
    assert re.search(
        r"an event of about [\d,]+ bytes .* over Step Functions' limit of 262,144 bytes \(256 KB\)", message
    )


# -- large properties in the bootstrap bucket -------------------------------------------------------


def test_a_small_config_keeps_its_properties_in_the_template(example_app: dict[str, Any]) -> None:
    template = example_app["assembly"].get_stack_by_name(STACK).template
    assert PROPERTIES_OBJECT not in json.dumps(template)
    assert "Spec" in custom(template, SETTINGS_TYPE)["Properties"]


def test_ten_thousand_overrides_synthesize_under_every_limit(big: tuple[Any, dict[str, Any], BootstrapConfig]) -> None:
    assembly, template, config = big
    check_assembly(assembly)  # raises if any limit is met
    assert (Path(assembly.directory) / f"{STACK}.template.json").stat().st_size < TEMPLATE_BODY_S3 / 10
    for resource_type in (SETTINGS_TYPE, "Custom::OrganizationPreflight"):
        properties = custom(template, resource_type)["Properties"]
        location = properties[PROPERTIES_OBJECT]
        assert provider_update_event_bytes(properties) < STATE_PAYLOAD / 20
        assert location["Key"].endswith(PROPERTIES_OBJECT_EXTENSION)
        staged = (Path(assembly.directory) / f"asset.{location['Key']}").read_bytes()
        assert hashlib.sha256(staged).hexdigest() == location["Sha256"]
    # The object holds the spec in full: the handler reads the config's own overrides.
    settings = custom(template, SETTINGS_TYPE)["Properties"]
    specs = specs_of(expanded(settings, read=assembly_reader(assembly.directory)))
    assert specs["alternate_contacts"] == config.settings["alternate_contacts"]
    assert len(specs["alternate_contacts"].overrides) == OVERRIDES


def test_a_changed_spec_is_a_changed_hash(big: tuple[Any, dict[str, Any], BootstrapConfig], tmp_path: Path) -> None:
    """cdk diff shows a change of the resource: its object's key and hash."""
    data = register_config()
    data["alternate_contacts"]["overrides"][-1]["contacts"]["BILLING"]["Name"] = "Another cost owner"
    _, changed, _ = synthesized(data, tmp_path)
    before = custom(big[1], SETTINGS_TYPE)["Properties"][PROPERTIES_OBJECT]
    after = custom(changed, SETTINGS_TYPE)["Properties"][PROPERTIES_OBJECT]
    assert before["Key"] != after["Key"] and before["Sha256"] != after["Sha256"]


def test_only_the_handlers_that_read_properties_objects_may_read_them(
    big: tuple[Any, dict[str, Any], BootstrapConfig],
) -> None:
    statements = [
        statement
        for resource in big[1]["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "ReadPropertiesObjects"
    ]
    assert len(statements) == 2  # the preflight's and the settings' on-event roles
    for statement in statements:
        assert statement["Action"] == "s3:GetObject"
        assert str(statement["Resource"]).endswith(f"-assets-{MANAGEMENT}-us-east-1/*{PROPERTIES_OBJECT_EXTENSION}")


def test_a_properties_object_that_is_not_the_one_named_is_refused(tmp_path: Path) -> None:
    content = json.dumps({"Spec": "{}"}).encode()
    location = {"Bucket": "b", "Key": "k.cr-properties", "Sha256": hashlib.sha256(b"other").hexdigest()}
    with pytest.raises(PropertiesObjectError, match="is not the object the template names"):
        expanded({PROPERTIES_OBJECT: location}, read=lambda bucket, key: content)
    with pytest.raises(PropertiesObjectError, match=r"cannot read s3://b/k.cr-properties"):
        expanded({PROPERTIES_OBJECT: location}, read=assembly_reader(tmp_path))


# -- the 10,000-override config deploys ---------------------------------------------------------------


@pytest.fixture
def registry_organization() -> Iterator[Organization]:
    data = load_organization_file(SEED)
    data["organizational_units"].append({"id": REGISTRY, "name": "Registry"})
    with strict_aws(), at_simulation_speed():
        organization = Organization.from_mapping(data)
        backend = _org_backend()
        model = backend.get_account_by_id(WORKLOAD_ACCOUNTS[0])  # an ACTIVE member account, made by the API
        for account_id in override_accounts(OVERRIDES - len(WORKLOAD_ACCOUNTS)):
            account = copy.copy(model)
            account.id, account.name, account.email = account_id, f"Registry {account_id}", f"{account_id}@example.com"
            account.parent_id, account.tags, account.attached_policies = REGISTRY, {}, list(model.attached_policies)
            backend.accounts.append(account)
        yield organization


def test_ten_thousand_overrides_deploy_on_the_simulated_organization(
    big: tuple[Any, dict[str, Any], BootstrapConfig], registry_organization: Organization
) -> None:
    assembly, template, config = big
    session = boto3.Session(region_name="us-east-1")
    stack = StackState(STACK, MANAGEMENT, "us-east-1")
    assets = file_assets(assembly.directory, STACK, account=MANAGEMENT, region="us-east-1")
    assert publish(assets, session.client("s3"), region="us-east-1") == len(assets) >= 3  # 2 objects, the template

    # The plan reads the spec from the cloud assembly and shows each targeted account's override.
    api = AccountApi(clients.client("account"), MANAGEMENT)
    plan = build_plan(
        Template(template),
        stack,
        clients.client("organizations"),
        api,
        read_object=assembly_reader(assembly.directory),
    )
    assert plan.preflight is not None and not plan.problems
    example_accounts = len(load_organization_file(SEED)["accounts"])
    assert len(plan.facts.accounts) == example_accounts + OVERRIDES - len(WORKLOAD_ACCOUNTS)
    overrides = {o.account: o for o in config.settings["alternate_contacts"].overrides}
    planned = {line.account.id: line for line in plan.accounts if line.targeted}
    assert set(planned) == set(WORKLOAD_ACCOUNTS)
    for account_id in WORKLOAD_ACCOUNTS:
        billing = next(line for line in planned[account_id].changes if line.contact_type == "BILLING")
        assert billing.wanted == overrides[account_id].values["BILLING"]

    result = LocalCloudFormation(stack, session).deploy(Template(template))
    assert result.ok, [operation.error for operation in result.operations if not operation.ok]
    preflight = next(r for r in stack.resources.values() if r.type == "Custom::OrganizationPreflight")
    assert int(preflight.attributes["Checked"]) >= OVERRIDES
    for account_id in WORKLOAD_ACCOUNTS:
        wanted = overrides[account_id].values["BILLING"]
        assert registry_organization.contacts(account_id)["BILLING"] == dict(wanted)
    untouched = override_accounts(1)[0]
    assert registry_organization.contacts(untouched) == {}
