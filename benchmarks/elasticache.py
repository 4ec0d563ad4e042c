"""ElastiCache Serverless: a GET hit over TLS, a miss that reads Aurora, and the Lambda paths.

One serverless cache and one Aurora cluster run on the local cloud. The client measures GET
on a warm TLS connection (verified with the local CA), then a cache-aside miss (GET, a
primary-key SELECT with pymysql, SET with a TTL), then one Lambda invoke end to end that
hits the cache against one that misses, as the course's handler does them. Each timed miss
reads a key no call has cached yet, so no DEL round trip is timed with it.
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from typing import Any

import pymysql
import redis

from .aurora import bench_cluster
from .timing import timings, until

HANDLER = """
import json, os, time
import pymysql, redis

cache = redis.Redis(host=os.environ["CACHE_HOST"], port=6379, ssl=True)
DB = dict(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]),
          user="admin", password=os.environ["DB_PASSWORD"], database="bench")


def handler(event, context):
    key = "item:%d" % event["id"]
    cached = cache.get(key)
    if cached is not None:
        return {"source": "cache"}
    with pymysql.connect(**DB) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, name FROM items WHERE id = %s", (event["id"],))
        row = cursor.fetchone()
    cache.set(key, json.dumps(row), ex=60)
    return {"source": "aurora"}
"""


def bench_cache(lab: Any) -> dict[str, Any]:
    """Figures of the cache: hit and miss from the client, and the two Lambda paths."""
    from localcloud.certificates import ca_bundle
    from localcloud.config import state_dir

    ec = lab.client("elasticache")
    ec.create_serverless_cache(ServerlessCacheName="bench-cache", Engine="valkey")

    def available() -> dict[str, Any] | None:
        cache = ec.describe_serverless_caches(ServerlessCacheName="bench-cache")
        found = cache["ServerlessCaches"][0]
        return found if found["Status"] == "available" else None

    endpoint = until(available, 60, "the cache")["Endpoint"]
    database = _database(lab)
    client = redis.Redis(
        host=endpoint["Address"], port=endpoint["Port"], ssl=True,
        ssl_ca_certs=str(ca_bundle(state_dir())),
    )  # fmt: skip
    client.set("hit", "x" * 100)
    hit = timings(lambda: client.get("hit"), 2000, warmup=50)
    connection = pymysql.connect(**database["login"])
    fresh_keys = itertools.count()

    def miss() -> None:
        key = f"miss:{next(fresh_keys)}"  # never cached before: a real miss, no DEL timed
        if client.get(key) is not None:
            raise RuntimeError(f"{key} was already cached")
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, name FROM items WHERE id = %s", (42,))
            row = cursor.fetchone()
        connection.commit()
        client.set(key, json.dumps(row), ex=60)

    missed = timings(miss, 500, warmup=20)
    connection.close()
    lambdas = _lambda_paths(lab, endpoint["Address"], database)
    client.close()
    return {"get_hit_tls": hit, "miss_aurora": missed, **lambdas}


def _database(lab: Any) -> dict[str, Any]:
    """An Aurora cluster with a table of 1,000 rows; its endpoint and master login."""
    rds = lab.client("rds")
    cluster = bench_cluster(lab, "bench-cache-db")
    secret = lab.client("secretsmanager").get_secret_value(
        SecretId=cluster["MasterUserSecret"]["SecretArn"]
    )
    password = json.loads(secret["SecretString"])["password"]

    def described() -> dict[str, Any] | None:
        found = rds.describe_db_clusters(DBClusterIdentifier="bench-cache-db")["DBClusters"][0]
        return found if found["Status"] == "available" else None

    found = until(described, 120, "the cluster")
    login = {
        "host": found["Endpoint"], "port": int(found["Port"]), "user": "admin",
        "password": password, "database": "bench", "autocommit": True,
    }  # fmt: skip
    with pymysql.connect(**login) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)")
        cursor.executemany(
            "INSERT INTO items (id, name) VALUES (%s, %s)", [(n, f"item-{n}") for n in range(1000)]
        )
    return {"login": login}


def _lambda_paths(lab: Any, cache_host: str, database: dict[str, Any]) -> dict[str, Any]:
    """One invoke end to end that hits, against one that misses (an item never cached)."""
    iam, functions = lab.client("iam"), lab.client("lambda")
    role = iam.create_role(RoleName="bench-cache", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", HANDLER)
    login = database["login"]
    functions.create_function(
        FunctionName="bench-cache",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package.getvalue()},
        Timeout=30,
        Environment={
            "Variables": {
                "CACHE_HOST": cache_host,
                "DB_HOST": login["host"],
                "DB_PORT": str(login["port"]),
                "DB_PASSWORD": login["password"],
            }
        },
    )

    def invoke(item: int) -> str:
        answer = functions.invoke(FunctionName="bench-cache", Payload=json.dumps({"id": item}))
        return json.loads(answer["Payload"].read())["source"]

    # Items 100 onwards, one per call, were never cached: each invoke is a real miss.
    uncached = itertools.count(100)

    def invoke_miss() -> None:
        if invoke(next(uncached)) != "aurora":
            raise RuntimeError("the miss path was served from the cache")

    def invoke_hit() -> None:
        if invoke(7) != "cache":
            raise RuntimeError("the hit path missed the cache")

    invoke(7)  # start the worker; item 7 is cached from here on
    miss = timings(invoke_miss, 100, warmup=5)
    hit = timings(invoke_hit, 300, warmup=5)
    return {
        "lambda_hit": hit,
        "lambda_miss": miss,
        "lambda_miss_over_hit": round(miss["median_ms"] / hit["median_ms"], 2),
    }
