"""The preflight: every ID the config names is checked against the organization before anything
changes, in the template (every other custom resource waits for it, in both stacks), in the
handler, in a local deploy (nothing else runs, the organization is unchanged) and in ``plan``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from local_deploy.cli import main
from local_deploy.cloudformation import LocalCloudFormation
from local_deploy.organization_file import load_organization_file
from local_deploy.stack import StackState
from local_deploy.synth import AccountStack, Synthesized
from local_deploy.template import Template
from local_deploy.world import StateDir, open_world
from org_bootstrap.handlers import preflight
from org_bootstrap.handlers.preflight import RESOURCE_TYPE, ConfigIds
from org_bootstrap.validation import InvalidInputError
from simulation.organization import Organization, Storm, strict_aws
from stacks.app_builder import build_app
from stacks.config import BootstrapConfig, preflight_ids
from tests.conftest import ROOT, at_simulation_speed, cfn_event

SEED = ROOT / "config" / "example-organization.toml"
MANAGEMENT, DELEGATED, SUSPENDED = "111111111111", "222222222222", "131313131313"
STACK, DELEGATED_STACK = "OrgBootstrapManagement", "OrgBootstrapDelegatedAdministrator"
EXAMPLE = tomllib.loads((ROOT / "config" / "example.toml").read_text())


def with_contacts(**targets: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(EXAMPLE))
    data["alternate_contacts"]["targets"] = targets
    return data


def synth(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    app, _ = build_app(BootstrapConfig.from_mapping(data))
    return {stack.stack_name: stack.template for stack in app.synth().stacks}


@pytest.fixture(scope="module")
def typo_templates() -> dict[str, dict[str, Any]]:
    """The example with one excluded account that the organization does not have (a typo)."""
    return synth(with_contacts(exclude_accounts=["555555555550"]))


@pytest.fixture(scope="module")
def delegated_mode_templates() -> dict[str, dict[str, Any]]:
    data = with_contacts(exclude_organizational_units=["ou-ex01-sandboxs"])
    return synth({**data, "settings_deployed_in": "delegated_administrator"})


def preflight_of(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [(lid, r) for lid, r in template["Resources"].items() if r["Type"] == RESOURCE_TYPE]
    return found


# -- the template ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "stack"),
    [("typo_templates", STACK), ("delegated_mode_templates", STACK), ("delegated_mode_templates", DELEGATED_STACK)],
)
def test_every_other_custom_resource_of_each_stack_depends_on_the_preflight(
    request: pytest.FixtureRequest, fixture: str, stack: str
) -> None:
    template = request.getfixturevalue(fixture)[stack]
    preflight_id, _ = preflight_of(template)
    others = {
        lid: r.get("DependsOn", [])
        for lid, r in template["Resources"].items()
        if r["Type"].startswith("Custom::") and lid != preflight_id
    }
    assert others, stack
    assert {lid: preflight_id in depends for lid, depends in others.items()} == dict.fromkeys(others, True)


def test_the_preflight_carries_every_id_the_config_names_under_its_field(
    delegated_mode_templates: dict[str, dict[str, Any]],
) -> None:
    for stack in (STACK, DELEGATED_STACK):  # both stacks check the whole config
        _, resource = preflight_of(delegated_mode_templates[stack])
        properties = resource["Properties"]
        assert properties["ManagementAccountId"] == MANAGEMENT
        assert properties["DelegatedAdministratorAccountId"] == DELEGATED
        units = json.loads(properties["OrganizationalUnits"])
        assert units == {"alternate_contacts.targets.exclude_organizational_units[0]": "ou-ex01-sandboxs"}
        # every setting's targets are checked: the example's Regions target a tag
        assert json.loads(properties["Tags"]) == {"regions.targets.tags": {"environment": "production"}}


def test_config_ids_name_targets_excludes_and_overrides() -> None:
    data = with_contacts(accounts=["333333333333"], exclude_accounts=["444444444444"])
    data["alternate_contacts"]["overrides"] = [
        {"account": "555555555555", "contacts": {"BILLING": {"delete": True}}},
        {"organizational_unit": "ou-ex01-prodapps", "contacts": {"BILLING": {"delete": True}}},
    ]
    ids = preflight_ids(BootstrapConfig.from_mapping(data))
    assert dict(ids.accounts) == {
        "alternate_contacts.targets.accounts[0]": "333333333333",
        "alternate_contacts.targets.exclude_accounts[0]": "444444444444",
        "alternate_contacts.overrides[0].account": "555555555555",
    }
    assert dict(ids.organizational_units) == {"alternate_contacts.overrides[1].organizational_unit": "ou-ex01-prodapps"}
    assert dict(ids.tags) == {"regions.targets.tags": (("environment", ("production",)),)}  # every setting's
    assert ConfigIds.from_properties(ids.to_properties()) == ids


# -- the handler -------------------------------------------------------------------------------


@pytest.fixture
def example_org() -> Any:
    with strict_aws():
        yield Organization.from_mapping(load_organization_file(SEED))


def event(ids: ConfigIds, request: str = "Create", old: ConfigIds | None = None) -> dict[str, object]:
    return cfn_event(
        request,
        ids.to_properties(),
        physical_id=None if request == "Create" else preflight.PHYSICAL_ID,
        old_properties=old.to_properties() if old is not None else None,
    )


def test_known_ids_pass_and_an_account_that_is_not_active_is_reported(example_org: Organization) -> None:
    ids = ConfigIds(MANAGEMENT, DELEGATED, {"alternate_contacts.targets.accounts[0]": SUSPENDED}, {"x": "r-ex01"})
    before = example_org.to_mapping()
    result = preflight.on_event(event(ids))
    assert result["PhysicalResourceId"] == preflight.PHYSICAL_ID
    assert result["Data"]["OrganizationId"] == "o-exampleorg1"
    assert result["Data"]["Warnings"].startswith(
        f"alternate_contacts.targets.accounts[0]: account {SUSPENDED} is SUSPENDED, not ACTIVE"
    )
    assert example_org.to_mapping() == before


def test_an_update_reports_instead_of_refusing_an_id_it_had_accepted_before(example_org: Organization) -> None:
    """CloudFormation's rollback goes back to properties accepted earlier: it must not fail on them."""
    gone = {"alternate_contacts.targets.exclude_accounts[0]": "555555555550"}
    accepted = ConfigIds(MANAGEMENT, DELEGATED, gone)
    result = preflight.on_event(event(accepted, "Update", old=accepted))
    assert "has left the organization since" in result["Data"]["Warnings"]
    with pytest.raises(InvalidInputError, match="555555555550 is not an account of organization o-exampleorg1"):
        preflight.on_event(event(accepted, "Update", old=ConfigIds(MANAGEMENT, DELEGATED)))
    bad_old = cfn_event("Update", accepted.to_properties(), physical_id="x", old_properties={"Accounts": "not json"})
    with pytest.raises(InvalidInputError, match="555555555550"):  # unparsable old properties accept nothing
        preflight.on_event(bad_old)


def test_a_rollback_is_not_checked_and_reads_nothing_from_organizations() -> None:
    # CloudFormation puts back properties this check accepted when they were deployed; a rollback
    # that read the organization could fail on a throttling storm and strand the stack (chaos seed 19).
    gone = ConfigIds(MANAGEMENT, DELEGATED, {"alternate_contacts.targets.exclude_accounts[0]": "555555555550"})
    request = event(gone, "Update", old=ConfigIds(MANAGEMENT, DELEGATED))
    with strict_aws() as log:
        Organization.from_mapping(load_organization_file(SEED))
        with pytest.raises(InvalidInputError, match="555555555550"):
            preflight.on_event(request)  # a forward Update is checked
        log.stack_status = "UPDATE_ROLLBACK_IN_PROGRESS"
        log.add_storm(Storm({"DescribeOrganization", "ListRoots", "ListAccountsForParent", "ListAccounts"}))
        result = preflight.on_event(request)
    assert result == {"PhysicalResourceId": preflight.PHYSICAL_ID}
    assert not log.faults


def test_delete_changes_nothing_and_reads_nothing(example_org: Organization) -> None:
    with mock.patch("org_bootstrap.aws.clients.client", side_effect=AssertionError("no calls on Delete")):
        result = preflight.on_event(cfn_event("Delete", {"Accounts": "broken"}, physical_id=preflight.PHYSICAL_ID))
    assert result == {"PhysicalResourceId": preflight.PHYSICAL_ID}


# -- the local deploy and plan ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def published_quotas_lifted() -> Any:
    with at_simulation_speed():
        yield


def test_an_unknown_excluded_account_fails_the_deploy_before_anything_changes(
    tmp_path: Path, typo_templates: dict[str, dict[str, Any]]
) -> None:
    with open_world(StateDir(tmp_path / "state"), SEED) as world:
        before = world.organization.to_mapping()
        calls = world.calls.snapshot()
        stack = StackState(STACK, MANAGEMENT, "us-east-1")
        result = LocalCloudFormation(stack, world.session).deploy(Template(typo_templates[STACK]))
        assert world.organization.to_mapping() == before
        assert world.api_log.writes() == 0
        made = world.calls.snapshot() - calls
    assert result.status == "ROLLBACK_COMPLETE"  # rolled back, as cdk deploy does
    failed = result.failure
    assert failed is not None and failed.resource_type == RESOURCE_TYPE
    assert "alternate_contacts.targets.exclude_accounts[0]: 555555555550 is not an account of organization" in (
        failed.error
    )
    # Nothing ran after it; the rollback's Delete of it is answered by the Provider framework.
    custom = [(op.action, op.resource_type) for op in result.operations if op.custom]
    assert custom == [("Create", RESOURCE_TYPE), ("Delete", RESOURCE_TYPE)]
    assert not any(service == "organizations" and not op.startswith(("List", "Describe")) for service, op in made)


def test_plan_shows_the_same_problem_before_any_deploy(
    tmp_path: Path, typo_templates: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    config = BootstrapConfig.from_mapping(with_contacts(exclude_accounts=["555555555550"]))

    def synthesizer(path: str) -> Synthesized:
        return Synthesized(path, config, STACK, typo_templates[STACK], 0.0)

    assert main(["plan", "--state-dir", str(tmp_path / "state")], synthesizer=synthesizer) == 1
    out, err = capsys.readouterr()
    expected = "alternate_contacts.targets.exclude_accounts[0]: 555555555550 is not an account of organization"
    assert "Preflight: the deploy would fail before changing anything (1 problems)" in out
    assert expected in out.replace("\n", " ") or expected in " ".join(out.split())
    assert err.startswith("error: the deploy would fail at the preflight: " + expected)
    with strict_aws():  # --aws: the same check, through the read-only session
        Organization.from_mapping(load_organization_file(SEED))
        assert main(["plan", "--aws"], synthesizer=synthesizer) == 1
    assert expected in capsys.readouterr().err


def test_delegated_administrator_mode_fails_in_the_management_stack_before_either_stack_changes(
    tmp_path: Path, typo_templates: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    data = {**with_contacts(exclude_accounts=["555555555550"]), "settings_deployed_in": "delegated_administrator"}
    templates = synth(data)
    config = BootstrapConfig.from_mapping(data)

    def synthesizer(path: str) -> Synthesized:
        other = AccountStack(DELEGATED_STACK, DELEGATED, templates[DELEGATED_STACK])
        return Synthesized(path, config, STACK, templates[STACK], 0.0, other)

    state = tmp_path / "state"
    with open_world(StateDir(state), SEED) as world:
        before = world.organization.to_mapping()
    assert main(["deploy", "--state-dir", str(state)], synthesizer=synthesizer) == 1
    assert capsys.readouterr().err.startswith("error: ROLLBACK_COMPLETE: Preflight")
    with open_world(StateDir(state), SEED) as world:
        assert world.organization.to_mapping() == before
        assert world.delegated_stack is None
