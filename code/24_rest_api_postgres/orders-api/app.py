"""Pattern 24: the orders API, behind API Gateway (REST, Lambda proxy integration).

Routes (the event's httpMethod and resource, payload format 1.0):
  POST   /orders                 create: 201; 409 if the id exists; 400 for an unknown customer
  GET    /orders                 all (?limit=, at most 1000), or a customer's: ?customer_id=
  GET    /orders/{order_id}      one, 404 if unknown
  PUT    /orders/{order_id}      partial update: status and/or total_amount
  DELETE /orders/{order_id}      delete

Every answer is JSON: {"order": ...}, {"orders": [...], "count": n}, or
{"error": {"code", "message", "field"}}. Amounts are JSON numbers with at most two decimals.
Like the customers API it reaches the database only through the query executor.
"""

import json
import os
import re
from decimal import Decimal, InvalidOperation

import boto3

EXECUTOR = os.environ["QUERY_EXECUTOR_FUNCTION"]
LAMBDA = boto3.client("lambda")  # once per execution environment
ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
MAX_AMOUNT = Decimal("9999999999.99")  # numeric(12, 2)


class ApiError(Exception):
    """An answer other than success: its HTTP status, code, message and field."""

    def __init__(self, status, code, message, field=None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def respond(status, body):
    """A Lambda proxy response: status, JSON body, content type."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def invalid(field, why):
    """400 naming the field and why it was refused."""
    return ApiError(400, "ValidationError", f"{field}: {why}", field)


def execute(statement, **params):
    """Run a named statement through the query executor; its rows, or its error dict."""
    response = LAMBDA.invoke(
        FunctionName=EXECUTOR, Payload=json.dumps({"statement": statement, "params": params})
    )
    result = json.loads(response["Payload"].read())
    if response.get("FunctionError") or result.get("error", {}).get("code") == "Refused":
        print(f"query executor failed on {statement}: {result}")
        raise ApiError(500, "InternalError", "the query could not be run")
    return result


def checked(result):
    """The result if the statement succeeded; a database error not handled here is a 400."""
    error = result.get("error")
    if error:
        raise ApiError(400, "ValidationError", error["message"], error.get("constraint"))
    return result


def as_order(row):
    """An order row for the answer: the exact numeric string becomes a JSON number."""
    return {**row, "total_amount": float(row["total_amount"])}


def json_body(event):
    """The request body as a JSON object, or 400."""
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        raise invalid("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body


def check_id(value, field):
    """An order or customer id: 1 to 32 letters, digits, '_' or '-'."""
    if not isinstance(value, str) or not ID.match(value):
        raise invalid(field, "must be 1 to 32 letters, digits, '_' or '-'")
    return value


def check_status(value):
    if value is not None and value not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    return value


def check_amount(value):
    """A number from 0 to MAX_AMOUNT with at most two decimals (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("total_amount", "must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid("total_amount", "must be a number") from None
    if not Decimal(0) <= amount <= MAX_AMOUNT:
        raise invalid("total_amount", f"must be from 0 to {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise invalid("total_amount", "must have at most two decimals")
    return value


def create(event):
    body = json_body(event)
    unexpected = sorted(set(body) - {"order_id", "customer_id", "status", "total_amount"})
    if unexpected:
        raise invalid(unexpected[0], "is not a field of an order")
    for field in ("order_id", "customer_id", "total_amount"):
        if body.get(field) is None:
            raise invalid(field, "is required")
    order_id = check_id(body["order_id"], "order_id")
    customer_id = check_id(body["customer_id"], "customer_id")
    status = check_status(body.get("status", "pending"))
    amount = check_amount(body["total_amount"])
    result = execute(
        "create_order",
        order_id=order_id, customer_id=customer_id, status=status, total_amount=amount,
    )  # fmt: skip
    code = result.get("error", {}).get("code")
    if code == "UniqueViolation":
        raise ApiError(409, "Conflict", f"order {order_id} already exists")
    if code == "ForeignKeyViolation":
        raise invalid("customer_id", f"no customer {customer_id}")
    return respond(201, {"order": as_order(checked(result)["rows"][0])})


def list_orders(event):
    query = event.get("queryStringParameters") or {}
    limit = query.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise invalid("limit", "must be a whole number from 1 to 1000")
    if "customer_id" in query:  # the seed's orders of one customer
        customer_id = check_id(query["customer_id"], "customer_id")
        result = execute("list_orders_of_customer", customer_id=customer_id, limit=int(limit))
    else:
        result = execute("list_orders", limit=int(limit))
    orders = [as_order(row) for row in checked(result)["rows"]]
    return respond(200, {"orders": orders, "count": len(orders)})


def get_one(order_id):
    rows = checked(execute("get_order", order_id=order_id))["rows"]
    if not rows:
        raise ApiError(404, "NotFound", f"no order {order_id}")
    return respond(200, {"order": as_order(rows[0])})


def update(event, order_id):
    body = json_body(event)
    for field in ("order_id", "customer_id"):
        if field in body:
            raise invalid(field, "cannot change: create a new order instead")
    unexpected = sorted(set(body) - {"status", "total_amount"})
    if unexpected:
        raise invalid(unexpected[0], "is not a field of an order")
    if body.get("status") is None and body.get("total_amount") is None:
        raise invalid("body", "give status and/or total_amount")
    status = check_status(body.get("status"))
    amount = check_amount(body.get("total_amount"))
    result = execute("update_order", order_id=order_id, status=status, total_amount=amount)
    rows = checked(result)["rows"]
    if not rows:
        raise ApiError(404, "NotFound", f"no order {order_id}")
    return respond(200, {"order": as_order(rows[0])})


def delete(order_id):
    if not checked(execute("delete_order", order_id=order_id))["rows"]:
        raise ApiError(404, "NotFound", f"no order {order_id}")
    return respond(200, {"deleted": {"order_id": order_id}})


def handler(event, context):
    """Route the request by method and resource; every answer is JSON."""
    route = (event.get("httpMethod"), event.get("resource"))
    path_id = (event.get("pathParameters") or {}).get("order_id")
    try:
        if route == ("POST", "/orders"):
            return create(event)
        if route == ("GET", "/orders"):
            return list_orders(event)
        if path_id is not None:
            check_id(path_id, "order_id")
        if route == ("GET", "/orders/{order_id}"):
            return get_one(path_id)
        if route == ("PUT", "/orders/{order_id}"):
            return update(event, path_id)
        if route == ("DELETE", "/orders/{order_id}"):
            return delete(path_id)
        raise ApiError(404, "NotFound", f"no route {route[0]} {route[1]}")
    except ApiError as error:
        body = {"code": error.code, "message": error.message}
        if error.field:
            body["field"] = error.field
        return respond(error.status, {"error": body})
