"""Pattern 23: cache-aside in front of Aurora, from a Lambda function in the VPC.

A read looks in the cache first (Valkey, ElastiCache Serverless) and goes to Aurora only on
a miss, then stores the row in the cache with a time to live. A write updates Aurora and
deletes the cached copy, so the next read fetches the new row.

The cache lives in the VPC, so the function must be in the VPC too. From there it reaches
Aurora through RDS Proxy with pymysql and an IAM token: no call to a public AWS endpoint.
READ_PATH=data_api is the source lab's bug: the Data API is a public AWS endpoint, and a
function in a VPC reaches those only through a NAT gateway or an interface VPC endpoint.
Without one, the call hangs until the function times out.
"""

import json
import os
import time

import boto3
import pymysql
import redis

CACHE_HOST = os.environ["CACHE_ENDPOINT"]
DEFAULT_TTL = int(os.environ.get("CACHE_TTL_SECONDS", "60"))
READ_PATH = os.environ.get("READ_PATH", "proxy")  # "proxy", or "data_api" (the seed's bug)
PROXY_HOST = os.environ.get("PROXY_ENDPOINT", "")
DB_USER = os.environ.get("DB_USER", "")
DATABASE = os.environ["DATABASE"]

# The pattern's own table, next to pattern 19's `products` when it shares that cluster.
SELECT = "SELECT id, name, price, category FROM catalog WHERE id = %s"

# The source lab's client: port 6379, TLS on. The certificate is checked against the
# default trust store and the host name, as redis-py does by default.
cache = redis.Redis(host=CACHE_HOST, port=6379, ssl=True, socket_timeout=2, decode_responses=True)
rds = boto3.client("rds")  # signs IAM tokens locally: no network call
data_api = boto3.client("rds-data")  # a public AWS endpoint: unreachable from a VPC alone


def handler(event, context):
    """Read a product (cache-aside) or update its price (write, then invalidate)."""
    product_id = int(event["product_id"])
    key = f"product:{product_id}"
    if event.get("action") == "update":
        update_price(product_id, event["price"])
        cache.delete(key)  # invalidate: the next read goes to Aurora
        return {"updated": product_id}

    started = time.perf_counter()
    cached = cache.get(key)
    if cached is not None:
        return answer("cache", json.loads(cached), started)
    product = read_product(product_id)
    if product is not None:
        cache.set(key, json.dumps(product), ex=int(event.get("ttl", DEFAULT_TTL)))
    return answer("aurora", product, started)


def answer(source, product, started):
    return {
        "source": source,
        "product": product,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }


def read_product(product_id):
    """The product's row from Aurora, by the configured path."""
    if READ_PATH == "data_api":
        return read_with_data_api(product_id)
    with through_proxy() as connection, connection.cursor() as cursor:
        cursor.execute(SELECT, (product_id,))
        row = cursor.fetchone()
        connection.commit()  # end the transaction: the proxy may reuse the connection
    if row is None:
        return None
    return {"id": row[0], "name": row[1], "price": str(row[2]), "category": row[3]}


def read_with_data_api(product_id):
    """The source lab's read: an HTTPS call to the Data API (needs a route out of the VPC)."""
    result = data_api.execute_statement(
        resourceArn=os.environ["CLUSTER_ARN"],
        secretArn=os.environ["SECRET_ARN"],
        database=DATABASE,
        sql="SELECT id, name, price, category FROM catalog WHERE id = :id",
        parameters=[{"name": "id", "value": {"longValue": product_id}}],
    )
    if not result["records"]:
        return None
    fields = [next(iter(f.values())) for f in result["records"][0]]
    return dict(zip(["id", "name", "price", "category"], fields, strict=True))


def update_price(product_id, price):
    with through_proxy() as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE catalog SET price = %s WHERE id = %s", (price, product_id))
        connection.commit()


def through_proxy():
    """A connection to RDS Proxy: IAM token as the password, TLS with certificate checks."""
    token = rds.generate_db_auth_token(DBHostname=PROXY_HOST, Port=3306, DBUsername=DB_USER)
    return pymysql.connect(
        host=PROXY_HOST,
        port=3306,
        user=DB_USER,
        password=token,
        database=DATABASE,
        ssl_verify_cert=True,
        ssl_verify_identity=True,
        connect_timeout=5,
    )
