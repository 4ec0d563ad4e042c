"""CreateService, UpdateService and DeleteService: AWS's checks, moto's record, local scheduling.

moto accepts services that AWS refuses (a target group without a load balancer, a container
port the task definition lacks, no network configuration for awsvpc, the name of an ACTIVE or
DRAINING service: "Creation of service was not idempotent.", unless the request repeats that
service's clientToken, which returns it) and never starts their tasks; `ServiceApi` checks
what AWS checks, lets moto store the service, and hands Fargate services to the
`ServiceScheduler`. EC2 and EXTERNAL services stay moto's alone.
"""

from __future__ import annotations

import copy
from typing import Any

from ..motogateway import MotoGateway
from ..protocols import ServiceError
from ..registry import RequestContext
from .models import Deployment, LocalService, new_deployment_id
from .moto_records import MotoRecords
from .scheduler import ServiceScheduler


class ServiceApi:
    """The service operations that the local scheduler carries out (Fargate)."""

    def __init__(
        self, moto: MotoGateway, records: MotoRecords, scheduler: ServiceScheduler
    ) -> None:
        self.moto = moto
        self.records = records
        self.scheduler = scheduler

    def create(self, params: dict, context: RequestContext) -> dict:
        """Check, let moto store the service, and schedule its tasks locally (Fargate)."""
        existing = self.scheduler.find(params.get("cluster"), params.get("serviceName", ""))
        token = params.get("clientToken")
        repeated = token is not None and existing is not None and token == existing.client_token
        if repeated and existing.status != "INACTIVE":  # the same request again: its service
            return self._described(existing, context.region)
        if self._name_in_use(existing, params, context.region):
            raise _invalid("Creation of service was not idempotent.")
        launch_type = _launch_type(params)
        definition = self.records.task_definition(params.get("taskDefinition", ""), context)
        if launch_type != "FARGATE" or definition is None:
            return self.moto.call("ecs", "CreateService", params, context.region)
        network = params.get("networkConfiguration") or {}
        if definition.get("networkMode") == "awsvpc" and not network.get("awsvpcConfiguration"):
            raise _invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified."
            )
        self._check_load_balancers(params, definition, context.region)
        moto_params = copy.deepcopy(params)
        awsvpc = (moto_params.get("networkConfiguration") or {}).get("awsvpcConfiguration")
        if awsvpc is not None and "securityGroups" not in awsvpc:
            awsvpc["securityGroups"] = []  # optional on AWS; moto needs the key
        created = self.moto.call("ecs", "CreateService", moto_params, context.region)["service"]
        tags = (created.get("tags") or []) if params.get("propagateTags") == "SERVICE" else []
        service = LocalService(
            arn=created["serviceArn"],
            name=created["serviceName"],
            cluster_arn=created["clusterArn"],
            context=RequestContext(context.region, context.account_id),
            desired_count=int(params.get("desiredCount", 0)),
            launch_type=launch_type,
            network_configuration=params.get("networkConfiguration") or {},
            load_balancers=list(params.get("loadBalancers") or []),
            grace_s=float(params.get("healthCheckGracePeriodSeconds") or 0),
            propagate_tags=tags,
            deployments=[Deployment(new_deployment_id(), definition["arn"])],
            client_token=token,
        )
        self.scheduler.add(service)
        return self._described(service, context.region)

    def update(self, params: dict, context: RequestContext) -> dict:
        """Let moto check and store the change; the scheduler carries it out."""
        service = self.scheduler.find(params.get("cluster"), params.get("service", ""))
        if service is None or service.status != "ACTIVE":
            return self.moto.call("ecs", "UpdateService", params, context.region)
        if params.get("desiredCount") is not None and int(params["desiredCount"]) < 0:
            raise _invalid("desiredCount must be greater than or equal to 0.")
        task_definition = service.primary.task_definition
        if params.get("taskDefinition"):
            definition = self.records.task_definition(params["taskDefinition"], context)
            if definition is None:
                raise ServiceError("ClientException", "TaskDefinition not found.", 400)
            task_definition = definition["arn"]
        moto_params = {
            k: v for k, v in params.items() if k in ("cluster", "service", "desiredCount")
        }
        self.moto.call("ecs", "UpdateService", moto_params, context.region)
        self.scheduler.update(service, params, task_definition)
        return self._described(service, context.region)

    def delete(self, params: dict, context: RequestContext) -> dict:
        """Refuse a scaled service without force (moto checks), then drain it."""
        service = self.scheduler.find(params.get("cluster"), params.get("service", ""))
        if service is None or service.status != "ACTIVE":
            return self.moto.call("ecs", "DeleteService", params, context.region)
        self.moto.call("ecs", "DeleteService", params, context.region)
        self.scheduler.delete(service)
        return self._described(service, context.region)

    def _check_load_balancers(
        self, params: dict[str, Any], definition: dict[str, Any], region: str
    ) -> None:
        """AWS's CreateService checks of `loadBalancers` that moto skips."""
        balancers = params.get("loadBalancers") or []
        if params.get("healthCheckGracePeriodSeconds") is not None and not balancers:
            raise _invalid(
                "Health check grace period is only valid for services configured to use "
                "load balancers"
            )
        containers = {c["name"]: c for c in definition["containerDefinitions"]}
        for balancer in balancers:
            group = balancer.get("targetGroupArn")
            if not group:
                raise _invalid("targetGroupArn is required for an application load balancer")
            try:
                found = self.moto.call(
                    "elbv2", "DescribeTargetGroups", {"TargetGroupArns": [group]}, region
                )["TargetGroups"]
            except ServiceError as error:
                # This wording is the local cloud's own: AWS's is not documented.
                raise _invalid(f"Target group {group} was not found: {error.message}") from error
            if not found or not found[0].get("LoadBalancerArns"):
                raise _invalid(
                    f"The target group with targetGroupArn {group} does not have an associated "
                    "load balancer."
                )
            name, port = balancer.get("containerName"), balancer.get("containerPort")
            mappings = (containers.get(name) or {}).get("portMappings", [])
            ports = {m.get("containerPort") for m in mappings}
            if name not in containers or port not in ports:
                raise _invalid(
                    f"The container {name} did not have a container port {port} defined."
                )

    def _name_in_use(self, local: LocalService | None, params: dict, region: str) -> bool:
        """Whether an ACTIVE or DRAINING service has this name in the cluster.

        moto would replace it, and the scheduler would lose track of its running tasks.
        """
        if local is not None:
            return local.status != "INACTIVE"
        found = self.moto.call(
            "ecs",
            "DescribeServices",
            {"cluster": params.get("cluster") or "default", "services": [params["serviceName"]]},
            region,
        )
        return any(s.get("status") in ("ACTIVE", "DRAINING") for s in found.get("services", []))

    def _described(self, service: LocalService, region: str) -> dict[str, Any]:
        """The service as DescribeServices shows it (moto's record, kept current locally)."""
        found = self.moto.call(
            "ecs",
            "DescribeServices",
            {"cluster": service.cluster_arn, "services": [service.arn]},
            region,
        )
        return {"service": found["services"][0]}


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message, 400)


def _launch_type(params: dict[str, Any]) -> str:
    """FARGATE for the launch type or a FARGATE capacity provider strategy."""
    if params.get("launchType"):
        return str(params["launchType"])
    strategy = params.get("capacityProviderStrategy") or []
    if any(item.get("capacityProvider", "").startswith("FARGATE") for item in strategy):
        return "FARGATE"
    return "EC2"
