"""Pattern 24: the customers API, behind API Gateway (REST, Lambda proxy integration).

Routes (the event's httpMethod and resource, payload format 1.0):
  POST   /customers                    create: 201, 409 if the id exists
  GET    /customers                    all (?limit=, at most 1000), or one with ?customer_id=
  GET    /customers/{customer_id}      one, 404 if unknown
  PUT    /customers/{customer_id}      partial update of the fields given
  DELETE /customers/{customer_id}      delete, 409 while the customer has orders

Every answer is JSON: the resource ({"customer": ...}, {"customers": [...], "count": n}) or
{"error": {"code", "message", "field"}} with 400 naming the field and why. The function has
no database access: it invokes the query executor with a named statement and parameters.
"""

import json
import os
import re

import boto3

EXECUTOR = os.environ["QUERY_EXECUTOR_FUNCTION"]
LAMBDA = boto3.client("lambda")  # once per execution environment
ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FIELDS = {"customer_name": 200, "email": 254, "city": 100, "state": 50}  # name: max length
REQUIRED = ("customer_id", "customer_name", "email")


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


def json_body(event):
    """The request body as a JSON object, or 400."""
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        raise invalid("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body


def check_id(value, field="customer_id"):
    """A customer id: 1 to 32 letters, digits, '_' or '-'."""
    if not isinstance(value, str) or not ID.match(value):
        raise invalid(field, "must be 1 to 32 letters, digits, '_' or '-'")
    return value


def check_fields(body, allowed):
    """The customer fields of a body, each a string of the right length; None for absent."""
    unexpected = sorted(set(body) - set(allowed))
    if unexpected:
        raise invalid(unexpected[0], "is not a field of a customer")
    values = {}
    for field, longest in FIELDS.items():
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise invalid(field, "must be a non-empty string")
        if value is not None and len(value) > longest:
            raise invalid(field, f"must be at most {longest} characters")
        values[field] = value
    if values["email"] is not None and not EMAIL.match(values["email"]):
        raise invalid("email", "must be an email address such as name@example.com")
    return values


def create(event):
    body = json_body(event)
    for field in REQUIRED:
        if body.get(field) is None:
            raise invalid(field, "is required")
    customer_id = check_id(body["customer_id"])
    values = check_fields(body, ("customer_id", *FIELDS))
    result = execute("create_customer", customer_id=customer_id, **values)
    if result.get("error", {}).get("code") == "UniqueViolation":
        raise ApiError(409, "Conflict", f"customer {customer_id} already exists")
    checked(result)
    return respond(201, {"customer": result["rows"][0]})


def list_or_find(event):
    query = event.get("queryStringParameters") or {}
    if "customer_id" in query:  # the seed's GET /customers?customer_id=...
        return get_one(check_id(query["customer_id"]))
    limit = query.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise invalid("limit", "must be a whole number from 1 to 1000")
    rows = checked(execute("list_customers", limit=int(limit)))["rows"]
    return respond(200, {"customers": rows, "count": len(rows)})


def get_one(customer_id):
    rows = checked(execute("get_customer", customer_id=customer_id))["rows"]
    if not rows:
        raise ApiError(404, "NotFound", f"no customer {customer_id}")
    return respond(200, {"customer": rows[0]})


def update(event, customer_id):
    body = json_body(event)
    if "customer_id" in body:
        raise invalid("customer_id", "cannot change: it is the customer's key")
    values = check_fields(body, FIELDS)
    if all(value is None for value in values.values()):
        raise invalid("body", f"give at least one of {', '.join(FIELDS)}")
    rows = checked(execute("update_customer", customer_id=customer_id, **values))["rows"]
    if not rows:
        raise ApiError(404, "NotFound", f"no customer {customer_id}")
    return respond(200, {"customer": rows[0]})


def delete(customer_id):
    result = execute("delete_customer", customer_id=customer_id)
    if result.get("error", {}).get("code") == "ForeignKeyViolation":
        raise ApiError(409, "Conflict", f"customer {customer_id} has orders: delete them first")
    if not checked(result)["rows"]:
        raise ApiError(404, "NotFound", f"no customer {customer_id}")
    return respond(200, {"deleted": {"customer_id": customer_id}})


def checked(result):
    """The result if the statement succeeded; a database error not handled above is a 400."""
    error = result.get("error")
    if error:  # e.g. a CHECK constraint the validation above let through
        raise ApiError(400, "ValidationError", error["message"], error.get("constraint"))
    return result


def handler(event, context):
    """Route the request by method and resource; every answer is JSON."""
    route = (event.get("httpMethod"), event.get("resource"))
    path_id = (event.get("pathParameters") or {}).get("customer_id")
    try:
        if route == ("POST", "/customers"):
            return create(event)
        if route == ("GET", "/customers"):
            return list_or_find(event)
        if path_id is not None:
            check_id(path_id)
        if route == ("GET", "/customers/{customer_id}"):
            return get_one(path_id)
        if route == ("PUT", "/customers/{customer_id}"):
            return update(event, path_id)
        if route == ("DELETE", "/customers/{customer_id}"):
            return delete(path_id)
        raise ApiError(404, "NotFound", f"no route {route[0]} {route[1]}")
    except ApiError as error:
        body = {"code": error.code, "message": error.message}
        if error.field:
            body["field"] = error.field
        return respond(error.status, {"error": body})
