"""EC2 rules moto leaves out that the local cloud's own resources need.

A security group that a network interface still uses cannot be deleted: EC2 answers
DependencyViolation "resource sg-... has a dependent object"
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). moto deletes
it. The interfaces that hold groups here are a VPC Lambda function's (created under the AWS
timing profile, `localcloud/lambda_/interfaces.py`) and an awsvpc ECS task's, which the ECS
provider deletes when the task stops (`localcloud/ecs/moto_records.py`), as AWS does.
"""

from __future__ import annotations

from typing import Any

LAMBDA_ENI_PREFIX = "AWS Lambda VPC ENI-"  # AWS's description of a Lambda function's interface


def install() -> None:
    """Make DeleteSecurityGroup refuse a group a network interface uses (idempotent)."""
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    original = SecurityGroupBackend.delete_security_group
    if getattr(original, "checks_interfaces", False):
        return

    def delete_security_group(
        self: Any, name: str | None = None, group_id: str | None = None
    ) -> Any:
        group = self.get_security_group_by_name_or_id(group_id or name or "")
        if group is not None:
            for eni in list(getattr(self, "enis", {}).values()):
                if group.id in {g.id for g in eni.group_set}:
                    raise DependencyViolationError(f"resource {group.id} has a dependent object")
        return original(self, name=name, group_id=group_id)

    delete_security_group.checks_interfaces = True  # type: ignore[attr-defined]
    SecurityGroupBackend.delete_security_group = delete_security_group  # type: ignore[method-assign]
