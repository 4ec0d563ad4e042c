"""EC2 rules moto leaves out that the local cloud's own resources need.

A security group that a network interface still uses, or that a rule of another group names
as its source or destination, cannot be deleted: EC2 answers DependencyViolation "resource
sg-... has a dependent object"
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). moto deletes
it, so a teardown that deletes groups in the wrong order would pass here and fail on AWS. The
interfaces that hold groups here are a VPC Lambda function's (created under the AWS timing
profile, `localcloud/lambda_/interfaces.py`) and an awsvpc ECS task's, which the ECS provider
deletes when the task stops (`localcloud/ecs/moto_records.py`), as AWS does. A group's rules
that name the group itself do not hold it.
"""

from __future__ import annotations

from typing import Any

LAMBDA_ENI_PREFIX = "AWS Lambda VPC ENI-"  # AWS's description of a Lambda function's interface


def install() -> None:
    """Make DeleteSecurityGroup refuse a group an interface or another group uses (idempotent)."""
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    original = SecurityGroupBackend.delete_security_group
    if getattr(original, "checks_interfaces", False):
        return

    def delete_security_group(
        self: Any, name: str | None = None, group_id: str | None = None
    ) -> Any:
        group = self.get_security_group_by_name_or_id(group_id or name or "")
        if group is not None and (
            _used_by_interface(self, group.id) or _named_by_rule(self, group.id)
        ):
            raise DependencyViolationError(f"resource {group.id} has a dependent object")
        return original(self, name=name, group_id=group_id)

    delete_security_group.checks_interfaces = True  # type: ignore[attr-defined]
    SecurityGroupBackend.delete_security_group = delete_security_group  # type: ignore[method-assign]


def _used_by_interface(backend: Any, group_id: str) -> bool:
    """Whether a network interface is in the group."""
    return any(
        group_id in {g.id for g in eni.group_set}
        for eni in list(getattr(backend, "enis", {}).values())
    )


def _named_by_rule(backend: Any, group_id: str) -> bool:
    """Whether an inbound or outbound rule of another group names the group."""
    for groups in list(backend.groups.values()):
        for other in list(groups.values()):
            if other.id == group_id:
                continue
            for rule in [*other.ingress_rules, *other.egress_rules]:
                if (rule.source_group or {}).get("GroupId") == group_id:
                    return True
    return False
