"""Pattern 18: an orders service (FastAPI) that runs as an ECS service behind a load balancer.

Orders live in the DynamoDB table named by TABLE_NAME. The load balancer's health check
calls GET /health; every answer names the copy of the service that produced it, so you can
watch the load balancer spread requests over the tasks.
"""

import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
INSTANCE = uuid.uuid4().hex[:8]  # one id per running copy (task) of the service

app = FastAPI(title="Orders service", version="1.0.0")


class NewOrder(BaseModel):
    """What a client sends; FastAPI answers 422 with the reason when a rule is broken."""

    customerId: str = Field(min_length=1, max_length=64)  # the API's JSON field name
    product: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=1000)
    price: Decimal = Field(gt=0, max_digits=10, decimal_places=2)  # Decimal: DynamoDB's number


def as_json(item: dict) -> dict:
    """DynamoDB hands numbers back as Decimal; clients expect JSON numbers."""
    return {
        key: (int(value) if value % 1 == 0 else float(value))
        if isinstance(value, Decimal)
        else value
        for key, value in item.items()
    }


@app.get("/health")
def health() -> dict:
    """Cheap and dependency-free: the load balancer calls it every few seconds."""
    return {"status": "healthy", "instance": INSTANCE}


@app.post("/orders", status_code=201)
def create_order(order: NewOrder) -> dict:
    """Store a new order and return it with its id."""
    item = {
        "orderId": uuid.uuid4().hex[:12],
        **order.model_dump(),
        "status": "pending",
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    TABLE.put_item(Item=item)
    return {"order": as_json(item), "instance": INSTANCE}


@app.get("/orders")
def list_orders(limit: int = 50) -> dict:
    """Up to `limit` orders (a scan: fine for a demo table, not for a big one)."""
    items = TABLE.scan(Limit=max(1, min(limit, 100))).get("Items", [])
    return {"orders": [as_json(i) for i in items], "count": len(items), "instance": INSTANCE}


@app.get("/orders/{order_id}")
def get_order(order_id: str) -> dict:
    """One order, or 404 if there is none with this id."""
    item = TABLE.get_item(Key={"orderId": order_id}).get("Item")
    if item is None:
        raise HTTPException(status_code=404, detail=f"order {order_id} not found")
    return {"order": as_json(item), "instance": INSTANCE}


if __name__ == "__main__":
    # ECS sends traffic to the container port on the task's network interface (8080 on
    # every interface). The local cloud gives each task its own HOST and PORT instead.
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8080")),
        log_level="warning",
    )
