"""Whether a role is usable yet, under the AWS timing profile (always, with it off).

IAM is eventually consistent: a role just created is not yet seen by the services that would
assume it (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
ECS creates its service-linked role on the first call that needs it, and that call fails
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html).
"""

from __future__ import annotations

from ..motogateway import MotoGateway
from ..timing import IAM_PROPAGATION_S, TimingProfile


def role_propagated(moto: MotoGateway, timing: TimingProfile, account: str, arn: str) -> bool:
    """False while a role created moments ago has not reached the other services."""
    if not timing.aws:
        return True
    age = moto.role_age(account, arn)
    return age is None or age >= timing.delay(IAM_PROPAGATION_S)


def service_linked_role_ready(
    moto: MotoGateway, timing: TimingProfile, account: str, principal: str, name: str
) -> bool:
    """False (creating the role if it is missing) until the service-linked role has propagated."""
    if not timing.aws:
        return True
    age = moto.ensure_service_linked_role(account, principal, name)
    return age >= timing.delay(IAM_PROPAGATION_S)
