"""Pattern 21: the write side. Random sales into DynamoDB, as fast as the table takes them.

Invoke with {"count": N}. Numbers are stored as DynamoDB numbers (N): quantity and revenue
must be numbers for the read model to sum them.
"""

import datetime as dt
import os
import random
import uuid
from decimal import Decimal

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
PRODUCTS = ["Widget", "Gadget", "Device", "Pro", "Starter"]
REGIONS = ["North", "South", "East", "West", "Central"]


def handler(event, context):
    """Write `count` random sales; return their ids and total revenue."""
    count = int(event.get("count", 5))
    written, total = [], Decimal("0")
    with TABLE.batch_writer() as batch:  # BatchWriteItem, 25 items per call
        for _ in range(count):
            sold = dt.date.today() - dt.timedelta(days=random.randint(0, 30))
            revenue = Decimal(str(round(random.uniform(10, 500), 2)))
            sale = {
                "saleId": str(uuid.uuid4()),
                "customerId": f"cust-{random.randint(1, 100):03d}",
                "product": random.choice(PRODUCTS),
                "quantity": random.randint(1, 20),
                "revenue": revenue,
                "region": random.choice(REGIONS),
                "saleDate": sold.isoformat(),
            }
            batch.put_item(Item=sale)
            written.append(sale["saleId"])
            total += revenue
    return {"written": count, "saleIds": written, "revenue": str(total)}
